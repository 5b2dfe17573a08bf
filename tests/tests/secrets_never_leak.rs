//! Invariant 4: no secret byte reaches a log line, an error or a report. Every
//! scenario of the secrets stage runs at RUST_LOG=trace and the whole output
//! is searched for each secret value, its base58 body, its hex, and halves of each;
//! a running node's output, its metrics lines included, the same way.

use agent_tests::harness::{AgentCommand, backup_key, keypair, node_env, store_key};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::NodeFixture;
use serde_json::json;

/// Every form in which `secret` could show up.
fn needles(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    if let Some(body) = secret.strip_prefix("ed25519:") {
        forms.push(body.to_string());
        if let Ok(bytes) = near_crypto_bytes(secret) {
            forms.push(hex::encode(&bytes));
            forms.push(hex::encode(&bytes[..32]));
        }
    } else {
        forms.push(secret.to_ascii_uppercase());
    }
    let halves: Vec<String> = forms
        .iter()
        .flat_map(|f| [f[..f.len() / 2].to_string(), f[f.len() / 2..].to_string()])
        .collect();
    forms.extend(halves);
    forms
}

fn near_crypto_bytes(secret: &str) -> Result<Vec<u8>, ()> {
    match secret.parse::<near_crypto::SecretKey>() {
        Ok(near_crypto::SecretKey::ED25519(k)) => Ok(k.0.to_vec()),
        _ => Err(()),
    }
}

fn assert_no_leak(output: &str, secrets: &[&str], scenario: &str) {
    assert!(!output.is_empty(), "{scenario}: no output to search");
    for secret in secrets {
        for needle in needles(secret) {
            assert!(
                !output.contains(&needle),
                "{scenario}: a form of a secret ({} characters) appears in the output",
                needle.len()
            );
        }
    }
}

/// None of `node`'s four secrets is in `seen`.
fn assert_no_secret_of(node: &NodeFixture, seen: &str, scenario: &str) {
    let secrets = [
        node.account.secret.as_str(),
        node.p2p.secret.as_str(),
        node.store_key.as_str(),
        node.backup_key.as_str(),
    ];
    assert_no_leak(seen, &secrets, scenario);
}

fn run(scenario: &str, env: Vec<(&str, String)>, secrets: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    for args in [
        ["keys", "--offline", "--json"].as_slice(),
        ["keys", "--offline"].as_slice(),
    ] {
        let out = AgentCommand::new(args)
            .envs(node_env(home.path()))
            .env("RUST_LOG", "trace")
            .envs(env.iter().cloned())
            .run();
        let all = format!("{}\n{}", out.stdout, out.stderr);
        assert!(
            all.lines().count() > 5,
            "{scenario}: trace output expected, got {all}"
        );
        assert_no_leak(&all, secrets, scenario);
    }
}

/// Everything the agent serves: the bodies of its five endpoints.
fn served(agent: &agent_tests::harness::Agent) -> String {
    ["/health", "/ready", "/status", "/metrics", "/config"]
        .into_iter()
        .map(|path| agent.get(path).body)
        .collect()
}

