//! The backup encryption key through `agent run`: with none configured, one is
//! generated once, stored in Secrets Manager before the node starts, and the
//! node gets that same key on every boot; a `backup_encryption_key.hex` the
//! node already wrote on the home is adopted (stored) rather than replaced.

use agent_tests::harness::{AgentCommand, WAIT, backup_key};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::{ENV_LOG, Logged, env_log};
use agent_tests::views::Checks;
use entrypoint::secrets::Secret;

const BACKUP_SECRET: &str = "node0-MPC_BACKUP_ENCRYPTION_KEY_HEX";

/// The node's secrets in Secrets Manager under `node0-{name}`, the backup key not among them.
fn without_backup_key(node: &NodeFixture, moto: &Moto, log: &std::path::Path) -> AgentCommand {
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&node.account.secret));
    moto.create_secret("node0-MPC_P2P_PRIVATE_KEY", Value::Text(&node.p2p.secret));
    moto.create_secret("node0-MPC_SECRET_STORE_KEY", Value::Text(&node.store_key));
    AgentCommand::new(["run"])
        .envs(node.env())
        .envs(moto.env())
        .env("AGENT_SECRET_ID_TEMPLATE", "node0-{name}")
        .env(ENV_LOG, log)
}

/// The node's starts, in order.
fn starts(log: &std::path::Path) -> Vec<Logged> {
    env_log(log)
        .into_iter()
        .filter(|l| l.command == "start")
        .collect()
}

fn fingerprint(hex: &str) -> String {
    Secret::new(hex).fingerprint()
}

#[test]
fn a_generated_backup_key_is_stored_before_the_node_starts_and_given_to_it_on_every_boot() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let agent = without_backup_key(&node, &moto, log.path()).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let stored = moto
        .secret_value(BACKUP_SECRET)
        .expect("the generated key is in Secrets Manager");
    assert_eq!(stored.len(), 64);
    let cause = agent.status().check("homes.backup_key").cause.clone();
    assert!(cause.contains("generated one"), "{cause}");
    assert!(cause.contains(&fingerprint(&stored)), "{cause}");
    drop(agent);

    // Recreated from the secret moto already holds (the agent's first
    // `create_secret` for the other three is not repeated).
    let agent = AgentCommand::new(["run"])
        .envs(node.env())
        .envs(moto.env())
        .env("AGENT_SECRET_ID_TEMPLATE", "node0-{name}")
        .env(ENV_LOG, log.path())
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let cause = agent.status().check("homes.backup_key").cause.clone();
    assert!(cause.contains("Secrets Manager secret"), "{cause}");
    assert_eq!(moto.secret_value(BACKUP_SECRET).unwrap(), stored);

    let starts = starts(log.path());
    assert_eq!(starts.len(), 2, "{starts:?}");
    for start in &starts {
        let used = start.backup_key.as_ref().expect("start records its key");
        assert!(!used.generated, "the node never made its own: {start:?}");
        assert_eq!(used.fingerprint, fingerprint(&stored), "{start:?}");
    }
    assert!(
        !node.path("backup_encryption_key.hex").exists(),
        "the node had no reason to write one"
    );
}

#[test]
fn the_key_the_node_already_wrote_on_the_home_is_adopted() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let earlier = backup_key();
    std::fs::write(node.path("backup_encryption_key.hex"), &earlier).unwrap();
    let agent = without_backup_key(&node, &moto, log.path()).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(
        moto.secret_value(BACKUP_SECRET).as_deref(),
        Some(earlier.as_str()),
        "the home's key is what Secrets Manager keeps"
    );
    let cause = agent.status().check("homes.backup_key").cause.clone();
    assert!(cause.contains("adopted"), "{cause}");
    let starts = starts(log.path());
    let used = starts[0].backup_key.as_ref().unwrap();
    assert!(!used.generated);
    assert_eq!(used.fingerprint, fingerprint(&earlier));
    assert_eq!(
        std::fs::read_to_string(node.path("backup_encryption_key.hex")).unwrap(),
        earlier,
        "the file is left as it was"
    );
}
