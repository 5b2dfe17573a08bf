//! `docker/cloudformation.yaml`, the stack of one node on ECS: cfn-lint finds
//! nothing; read as a template, the roles, the mount targets, the security
//! groups and the task definition are what the agent needs (the task
//! definition equal to `docker/ecs-task-definition.json` wherever the agent
//! relies on it), the task role reaches its own path of the keyshare vault and
//! can delete nothing, the weekly drill runs `agent vault verify` and nothing
//! else, every alarm reads a metric the agent writes (`agent::emf::METRICS`,
//! and the names a running agent wrote on its log under the alarms' namespace
//! and `Node` dimension) and the fleet's dashboard finds every node by
//! search; deployed into moto's
//! CloudFormation, it completes, `agent doctor --check aws` in the task's
//! place is green, and the vault, the topic, the dashboard and the drill exist.
//!
//! moto does not model `AWS::SecretsManager::Secret` (it skips the resource),
//! answers a `Ref` to `AWS::EFS::AccessPoint` with no id, keeps of a task
//! definition only its family, containers, volume names and memory, and of a
//! service only its cluster, task definition and count; it accepts without
//! creating `AWS::S3::BucketPolicy`, `AWS::CloudWatch::Alarm`,
//! `AWS::Scheduler::Schedule` and `AWS::SNS::TopicPolicy`, and does not apply
//! a bucket's Object Lock, versioning, public access block or bucket key:
//! those parts are checked on the template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, JsonServer, doctor_report, keypair};
use agent_tests::moto::{Moto, xml};
use agent_tests::views::Checks;
use aws_sdk_cloudformation::types::{Capability, Parameter};
use entrypoint::check::Status;
use entrypoint::config::settings;
use entrypoint::config::values::duration;
use entrypoint::secrets::SecretName;
use serde_json::{Value, json};

const ZONE_A: &str = "eu-west-1a";
const ZONE_B: &str = "eu-west-1b";
/// Every port upstream needs (80 MPC p2p, 24567 nearcore p2p, 8080 web UI,
/// 3030 nearcore RPC, 8079 migration) and the agent's.
const PORTS: [u64; 6] = [80, 24567, 8080, 3030, 8079, 8090];

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn template_text() -> String {
    std::fs::read_to_string(repo_file("docker/cloudformation.yaml")).unwrap()
}

/// The template with every short-form tag (`!Ref`, `!Sub`, `!GetAtt a.b`, …)
/// in its long form, as JSON.
fn template() -> Value {
    long_form(serde_yaml::from_str(&template_text()).unwrap())
}

fn long_form(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_string(), long_form(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let function = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            match (function, inner) {
                ("Ref", inner) => json!({ "Ref": inner }),
                ("GetAtt", Value::String(dotted)) => {
                    let (resource, attribute) = dotted.split_once('.').unwrap();
                    json!({ "Fn::GetAtt": [resource, attribute] })
                }
                (function, inner) => json!({ format!("Fn::{function}"): inner }),
            }
        }
    }
}

fn reference_task_definition() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_file("docker/ecs-task-definition.json")).unwrap(),
    )
    .unwrap()
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(n, r)| (n.as_str(), r))
        .collect()
}

/// Whether `value` names `name`: `Ref`, `Fn::GetAtt`, or `${name}` in a `Fn::Sub`.
fn refers_to(value: &Value, name: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get("Ref").is_some_and(|r| r == name)
                || map.get("Fn::GetAtt").is_some_and(|g| g[0] == name)
                || map.get("Fn::Sub").is_some_and(|s| {
                    s.as_str().is_some_and(|s| {
                        s.contains(&format!("${{{name}}}")) || s.contains(&format!("${{{name}."))
                    })
                })
                || map.values().any(|v| refers_to(v, name))
        }
        Value::Array(items) => items.iter().any(|v| refers_to(v, name)),
        _ => false,
    }
}

/// The condition a value needs: `None` for always, `Some((name, holds))`.
type Needs = Option<(String, bool)>;

/// Every value `value` can take: both branches of a `Fn::If`, else itself,
/// each with the condition it needs.
fn branches(value: &Value) -> Vec<(Needs, Value)> {
    match value.get("Fn::If") {
        Some(branch) => vec![
            (
                Some((branch[0].as_str().unwrap().to_string(), true)),
                branch[1].clone(),
            ),
            (
                Some((branch[0].as_str().unwrap().to_string(), false)),
                branch[2].clone(),
            ),
        ],
        None => vec![(None, value.clone())],
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => vec![other.to_string()],
    }
}

/// The statements of a role's inline policies, for each value `Policies` can take.
fn statements(role: &Value) -> Vec<(Needs, Vec<Value>)> {
    branches(&role["Properties"]["Policies"])
        .into_iter()
        .map(|(condition, policies)| {
            let all = policies
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
                .collect();
            (condition, all)
        })
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    strings(&statement["Action"])
}

/// The ARN of this node's secret `name` as the template writes it.
fn secret_arn(name: &str) -> String {
    format!(
        "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{NodeName}}-{name}-??????"
    )
}

fn sub_strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(sub_strings).collect(),
        Value::Object(map) if map.contains_key("Fn::Sub") => strings(&map["Fn::Sub"]),
        other => strings(other),
    }
}

#[test]
fn cfn_lint_finds_nothing() {
    let lint = std::env::var_os("CFN_LINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_file(".venv/bin/cfn-lint"));
    assert!(
        lint.exists(),
        "{} is missing: scripts/test installs cfn-lint into .venv (or set CFN_LINT)",
        lint.display()
    );
    let version = Command::new(&lint).arg("--version").output().unwrap();
    let out = Command::new(&lint)
        .arg(repo_file("docker/cloudformation.yaml"))
        .output()
        .unwrap();
    println!(
        "{} on docker/cloudformation.yaml: exit {:?}{}",
        String::from_utf8_lossy(&version.stdout).trim(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plain_cloudformation_without_a_transform() {
    let t = template();
    assert!(t.get("Transform").is_none());
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
}

#[test]
fn the_task_role_mounts_the_home_through_the_access_point_and_the_execution_role_never() {
    let t = template();
    let task = statements(resource(&t, "TaskRole"));
    assert_eq!(task.len(), 1, "the task role's policies are unconditional");
    let task = &task[0].1;

    let mount = task
        .iter()
        .find(|s| actions(s).contains(&"elasticfilesystem:ClientMount".to_string()))
        .expect("the task role mounts the home");
    assert!(actions(mount).contains(&"elasticfilesystem:ClientWrite".to_string()));
    assert_eq!(mount["Effect"], "Allow");
    assert!(refers_to(&mount["Resource"], "FileSystem"), "{mount:#}");
    assert!(
        task.iter()
            .flat_map(actions)
            .all(|a| a != "elasticfilesystem:ClientRootAccess"),
        "the node is no root on its home"
    );
    assert!(
        refers_to(
            &mount["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"],
            "AccessPoint"
        ),
        "{mount:#}"
    );

    // GetSecretValue on this node's secrets, one by one.
    let read: BTreeSet<String> = task
        .iter()
        .filter(|s| actions(s).contains(&"secretsmanager:GetSecretValue".to_string()))
        .flat_map(|s| sub_strings(&s["Resource"]))
        .collect();
    let own: BTreeSet<String> = SecretName::ALL
        .iter()
        .map(|s| secret_arn(s.env_name()))
        .collect();
    assert_eq!(
        read, own,
        "GetSecretValue on the node's secrets, and only those"
    );

    // Writing: only the store key, which the agent may generate.
    for action in [
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
    ] {
        let written: Vec<String> = task
            .iter()
            .filter(|s| actions(s).contains(&action.to_string()))
            .flat_map(|s| sub_strings(&s["Resource"]))
            .collect();
        assert_eq!(
            written,
            vec![secret_arn("MPC_SECRET_STORE_KEY")],
            "{action}"
        );
    }
    let decrypt = task
        .iter()
        .find(|s| actions(s) == ["kms:Decrypt"])
        .expect("kms:Decrypt for the secrets");
    assert!(
        sub_strings(&decrypt["Condition"]["StringEquals"]["kms:ViaService"])[0]
            .starts_with("secretsmanager."),
        "kms:Decrypt only through Secrets Manager: {decrypt:#}"
    );
    for s in task {
        if strings(&s["Resource"]) == ["*"] {
            assert!(
                actions(s).iter().all(|a| a.starts_with("ssmmessages:")),
                "only ECS Exec's channels take any resource: {s:#}"
            );
        }
    }

    // The execution role, in each of its forms: ECR and logs, no EFS, and a
    // secret only when ECS injects it.
    let container = &resource(&t, "TaskDefinition")["Properties"]["ContainerDefinitions"][0];
    let injected = branches(&container["Secrets"]);
    for (condition, statements) in statements(resource(&t, "ExecutionRole")) {
        let all: Vec<String> = statements.iter().flat_map(actions).collect();
        assert!(
            all.iter().all(|a| !a.starts_with("elasticfilesystem:")),
            "EFS on the execution role ({condition:?}): {all:?}"
        );
        for needed in [
            "ecr:GetAuthorizationToken",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ] {
            assert!(
                all.contains(&needed.to_string()),
                "{needed} ({condition:?})"
            );
        }
        let secrets: Vec<String> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("secretsmanager:")))
            .flat_map(|s| {
                assert_eq!(actions(s), ["secretsmanager:GetSecretValue"]);
                sub_strings(&s["Resource"])
            })
            .collect();
        let (_, listed) = injected
            .iter()
            .find(|(c, _)| c == &condition)
            .unwrap_or_else(|| panic!("the container's secrets follow {condition:?}"));
        let expected: Vec<String> = match listed {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    assert!(refers_to(&i["ValueFrom"], "BackupKeySecret"), "{i:#}");
                    secret_arn(i["Name"].as_str().unwrap())
                })
                .collect(),
            // AWS::NoValue: nothing injected.
            _ => vec![],
        };
        assert_eq!(
            secrets, expected,
            "the execution role reads what ECS injects ({condition:?})"
        );
    }
    assert_eq!(
        resource(&t, "BackupKeySecret")["Properties"]["Name"]["Fn::Sub"],
        "${NodeName}-MPC_BACKUP_ENCRYPTION_KEY_HEX"
    );
}