#[test]
fn no_scenario_prints_a_secret_at_trace_level() {
    let moto = Moto::start();
    let (account, _) = keypair();
    let (p2p, _) = keypair();
    let (other, _) = keypair();
    let store = store_key();
    let backup = backup_key();
    let mut spliced = near_crypto_bytes(&account).unwrap();
    spliced[32..].copy_from_slice(&near_crypto_bytes(&other).unwrap()[32..]);
    let spliced = format!(
        "ed25519:{}",
        near_crypto::SecretKey::ED25519(near_crypto::ED25519SecretKey(spliced.try_into().unwrap()))
            .to_string()
            .strip_prefix("ed25519:")
            .unwrap()
    );
    moto.create_secret("ok-MPC_ACCOUNT_SK", Value::Text(&account));
    moto.create_secret(
        "ok-MPC_P2P_PRIVATE_KEY",
        Value::Text(&json!({ "MPC_P2P_PRIVATE_KEY": p2p }).to_string()),
    );
    moto.create_secret("ok-MPC_SECRET_STORE_KEY", Value::Binary(store.as_bytes()));
    moto.create_secret("ok-MPC_BACKUP_ENCRYPTION_KEY_HEX", Value::Text(&backup));
    moto.create_secret("bad-MPC_ACCOUNT_SK", Value::Text(&spliced));
    moto.create_secret(
        "bad-MPC_P2P_PRIVATE_KEY",
        Value::Text(&json!({ "wrong_field": p2p, "also": account }).to_string()),
    );
    moto.create_secret("bad-MPC_SECRET_STORE_KEY", Value::Text(&backup));
    moto.create_secret("bad-MPC_BACKUP_ENCRYPTION_KEY_HEX", Value::Text(&store));
    let all: [&str; 6] = [&account, &p2p, &other, &store, &backup, &spliced];
    let aws = moto.env();

    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        aws.iter().cloned().chain(extra.iter().cloned()).collect()
    };
    run(
        "valid, from Secrets Manager",
        with(&[("AGENT_SECRET_ID_TEMPLATE", "ok-{name}".into())]),
        &all,
    );
    run(
        "invalid, from Secrets Manager",
        with(&[("AGENT_SECRET_ID_TEMPLATE", "bad-{name}".into())]),
        &all,
    );
    run(
        "valid, from the environment",
        vec![
            ("MPC_ACCOUNT_SK", account.clone()),
            ("MPC_P2P_PRIVATE_KEY", p2p.clone()),
            ("MPC_SECRET_STORE_KEY", store.clone()),
            ("MPC_BACKUP_ENCRYPTION_KEY_HEX", backup.clone()),
        ],
        &all,
    );
    run(
        "swapped and reused, from the environment",
        vec![
            ("MPC_ACCOUNT_SK", account.clone()),
            ("MPC_P2P_PRIVATE_KEY", account.clone()),
            ("MPC_SECRET_STORE_KEY", backup.clone()),
            ("MPC_BACKUP_ENCRYPTION_KEY_HEX", store.clone()),
        ],
        &all,
    );
    run(
        "plain text where a JSON key was asked for",
        with(&[
            (
                "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
                "ok-MPC_ACCOUNT_SK:field::".into(),
            ),
            ("MPC_P2P_PRIVATE_KEY", p2p.clone()),
        ]),
        &all,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("MPC_ACCOUNT_SK"), format!("{spliced}\n")).unwrap();
    std::fs::write(dir.path().join("MPC_P2P_PRIVATE_KEY"), &p2p).unwrap();
    run(
        "invalid, from a directory",
        vec![("AGENT_SECRETS_DIR", dir.path().display().to_string())],
        &all,
    );
}

