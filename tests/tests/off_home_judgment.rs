//! Whether the home's newest keyshare lives off the home, judged without a
//! vault from the node's own gauges: a backup service served an older epoch
//! than the node's is a `warn` on `/health` past the max-behind, with both
//! fixes; served the current epoch, it clears. And against the contract: a
//! keyset newer than the home's newest keyshare, for a participant, is a
//! warning that the node has not committed the new epoch's share, cleared
//! once it has.

use agent_tests::harness::{Agent, WAIT, metric};
use agent_tests::node_fixture::{CONTRACT, NodeFixture};
use agent_tests::standin_node::KeysetMetrics;
use agent_tests::standin_node::keyshare::{KeysetRequest, KeysetResult};
use entrypoint::check::Status;
use nix::sys::signal::Signal;
use serde_json::json;

fn served(current: i64, served: i64) -> KeysetMetrics {
    KeysetMetrics {
        current_epoch_id: Some(current),
        last_backup_served_epoch: Some(served),
        last_backup_served_timestamp_seconds: Some(1_790_000_000),
    }
}

/// `agent run` without a vault, looking every 250 ms, warning after 1 s.
fn run(node: &NodeFixture) -> Agent {
    node.run()
        .env("AGENT_KEYSHARE_VAULT_INTERVAL", "250ms")
        .env("AGENT_KEYSHARE_VAULT_MAX_BEHIND", "1s")
        .env("AGENT_CHAIN_WATCH", "1s")
        .start()
}

#[test]
fn without_a_vault_a_backup_service_behind_warns_and_one_caught_up_clears_it() {
    let node = NodeFixture::new();
    node.plant_share(&node.store_key);
    node.keyset_metrics(&served(1, 0));
    let mut agent = run(&node);

    let warned = agent.wait_health_saying(WAIT, "warn", "last served epoch 0");
    let output = warned.output.as_str();
    for named in [
        "the keyshare of epoch 1 lives only on the home",
        "no vault is configured",
        "last served epoch 0",
    ] {
        assert!(output.contains(named), "{named:?} not in {output}");
    }
    let vault = agent.status().vault.unwrap();
    assert_eq!(vault.location, None);
    assert_eq!(vault.off_home.status, Status::Warn);
    let fix = vault.off_home.fix.unwrap();
    assert!(
        fix.contains("AGENT_KEYSHARE_VAULT") && fix.contains("backup service"),
        "{fix}"
    );
    let gauges = vault.backup_service.unwrap();
    assert_eq!(
        (gauges.current_epoch_id, gauges.last_backup_served_epoch),
        (Some(1), Some(0))
    );
    // Set at each look.
    agent.wait_until("/metrics", WAIT, |r| {
        metric(&r.body, "agent_keyshare_vault_behind_seconds").is_some_and(|b| b > 1.0)
    });

    // The backup service fetched epoch 1.
    node.keyset_metrics(&served(1, 1));
    agent.wait_health(WAIT, "pass");
    let vault = agent.status().vault.unwrap();
    assert_eq!(vault.off_home.status, Status::Ok);
    assert!(
        vault
            .off_home
            .cause
            .contains("served to the node's backup service"),
        "{}",
        vault.off_home.cause
    );
    agent.wait_until("/metrics", WAIT, |r| {
        metric(&r.body, "agent_keyshare_vault_behind_seconds") == Some(0.0)
    });
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn a_contract_keyset_newer_than_the_homes_keyshare_warns_until_the_node_commits_it() {
    let node = NodeFixture::new();
    node.plant_share(&node.store_key);
    // Off the home by the backup service: only the contract's judgment speaks.
    node.keyset_metrics(&served(5, 5));
    let mut scenario = node.scenario();
    let contract: near_primitives::types::AccountId = CONTRACT.parse().unwrap();
    scenario.contracts.get_mut(&contract).unwrap()["Running"]["keyset"] = json!({
        "epoch_id": 5,
        "domains": [{"domain_id": 0, "key": {"Secp256k1": {"near_public_key": "secp256k1:4Hq"}}, "attempt": 0}],
    });
    node.chain.rpc.set_scenario(scenario);
    let mut agent = run(&node);

    let warned = agent.wait_health_saying(WAIT, "warn", "the contract's keyset has been");
    let output = warned.output.as_str();
    assert!(
        output.contains("the contract's keyset has been at epoch 5")
            && output.contains("the home's newest keyshare is epoch 1")
            && output.contains("has not committed the new epoch's share"),
        "{output}"
    );
    let watch = agent.status().watch.unwrap();
    assert!(
        watch
            .reasons
            .iter()
            .any(|r| r.kind == "watch.keyshare_epoch"),
        "{:?}",
        watch.reasons
    );

    // The resharing ends on the home.
    assert_eq!(
        node.store_keyset(&KeysetRequest::new(5, 1)),
        KeysetResult::Stored("epoch_5_with_1_domains".into())
    );
    agent.wait_health(WAIT, "pass");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}