#[test]
fn every_subnet_has_a_mount_target_and_2049_is_open_only_from_the_tasks_group() {
    let t = template();
    let targets = of_type(&t, "AWS::EFS::MountTarget");
    let service = &resource(&t, "Service")["Properties"];
    let network = &service["NetworkConfiguration"]["AwsvpcConfiguration"];

    // The subnets the tasks may run in, each with the condition it needs.
    let mut subnets: BTreeMap<String, Needs> = BTreeMap::new();
    for (condition, list) in branches(&network["Subnets"]) {
        for subnet in list.as_array().unwrap() {
            let name = subnet["Ref"].as_str().unwrap().to_string();
            let entry = subnets.entry(name).or_insert(condition.clone());
            if entry != &condition {
                *entry = None;
            }
        }
    }
    let declared: BTreeSet<&String> = t["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, p)| p["Type"] == "AWS::EC2::Subnet::Id" || name.starts_with("Subnet"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        declared,
        subnets.keys().collect(),
        "every subnet parameter is the tasks'"
    );
    assert!(
        subnets.values().filter(|c| c.is_none()).count() >= 2,
        "two subnets (two zones) at least, always: {subnets:?}"
    );
    for (subnet, condition) in &subnets {
        let mine: Vec<&(&str, &Value)> = targets
            .iter()
            .filter(|(_, r)| r["Properties"]["SubnetId"]["Ref"] == subnet.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "one mount target in {subnet}");
        let (name, target) = mine[0];
        match condition {
            None => assert!(target.get("Condition").is_none(), "{name}"),
            Some((c, true)) => assert_eq!(target["Condition"], c.as_str(), "{name}"),
            Some(other) => panic!("{subnet} only when {other:?}"),
        }
        assert!(refers_to(
            &target["Properties"]["FileSystemId"],
            "FileSystem"
        ));
        // The service waits for it: DependsOn, or a reference when it is conditional.
        let depends = strings(&resource(&t, "Service")["DependsOn"]);
        assert!(
            depends.contains(&name.to_string()) || refers_to(service, name),
            "the service does not wait for {name}"
        );
    }
    assert_eq!(targets.len(), subnets.len());

    // The mount targets' group takes NFS from the tasks' group only.
    let efs_groups: BTreeSet<String> = targets
        .iter()
        .map(|(_, r)| {
            let groups = r["Properties"]["SecurityGroups"].as_array().unwrap();
            assert_eq!(groups.len(), 1);
            groups[0]["Fn::GetAtt"][0].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(efs_groups.len(), 1, "{efs_groups:?}");
    let efs_group = efs_groups.into_iter().next().unwrap();
    let tasks_groups = network["SecurityGroups"].as_array().unwrap();
    assert_eq!(tasks_groups.len(), 1);
    let tasks_group = tasks_groups[0]["Fn::GetAtt"][0].as_str().unwrap();
    assert_ne!(efs_group, tasks_group);
    let rules = resource(&t, &efs_group)["Properties"]["SecurityGroupIngress"]
        .as_array()
        .unwrap();
    assert_eq!(rules.len(), 1, "{rules:#?}");
    let rule = rules[0].as_object().unwrap();
    assert_eq!(rule["IpProtocol"], "tcp");
    assert_eq!(rule["FromPort"], 2049);
    assert_eq!(rule["ToPort"], 2049);
    assert!(refers_to(&rule["SourceSecurityGroupId"], tasks_group));
    for key in ["CidrIp", "CidrIpv6", "SourcePrefixListId"] {
        assert!(!rule.contains_key(key), "{key} on the EFS group");
    }
    assert!(
        of_type(&t, "AWS::EC2::SecurityGroupIngress").is_empty(),
        "no rule is added to a group elsewhere"
    );
    // No other group opens 2049.
    for (name, group) in of_type(&t, "AWS::EC2::SecurityGroup") {
        if name == efs_group {
            continue;
        }
        for rule in group["Properties"]["SecurityGroupIngress"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let all = rule["IpProtocol"] == "-1";
            let covers =
                rule["FromPort"].as_u64() <= Some(2049) && rule["ToPort"].as_u64() >= Some(2049);
            assert!(!all && !covers, "{name} opens 2049: {rule:#}");
        }
    }
}

/// `PascalCase` keys to the task definition JSON's `camelCase`.
fn camel(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        k if k == "Ref" || k.starts_with("Fn::") => k.to_string(),
                        "EFSVolumeConfiguration" => "efsVolumeConfiguration".to_string(),
                        "FilesystemId" => "fileSystemId".to_string(),
                        "IAM" => "iam".to_string(),
                        k => {
                            let mut chars = k.chars();
                            let first = chars.next().unwrap().to_ascii_lowercase();
                            std::iter::once(first).chain(chars).collect()
                        }
                    };
                    (key, camel(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(camel).collect()),
        other => other.clone(),
    }
}

fn environment(container: &Value) -> BTreeMap<String, Value> {
    container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v["value"].clone()))
        .collect()
}

