//! `docker/cloudformation.yaml`, the stack of one node on ECS: cfn-lint finds
//! nothing; read as a template, the roles, the mount targets, the security
//! groups and the task definition are what the agent needs (the task
//! definition equal to `docker/ecs-task-definition.json` wherever the agent
//! relies on it); deployed into moto's CloudFormation, it completes, and
//! `agent doctor --check aws` in the task's place is green.
//!
//! moto does not model `AWS::SecretsManager::Secret` (it skips the resource),
//! answers a `Ref` to `AWS::EFS::AccessPoint` with no id, and keeps of a task
//! definition only its family, containers, volume names and memory, and of a
//! service only its cluster, task definition and count: those parts are
//! checked on the template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, JsonServer, keypair};
use agent_tests::json;
use agent_tests::moto::{Moto, xml};
use aws_sdk_cloudformation::types::{Capability, Parameter};
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

#[test]
fn deployed_into_cloudformation_the_stack_completes_and_agent_doctor_is_green() {
    let moto = Moto::start();
    let vpc = moto.vpc("127.3.0.0/16");
    let subnet_a = moto.subnet_in(&vpc, ZONE_A, "127.3.1.0/24");
    let subnet_b = moto.subnet_in(&vpc, ZONE_B, "127.3.2.0/24");
    let config = moto.sdk_config();
    let cfn = aws_sdk_cloudformation::Client::new(&config);
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
    let stack = settled(&moto, &cfn, "mpc-node-0");
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
    let report: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    for id in [
        "aws.credentials",
        "aws.clock",
        "aws.efs",
        "aws.efs_mount_target",
        "aws.efs_port",
    ] {
        let check = json::check(&report, id);
        assert_eq!(check["status"], "ok", "{check:#}");
    }
    assert!(
        json::check(&report, "aws.efs_mount_target")["cause"]
            .as_str()
            .unwrap()
            .contains(ZONE_A),
        "{report:#}"
    );
    assert_eq!(out.code, 0, "{report:#}");
    assert_eq!(shown.code, 0, "{}", shown.stdout);
}