#[test]
fn a_running_node_serves_and_logs_no_secret() {
    use agent_tests::harness::WAIT;
    let node = NodeFixture::new();
    // The metrics lines too, with every reading the stand-ins give.
    let mut agent = node
        .run()
        .env("RUST_LOG", "trace")
        .env("AGENT_CLOUDWATCH_NAMESPACE", "MpcAgent")
        .env("AGENT_METRICS_EMF_INTERVAL", "100ms")
        .env("AGENT_CHAIN_WATCH", "100ms")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    agent.wait_metric_line(|l| l.values.contains_key("BalanceNear"));
    let mut seen = served(&agent);
    let doctor = AgentCommand::new(["doctor", "--json"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("RUST_LOG", "trace")
        .run();
    seen.push_str(&doctor.stdout);
    seen.push_str(&doctor.stderr);
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    assert!(
        agent.metric_lines().len() >= 2,
        "metrics lines in the searched output"
    );
    seen.push_str(&agent.stdout.all().join("\n"));
    seen.push_str(&agent.stderr.all().join("\n"));
    assert_no_secret_of(
        &node,
        &seen,
        "HTTP answers, log and doctor of a running node",
    );
}

#[test]
fn the_restore_its_drill_and_a_healing_boot_print_no_secret() {
    use agent_tests::harness::WAIT;
    use agent_tests::vault_fixture::VaultFixture;
    let fx = VaultFixture::new();
    fx.keyset(2, &[0]);
    fx.plant(2, 1, 0, &fx.node.store_key);
    let mut seen = String::new();
    let mut output = |command: AgentCommand| {
        let out = command
            .env("RUST_LOG", "trace")
            .env("AGENT_CLOUDWATCH_NAMESPACE", "MpcAgent")
            .run();
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    };
    output(fx.vault_command(&["verify"]));
    output(fx.vault_command(&["verify", "--json"]));
    output(
        AgentCommand::new(["doctor", "--json", "--drill"])
            .envs(fx.env())
            .envs(fx.node.secret_env()),
    );
    // A backup the store key does not open: the refusal's words too.
    let other = VaultFixture::new();
    other.keyset(2, &[0]);
    other.plant(2, 1, 0, &store_key());
    output(other.vault_command(&["verify"]));
    output(other.vault_command(&["restore", "--json"]));
    output(fx.vault_command(&["restore"]));
    output(fx.vault_command(&["restore", "--json"]));

    // And a boot that restores the keyshare itself, on another home.
    let healing = VaultFixture::new();
    healing.keyset(2, &[0]);
    healing.plant(2, 1, 0, &healing.node.store_key);
    let mut agent = healing.run().env("RUST_LOG", "trace").start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    for path in ["/health", "/status", "/metrics", "/config"] {
        seen.push_str(&agent.get(path).body);
    }
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    seen.push_str(&agent.stdout.all().join("\n"));
    seen.push_str(&agent.stderr.all().join("\n"));

    for node in [&fx.node, &other.node, &healing.node] {
        assert_no_secret_of(
            node,
            &seen,
            "vault restore, vault verify, doctor --drill and a healing boot",
        );
    }
}

#[test]
fn a_vaulted_keyshare_carries_no_secret_to_the_vault_the_log_or_the_answers() {
    use agent_tests::harness::WAIT;
    use agent_tests::standin_node::keyshare::KeysetRequest;
    use agent_tests::vault_fixture::{
        BUCKET, FIRST, LOCATION, VaultFixture, object_key_of, vaulted_file,
    };
    let world = VaultFixture::new().keyshare_on_home();
    let node = &world.node;
    let mut agent = world.run_vaulting("10m").env("RUST_LOG", "trace").start();
    agent.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(FIRST));
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    // A keyset stored while the node runs, uploaded while the log is at trace.
    node.store_keyset(&KeysetRequest::new(2, 1));
    agent.wait_status(WAIT, |s| {
        vaulted_file(s).as_deref() == Some("epoch_2_with_1_domains")
    });
    let mut seen = served(&agent);
    let doctor = AgentCommand::new(["doctor", "--json"])
        .envs(node.env())
        .envs(node.secret_env())
        .envs(world.moto.env())
        .env("AGENT_KEYSHARE_VAULT", LOCATION)
        .env("AGENT_LISTEN", agent.addr().to_string())
        .env("RUST_LOG", "trace")
        .run();
    seen.push_str(&doctor.stdout);
    seen.push_str(&doctor.stderr);
    for file in [FIRST, "epoch_2_with_1_domains"] {
        let object = world.moto.object(BUCKET, &object_key_of(file));
        // The node's own sealed bytes, nothing else.
        assert_eq!(object.bytes, world.home_bytes(file));
        seen.push_str(&format!("{:?} {:?}", object.metadata, object.version_id));
        seen.push_str(&hex::encode(&object.bytes));
    }
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    seen.push_str(&agent.stdout.all().join("\n"));
    seen.push_str(&agent.stderr.all().join("\n"));
    assert!(
        seen.contains("keyshare in the vault"),
        "the uploads were not logged"
    );
    assert_no_secret_of(
        node,
        &seen,
        "the vault's objects and metadata, HTTP answers, log and doctor of a vaulting node",
    );
}