#[test]
fn the_task_definition_is_the_json_one_wherever_the_agent_relies_on_it() {
    let t = template();
    let stack = camel(&resource(&t, "TaskDefinition")["Properties"]);
    let reference = reference_task_definition();
    for key in ["requiresCompatibilities", "networkMode", "runtimePlatform"] {
        assert_eq!(stack[key], reference[key], "{key}");
    }
    assert!(refers_to(&stack["taskRoleArn"], "TaskRole"));
    assert!(refers_to(&stack["executionRoleArn"], "ExecutionRole"));

    let c = &stack["containerDefinitions"][0];
    let r = &reference["containerDefinitions"][0];
    assert_eq!(stack["containerDefinitions"].as_array().unwrap().len(), 1);
    for key in [
        "name",
        "essential",
        "stopTimeout",
        "healthCheck",
        "mountPoints",
        "ulimits",
    ] {
        assert_eq!(c[key], r[key], "{key}");
    }
    assert_eq!(
        c["healthCheck"]["command"],
        json!(["CMD", "/usr/local/bin/agent", "health"])
    );

    // Ports: the JSON's, by name and port, and every one upstream needs.
    let ports = |c: &Value| -> BTreeMap<u64, Value> {
        c["portMappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["containerPort"].as_u64().unwrap(), p.clone()))
            .collect()
    };
    let (stack_ports, reference_ports) = (ports(c), ports(r));
    for (port, mapping) in &reference_ports {
        assert_eq!(stack_ports.get(port), Some(mapping), "port {port}");
    }
    assert_eq!(
        stack_ports.keys().copied().collect::<BTreeSet<_>>(),
        PORTS.into_iter().collect(),
    );

    // The environment: every name a setting of the agent; the ones the
    // agent's stop, health and home rely on as in the JSON.
    let env = environment(c);
    let reference_env = environment(r);
    for name in env.keys() {
        assert!(
            settings::find(name).is_some(),
            "{name} is not a setting of the agent"
        );
    }
    for name in [
        "MPC_HOME_DIR",
        "AGENT_LISTEN",
        "AGENT_PRESTOP_DELAY",
        "AGENT_STOP_GRACE",
        "AGENT_HOLD_GRACE",
        "MPC_LOG_FORMAT",
    ] {
        assert_eq!(env.get(name), reference_env.get(name), "{name}");
    }
    // The vault and the metrics: set in both, whatever their values.
    for name in [
        "AGENT_KEYSHARE_VAULT",
        "AGENT_KEYSHARE_VAULT_KMS_KEY",
        "AGENT_CLOUDWATCH_NAMESPACE",
        "AGENT_CLOUDWATCH_NODE",
    ] {
        assert!(env.contains_key(name), "the stack's task has no {name}");
        assert!(
            reference_env.contains_key(name),
            "ecs-task-definition.json has no {name}"
        );
    }
    let grace = duration(env["AGENT_STOP_GRACE"].as_str().unwrap()).unwrap();
    let prestop = duration(env["AGENT_PRESTOP_DELAY"].as_str().unwrap()).unwrap();
    let stop_timeout = Duration::from_secs(c["stopTimeout"].as_u64().unwrap());
    assert!(prestop + grace < stop_timeout && stop_timeout <= Duration::from_secs(120));
    assert!(
        !env.contains_key("AGENT_LOCK_WAIT"),
        "a new task waits for the lock as long as the old one runs"
    );
    let port = env["AGENT_LISTEN"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1;
    assert!(stack_ports.contains_key(&port.parse().unwrap()));
    for (_, secrets) in branches(&c["secrets"]) {
        for secret in secrets.as_array().into_iter().flatten() {
            let name = secret["name"].as_str().unwrap();
            assert!(
                SecretName::ALL.iter().any(|s| s.env_name() == name),
                "{name}"
            );
        }
    }

    // The home: the EFS volume, IAM and TLS, through the access point.
    assert_eq!(stack["volumes"].as_array().unwrap().len(), 1);
    let (v, rv) = (&stack["volumes"][0], &reference["volumes"][0]);
    assert_eq!(v["name"], rv["name"]);
    let (efs, refs) = (&v["efsVolumeConfiguration"], &rv["efsVolumeConfiguration"]);
    for key in ["rootDirectory", "transitEncryption"] {
        assert_eq!(efs[key], refs[key], "{key}");
    }
    assert_eq!(efs["transitEncryption"], "ENABLED");
    assert_eq!(efs["authorizationConfig"]["iam"], "ENABLED");
    assert!(refers_to(&efs["fileSystemId"], "FileSystem"));
    assert!(refers_to(&env["AGENT_EFS_FILE_SYSTEM_ID"], "FileSystem"));
    assert!(refers_to(
        &efs["authorizationConfig"]["accessPointId"],
        "AccessPoint"
    ));

    let (logs, reference_logs) = (&c["logConfiguration"], &r["logConfiguration"]);
    assert_eq!(logs["logDriver"], reference_logs["logDriver"]);
    assert!(refers_to(&logs["options"]["awslogs-group"], "LogGroup"));
    assert_eq!(
        logs["options"]["awslogs-stream-prefix"],
        reference_logs["options"]["awslogs-stream-prefix"]
    );
}

#[test]
fn a_deploy_starts_the_new_task_and_hands_the_home_over_through_the_lock() {
    let t = template();
    let service = &resource(&t, "Service")["Properties"];
    let deployment = &service["DeploymentConfiguration"];
    // At most one task more than desired, never fewer: the new agent waits
    // on the lock (healthy meanwhile), the old one releases it on its exit.
    assert_eq!(deployment["MinimumHealthyPercent"], 100);
    assert_eq!(deployment["MaximumPercent"], 200);
    assert_eq!(deployment["DeploymentCircuitBreaker"]["Rollback"], true);
    assert_eq!(
        t["Parameters"]["DesiredCount"]["AllowedValues"],
        json!([0, 1])
    );
    assert_eq!(service["LaunchType"], "FARGATE");
    // EFS keeps the home, and so the shares, when the stack goes.
    for name in [
        "FileSystem",
        "AccountKeySecret",
        "P2pKeySecret",
        "BackupKeySecret",
    ] {
        assert_eq!(resource(&t, name)["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(
            resource(&t, name)["UpdateReplacePolicy"],
            "Retain",
            "{name}"
        );
    }
    let fs = &resource(&t, "FileSystem")["Properties"];
    assert_eq!(fs["Encrypted"], true);
    assert_eq!(fs["PerformanceMode"], "generalPurpose");
    assert_eq!(fs["BackupPolicy"]["Status"], "ENABLED");
    let access_point = &resource(&t, "AccessPoint")["Properties"];
    assert!(access_point["PosixUser"]["Uid"].is_object());
    assert!(access_point["RootDirectory"]["CreationInfo"]["OwnerUid"].is_object());
    // Root through an access point would need ClientRootAccess.
    assert!(t["Parameters"]["HomeUid"]["MinValue"].as_u64() >= Some(1));
    // Never Docker Hub at run time, never a chain the node does not know.
    let image = t["Parameters"]["ImageUri"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert!(image.starts_with("^$|^\\d{12}\\.dkr\\.ecr\\."), "{image}");
    assert_eq!(
        t["Parameters"]["MpcEnv"]["AllowedValues"],
        json!(["testnet", "mainnet", "mpc-localnet"])
    );
}

/// Reads a stack's status until it leaves `*_IN_PROGRESS` (bounded).
fn settled(
    moto: &Moto,
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> aws_sdk_cloudformation::types::Stack {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = moto
            .block_on(cfn.describe_stacks().stack_name(stack).send())
            .expect("DescribeStacks");
        let s = out.stacks()[0].clone();
        let status = s.stack_status().unwrap().as_str().to_string();
        if !status.ends_with("_IN_PROGRESS") {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{stack} still {status} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The stack `mpc-node-0` created in moto in a VPC with a subnet in each of
/// two zones, with `extra` parameters; its outputs once it completed, and the
/// two subnets.
fn deploy(moto: &Moto, extra: &[(&str, &str)]) -> (BTreeMap<String, String>, [String; 2]) {
    let vpc = moto.vpc("127.3.0.0/16");
    let subnet_a = moto.subnet_in(&vpc, ZONE_A, "127.3.1.0/24");
    let subnet_b = moto.subnet_in(&vpc, ZONE_B, "127.3.2.0/24");
    let cfn = aws_sdk_cloudformation::Client::new(&moto.sdk_config());
    let (account_sk, _) = keypair();
    let (p2p_sk, _) = keypair();
    let parameters = [
        ("VpcId", vpc.as_str()),
        ("SubnetA", &subnet_a),
        ("SubnetB", &subnet_b),
        ("NodeName", "mpc-node-0"),
        ("MpcAccountId", "node0.example.testnet"),
        ("MpcTier3PublicAddr", "203.0.113.10:24567"),
        ("MpcAccountSk", &account_sk),
        ("MpcP2pPrivateKey", &p2p_sk),
    ];
    moto.block_on(
        cfn.create_stack()
            .stack_name("mpc-node-0")
            .template_body(template_text())
            .set_parameters(Some(
                parameters
                    .iter()
                    .chain(extra)
                    .map(|(k, v)| {
                        Parameter::builder()
                            .parameter_key(*k)
                            .parameter_value(*v)
                            .build()
                    })
                    .collect(),
            ))
            .capabilities(Capability::CapabilityIam)
            .send(),
    )
    .expect("CreateStack");
    let stack = settled(moto, &cfn, "mpc-node-0");
    let events = moto
        .block_on(cfn.describe_stack_events().stack_name("mpc-node-0").send())
        .expect("DescribeStackEvents");
    println!("stack events:");
    for e in events.stack_events().iter().rev() {
        println!(
            "  {} {} {} {}",
            e.logical_resource_id().unwrap_or("?"),
            e.resource_type().unwrap_or("?"),
            e.resource_status().map(|s| s.as_str()).unwrap_or("?"),
            e.resource_status_reason().unwrap_or("")
        );
    }
    assert_eq!(
        stack.stack_status().unwrap().as_str(),
        "CREATE_COMPLETE",
        "{:?}",
        stack.stack_status_reason()
    );
    let outputs: BTreeMap<String, String> = stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_string(),
                o.output_value().unwrap_or("").to_string(),
            )
        })
        .collect();
    println!("outputs:");
    for (k, v) in &outputs {
        println!("  {k} = {v}");
    }
    (outputs, [subnet_a, subnet_b])
}

#[test]
fn deployed_into_cloudformation_the_stack_completes_and_agent_doctor_is_green() {
    let moto = Moto::start();
    let config = moto.sdk_config();
    let (outputs, [subnet_a, subnet_b]) = deploy(&moto, &[("AlertEmail", "ops@example.com")]);
    let fs = &outputs["FileSystemId"];
    assert!(fs.starts_with("fs-"), "{fs}");

    // The home as EFS holds it.
    let efs = aws_sdk_efs::Client::new(&config);
    let described = moto
        .block_on(efs.describe_file_systems().file_system_id(fs).send())
        .expect("DescribeFileSystems");
    let described = &described.file_systems()[0];
    assert_eq!(described.encrypted(), Some(true));
    assert_eq!(described.performance_mode().as_str(), "generalPurpose");
    let backup = moto
        .block_on(efs.describe_backup_policy().file_system_id(fs).send())
        .expect("DescribeBackupPolicy");
    assert_eq!(backup.backup_policy().unwrap().status().as_str(), "ENABLED");
    let targets = moto
        .block_on(efs.describe_mount_targets().file_system_id(fs).send())
        .expect("DescribeMountTargets")
        .mount_targets()
        .to_vec();
    let tasks_group = &outputs["TasksSecurityGroupId"];
    for (subnet, zone) in [(&subnet_a, ZONE_A), (&subnet_b, ZONE_B)] {
        let here: Vec<_> = targets.iter().filter(|t| t.subnet_id() == subnet).collect();
        assert_eq!(here.len(), 1, "one mount target in {subnet}: {targets:?}");
        assert_eq!(here[0].availability_zone_name(), Some(zone));
        let groups = moto
            .block_on(
                efs.describe_mount_target_security_groups()
                    .mount_target_id(here[0].mount_target_id())
                    .send(),
            )
            .expect("DescribeMountTargetSecurityGroups")
            .security_groups()
            .to_vec();
        assert_eq!(groups.len(), 1);
        assert_ne!(&groups[0], tasks_group);
        let group = moto.query(
            "ec2",
            &format!(
                "Action=DescribeSecurityGroups&GroupId.1={}&Version=2016-11-15",
                groups[0]
            ),
        );
        let ingress = xml(&group, "ipPermissions");
        assert!(ingress.contains("<fromPort>2049</fromPort>"), "{ingress}");
        assert!(ingress.contains("<toPort>2049</toPort>"), "{ingress}");
        assert!(
            ingress.contains(&format!("<groupId>{tasks_group}</groupId>")),
            "{ingress}"
        );
        assert!(!ingress.contains("<cidrIp>"), "{ingress}");
    }

    // The task definition and the service as ECS holds them.
    let ecs_call = |operation: &str, body: Value| {
        moto.json_call(
            "ecs",
            &format!("AmazonEC2ContainerServiceV20141113.{operation}"),
            &body,
        )
    };
    let task_definition = ecs_call(
        "DescribeTaskDefinition",
        json!({ "taskDefinition": "mpc-node-0" }),
    )["taskDefinition"]
        .clone();
    let container = &task_definition["containerDefinitions"][0];
    assert_eq!(container["stopTimeout"], 120);
    assert_eq!(
        container["healthCheck"]["command"],
        json!(["CMD", "/usr/local/bin/agent", "health"])
    );
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .ends_with(".dkr.ecr.eu-west-1.amazonaws.com/mpc-node-agent:3.14.1"),
        "{container:#}"
    );
    let ports: BTreeSet<u64> = container["portMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, PORTS.into_iter().collect());
    let env: Vec<(String, String)> = container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(env.contains(&("AGENT_EFS_FILE_SYSTEM_ID".to_string(), fs.clone())));
    let services = ecs_call(
        "DescribeServices",
        json!({ "cluster": outputs["ClusterName"], "services": [outputs["ServiceName"]] }),
    );
    let service = &services["services"][0];
    assert_eq!(service["desiredCount"], 1, "{services:#}");
    assert_eq!(
        service["taskDefinition"],
        task_definition["taskDefinitionArn"]
    );

    // The task's view: ECS task metadata naming zone A, and an NFS server
    // (its port only) on the mount target's address there.
    let target_a = targets
        .iter()
        .find(|t| t.availability_zone_name() == Some(ZONE_A))
        .unwrap();
    let ip = target_a.ip_address().unwrap();
    let _nfs = std::net::TcpListener::bind((ip, 2049)).expect("listen on the mount target's 2049");
    let metadata = JsonServer::start(json!({
        "AvailabilityZone": ZONE_A,
        "TaskARN": format!("arn:aws:ecs:eu-west-1:123456789012:task/{}/0123456789abcdef", outputs["ClusterName"]),
    }));
    let doctor = |args: &[&str]| {
        AgentCommand::new(args)
            // The task's environment, but the agent's own listener stays the test's.
            .envs(env.iter().filter(|(k, _)| k != "AGENT_LISTEN").cloned())
            .envs(moto.env())
            .env("ECS_CONTAINER_METADATA_URI_V4", &metadata.url)
            .env("AGENT_NEAR_RPC_URL", "http://127.0.0.1:9")
            .run()
    };
    let shown = doctor(&["doctor", "--check", "aws", "--timeout", "5s"]);
    println!("agent doctor --check aws:\n{}", shown.stdout);
    let out = doctor(&["doctor", "--check", "aws", "--json", "--timeout", "5s"]);
    let report = doctor_report(&out);
    for id in [
        "aws.credentials",
        "aws.clock",
        "aws.efs",
        "aws.efs_mount_target",
        "aws.efs_port",
    ] {
        let check = report.check(id);
        assert_eq!(check.status, Status::Ok, "{check:#?}");
    }
    assert!(
        report.check("aws.efs_mount_target").cause.contains(ZONE_A),
        "{report:#?}"
    );
    assert_eq!(out.code, 0, "{report:#?}");
    assert_eq!(shown.code, 0, "{}", shown.stdout);

    // The vault: the bucket under SSE-KMS with the stack's key, the key
    // rotated and named, and the task role's access resolved to them.
    let bucket = &outputs["VaultBucket"];
    let key = &outputs["VaultKmsKeyArn"];
    assert!(key.starts_with("arn:aws:kms:eu-west-1:"), "{key}");
    let encryption = moto.rest("s3", &format!("GET /{bucket}?encryption"), "");
    assert!(
        encryption.contains("<SSEAlgorithm>aws:kms</SSEAlgorithm>"),
        "{encryption}"
    );
    assert!(
        encryption.contains(&format!("<KMSMasterKeyID>{key}</KMSMasterKeyID>")),
        "{encryption}"
    );
    let kms = |operation: &str, body: Value| {
        moto.json_call("kms", &format!("TrentService.{operation}"), &body)
    };
    assert_eq!(
        kms("GetKeyRotationStatus", json!({ "KeyId": key }))["KeyRotationEnabled"],
        true
    );
    let aliases = kms("ListAliases", json!({ "KeyId": key }));
    assert!(
        aliases["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["AliasName"] == "alias/mpc-node-0-keyshare-vault"),
        "{aliases:#}"
    );
    assert_eq!(
        vault_policy(&moto, &outputs["TaskRoleArn"]),
        expected_vault_policy(bucket, key, "s3.eu-west-1.amazonaws.com")
    );
    let setting = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the task has no {name}"))
    };
    assert_eq!(
        setting("AGENT_KEYSHARE_VAULT"),
        format!("s3://{bucket}/keyshares")
    );
    assert_eq!(outputs["VaultUri"], format!("s3://{bucket}/keyshares"));
    assert_eq!(&setting("AGENT_KEYSHARE_VAULT_KMS_KEY"), key);
    assert_eq!(setting("AGENT_CLOUDWATCH_NAMESPACE"), "MpcAgent");
    assert_eq!(setting("AGENT_CLOUDWATCH_NODE"), "mpc-node-0");

    // The topic, mailing the address given.
    let topic = &outputs["AlertsTopicArn"];
    assert!(topic.ends_with(":mpc-node-0-alerts"), "{topic}");
    let subscriptions = moto.query(
        "sns",
        &format!("Action=ListSubscriptionsByTopic&TopicArn={topic}&Version=2010-03-31"),
    );
    assert_eq!(xml(&subscriptions, "Protocol"), "email", "{subscriptions}");
    assert_eq!(xml(&subscriptions, "Endpoint"), "ops@example.com");

    // The fleet's dashboard, its searches over the namespace.
    assert_eq!(outputs["DashboardName"], "MpcAgent-fleet-eu-west-1");
    let dashboard = moto.query(
        "monitoring",
        "Action=GetDashboard&DashboardName=MpcAgent-fleet-eu-west-1&Version=2010-08-01",
    );
    let body: Value = serde_json::from_str(&xml_text(&xml(&dashboard, "DashboardBody")))
        .unwrap_or_else(|e| panic!("{e}: {dashboard}"));
    assert!(searched(&body, "MpcAgent").len() >= 7, "{body:#}");

    // The drill: its task definition runs `agent vault verify` with the
    // node's settings, and its rule watches that family in the node's cluster.
    let drill = ecs_call(
        "DescribeTaskDefinition",
        json!({ "taskDefinition": "mpc-node-0-vault-drill" }),
    )["taskDefinition"]["containerDefinitions"][0]
        .clone();
    assert_eq!(drill["entryPoint"], json!(["/usr/local/bin/agent"]));
    assert_eq!(drill["command"], json!(["vault", "verify"]));
    // …which this agent knows as the drill.
    let command: Vec<&str> = drill["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .chain(["--help"])
        .collect();
    let help = AgentCommand::new(command).run();
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("The restore drill"), "{}", help.stdout);
    assert_eq!(drill["environment"], container["environment"]);
    assert_eq!(drill["image"], container["image"]);
    let rule = moto.json_call(
        "events",
        "AWSEvents.DescribeRule",
        &json!({ "Name": "mpc-node-0-vault-drill-stopped" }),
    );
    let pattern: Value = serde_json::from_str(rule["EventPattern"].as_str().unwrap()).unwrap();
    assert_eq!(
        pattern["detail"]["group"],
        json!(["family:mpc-node-0-vault-drill"])
    );
    assert!(
        pattern["detail"]["clusterArn"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!(":cluster/{}", outputs["ClusterName"])),
        "{pattern:#}"
    );
}

#[test]
fn deployed_with_an_existing_vault_the_stack_makes_no_bucket_and_no_key() {
    let moto = Moto::start();
    // Another account's bucket, and its key in another region.
    let key = "arn:aws:kms:eu-central-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let (outputs, _) = deploy(
        &moto,
        &[
            ("ExistingVaultBucket", "mpc-fleet-keyshare-vault"),
            ("ExistingVaultKmsKeyArn", key),
            ("ExistingDashboardName", "MpcAgent-fleet-eu-west-1"),
        ],
    );
    let buckets = moto.rest("s3", "GET /", "");
    assert!(!buckets.contains("<Bucket>"), "{buckets}");
    let keys = moto.json_call("kms", "TrentService.ListKeys", &json!({}));
    assert_eq!(keys["Keys"], json!([]), "{keys:#}");
    let dashboards = moto.query("monitoring", "Action=ListDashboards&Version=2010-08-01");
    assert!(!dashboards.contains("<DashboardName>"), "{dashboards}");
    assert_eq!(
        outputs["VaultUri"],
        "s3://mpc-fleet-keyshare-vault/keyshares"
    );
    assert_eq!(outputs["VaultKmsKeyArn"], key);
    assert_eq!(outputs["DashboardName"], "MpcAgent-fleet-eu-west-1");
    // KMS through S3 in the key's region, not the stack's.
    assert_eq!(
        vault_policy(&moto, &outputs["TaskRoleArn"]),
        expected_vault_policy(
            "mpc-fleet-keyshare-vault",
            key,
            "s3.eu-central-1.amazonaws.com"
        )
    );
    let task_definition = moto.json_call(
        "ecs",
        "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        &json!({ "taskDefinition": "mpc-node-0" }),
    );
    let env = &task_definition["taskDefinition"]["containerDefinitions"][0]["environment"];
    for (name, value) in [
        (
            "AGENT_KEYSHARE_VAULT",
            "s3://mpc-fleet-keyshare-vault/keyshares",
        ),
        ("AGENT_KEYSHARE_VAULT_KMS_KEY", key),
    ] {
        assert!(
            env.as_array()
                .unwrap()
                .contains(&json!({ "name": name, "value": value })),
            "{name}: {env:#}"
        );
    }
}

/// The task role's vault policy as IAM holds it once deployed.
fn vault_policy(moto: &Moto, role_arn: &str) -> Value {
    let role = role_arn.rsplit_once('/').unwrap().1;
    let answer = moto.query(
        "iam",
        &format!(
            "Action=GetRolePolicy&RoleName={role}&PolicyName=keyshare-vault&Version=2010-05-08"
        ),
    );
    let document = percent_decoded(&xml_text(&xml(&answer, "PolicyDocument")));
    serde_json::from_str(&document).unwrap_or_else(|e| panic!("{e}: {document}"))
}

/// The vault policy a node `node0.example.testnet` with the default prefix gets.
fn expected_vault_policy(bucket: &str, key: &str, via: &str) -> Value {
    let node_path = "keyshares/node0.example.testnet";
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteAndReadTheNodeKeyshares",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"],
                "Resource": format!("arn:aws:s3:::{bucket}/{node_path}/*"),
            },
            {
                "Sid": "ListOnlyTheNodeKeyshares",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:aws:s3:::{bucket}"),
                "Condition": { "StringLike": { "s3:prefix": format!("{node_path}/*") } },
            },
            {
                "Sid": "LetAgentDoctorCheckTheVault",
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketVersioning",
                    "s3:GetBucketObjectLockConfiguration",
                    "s3:GetEncryptionConfiguration",
                ],
                "Resource": format!("arn:aws:s3:::{bucket}"),
            },
            {
                "Sid": "EncryptAndDecryptThroughS3Only",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key,
                "Condition": { "StringEquals": { "kms:ViaService": via } },
            },
        ],
    })
}

