//! `secrets.json` against Secrets Manager and the chain through `agent run`:
//! a stale file is replaced when the chain accepts the new keys, and no copy
//! of it (no `secrets.json.bak.*`) keeps its private keys on the home; kept when the chain accepts the file's, and `keep` / `replace` do as
//! they say; the drift is reported with public keys only.

use agent::views::Phase;
use agent_tests::harness::{WAIT, file_names};
use agent_tests::node_fixture::{Key, NodeFixture};
use agent_tests::views::Checks;
use entrypoint::check::Status;
use serde_json::json;

/// A secrets.json with other keys, as start.sh wrote it long ago.
fn stale_file(node: &NodeFixture) -> (Key, Key) {
    let (old_signer, old_p2p) = (Key::random(), Key::random());
    std::fs::write(
        node.path("secrets.json"),
        serde_json::to_string_pretty(&json!({
            "p2p_private_key": old_p2p.secret,
            "near_signer_key": old_signer.secret,
            "near_responder_keys": [old_signer.secret],
        }))
        .unwrap(),
    )
    .unwrap();
    (old_signer, old_p2p)
}

fn copies(node: &NodeFixture) -> Vec<String> {
    file_names(node.home())
        .into_iter()
        .filter(|n| n != "secrets.json" && n.contains("secrets.json"))
        .collect()
}

/// Every file under `dir` whose bytes hold `text`.
fn files_holding(dir: &std::path::Path, text: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_holding(&path, text));
        } else if kind.is_file()
            && std::fs::read(&path)
                .unwrap()
                .windows(text.len())
                .any(|w| w == text.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_stale_file_is_replaced_when_the_chain_accepts_the_new_keys() {
    let node = NodeFixture::new();
    let (old_signer, _) = stale_file(&node);
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    let secrets_json = status.check("homes.secrets.json");
    assert_eq!(secrets_json.status, Status::Warn);
    let cause = &secrets_json.cause;
    assert!(
        cause.contains("replaced it with the validated keys"),
        "{cause}"
    );
    assert!(
        cause.contains(&old_signer.public) && cause.contains(&node.account.public),
        "the drift names both public keys: {cause}"
    );
    assert!(!cause.contains(&old_signer.secret), "never a secret key");
    assert_eq!(node.secrets_json()["near_signer_key"], node.account.secret);
    assert!(copies(&node).is_empty(), "copies: {:?}", copies(&node));
    let holding = files_holding(node.home(), &old_signer.secret);
    assert!(
        holding.is_empty(),
        "the replaced key is still on the home in {holding:?}"
    );
}

#[test]
fn a_file_the_chain_accepts_is_kept_and_the_node_runs_with_it() {
    let node = NodeFixture::new();
    let (old_signer, old_p2p) = stale_file(&node);
    // The chain knows the file's keys; the secrets are the ones that are wrong.
    node.chain_knows(&old_signer.public, &old_p2p.public);
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    assert_eq!(status.check("keys.effective").status, Status::Warn);
    let kept = status.check("homes.secrets.json");
    assert!(kept.cause.contains("kept the file"), "{kept:?}");
    assert_eq!(node.secrets_json()["near_signer_key"], old_signer.secret);
    assert!(copies(&node).is_empty());
}

#[test]
fn keep_keeps_and_replace_replaces_whatever_the_chain_says() {
    let node = NodeFixture::new();
    let (old_signer, _) = stale_file(&node);
    let keep = node
        .run()
        .env("AGENT_SECRETS_JSON", "keep")
        .env("AGENT_ON_KEY_MISMATCH", "warn")
        .start();
    keep.wait_phase(WAIT, Phase::Running);
    assert_eq!(node.secrets_json()["near_signer_key"], old_signer.secret);
    drop(keep);

    node.chain_knows(&old_signer.public, &Key::random().public);
    let replace = node
        .run()
        .env("AGENT_SECRETS_JSON", "replace")
        .env("AGENT_ON_KEY_MISMATCH", "warn")
        .start();
    replace.wait_phase(WAIT, Phase::Running);
    assert_eq!(node.secrets_json()["near_signer_key"], node.account.secret);
    assert!(copies(&node).is_empty(), "copies: {:?}", copies(&node));
    assert!(files_holding(node.home(), &old_signer.secret).is_empty());
}
