//! The reason a hold or an exit names is the check that failed, never one
//! that passed beside it: each of the four secrets bad in turn (a
//! placeholder, a malformed value, a value anyone can know) while the others
//! are valid, a signer key the chain does not know, a store key that does not
//! decrypt the home's share. Each is named, with its rule, on `/health`'s
//! output, `/status`'s reason and the log's line, under `AGENT_ON_KEY_MISMATCH`
//! `hold` and `exit`.

use agent::views::{Phase, Reported, Status};
use agent_tests::harness::{Agent, AgentCommand, WAIT, store_key};
use agent_tests::node_fixture::{Key, NodeFixture};
use serde_json::Value;

/// An ed25519 key whose secret half is 32 bytes of `a`: anyone can derive it.
fn derivable_key() -> String {
    near_crypto::SecretKey::from_seed(near_crypto::KeyType::ED25519, &"a".repeat(32)).to_string()
}

/// A secret's bad values, each with the words of the rule it breaks.
fn bad_values(secret: &str) -> Vec<(String, &'static str)> {
    match secret {
        "MPC_ACCOUNT_SK" | "MPC_P2P_PRIVATE_KEY" => vec![
            ("CHANGEME".into(), "placeholder"),
            (
                format!("ed25519:{}", "0a".repeat(32)),
                "is hex after ed25519:",
            ),
            (derivable_key(), "anyone can derive it"),
        ],
        "MPC_SECRET_STORE_KEY" => vec![
            ("<store key>".into(), "placeholder"),
            ("0x".to_string() + &"5".repeat(32), "starts with 0x"),
            ("A".repeat(32), "one byte repeated 16 times"),
        ],
        _ => vec![
            ("TODO".into(), "placeholder"),
            ("ab".repeat(16), "is 32 hex characters, not 64"),
            ("0".repeat(64), "one byte repeated 32 times"),
        ],
    }
}

/// `agent run` of `node` on testnet (where a value anyone can know is
/// refused) with `secret` set to `value`, under the key-mismatch policy `policy`.
fn run_with(node: &NodeFixture, secret: &str, value: &str, policy: &str) -> AgentCommand {
    node.run()
        .env("MPC_ENV", "testnet")
        .env(secret, value)
        .env("AGENT_ON_KEY_MISMATCH", policy)
}

/// The held agent's three answers name `check` and `rule`.
fn holds_naming(agent: &Agent, check: &str, rule: &str) {
    let status: Status = agent.wait_status(WAIT, |s| s.phase == Reported::Known(Phase::Holding));
    let reason = status.reason.expect("a hold has a reason");
    assert_eq!(reason.kind, check, "{}", reason.cause);
    assert!(reason.cause.contains(rule), "{check}: {}", reason.cause);
    let output = agent.get("/health").health().output;
    assert!(
        output.starts_with("holding: ") && output.contains(rule),
        "{check}: {output}"
    );
    assert!(
        !output.contains("is valid"),
        "a passing check named: {output}"
    );
    let line = agent.wait_log("holding: the node is not started until this is fixed");
    assert_eq!(line["check"], check, "{line}");
    assert!(text(&line, "cause").contains(rule), "{line}");
}

/// The agent exits 78, its last words naming `check` and `rule`.
fn exits_naming(mut agent: Agent, check: &str, rule: &str) {
    assert_eq!(agent.exit_code(), 78);
    let line = agent.wait_log("not starting the node");
    assert_eq!(line["check"], check, "{line}");
    assert!(text(&line, "cause").contains(rule), "{line}");
}

fn text<'a>(line: &'a Value, field: &str) -> &'a str {
    line[field].as_str().unwrap_or_default()
}

/// Each bad value of `secret`, the other secrets valid: held, then exited.
fn each_bad_value_of(secret: &str) {
    let node = NodeFixture::new();
    let check = format!("secrets.{secret}");
    for (value, rule) in bad_values(secret) {
        let held = run_with(&node, secret, &value, "hold").start();
        holds_naming(&held, &check, rule);
        drop(held);
        let exited = run_with(&node, secret, &value, "exit").start();
        exits_naming(exited, &check, rule);
    }
}

#[test]
fn a_bad_account_key_is_the_reason() {
    each_bad_value_of("MPC_ACCOUNT_SK");
}

#[test]
fn a_bad_p2p_key_is_the_reason_not_the_valid_account_key() {
    each_bad_value_of("MPC_P2P_PRIVATE_KEY");
}

#[test]
fn a_bad_store_key_is_the_reason_not_the_valid_account_key() {
    each_bad_value_of("MPC_SECRET_STORE_KEY");
}

#[test]
fn a_bad_backup_key_is_the_reason_not_the_valid_account_key() {
    each_bad_value_of("MPC_BACKUP_ENCRYPTION_KEY_HEX");
}

#[test]
fn a_signer_key_the_chain_does_not_know_is_the_reason() {
    let node = NodeFixture::new();
    node.chain_knows(&Key::random().public, &node.p2p.public);
    let rule = node.account.public.as_str();
    let held = node.run().start();
    holds_naming(&held, "keys.access_key", rule);
    drop(held);
    let exited = node.run().env("AGENT_ON_KEY_MISMATCH", "exit").start();
    exits_naming(exited, "keys.access_key", rule);
}

#[test]
fn a_store_key_that_does_not_decrypt_the_share_is_the_reason() {
    let node = NodeFixture::new();
    node.plant_share(&store_key());
    let rule = "does not decrypt";
    let held = node.run().start();
    holds_naming(&held, "homes.store_key", rule);
    drop(held);
    let exited = node.run().env("AGENT_ON_KEY_MISMATCH", "exit").start();
    exits_naming(exited, "homes.store_key", rule);
}