/// XML text with its five predefined entities replaced.
fn xml_text(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A URL-encoded text (`%7B`, `+`) decoded, as IAM returns policy documents.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The metrics the agent writes in Embedded Metric Format, all in the
/// namespace `AGENT_CLOUDWATCH_NAMESPACE` with the one dimension `Node`: the
/// only names the stack's alarms and dashboard may read.
fn agent_metrics() -> Vec<&'static str> {
    agent::emf::METRICS.iter().map(|m| m.name).collect()
}

/// The value of each condition a rendering takes.
type When = BTreeMap<&'static str, bool>;

/// `value` as the text CloudFormation would make of it, with parameters,
/// resources and attributes left as `${Name}` / `${Resource.Attribute}` and
/// each `Fn::If` taken as `when` says.
fn render(value: &Value, when: &When) -> String {
    let Value::Object(map) = value else {
        return value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
    };
    if let Some(name) = map.get("Ref") {
        return format!("${{{}}}", name.as_str().unwrap());
    }
    if let Some(get) = map.get("Fn::GetAtt") {
        return format!(
            "${{{}.{}}}",
            get[0].as_str().unwrap(),
            get[1].as_str().unwrap()
        );
    }
    if let Some(branch) = map.get("Fn::If") {
        let condition = branch[0].as_str().unwrap();
        let holds = *when
            .get(condition)
            .unwrap_or_else(|| panic!("render {value} needs {condition}"));
        return render(&branch[if holds { 1 } else { 2 }], when);
    }
    if let Some(sub) = map.get("Fn::Sub") {
        return match sub {
            Value::String(text) => text.clone(),
            Value::Array(parts) => {
                let mut text = parts[0].as_str().unwrap().to_string();
                for (name, v) in parts[1].as_object().unwrap() {
                    text = text.replace(&format!("${{{name}}}"), &render(v, when));
                }
                text
            }
            other => panic!("Fn::Sub of {other}"),
        };
    }
    if let Some(select) = map.get("Fn::Select") {
        let split = &select[1]["Fn::Split"];
        let whole = render(&split[1], when);
        let whole = whole.trim_start_matches("${").trim_end_matches('}');
        return format!(
            "${{{whole}[{} of '{}']}}",
            select[0],
            split[0].as_str().unwrap()
        );
    }
    panic!("cannot render {value}")
}

