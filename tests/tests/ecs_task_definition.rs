//! The example ECS task definition fits the agent: its environment is a valid
//! configuration, every variable is one the agent knows, the health check is
//! `agent health`, the agent's port and every port upstream needs are mapped,
//! ECS waits longer than the agent's pre-stop delay and stop grace together,
//! and the example task role may write and read the vault path the task names.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_tests::harness::AgentCommand;
use entrypoint::config::settings;
use entrypoint::config::values::duration;
use entrypoint::secrets::{SecretName, SecretRef};
use serde_json::Value;

fn task_definition() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker/ecs-task-definition.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn container() -> Value {
    task_definition()["containerDefinitions"][0].clone()
}

fn environment() -> BTreeMap<String, String> {
    container()["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_variable_is_one_the_agent_knows_and_together_they_are_valid() {
    let env = environment();
    for name in env.keys() {
        assert!(
            settings::find(name).is_some(),
            "{name} is not a setting of the agent"
        );
    }
    let secrets = container()["secrets"].as_array().unwrap().clone();
    for secret in &secrets {
        let name = secret["name"].as_str().unwrap();
        assert!(
            SecretName::ALL.iter().any(|s| s.env_name() == name),
            "{name} is not a secret of the node"
        );
        let reference = SecretRef::parse(secret["valueFrom"].as_str().unwrap())
            .expect("an ECS valueFrom the agent parses");
        assert!(reference.secret_id.starts_with("arn:aws:secretsmanager:"));
    }
    let out = AgentCommand::new(["config", "--json"]).envs(env).run();
    assert_eq!(
        out.code, 0,
        "the task definition's environment is not a valid configuration: {}",
        out.stdout
    );
}

#[test]
fn the_health_check_is_agent_health_and_the_agent_port_is_mapped() {
    let c = container();
    assert_eq!(
        c["healthCheck"]["command"],
        serde_json::json!(["CMD", "/usr/local/bin/agent", "health"])
    );
    let port = environment()["AGENT_LISTEN"]
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<u64>()
        .unwrap();
    assert!(
        c["portMappings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"] == port),
        "port {port} is not mapped"
    );
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/Dockerfile"))
            .unwrap();
    assert!(
        dockerfile.contains(&format!("EXPOSE {port}")),
        "the image does not expose {port}"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/agent", "run"]"#));
}

#[test]
fn every_port_upstream_needs_is_mapped() {
    // 80 MPC p2p (start.sh's port_override), 24567 nearcore p2p, 8080 the web
    // UI, 3030 nearcore RPC, 8079 the migration server (mutual TLS: only the
    // backup service registered for the account gets through).
    let mapped: Vec<u64> = container()["portMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/Dockerfile"))
            .unwrap();
    let exposed: Vec<u64> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().map(|p| p.parse().unwrap()))
        .collect();
    for port in [80, 24567, 8080, 3030, 8079] {
        assert!(mapped.contains(&port), "port {port} is not mapped");
        assert!(exposed.contains(&port), "the image does not expose {port}");
    }
}

#[test]
fn ecs_waits_longer_than_the_agent_takes_to_stop() {
    let env = environment();
    let grace = duration(&env["AGENT_STOP_GRACE"]).unwrap();
    let prestop = duration(&env["AGENT_PRESTOP_DELAY"]).unwrap();
    let stop_timeout = Duration::from_secs(container()["stopTimeout"].as_u64().unwrap());
    assert!(
        prestop + grace < stop_timeout,
        "pre-stop {prestop:?} + grace {grace:?} must end before ECS's stopTimeout {stop_timeout:?} (else SIGKILL from ECS, exit 137)"
    );
    assert!(
        stop_timeout <= Duration::from_secs(120),
        "Fargate allows 120 s at most"
    );
}

#[test]
fn the_home_is_the_efs_volume_with_iam_and_transit_encryption() {
    let td = task_definition();
    let volume = &td["volumes"][0]["efsVolumeConfiguration"];
    assert_eq!(volume["transitEncryption"], "ENABLED");
    assert_eq!(volume["authorizationConfig"]["iam"], "ENABLED");
    assert_eq!(
        volume["fileSystemId"],
        environment()["AGENT_EFS_FILE_SYSTEM_ID"]
    );
    let mount = &container()["mountPoints"][0];
    assert_eq!(mount["containerPath"], environment()["MPC_HOME_DIR"]);
}

#[test]
fn the_vault_is_a_path_the_example_task_role_may_write_under_a_key_it_may_use() {
    let env = environment();
    let vault = env["AGENT_KEYSHARE_VAULT"]
        .strip_prefix("s3://")
        .expect("AGENT_KEYSHARE_VAULT is s3://BUCKET[/PREFIX]");
    let (bucket, prefix) = vault.split_once('/').unwrap_or((vault, ""));
    let node_path = [prefix, env["MPC_ACCOUNT_ID"].as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    let key = &env["AGENT_KEYSHARE_VAULT_KMS_KEY"];
    let region = key.split(':').nth(3).unwrap();
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docker/iam-task-role-policy.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let granting = |action: &str| -> Vec<Value> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .cloned()
            .collect()
    };
    for action in ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"] {
        let on: Vec<Value> = granting(action)
            .into_iter()
            .map(|s| s["Resource"].clone())
            .collect();
        assert_eq!(
            on,
            [Value::String(format!(
                "arn:aws:s3:::{bucket}/{node_path}/*"
            ))],
            "{action}"
        );
    }
    let list = granting("s3:ListBucket");
    assert_eq!(list[0]["Resource"], format!("arn:aws:s3:::{bucket}"));
    assert_eq!(
        list[0]["Condition"]["StringLike"]["s3:prefix"],
        format!("{node_path}/*")
    );
    for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
        let through_s3: Vec<Value> = granting(action)
            .into_iter()
            .filter(|s| s["Resource"] == key.as_str())
            .collect();
        assert_eq!(through_s3.len(), 1, "{action} on {key}");
        assert_eq!(
            through_s3[0]["Condition"]["StringEquals"]["kms:ViaService"],
            format!("s3.{region}.amazonaws.com")
        );
    }
    assert!(
        env["AGENT_CLOUDWATCH_NAMESPACE"]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    // The Node dimension is the node's name, as the stack sets it.
    assert_eq!(
        env["AGENT_CLOUDWATCH_NODE"],
        task_definition()["family"].as_str().unwrap()
    );
}
