//! `keys.attestation_grant` through `agent run` (`/status`): on a contract
//! with attestation-storage grants (near/mpc main), a new node whose p2p key
//! the contract stores no attestation of needs a grant for its account, and
//! is told to buy one with `prepay_attestation_storage` when there is none,
//! starting all the same; a grant left, or an attestation already stored
//! under the key, is fine; an older contract has no such check to make.

use agent_tests::harness::WAIT;
use agent_tests::near_rpc::{ContractViews, ErrorForm, NodeId, Scenario};
use agent_tests::node_fixture::{ACCOUNT, CONTRACT, NodeFixture, scenario};
use agent_tests::views::Checks;
use entrypoint::check::{Check, Status};

/// The chain where the node is not (yet) a participant, and its contract
/// has `views`.
fn new_node(node: &NodeFixture, views: Option<ContractViews>) -> Scenario {
    let mut chain = scenario(&node.account.public, &node.p2p.public);
    chain.contracts.insert(
        CONTRACT.parse().unwrap(),
        serde_json::json!({ "Running": { "parameters": {
            "participants": { "next_id": 1, "participants": [] }, "threshold": 1 } } }),
    );
    if let Some(views) = views {
        chain
            .contract_views
            .insert(CONTRACT.parse().unwrap(), views);
    }
    chain
}

fn grants(available: u32, attested: Vec<NodeId>) -> ContractViews {
    ContractViews {
        available_attestation_grants: Some(
            [(ACCOUNT.parse().unwrap(), available)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
        ),
        get_tee_accounts: Some(attested),
        ..ContractViews::default()
    }
}

/// `keys.attestation_grant` of the running node's `/status`.
fn grant_check(node: &NodeFixture, chain: Scenario) -> Check {
    node.chain.rpc.set_scenario(chain);
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    agent.status().check("keys.attestation_grant").clone()
}

#[test]
fn a_new_node_without_a_grant_starts_and_is_told_to_prepay() {
    let node = NodeFixture::new();
    let check = grant_check(&node, new_node(&node, Some(grants(0, Vec::new()))));
    assert_eq!(check.status, Status::Warn, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains("a new node") && cause.contains("NoAttestationStorageGrant"),
        "{cause}"
    );
    let fix = check.fix.as_deref().unwrap();
    assert!(
        fix.contains("prepay_attestation_storage") && fix.contains(ACCOUNT),
        "{fix}"
    );
    assert_eq!(check.detail["available_attestation_grants"], 0);
}

#[test]
fn a_grant_left_or_an_attestation_stored_under_the_key_is_enough() {
    let node = NodeFixture::new();
    let granted = grant_check(&node, new_node(&node, Some(grants(1, Vec::new()))));
    assert_eq!(granted.status, Status::Ok, "{granted:?}");
    assert!(
        granted.cause.contains("1 attestation-storage grant(s)"),
        "{granted:?}"
    );

    let node = NodeFixture::new();
    let attested = vec![NodeId {
        account_id: ACCOUNT.parse().unwrap(),
        tls_public_key: node.p2p.public_key(),
        account_public_key: node.account.public_key(),
    }];
    let stored = grant_check(&node, new_node(&node, Some(grants(0, attested))));
    assert_eq!(stored.status, Status::Ok, "{stored:?}");
    assert!(stored.cause.contains("needs no grant"), "{stored:?}");
}

#[test]
fn a_contract_before_attestation_grants_has_nothing_to_check() {
    // Whatever form the RPC answers "no such method" in.
    for errors in ErrorForm::ALL {
        let node = NodeFixture::new();
        let mut chain = new_node(&node, None);
        chain.errors = errors;
        let check = grant_check(&node, chain);
        assert_eq!(check.status, Status::Skipped, "{errors:?}: {check:?}");
        assert!(
            check.cause.contains("no available_attestation_grants view"),
            "{errors:?}: {check:?}"
        );
    }
}