/// Every string a value renders to (one, or one per item of a list).
fn rendered(value: &Value, when: &When) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(|v| render(v, when)).collect(),
        Value::Object(map) if map.contains_key("Fn::If") => {
            let condition = map["Fn::If"][0].as_str().unwrap();
            rendered(&map["Fn::If"][if when[condition] { 1 } else { 2 }], when)
        }
        other => vec![render(other, when)],
    }
}

/// The environment of a task definition's container as the template writes it.
fn stack_environment(t: &Value, task_definition: &str) -> BTreeMap<String, Value> {
    let container = &resource(t, task_definition)["Properties"]["ContainerDefinitions"][0];
    container["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["Name"].as_str().unwrap().to_string(), v["Value"].clone()))
        .collect()
}

/// Every statement the task role is given: its inline policies and every
/// `AWS::IAM::Policy` or managed policy attached to it.
fn task_role_statements(t: &Value) -> Vec<Value> {
    let inline = statements(resource(t, "TaskRole"));
    assert_eq!(
        inline.len(),
        1,
        "the task role's policies are unconditional"
    );
    let mut all = inline[0].1.clone();
    for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for (_, policy) in of_type(t, kind) {
            let roles = &policy["Properties"]["Roles"];
            if refers_to(roles, "TaskRole") {
                all.extend(
                    policy["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .unwrap()
                        .clone(),
                );
            }
        }
    }
    assert!(
        resource(t, "TaskRole")["Properties"]
            .get("ManagedPolicyArns")
            .is_none(),
        "no managed policy from outside the template"
    );
    all
}

fn vault_scenarios() -> [When; 2] {
    [
        BTreeMap::from([("CreateVault", true)]),
        BTreeMap::from([("CreateVault", false)]),
    ]
}

/// Actions the task role must never have on the vault: removing, unlocking or
/// reconfiguring a backup, or the key under it.
const NEVER_ON_THE_VAULT: [&str; 14] = [
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:DeleteBucket",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:PutKeyPolicy",
];

/// Whether the IAM action pattern `granted` (`*` for any run of characters,
/// case-insensitive) covers `action`.
fn covers(granted: &str, action: &str) -> bool {
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
            Some((c, rest)) => text
                .split_first()
                .is_some_and(|(d, text)| c.eq_ignore_ascii_case(d) && glob(rest, text)),
        }
    }
    glob(granted.as_bytes(), action.as_bytes())
}

