//! `agent keys` against a real AWS API (moto on loopback) through the real SDK:
//! value shapes, JSON keys, version stages, templates, and every way fetching
//! fails, each translated into what to do about it.

use std::time::{Duration, Instant};

use agent::views::KeysReport;
use agent_tests::faults::{Blackhole, Proxy};
use agent_tests::harness::{
    AgentCommand, Output, backup_key, keypair, keys_report, node_env, store_key,
};
use agent_tests::moto::{Moto, REGION, Value};
use entrypoint::check::Status;
use entrypoint::secrets::{SecretReport, Source};
use serde_json::json;

fn keys(moto: Option<&Moto>, env: &[(&str, String)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    AgentCommand::new(["keys", "--offline", "--json"])
        .envs(node_env(home.path()))
        .envs(moto.map(Moto::env).unwrap_or_default())
        .envs(env.iter().cloned())
        .run()
}

fn secret<'a>(report: &'a KeysReport, name: &str) -> &'a SecretReport {
    agent_tests::views::secret(&report.secrets, name)
}

/// The public key the report shows for `name`.
fn public_key<'a>(report: &'a KeysReport, name: &str) -> Option<&'a str> {
    secret(report, name).public_key.as_deref()
}

#[test]
fn plain_json_and_binary_values_are_read() {
    let moto = Moto::start();
    let (account, account_pk) = keypair();
    let (p2p, p2p_pk) = keypair();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&account));
    moto.create_secret(
        "node0-MPC_P2P_PRIVATE_KEY",
        Value::Text(&json!({ "MPC_P2P_PRIVATE_KEY": p2p }).to_string()),
    );
    moto.create_secret(
        "node0-MPC_SECRET_STORE_KEY",
        Value::Binary(store_key().as_bytes()),
    );
    moto.create_secret(
        "node0-MPC_BACKUP_ENCRYPTION_KEY_HEX",
        Value::Text(
            &json!({ "mpc_backup_encryption_key_hex": backup_key(), "other": "x" }).to_string(),
        ),
    );
    let out = keys(
        Some(&moto),
        &[("AGENT_SECRET_ID_TEMPLATE", "node0-{name}".into())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let r = keys_report(&out);
    assert!(r.valid);
    assert_eq!(public_key(&r, "MPC_ACCOUNT_SK"), Some(account_pk.as_str()));
    assert_eq!(public_key(&r, "MPC_P2P_PRIVATE_KEY"), Some(p2p_pk.as_str()));
    let store = secret(&r, "MPC_SECRET_STORE_KEY");
    assert_eq!(store.fingerprint.as_deref().unwrap().len(), 8);
    let Source::SecretsManager {
        arn, version_id, ..
    } = &store.source
    else {
        panic!("from Secrets Manager: {store:?}")
    };
    assert!(
        arn.as_deref()
            .unwrap()
            .starts_with("arn:aws:secretsmanager:")
    );
    assert!(version_id.is_some(), "{store:?}");
    assert_eq!(
        secret(&r, "MPC_BACKUP_ENCRYPTION_KEY_HEX").status,
        Status::Ok
    );
}

#[test]
fn a_json_key_and_a_version_stage_select_the_value() {
    let moto = Moto::start();
    let (old, old_pk) = keypair();
    let (new, new_pk) = keypair();
    let (p2p, _) = keypair();
    let arn = moto.create_secret(
        "node0",
        Value::Text(&json!({ "account": old, "p2p": p2p }).to_string()),
    );
    moto.put_secret_value("node0", &json!({ "account": new, "p2p": p2p }).to_string());
    let env = |stage: &str| {
        vec![
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                format!("{arn}:account:{stage}:"),
            ),
            (
                "AGENT_SECRET_ID_MPC_P2P_PRIVATE_KEY",
                format!("{arn}:p2p::"),
            ),
        ]
    };
    let current = keys_report(&keys(Some(&moto), &env("AWSCURRENT")));
    assert_eq!(
        public_key(&current, "MPC_ACCOUNT_SK"),
        Some(new_pk.as_str())
    );
    let previous = keys_report(&keys(Some(&moto), &env("AWSPREVIOUS")));
    assert_eq!(
        public_key(&previous, "MPC_ACCOUNT_SK"),
        Some(old_pk.as_str())
    );
    let account = secret(&previous, "MPC_ACCOUNT_SK");
    let Source::SecretsManager { version_stages, .. } = &account.source else {
        panic!("from Secrets Manager: {account:?}")
    };
    assert_eq!(version_stages, &["AWSPREVIOUS"]);
}

