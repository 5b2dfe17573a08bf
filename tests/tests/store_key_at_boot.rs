//! Invariant 2 through `agent run` and `agent init`: a store key that cannot
//! decrypt the home's shares is refused (naming the earlier version that can);
//! with no key anywhere and no share, one is generated, stored in Secrets
//! Manager first and read back — two agents racing converge on one value;
//! with shares but no key, nothing is generated.

use agent::views::Phase;
use agent_tests::harness::{AgentCommand, WAIT, store_key};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::views::Checks;
use entrypoint::secrets::Secret;

/// Account and p2p keys in Secrets Manager under `node0-{name}`; the store key as given.
fn secrets_in(moto: &Moto, node: &NodeFixture, store: Option<&str>) {
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&node.account.secret));
    moto.create_secret("node0-MPC_P2P_PRIVATE_KEY", Value::Text(&node.p2p.secret));
    if let Some(store) = store {
        moto.create_secret("node0-MPC_SECRET_STORE_KEY", Value::Text(store));
    }
}

fn from_manager(node: &NodeFixture, moto: &Moto, command: &str) -> AgentCommand {
    AgentCommand::new([command])
        .envs(node.env())
        .envs(moto.env())
        .env("AGENT_SECRET_ID_TEMPLATE", "node0-{name}")
}

#[test]
fn a_store_key_that_cannot_decrypt_the_shares_is_refused_and_the_previous_version_named() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    secrets_in(&moto, &node, Some(&node.store_key));
    node.plant_share(&node.store_key);
    // Someone "rotated" the store key: the shares were written with the previous one.
    let version = moto.put_secret_value("node0-MPC_SECRET_STORE_KEY", &store_key());
    let agent = from_manager(&node, &moto, "run").start();
    let status = agent.wait_phase(WAIT, Phase::Holding);
    let reason = status.reason.expect("a hold has a reason");
    assert_eq!(reason.kind, "homes.store_key");
    let cause = &reason.cause;
    assert!(cause.contains("does not decrypt"), "{cause}");
    assert!(
        cause.contains("the previous version"),
        "AWSPREVIOUS is named: {cause}"
    );
    let fix = reason.fix.as_deref().unwrap();
    assert!(fix.contains("update-secret-version-stage"), "{fix}");
    assert!(
        !fix.contains(&version),
        "the fix names the version to restore, not the current one: {fix}"
    );
    let share = std::fs::read(node.path("key")).unwrap();
    drop(agent);
    assert_eq!(
        std::fs::read(node.path("key")).unwrap(),
        share,
        "the share is untouched"
    );
}

#[test]
fn with_no_key_and_no_share_one_is_generated_stored_and_read_back() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    secrets_in(&moto, &node, None);
    let agent = from_manager(&node, &moto, "run").start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let stored = moto
        .secret_value("node0-MPC_SECRET_STORE_KEY")
        .expect("the generated key is in Secrets Manager");
    assert_eq!(stored.len(), 32);
    let status = agent.status();
    let cause = &status.check("homes.store_key").cause;
    assert!(cause.contains("generated one"), "{cause}");
    assert!(
        cause.contains(&Secret::new(stored.as_str()).fingerprint()),
        "the node got what Secrets Manager holds: {cause}"
    );
}

#[test]
fn with_no_key_but_a_share_nothing_is_generated() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    secrets_in(&moto, &node, None);
    node.plant_share(&node.store_key);
    let mut agent = from_manager(&node, &moto, "run")
        .env("AGENT_ON_KEY_MISMATCH", "exit")
        .start();
    assert_eq!(agent.exit_code(), 78);
    let line = agent.wait_log("not starting the node");
    assert_eq!(line["check"], "homes.store_key");
    assert!(
        line["cause"]
            .as_str()
            .unwrap()
            .contains("a new key would make them unreadable"),
        "{line}"
    );
    assert_eq!(
        moto.secret_value("node0-MPC_SECRET_STORE_KEY"),
        None,
        "nothing was generated"
    );
}

#[test]
fn two_agents_generating_at_once_converge_on_one_key() {
    let first = NodeFixture::new();
    let second = NodeFixture::twin_of(&first);
    let moto = Moto::start();
    secrets_in(&moto, &first, None);
    let a = from_manager(&first, &moto, "init").start();
    let b = from_manager(&second, &moto, "init").start();
    // Each agent uses what Secrets Manager holds after its attempt, not what it
    // generated (a slower one may find the key there already and just read it).
    let mut generated = 0;
    let fingerprints: Vec<String> = [a, b]
        .into_iter()
        .map(|mut agent| {
            assert_eq!(agent.exit_code(), 0);
            let line = agent.wait_log("the node's secret store key");
            generated += usize::from(line["generated"] == true);
            line["fingerprint"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(generated >= 1, "at least one agent generated the key");
    let stored = moto.secret_value("node0-MPC_SECRET_STORE_KEY").unwrap();
    let fingerprint = Secret::new(stored.as_str()).fingerprint();
    assert_eq!(fingerprints, [fingerprint.clone(), fingerprint]);
}