#[test]
fn the_task_role_reaches_its_own_vault_path_and_can_delete_nothing() {
    let t = template();
    let granted = task_role_statements(&t);
    for when in vault_scenarios() {
        let (bucket, key, via) = if when["CreateVault"] {
            (
                "${VaultBucket}",
                "${VaultKey.Arn}",
                "s3.${AWS::Region}.${AWS::URLSuffix}",
            )
        } else {
            (
                "${ExistingVaultBucket}",
                "${ExistingVaultKmsKeyArn}",
                // The key, and so the bucket, in the region its ARN names.
                "s3.${ExistingVaultKmsKeyArn[3 of ':']}.${AWS::URLSuffix}",
            )
        };
        let bucket_arn = format!("arn:${{AWS::Partition}}:s3:::{bucket}");
        let node_path = format!("{bucket_arn}/${{VaultPrefix}}/${{MpcAccountId}}/*");

        // Every S3 action, and every KMS action through S3, exactly: the
        // resources each reaches and the conditions it needs.
        let mut vault: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
        for s in &granted {
            assert_eq!(s["Effect"], "Allow", "{s:#}");
            let through_s3 = s["Condition"]["StringEquals"]
                .get("kms:ViaService")
                .is_some_and(|v| render(v, &when).starts_with("s3."));
            for action in actions(s) {
                if action.starts_with("s3:") || (action.starts_with("kms:") && through_s3) {
                    let condition = serde_json::to_string(&s.get("Condition")).unwrap();
                    let previous =
                        vault.insert(action.clone(), (rendered(&s["Resource"], &when), condition));
                    assert!(previous.is_none(), "{action} granted twice");
                }
            }
        }
        let objects = vec![node_path.clone()];
        let on_bucket = vec![bucket_arn.clone()];
        let expected: BTreeMap<&str, &Vec<String>> = BTreeMap::from([
            ("s3:PutObject", &objects),
            ("s3:GetObject", &objects),
            ("s3:GetObjectVersion", &objects),
            ("s3:ListBucket", &on_bucket),
            ("s3:GetBucketVersioning", &on_bucket),
            ("s3:GetBucketObjectLockConfiguration", &on_bucket),
            ("s3:GetEncryptionConfiguration", &on_bucket),
        ]);
        let vault_kms = vec![key.to_string()];
        let mut expected: BTreeMap<&str, &Vec<String>> = expected;
        expected.insert("kms:GenerateDataKey", &vault_kms);
        expected.insert("kms:Decrypt", &vault_kms);
        assert_eq!(
            vault.keys().map(String::as_str).collect::<Vec<_>>(),
            expected.keys().copied().collect::<Vec<_>>(),
            "the task role's S3 actions, and its KMS actions through S3 ({when:?})"
        );
        for (action, resources) in &expected {
            assert_eq!(&&vault[*action].0, resources, "{action} ({when:?})");
        }

        // Listing: only under the node's own path.
        let list = granted
            .iter()
            .find(|s| actions(s) == ["s3:ListBucket"])
            .expect("s3:ListBucket alone in its statement");
        assert_eq!(
            render(&list["Condition"]["StringLike"]["s3:prefix"], &when),
            "${VaultPrefix}/${MpcAccountId}/*"
        );
        assert_eq!(list["Condition"].as_object().unwrap().len(), 1);
        // The key: only through S3 in the vault's region.
        for s in granted.iter().filter(|s| {
            actions(s)
                .iter()
                .any(|a| a == "kms:GenerateDataKey" || rendered(&s["Resource"], &when) == vault_kms)
        }) {
            assert_eq!(
                render(&s["Condition"]["StringEquals"]["kms:ViaService"], &when),
                via,
                "{s:#}"
            );
        }
    }

    // Nothing that deletes, unlocks or reconfigures, by name or by pattern,
    // and no wildcard action on S3 or KMS at all.
    for s in &granted {
        for granted_action in actions(s) {
            for never in NEVER_ON_THE_VAULT {
                assert!(
                    !covers(&granted_action, never),
                    "the task role may {never} through {granted_action}"
                );
            }
            if granted_action.starts_with("s3:") || granted_action.starts_with("kms:") {
                assert!(!granted_action.contains('*'), "{granted_action}");
            }
            assert_ne!(granted_action, "*");
        }
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
    }

    // The same access in the standalone policy.
    let standalone: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("docker/iam-task-role-policy.json")).unwrap(),
    )
    .unwrap();
    let standalone_actions: BTreeSet<String> = standalone["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(actions)
        .filter(|a| a.starts_with("s3:"))
        .collect();
    let stack_actions: BTreeSet<String> = granted
        .iter()
        .flat_map(actions)
        .filter(|a| a.starts_with("s3:"))
        .collect();
    assert_eq!(standalone_actions, stack_actions);
    for s in standalone["Statement"].as_array().unwrap() {
        for a in actions(s) {
            for never in NEVER_ON_THE_VAULT {
                assert!(!covers(&a, never), "iam-task-role-policy.json: {a}");
            }
        }
        if actions(s)
            .iter()
            .any(|a| a.starts_with("s3:Put") || a.starts_with("s3:Get"))
        {
            let resource = strings(&s["Resource"]).join(" ");
            assert!(
                resource.ends_with("/keyshares/node0.example.testnet/*") || !resource.contains('/'),
                "{s:#}"
            );
        }
    }

    // The bucket: Object Lock with a default retention, versioning, SSE-KMS
    // with a bucket key, no public access, kept with the key when the stack goes.
    let bucket = resource(&t, "VaultBucket");
    let key = resource(&t, "VaultKey");
    for (name, r) in [("VaultBucket", bucket), ("VaultKey", key)] {
        assert_eq!(r["Condition"], "CreateVault", "{name}");
        assert_eq!(r["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{name}");
    }
    let b = &bucket["Properties"];
    assert_eq!(b["ObjectLockEnabled"], true);
    assert_eq!(b["ObjectLockConfiguration"]["ObjectLockEnabled"], "Enabled");
    let retention = &b["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    assert_eq!(retention["Mode"], json!({ "Ref": "VaultRetentionMode" }));
    assert_eq!(retention["Days"], json!({ "Ref": "VaultRetentionDays" }));
    assert!(retention.get("Years").is_none());
    let p = &t["Parameters"];
    assert_eq!(p["VaultRetentionMode"]["Default"], "GOVERNANCE");
    assert_eq!(
        p["VaultRetentionMode"]["AllowedValues"],
        json!(["GOVERNANCE", "COMPLIANCE"])
    );
    assert_eq!(p["VaultRetentionDays"]["Default"], 365);
    assert_eq!(b["VersioningConfiguration"]["Status"], "Enabled");
    let sse = &b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "aws:kms"
    );
    assert!(refers_to(
        &sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        "VaultKey"
    ));
    assert_eq!(sse["BucketKeyEnabled"], true);
    for block in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(b["PublicAccessBlockConfiguration"][block], true, "{block}");
    }

    // Its policy: no request without TLS, and the task role denied what it
    // must never do even if someone grants it later.
    let policy = of_type(&t, "AWS::S3::BucketPolicy");
    assert_eq!(policy.len(), 1);
    let policy = policy[0].1;
    assert_eq!(policy["Condition"], "CreateVault");
    assert!(refers_to(&policy["Properties"]["Bucket"], "VaultBucket"));
    let denies = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let when = BTreeMap::from([("CreateVault", true)]);
    let whole_bucket = vec![
        "${VaultBucket.Arn}".to_string(),
        "${VaultBucket.Arn}/*".to_string(),
    ];
    let tls = denies
        .iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
        .expect("a statement on aws:SecureTransport");
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(actions(tls), ["s3:*"]);
    assert_eq!(rendered(&tls["Resource"], &when), whole_bucket);
    let node = denies
        .iter()
        .find(|s| refers_to(&s["Condition"], "TaskRole"))
        .expect("a statement on the task role");
    assert_eq!(node["Effect"], "Deny");
    assert_eq!(rendered(&node["Resource"], &when), whole_bucket);
    for never in NEVER_ON_THE_VAULT.iter().filter(|a| a.starts_with("s3:")) {
        assert!(
            actions(node).iter().any(|a| covers(a, never)),
            "the bucket does not deny {never} to the task role"
        );
    }

    // The key: rotated, its use by the task role only through S3, the
    // account administering it without reading anything under it.
    let k = &key["Properties"];
    assert_eq!(k["EnableKeyRotation"], true);
    let key_statements = k["KeyPolicy"]["Statement"].as_array().unwrap();
    let crypto = [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:ReEncryptFrom",
    ];
    for s in key_statements {
        assert_eq!(s["Effect"], "Allow");
        let uses: Vec<&str> = crypto
            .iter()
            .copied()
            .filter(|c| actions(s).iter().any(|a| covers(a, c)))
            .collect();
        if uses.is_empty() {
            continue;
        }
        assert_eq!(
            actions(s),
            ["kms:GenerateDataKey", "kms:Decrypt"],
            "only the task role's use reads or writes under the key: {s:#}"
        );
        assert!(refers_to(
            &s["Condition"]["ArnEquals"]["aws:PrincipalArn"],
            "TaskRole"
        ));
        assert_eq!(
            render(&s["Condition"]["StringEquals"]["kms:ViaService"], &when),
            "s3.${AWS::Region}.${AWS::URLSuffix}"
        );
    }
    assert!(
        key_statements
            .iter()
            .any(|s| actions(s).contains(&"kms:Put*".to_string())),
        "the account administers the key"
    );
    let alias = resource(&t, "VaultKeyAlias");
    assert_eq!(alias["Condition"], "CreateVault");
    assert!(refers_to(&alias["Properties"]["TargetKeyId"], "VaultKey"));

    // The agent's settings: s3://BUCKET/PREFIX and the key's ARN.
    let env = stack_environment(&t, "TaskDefinition");
    for when in vault_scenarios() {
        let bucket = if when["CreateVault"] {
            "${VaultBucket}"
        } else {
            "${ExistingVaultBucket}"
        };
        let key = if when["CreateVault"] {
            "${VaultKey.Arn}"
        } else {
            "${ExistingVaultKmsKeyArn}"
        };
        assert_eq!(
            render(&env["AGENT_KEYSHARE_VAULT"], &when),
            format!("s3://{bucket}/${{VaultPrefix}}")
        );
        assert_eq!(render(&env["AGENT_KEYSHARE_VAULT_KMS_KEY"], &when), key);
    }
    // An existing bucket comes with its key, or neither.
    let rule = serde_json::to_string(&t["Rules"]["VaultBucketAndKeyTogether"]).unwrap();
    assert!(rule.contains("ExistingVaultBucket") && rule.contains("ExistingVaultKmsKeyArn"));
    assert_eq!(
        t["Conditions"]["CreateVault"],
        json!({ "Fn::And": [
            { "Fn::Equals": [{ "Ref": "ExistingVaultBucket" }, ""] },
            { "Fn::Equals": [{ "Ref": "ExistingVaultKmsKeyArn" }, ""] },
        ] })
    );
}