#[test]
fn the_template_serves_both_name_conventions() {
    let moto = Moto::start();
    let (account, _) = keypair();
    let (p2p, _) = keypair();
    moto.create_secret("node1-mpc_account_sk", Value::Text(&account));
    moto.create_secret("node1-mpc_p2p_private_key", Value::Text(&p2p));
    let out = keys(
        Some(&moto),
        &[("AGENT_SECRET_ID_TEMPLATE", "node1-{name_lower}".into())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let r = keys_report(&out);
    // Optional secrets the template names but that do not exist are unset, not failures.
    let store = secret(&r, "MPC_SECRET_STORE_KEY");
    assert_eq!(store.status, Status::Skipped);
    assert!(matches!(store.source, Source::Missing { .. }), "{store:?}");
}

#[test]
fn a_missing_secret_names_its_id_and_region() {
    let moto = Moto::start();
    let (p2p, _) = keypair();
    let out = keys(
        Some(&moto),
        &[
            ("AGENT_SECRET_ID_MPC_ACCOUNT_SK", "no-such-secret".into()),
            ("MPC_P2P_PRIVATE_KEY", p2p),
        ],
    );
    assert_eq!(out.code, 1);
    let account = secret(&keys_report(&out), "MPC_ACCOUNT_SK").clone();
    assert_eq!(account.status, Status::Fail);
    assert_eq!(
        account.cause,
        format!("secret no-such-secret was not found in region {REGION}")
    );
    assert!(account.fix.as_deref().unwrap().contains(&moto.endpoint()));
}

#[test]
fn access_denied_names_the_action_the_principal_and_the_task_role() {
    // Three unchecked requests: the user, its access key, the secret.
    let moto = Moto::with_iam_after(3);
    let (user_arn, key_id, secret_key) = moto.create_user_without_permissions("node0-task");
    let (account, _) = keypair();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&account));
    let (p2p, _) = keypair();
    let out = keys(
        Some(&moto),
        &[
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "node0-MPC_ACCOUNT_SK".into(),
            ),
            ("MPC_P2P_PRIVATE_KEY", p2p),
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret_key),
        ],
    );
    assert_eq!(out.code, 1);
    let account = secret(&keys_report(&out), "MPC_ACCOUNT_SK").clone();
    let cause = &account.cause;
    assert!(
        cause.starts_with(&format!(
            "access denied for {user_arn}: secretsmanager:GetSecretValue on node0-MPC_ACCOUNT_SK"
        )),
        "{cause}"
    );
    assert_eq!(
        account.fix.as_deref(),
        Some(
            "grant secretsmanager:GetSecretValue on node0-MPC_ACCOUNT_SK to the task role (taskRoleArn), not the execution role"
        )
    );
}

#[test]
fn a_refused_connection_names_the_endpoint_and_the_time_spent() {
    let port = agent_tests::harness::free_port();
    let (p2p, _) = keypair();
    let out = keys(
        None,
        &[
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "node0-MPC_ACCOUNT_SK".into(),
            ),
            ("MPC_P2P_PRIVATE_KEY", p2p),
        ],
    );
    assert_eq!(out.code, 1);
    let cause = secret(&keys_report(&out), "MPC_ACCOUNT_SK").cause.clone();
    assert!(
        cause.starts_with(&format!(
            "Secrets Manager at http://127.0.0.1:{port} could not connect"
        )),
        "{cause}"
    );
    assert!(
        cause.contains("s, fetching node0-MPC_ACCOUNT_SK"),
        "{cause}"
    );
}

