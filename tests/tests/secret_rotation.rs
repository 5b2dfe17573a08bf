//! Secrets re-fetched while the node runs: a changed value that validates and
//! that the chain accepts restarts the node once, gracefully, with secrets.json
//! brought along; a changed value that fails leaves the node running and says
//! why; an unchanged value never restarts anything. Rotation judges by boot's
//! rules: a node that booted on a secrets.json the chain accepts, or under
//! `AGENT_ON_KEY_MISMATCH=warn`, takes a rotated backup key too.

use std::time::Duration;

use agent::views::Phase;
use agent_tests::harness::{Agent, AgentCommand, WAIT, backup_key, metric};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::{Key, NodeFixture};
use agent_tests::views::reason;

fn in_manager(node: &NodeFixture, moto: &Moto) {
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&node.account.secret));
    moto.create_secret("node0-MPC_P2P_PRIVATE_KEY", Value::Text(&node.p2p.secret));
    moto.create_secret("node0-MPC_SECRET_STORE_KEY", Value::Text(&node.store_key));
}

/// The backup key in Secrets Manager too, so that it can be rotated.
fn with_backup_key(node: &NodeFixture, moto: &Moto) {
    in_manager(node, moto);
    moto.create_secret(
        "node0-MPC_BACKUP_ENCRYPTION_KEY_HEX",
        Value::Text(&node.backup_key),
    );
}

/// Rotates the backup key and waits for exactly one restart of the node.
fn a_rotated_backup_key_restarts_once(moto: &Moto, agent: &Agent) {
    let before = child_pid(agent);
    moto.put_secret_value("node0-MPC_BACKUP_ENCRYPTION_KEY_HEX", &backup_key());
    agent.wait_status(WAIT, |s| {
        s.child.running.as_ref().is_some_and(|c| c.pid != before)
    });
    agent.wait_log("a rotated secret validated and matches the chain");
    let after = child_pid(agent);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(child_pid(agent), after, "restarted once, not again");
}

fn run(node: &NodeFixture, moto: &Moto) -> AgentCommand {
    node.run_without_secrets()
        .envs(moto.env())
        .env("AGENT_SECRET_ID_TEMPLATE", "node0-{name}")
        .env("AGENT_SECRET_REFRESH", "300ms")
}

/// The running node's pid; panics when `/status` shows none running.
fn child_pid(agent: &Agent) -> i32 {
    agent.child_pid().expect("the node runs")
}

/// The fetches of the secrets that ended in `outcome`, as `/metrics` counts them.
fn refreshes(metrics: &str, outcome: &str) -> f64 {
    let name = format!("agent_secret_refreshes_total{{outcome=\"{outcome}\"}}");
    metric(metrics, &name).unwrap_or(0.0)
}

#[test]
fn a_rotated_key_the_chain_accepts_restarts_the_node_once() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    in_manager(&node, &moto);
    let agent = run(&node, &moto).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let before = child_pid(&agent);

    // The operator registers a new p2p key on chain, then rotates the secret.
    let rotated = Key::random();
    node.chain_knows(&node.account.public, &rotated.public);
    moto.put_secret_value("node0-MPC_P2P_PRIVATE_KEY", &rotated.secret);
    agent.wait_until("/ready", WAIT, |r| {
        r.status == 200 && agent.child_pid().is_some_and(|pid| pid != before)
    });
    assert_eq!(
        node.secrets_json()["p2p_private_key"],
        rotated.secret,
        "secrets.json follows"
    );
    agent.wait_log("a rotated secret validated and matches the chain");
    let after = child_pid(&agent);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(child_pid(&agent), after, "restarted once, not again");
}

#[test]
fn an_unchanged_secret_never_restarts_the_node() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    in_manager(&node, &moto);
    let agent = run(&node, &moto).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let pid = child_pid(&agent);
    // A new version with the same value is not a change.
    moto.put_secret_value("node0-MPC_ACCOUNT_SK", &node.account.secret);
    // Two more fetches than now: at least one began after the new version.
    let seen = refreshes(&agent.get("/metrics").body, "unchanged");
    let metrics = agent.wait_until("/metrics", WAIT, |r| {
        refreshes(&r.body, "unchanged") >= seen + 2.0
    });
    for outcome in ["changed", "invalid", "rejected", "unused"] {
        assert_eq!(refreshes(&metrics.body, outcome), 0.0, "{}", metrics.body);
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(child_pid(&agent), pid);
}

#[test]
fn a_rotated_key_the_chain_rejects_keeps_the_node_running_and_says_why() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    in_manager(&node, &moto);
    let agent = run(&node, &moto).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let pid = child_pid(&agent);
    moto.put_secret_value("node0-MPC_ACCOUNT_SK", &Key::random().secret);
    let status = agent.wait_status(WAIT, |s| reason(&s.reasons, "rotation").is_some());
    let rotation = reason(&status.reasons, "rotation").unwrap();
    assert!(rotation.cause.contains("keeps running"), "{rotation:?}");
    assert_eq!(child_pid(&agent), pid);
    assert_eq!(agent.get("/ready").status, 200);
}

#[test]
fn a_node_running_on_a_secrets_json_the_chain_accepts_takes_a_rotated_backup_key() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    with_backup_key(&node, &moto);
    // secrets.json holds the keys the chain knows; Secrets Manager holds others.
    let (signer, p2p) = (Key::random(), Key::random());
    std::fs::write(
        node.path("secrets.json"),
        serde_json::json!({
            "p2p_private_key": p2p.secret,
            "near_signer_key": signer.secret,
            "near_responder_keys": [signer.secret],
        })
        .to_string(),
    )
    .unwrap();
    node.chain_knows(&signer.public, &p2p.public);
    let agent = run(&node, &moto).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    a_rotated_backup_key_restarts_once(&moto, &agent);
    assert_eq!(
        node.secrets_json()["near_signer_key"],
        signer.secret,
        "secrets.json stays"
    );
}

#[test]
fn a_node_started_under_warn_takes_a_rotated_backup_key() {
    let node = NodeFixture::new();
    let moto = Moto::start();
    with_backup_key(&node, &moto);
    // The chain knows another signer key: boot starts the node anyway under warn.
    node.chain_knows(&Key::random().public, &node.p2p.public);
    let agent = run(&node, &moto)
        .env("AGENT_ON_KEY_MISMATCH", "warn")
        .start();
    agent.wait_phase(WAIT, Phase::Running);
    a_rotated_backup_key_restarts_once(&moto, &agent);
}