#[test]
fn the_weekly_drill_runs_agent_vault_verify_with_the_node_secrets_roles_and_network() {
    let t = template();
    let schedules = of_type(&t, "AWS::Scheduler::Schedule");
    assert_eq!(schedules.len(), 1, "one drill schedule");
    let schedule = &schedules[0].1["Properties"];
    assert!(schedules[0].1.get("Condition").is_none());
    assert_eq!(
        schedule["ScheduleExpression"],
        json!({ "Ref": "VaultDrillScheduleExpression" })
    );
    let every = t["Parameters"]["VaultDrillScheduleExpression"]["Default"]
        .as_str()
        .unwrap();
    let cron: Vec<&str> = every
        .strip_prefix("cron(")
        .and_then(|c| c.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{every} is a cron expression"))
        .split(' ')
        .collect();
    // minutes hours day-of-month month day-of-week year: one day a week.
    assert_eq!(cron.len(), 6, "{every}");
    assert_eq!((cron[2], cron[3], cron[5]), ("?", "*", "*"), "{every}");
    assert!(
        ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"].contains(&cron[4]),
        "{every} runs weekly"
    );
    assert!(cron[0].parse::<u32>().is_ok() && cron[1].parse::<u32>().is_ok());

    // It starts the drill's task definition, once, in the node's cluster,
    // subnets and security group.
    let target = &schedule["Target"];
    for create in [true, false] {
        let when = BTreeMap::from([("CreateCluster", create)]);
        let cluster = render(&target["Arn"], &when);
        if create {
            assert_eq!(cluster, "${Cluster.Arn}");
        } else {
            assert!(
                cluster.ends_with(":cluster/${ExistingClusterName}"),
                "{cluster}"
            );
        }
    }
    let ecs = &target["EcsParameters"];
    assert_eq!(
        ecs["TaskDefinitionArn"],
        json!({ "Ref": "VaultDrillTaskDefinition" })
    );
    assert_eq!(ecs["TaskCount"], 1);
    assert_eq!(ecs["LaunchType"], "FARGATE");
    let service = &resource(&t, "Service")["Properties"];
    let (drill_network, node_network) = (
        &ecs["NetworkConfiguration"]["AwsvpcConfiguration"],
        &service["NetworkConfiguration"]["AwsvpcConfiguration"],
    );
    assert_eq!(drill_network["Subnets"], node_network["Subnets"]);
    assert_eq!(
        drill_network["SecurityGroups"],
        node_network["SecurityGroups"]
    );
    assert_eq!(drill_network["AssignPublicIp"], "DISABLED");

    // The drill's task: exactly `agent vault verify`, the node's image,
    // roles, environment and secrets; no home, no port: no second node.
    let node = &resource(&t, "TaskDefinition")["Properties"];
    let drill = &resource(&t, "VaultDrillTaskDefinition")["Properties"];
    assert_ne!(drill["Family"], node["Family"]);
    assert_eq!(
        drill["Family"],
        json!({ "Fn::Sub": "${NodeName}-vault-drill" })
    );
    for key in [
        "TaskRoleArn",
        "ExecutionRoleArn",
        "RequiresCompatibilities",
        "NetworkMode",
        "RuntimePlatform",
    ] {
        assert_eq!(drill[key], node[key], "{key}");
    }
    assert!(drill.get("Volumes").is_none(), "the drill mounts no home");
    let containers = drill["ContainerDefinitions"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let (d, n) = (&containers[0], &node["ContainerDefinitions"][0]);
    let dockerfile = std::fs::read_to_string(repo_file("docker/Dockerfile")).unwrap();
    let entrypoint: Vec<String> = serde_json::from_str(
        dockerfile
            .lines()
            .find_map(|l| l.strip_prefix("ENTRYPOINT "))
            .unwrap(),
    )
    .unwrap();
    // The image's entrypoint is `agent run`, which a command override
    // cannot drop: the drill names its own.
    assert_eq!(entrypoint, ["/usr/local/bin/agent", "run"]);
    let run: Vec<String> = strings(&d["EntryPoint"])
        .into_iter()
        .chain(strings(&d["Command"]))
        .collect();
    assert_eq!(run, ["/usr/local/bin/agent", "vault", "verify"]);
    assert_eq!(strings(&d["EntryPoint"]), [entrypoint[0].clone()]);
    for key in ["Image", "Environment", "Secrets"] {
        assert_eq!(d[key], n[key], "the drill's {key} is the node's");
    }
    for key in ["MountPoints", "PortMappings", "HealthCheck", "VolumesFrom"] {
        assert!(d.get(key).is_none(), "the drill has no {key}");
    }
    assert!(refers_to(
        &d["LogConfiguration"]["Options"]["awslogs-group"],
        "LogGroup"
    ));
    assert_ne!(
        d["LogConfiguration"]["Options"]["awslogs-stream-prefix"],
        n["LogConfiguration"]["Options"]["awslogs-stream-prefix"]
    );

    // The scheduler's role: start that one family in that cluster, and
    // hand it the node's two roles, nothing else.
    assert!(refers_to(&target["RoleArn"], "VaultDrillSchedulerRole"));
    let role = resource(&t, "VaultDrillSchedulerRole");
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().unwrap().len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({ "Service": "scheduler.amazonaws.com" })
    );
    let granted = statements(role);
    assert_eq!(granted.len(), 1);
    let granted = &granted[0].1;
    let all: BTreeSet<String> = granted.iter().flat_map(actions).collect();
    assert_eq!(
        all,
        BTreeSet::from(["ecs:RunTask".to_string(), "iam:PassRole".to_string()])
    );
    let run_task = granted
        .iter()
        .find(|s| actions(s) == ["ecs:RunTask"])
        .unwrap();
    assert_eq!(
        sub_strings(&run_task["Resource"]),
        [
            "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${NodeName}-vault-drill:*"
        ]
    );
    for create in [true, false] {
        let when = BTreeMap::from([("CreateCluster", create)]);
        assert_eq!(
            render(&run_task["Condition"]["ArnEquals"]["ecs:cluster"], &when),
            render(&target["Arn"], &when)
        );
    }
    let pass = granted
        .iter()
        .find(|s| actions(s) == ["iam:PassRole"])
        .unwrap();
    let passed = pass["Resource"].as_array().unwrap();
    assert_eq!(passed.len(), 2);
    assert!(refers_to(&passed[0], "TaskRole") && refers_to(&passed[1], "ExecutionRole"));
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );

    // A drill that stops without a verdict, or never starts, reaches the topic too.
    let rule = &resource(&t, "VaultDrillStoppedRule")["Properties"];
    let pattern = &rule["EventPattern"];
    assert_eq!(pattern["detail-type"], json!(["ECS Task State Change"]));
    assert_eq!(pattern["detail"]["group"][0], ecs["Group"]);
    assert_eq!(
        ecs["Group"],
        json!({ "Fn::Sub": "family:${NodeName}-vault-drill" })
    );
    assert_eq!(pattern["detail"]["lastStatus"], json!(["STOPPED"]));
    // Exit 1 is the failed verdict, which the alarm pages: one page, not two.
    assert_eq!(
        pattern["detail"]["$or"],
        json!([
            { "containers": { "exitCode": [{ "anything-but": [0, 1] }] } },
            { "stopCode": ["TaskFailedToStart"] }
        ])
    );
    assert_eq!(pattern["detail"]["clusterArn"][0], target["Arn"]);
    assert!(refers_to(&rule["Targets"][0]["Arn"], "AlertsTopic"));
}