#[test]
fn a_server_that_never_answers_is_bounded_by_the_deadline() {
    let silent = Blackhole::start();
    let (p2p, _) = keypair();
    let started = Instant::now();
    let out = keys(
        None,
        &[
            ("AWS_ENDPOINT_URL", format!("http://{}", silent.addr)),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "node0-MPC_ACCOUNT_SK".into(),
            ),
            ("AGENT_SECRETS_TIMEOUT", "2s".into()),
            ("MPC_P2P_PRIVATE_KEY", p2p),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let cause = secret(&keys_report(&out), "MPC_ACCOUNT_SK").cause.clone();
    assert!(
        cause.contains("did not answer within AGENT_SECRETS_TIMEOUT (2s)")
            || cause.contains("timed out"),
        "{cause}"
    );
}

#[test]
fn throttling_is_retried_until_it_succeeds() {
    let moto = Moto::start();
    let proxy = Proxy::throttling(moto.addr, 2);
    let (account, account_pk) = keypair();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&account));
    let (p2p, _) = keypair();
    let out = keys(
        Some(&moto),
        &[
            ("AWS_ENDPOINT_URL", format!("http://{}", proxy.addr)),
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "node0-MPC_ACCOUNT_SK".into(),
            ),
            ("MPC_P2P_PRIVATE_KEY", p2p),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        public_key(&keys_report(&out), "MPC_ACCOUNT_SK"),
        Some(account_pk.as_str())
    );
    assert_eq!(proxy.throttled(), 2, "both throttled answers were seen");
    assert_eq!(proxy.forwarded(), 1, "then one request went through");
}

#[test]
fn the_environment_wins_over_secrets_manager() {
    let moto = Moto::start();
    let (in_manager, _) = keypair();
    let (in_env, in_env_pk) = keypair();
    let (p2p, _) = keypair();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&in_manager));
    let out = keys(
        Some(&moto),
        &[
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "node0-MPC_ACCOUNT_SK".into(),
            ),
            ("MPC_ACCOUNT_SK", in_env),
            ("MPC_P2P_PRIVATE_KEY", p2p),
        ],
    );
    let account = secret(&keys_report(&out), "MPC_ACCOUNT_SK").clone();
    assert_eq!(account.public_key.as_deref(), Some(in_env_pk.as_str()));
    assert_eq!(
        account.source,
        Source::Env {
            variable: "MPC_ACCOUNT_SK".into()
        }
    );
}

#[test]
fn no_credentials_names_the_providers_tried() {
    let moto = Moto::start();
    let (p2p, _) = keypair();
    let home = tempfile::tempdir().unwrap();
    let out = AgentCommand::new(["keys", "--offline", "--json"])
        .envs(node_env(home.path()))
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", REGION)
        .env("HOME", home.path())
        .env("AGENT_SECRET_ID_MPC_ACCOUNT_SK", "node0-MPC_ACCOUNT_SK")
        .env("MPC_P2P_PRIVATE_KEY", p2p)
        .run();
    assert_eq!(out.code, 1);
    let account = secret(&keys_report(&out), "MPC_ACCOUNT_SK").clone();
    assert!(
        account.cause.starts_with("no AWS credentials"),
        "{account:?}"
    );
    let fix = account.fix.as_deref().unwrap();
    for provider in [
        "AWS_ACCESS_KEY_ID",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "IMDSv2",
        "task role",
    ] {
        assert!(fix.contains(provider), "{provider} not named in {fix}");
    }
}

#[test]
fn a_directory_holds_one_file_per_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (account, account_pk) = keypair();
    let (p2p, p2p_pk) = keypair();
    std::fs::write(dir.path().join("MPC_ACCOUNT_SK"), format!("{account}\n")).unwrap();
    std::fs::write(dir.path().join("mpc_p2p_private_key"), &p2p).unwrap();
    std::fs::write(dir.path().join("MPC_SECRET_STORE_KEY"), store_key()).unwrap();
    let out = keys(
        None,
        &[("AGENT_SECRETS_DIR", dir.path().display().to_string())],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let r = keys_report(&out);
    assert_eq!(public_key(&r, "MPC_ACCOUNT_SK"), Some(account_pk.as_str()));
    assert_eq!(public_key(&r, "MPC_P2P_PRIVATE_KEY"), Some(p2p_pk.as_str()));
    let p2p = secret(&r, "MPC_P2P_PRIVATE_KEY");
    assert!(matches!(p2p.source, Source::File { .. }), "{p2p:?}");
    assert_eq!(
        secret(&r, "MPC_BACKUP_ENCRYPTION_KEY_HEX").status,
        Status::Skipped
    );
}
