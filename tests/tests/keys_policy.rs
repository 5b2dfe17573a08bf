//! `AGENT_ON_KEY_MISMATCH` and `AGENT_ON_RPC_UNAVAILABLE` through `agent run`:
//! hold (and heal when the secret is fixed in Secrets Manager, with no
//! restart), exit 78, or warn and start; hold turns into a failure after the grace.

use std::time::{Duration, Instant};

use agent::views::Phase;
use agent_tests::harness::{WAIT, free_port};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::{Key, NodeFixture};
use nix::sys::signal::Signal;

/// The node's account key in Secrets Manager is one the chain does not know.
fn wrong_account_key_in_secrets_manager(node: &NodeFixture, moto: &Moto) -> Key {
    let wrong = Key::random();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&wrong.secret));
    moto.create_secret("node0-MPC_P2P_PRIVATE_KEY", Value::Text(&node.p2p.secret));
    moto.create_secret("node0-MPC_SECRET_STORE_KEY", Value::Text(&node.store_key));
    wrong
}

#[test]
fn hold_names_both_keys_and_heals_when_the_secret_is_fixed() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    let wrong = wrong_account_key_in_secrets_manager(&node, &moto);
    let mut agent = node
        .run_without_secrets()
        .envs(moto.env())
        .env("AGENT_SECRET_ID_TEMPLATE", "node0-{name}")
        .start();
    let status = agent.wait_phase(WAIT, Phase::Holding);
    let cause = &status.reason.expect("a hold has a reason").cause;
    assert!(
        cause.contains(&wrong.public),
        "the derived key is named: {cause}"
    );
    assert!(
        cause.contains(&node.account.public),
        "the chain's key is named: {cause}"
    );
    let health = agent.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.health().status, "warn");
    assert_eq!(agent.get("/ready").status, 503);
    let agent_pid = agent.pid();

    moto.put_secret_value("node0-MPC_ACCOUNT_SK", &node.account.secret);
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(
        agent.pid(),
        agent_pid,
        "healed without a restart of the agent"
    );
    assert_eq!(node.secrets_json()["near_signer_key"], node.account.secret);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn hold_becomes_a_failure_after_the_grace() {
    let node = NodeFixture::new();
    node.chain_knows(&Key::random().public, &node.p2p.public);
    let agent = node.run().env("AGENT_HOLD_GRACE", "1s").start();
    agent.wait_health(WAIT, "warn");
    let failed = agent.wait_until("/health", WAIT, |r| r.status == 503);
    assert!(
        failed
            .health()
            .output
            .as_str()
            .contains("past the hold grace"),
        "{}",
        failed.body
    );
}

#[test]
fn exit_gives_78_with_the_report() {
    let node = NodeFixture::new();
    node.chain_knows(&Key::random().public, &node.p2p.public);
    let mut agent = node.run().env("AGENT_ON_KEY_MISMATCH", "exit").start();
    assert_eq!(agent.exit_code(), 78);
    let line = agent.wait_log("not starting the node");
    assert_eq!(line["check"], "keys.access_key");
    assert!(
        line["cause"]
            .as_str()
            .unwrap()
            .contains(&node.account.public)
    );
}

#[test]
fn warn_starts_the_node_anyway() {
    let node = NodeFixture::new();
    node.chain_knows(&node.account.public, &Key::random().public);
    let agent = node.run().env("AGENT_ON_KEY_MISMATCH", "warn").start();
    agent.wait_phase(WAIT, Phase::Running);
    agent.wait_log("starting anyway, as the policy says");
    // Ready needs a good keys verdict.
    assert_eq!(agent.get("/ready").status, 503);
    let ready = agent.get("/ready").ready_view();
    assert!(ready.detail.contains("keys do not match"), "{ready:?}");
}

#[test]
fn an_unreachable_rpc_holds_by_default_and_is_skipped_on_request() {
    let node = NodeFixture::new();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let holding = node.run().env("AGENT_NEAR_RPC_URL", &nowhere).start();
    let status = holding.wait_phase(WAIT, Phase::Holding);
    let reason = status.reason.expect("a hold has a reason");
    assert_eq!(reason.kind, "keys.rpc");
    assert!(reason.cause.contains(&nowhere), "{reason:?}");
    drop(holding);

    let started = Instant::now();
    let skipping = node
        .run()
        .env("AGENT_NEAR_RPC_URL", &nowhere)
        .env("AGENT_ON_RPC_UNAVAILABLE", "skip")
        .start();
    skipping.wait_phase(WAIT, Phase::Running);
    assert!(started.elapsed() < Duration::from_secs(20));
}