/// The alarm section of docker/README.md (`## Alerts` up to the next `## `).
fn readme_alerts() -> String {
    let readme = std::fs::read_to_string(repo_file("docker/README.md")).unwrap();
    let start = readme
        .find("\n## Alerts\n")
        .expect("docker/README.md has ## Alerts");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

#[test]
fn every_alarm_reads_a_metric_the_agent_writes_with_the_node_dimension_and_pages_the_topic() {
    let t = template();
    let alerts = readme_alerts();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    // What pages, per metric: comparison, threshold, how missing data
    // counts, the window (Period x EvaluationPeriods) and how many of its
    // minutes must breach.
    let pages: [(&str, &str, Value, &str, u64, u64); 8] = [
        ("Holding", ">=", json!(1), "missing", 900, 13),
        ("HealthStatus", ">=", json!(2), "missing", 300, 5),
        ("AgentUp", "<", json!(1), "breaching", 600, 10),
        ("NodeRestarts", ">=", json!(1), "notBreaching", 900, 3),
        ("ChainWatchFailures", ">=", json!(1), "notBreaching", 600, 1),
        ("VaultBehindSeconds", ">=", json!(1800), "missing", 180, 3),
        ("VaultDrillFailed", ">=", json!(1), "ignore", 300, 1),
        (
            "BalanceNear",
            "<",
            json!({ "Ref": "BalanceAlarmNear" }),
            "missing",
            900,
            3,
        ),
    ];
    assert_eq!(alarms.len(), pages.len(), "one alarm per page");
    let mut slugs = BTreeSet::new();
    for (name, alarm) in &alarms {
        let a = &alarm["Properties"];
        let metric = a["MetricName"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: one metric"));
        assert!(
            agent_metrics().contains(&metric),
            "{name} reads {metric}, which the agent does not write"
        );
        assert_eq!(
            a["Namespace"],
            json!({ "Ref": "CloudWatchNamespace" }),
            "{name}"
        );
        assert_eq!(
            a["Dimensions"],
            json!([{ "Name": "Node", "Value": { "Ref": "NodeName" } }]),
            "{name}: the one dimension Node"
        );
        assert_eq!(
            a["AlarmActions"],
            json!([{ "Ref": "AlertsTopic" }]),
            "{name}"
        );
        if let Some(ok) = a.get("OKActions") {
            assert_eq!(ok, &json!([{ "Ref": "AlertsTopic" }]), "{name}");
        }
        let (period, evaluation) = (
            a["Period"].as_u64().unwrap(),
            a["EvaluationPeriods"].as_u64().unwrap(),
        );
        let datapoints = a["DatapointsToAlarm"].as_u64().unwrap_or(evaluation);
        assert!(period % 60 == 0 && period * evaluation <= 86_400, "{name}");
        assert!(datapoints <= evaluation, "{name}");

        let (_, comparison, threshold, missing, window, breaching) = pages
            .iter()
            .find(|p| p.0 == metric)
            .unwrap_or_else(|| panic!("{name}: no page on {metric}"));
        let operator = match a["ComparisonOperator"].as_str().unwrap() {
            "GreaterThanOrEqualToThreshold" => ">=",
            "LessThanThreshold" => "<",
            other => other,
        };
        assert_eq!(operator, *comparison, "{name}");
        assert_eq!(&a["Threshold"], threshold, "{name}");
        assert_eq!(a["TreatMissingData"], *missing, "{name}");
        assert_eq!(
            (period * evaluation, datapoints),
            (*window, *breaching),
            "{name}"
        );

        // Named after the node (the topic's policy lets those publish), and
        // pointing at its runbook in the README.
        let alarm_name = sub_strings(&a["AlarmName"]).join("");
        let slug = alarm_name
            .strip_prefix("${NodeName}-")
            .unwrap_or_else(|| panic!("{name} is named NodeName-…: {alarm_name}"));
        let description = sub_strings(&a["AlarmDescription"]).join("");
        assert!(
            description.contains(&format!("docker/README.md, section Alerts, {slug}.")),
            "{name}: {description}"
        );
        assert!(description.len() <= 1024, "{name}");
        assert!(
            alerts.contains(&format!("\n### {slug}\n")),
            "docker/README.md's Alerts has no ### {slug}"
        );
        slugs.insert(slug.to_string());
    }
    assert_eq!(slugs.len(), alarms.len());

    // A stopped node (DesiredCount 0) is silent on purpose.
    let silent = alarms
        .iter()
        .find(|(_, a)| a["Properties"]["MetricName"] == "AgentUp")
        .unwrap();
    assert_eq!(
        silent.1["Properties"]["ActionsEnabled"],
        json!({ "Fn::If": ["NodeRuns", true, false] })
    );
    assert_eq!(
        t["Conditions"]["NodeRuns"],
        json!({ "Fn::Equals": [{ "Ref": "DesiredCount" }, "1"] })
    );

    // The agent writes what the alarms read: the namespace and the Node value.
    let env = stack_environment(&t, "TaskDefinition");
    assert_eq!(
        env["AGENT_CLOUDWATCH_NAMESPACE"],
        json!({ "Ref": "CloudWatchNamespace" })
    );
    assert_eq!(env["AGENT_CLOUDWATCH_NODE"], json!({ "Ref": "NodeName" }));
    assert_eq!(
        t["Parameters"]["CloudWatchNamespace"]["Default"],
        "MpcAgent"
    );
    // The balance that pages is the agent's own warning.
    assert_eq!(
        env["AGENT_MIN_BALANCE"],
        json!({ "Fn::Sub": "${BalanceAlarmNear} NEAR" })
    );

    // The topic: a mail subscription only when an address is given; the
    // node's alarms and the drill's rule may publish.
    let topic = &resource(&t, "AlertsTopic")["Properties"];
    let subscription = &topic["Subscription"]["Fn::If"];
    assert_eq!(subscription[0], "HasAlertEmail");
    assert_eq!(subscription[1][0]["Protocol"], "email");
    assert_eq!(
        subscription[1][0]["Endpoint"],
        json!({ "Ref": "AlertEmail" })
    );
    assert_eq!(subscription[2], json!({ "Ref": "AWS::NoValue" }));
    assert_eq!(t["Parameters"]["AlertEmail"]["Default"], "");
    let policy = &resource(&t, "AlertsTopicPolicy")["Properties"];
    assert!(refers_to(&policy["Topics"], "AlertsTopic"));
    let publishers = policy["PolicyDocument"]["Statement"].as_array().unwrap();
    let alarms_publish = publishers
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("CloudWatch may publish");
    assert_eq!(
        sub_strings(&alarms_publish["Condition"]["ArnLike"]["aws:SourceArn"]),
        ["arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${NodeName}-*"]
    );
    let rule_publishes = publishers
        .iter()
        .find(|s| s["Principal"]["Service"] == "events.amazonaws.com")
        .expect("EventBridge may publish");
    assert!(refers_to(
        &rule_publishes["Condition"]["ArnEquals"]["aws:SourceArn"],
        "VaultDrillStoppedRule"
    ));

    // agent doctor reads the alarms, and only reads.
    let cloudwatch: Vec<String> = task_role_statements(&t)
        .iter()
        .flat_map(actions)
        .filter(|a| a.starts_with("cloudwatch:"))
        .collect();
    assert_eq!(cloudwatch, ["cloudwatch:DescribeAlarms"]);
}

/// The alarms' metrics an `agent run` on stand-ins cannot write, each with why.
const NOT_FROM_THIS_RUN: [(&str, &str); 2] = [
    ("VaultBehindSeconds", "no vault is configured in it"),
    (
        "VaultDrillFailed",
        "agent vault verify writes it, not agent run",
    ),
];

#[test]
fn the_alarms_read_the_names_and_the_node_dimension_a_running_agent_writes() {
    use agent_tests::harness::WAIT;
    use agent_tests::node_fixture::NodeFixture;
    use agent_tests::standin_node::Indexer;

    let t = template();
    let namespace = t["Parameters"]["CloudWatchNamespace"]["Default"]
        .as_str()
        .unwrap()
        .to_string();
    let node_name = "mpc-node-0";
    // As the task definition sets them: the namespace and Node = NodeName.
    let env = stack_environment(&t, "TaskDefinition");
    assert_eq!(
        env["AGENT_CLOUDWATCH_NAMESPACE"],
        json!({ "Ref": "CloudWatchNamespace" })
    );
    assert_eq!(env["AGENT_CLOUDWATCH_NODE"], json!({ "Ref": "NodeName" }));
    let node = NodeFixture::new();
    node.indexer(&Indexer::behind(100, Duration::from_secs(3)));
    let mut agent = node
        .run()
        .env("AGENT_CLOUDWATCH_NAMESPACE", &namespace)
        .env("AGENT_CLOUDWATCH_NODE", node_name)
        .env("AGENT_METRICS_EMF_INTERVAL", "200ms")
        .env("AGENT_CHAIN_WATCH", "200ms")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    agent.wait_metric_line(|l| {
        l.values.contains_key("BalanceNear") && l.values.contains_key("IndexerLagSeconds")
    });
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);

    // What the agent wrote: each name with its unit, under which namespace and dimensions.
    let mut written: BTreeMap<String, Option<String>> = BTreeMap::new();
    for line in agent.metric_lines() {
        for directive in &line.directives {
            assert_eq!(directive.namespace, namespace);
            assert_eq!(directive.dimension_sets, [["Node"]]);
            written.extend(directive.metrics.iter().cloned());
        }
        assert_eq!(line.dimensions["Node"], node_name);
    }
    for name in written.keys() {
        assert!(agent_metrics().contains(&name.as_str()), "{name}");
    }

    for (resource_name, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        let a = &alarm["Properties"];
        let metric = a["MetricName"].as_str().unwrap();
        assert_eq!(
            a["Dimensions"],
            json!([{ "Name": "Node", "Value": { "Ref": "NodeName" } }]),
            "{resource_name}: the one dimension the agent writes"
        );
        assert_eq!(a["Namespace"], json!({ "Ref": "CloudWatchNamespace" }));
        match written.get(metric) {
            Some(unit) => {
                // An alarm that names a unit sees only data points of that unit.
                if let Some(alarmed) = a.get("Unit") {
                    assert_eq!(
                        Some(alarmed.as_str().unwrap()),
                        unit.as_deref(),
                        "{resource_name}"
                    );
                }
            }
            None => {
                let (_, why) = NOT_FROM_THIS_RUN
                    .iter()
                    .find(|(m, _)| *m == metric)
                    .unwrap_or_else(|| {
                        panic!("{resource_name} reads {metric}, which the running agent never wrote: {written:?}")
                    });
                assert!(agent_metrics().contains(&metric), "{metric} ({why})");
            }
        }
    }
}

/// The metric names a dashboard body searches, with each search's statistic
/// and period; panics on any metric that is not a search over the namespace
/// and the Node dimension.
fn searched(body: &Value, namespace: &str) -> Vec<(String, String, u64)> {
    let prefix = format!("SEARCH('{{{namespace},Node}} MetricName=\"");
    let mut found = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        if widget["type"] != "metric" {
            continue;
        }
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            let line = line.as_array().unwrap();
            assert_eq!(line.len(), 1, "only expressions, no fixed metric: {widget}");
            let expression = line[0]["expression"]
                .as_str()
                .unwrap_or_else(|| panic!("a search expression: {widget}"));
            let rest = expression
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{expression} searches {{{namespace},Node}}"));
            let (metric, rest) = rest.split_once("\"', '").unwrap();
            let (stat, period) = rest.split_once("', ").unwrap();
            let period = period.strip_suffix(')').unwrap().parse().unwrap();
            found.push((metric.to_string(), stat.to_string(), period));
        }
    }
    found
}

#[test]
fn the_fleet_dashboard_finds_every_node_by_search_and_is_made_once() {
    let t = template();
    let dashboard = resource(&t, "FleetDashboard");
    assert_eq!(dashboard["Condition"], "CreateDashboard");
    assert_eq!(
        t["Conditions"]["CreateDashboard"],
        json!({ "Fn::Equals": [{ "Ref": "ExistingDashboardName" }, ""] })
    );
    let body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("the body is one Fn::Sub text");
    for node_only in ["${NodeName}", "${MpcAccountId}", "${TaskDefinition}"] {
        assert!(
            !body.contains(node_only),
            "the fleet's dashboard names {node_only}"
        );
    }
    let body: Value = serde_json::from_str(
        &body
            .replace("${CloudWatchNamespace}", "MpcAgent")
            .replace("${AWS::Region}", "eu-west-1"),
    )
    .expect("the body is JSON");
    assert!(
        !body.to_string().contains("${"),
        "every ${{…}} is a parameter"
    );
    let found = searched(&body, "MpcAgent");
    let shown: BTreeSet<&str> = found.iter().map(|(m, _, _)| m.as_str()).collect();
    for (metric, _, _) in &found {
        assert!(agent_metrics().contains(&metric.as_str()), "{metric}");
    }
    for needed in [
        "IndexerLagSeconds",
        "NodeReady",
        "Holding",
        "NodeRestarts",
        "ChainWatchFailures",
        "VaultBehindSeconds",
        "BalanceNear",
    ] {
        assert!(
            shown.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    for widget in body["widgets"].as_array().unwrap() {
        if widget["type"] == "metric" {
            assert_eq!(widget["properties"]["region"], "eu-west-1");
        }
    }
    for (create, name) in [
        (true, "${FleetDashboard}"),
        (false, "${ExistingDashboardName}"),
    ] {
        let when = BTreeMap::from([("CreateDashboard", create)]);
        assert_eq!(render(&t["Outputs"]["DashboardName"]["Value"], &when), name);
    }
}
