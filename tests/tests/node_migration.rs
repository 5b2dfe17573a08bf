//! A node migration through `agent run`: the new node runs the same account
//! with new keys while the contract still lists the old node's p2p key. When
//! the contract's `migration_info` names this node's p2p key as the
//! destination, the node starts (it must, to receive the keyshares); another
//! destination key, or a contract without the view, holds as before. On a
//! contract with attestation-storage grants, a destination the account has
//! no grant for starts too, with `keys.attestation_grant` naming
//! `prepay_attestation_storage`, in `/status` and `agent doctor` alike.

use agent::views::Phase;
use agent_tests::harness::{AgentCommand, WAIT, doctor_report};
use agent_tests::near_rpc::{
    BackupServiceInfo, ContractViews, DestinationNodeInfo, ErrorForm, ParticipantInfo, Scenario,
};
use agent_tests::node_fixture::{ACCOUNT, CONTRACT, Key, NodeFixture, scenario};
use agent_tests::views::Checks;
use entrypoint::check::Status;

const NEW_URL: &str = "http://new-node.test:80";

/// The chain while `ACCOUNT` migrates: the participant entry has `old_p2p`;
/// `migration_info` (when the contract has the view) names `destination_p2p`
/// with the node's own signer key.
fn migrating(node: &NodeFixture, old_p2p: &Key, destination_p2p: Option<&Key>) -> Scenario {
    let mut chain = scenario(&node.account.public, &old_p2p.public);
    if let Some(destination) = destination_p2p {
        let views = ContractViews {
            migration_info: Some(
                [(
                    ACCOUNT.parse().unwrap(),
                    (
                        Some(BackupServiceInfo {
                            public_key: Key::random().public_key(),
                        }),
                        Some(DestinationNodeInfo {
                            signer_account_pk: node.account.public_key(),
                            destination_node_info: ParticipantInfo {
                                url: NEW_URL.to_string(),
                                tls_public_key: destination.public_key(),
                            },
                        }),
                    ),
                )]
                .into(),
            ),
            ..ContractViews::default()
        };
        chain
            .contract_views
            .insert(CONTRACT.parse().unwrap(), views);
    }
    chain
}

#[test]
fn the_migration_destination_starts_and_status_says_so() {
    let node = NodeFixture::new();
    let old = Key::random();
    node.chain
        .rpc
        .set_scenario(migrating(&node, &old, Some(&node.p2p)));
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    let check = status.check("keys.participant");
    assert_eq!(check.status, Status::Ok, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains("this node is the migration destination") && cause.contains(NEW_URL),
        "{cause}"
    );
    assert!(cause.contains(&old.public), "the old key is named: {cause}");
    assert_eq!(check.detail["migration_role"], "destination");
}

#[test]
fn another_destination_key_holds_naming_both_keys() {
    let node = NodeFixture::new();
    let (old, other) = (Key::random(), Key::random());
    node.chain
        .rpc
        .set_scenario(migrating(&node, &old, Some(&other)));
    let agent = node.run().start();
    let status = agent.wait_phase(WAIT, Phase::Holding);
    let reason = status.reason.as_ref().expect("a hold has a reason");
    assert_eq!(reason.kind, "keys.participant");
    for key in [&other.public, &node.p2p.public] {
        assert!(
            reason.cause.contains(key.as_str()),
            "{key} named: {}",
            reason.cause
        );
    }
    assert!(status.child.running.is_none(), "the node is not started");
}

#[test]
fn a_contract_without_migration_info_holds_as_before() {
    // Whatever form the RPC answers "no such method" in.
    for errors in ErrorForm::ALL {
        let node = NodeFixture::new();
        let old = Key::random();
        let mut chain = migrating(&node, &old, None);
        chain.errors = errors;
        node.chain.rpc.set_scenario(chain);
        let agent = node.run().start();
        let status = agent.wait_phase(WAIT, Phase::Holding);
        let reason = status.reason.as_ref().expect("a hold has a reason");
        assert_eq!(reason.kind, "keys.participant", "{errors:?}");
        let check = status.check("keys.participant");
        assert_eq!(
            check.detail["migration"]["finding"], "no_view",
            "{errors:?}"
        );
        let cause = &check.cause;
        assert!(cause.contains(&old.public), "{errors:?}: {cause}");
    }
}

#[test]
fn a_destination_without_an_attestation_grant_starts_and_is_told_to_prepay() {
    let node = NodeFixture::new();
    let old = Key::random();
    let mut chain = migrating(&node, &old, Some(&node.p2p));
    let views = chain
        .contract_views
        .get_mut(
            &CONTRACT
                .parse::<near_primitives::types::AccountId>()
                .unwrap(),
        )
        .unwrap();
    views.available_attestation_grants = Some(Default::default());
    views.get_tee_accounts = Some(vec![agent_tests::near_rpc::NodeId {
        account_id: ACCOUNT.parse().unwrap(),
        tls_public_key: old.public_key(),
        account_public_key: node.account.public_key(),
    }]);
    node.chain.rpc.set_scenario(chain);

    let doctor = AgentCommand::new(["doctor", "--json", "--check", "keys"])
        .envs(node.env())
        .envs(node.secret_env())
        .run();
    let report = doctor_report(&doctor);
    let by_doctor = report.check("keys.attestation_grant");

    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    let check = status.check("keys.attestation_grant");
    assert_eq!(check.status, Status::Warn, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains("the migration's destination") && cause.contains(&node.p2p.public),
        "{cause}"
    );
    assert!(
        check
            .fix
            .as_deref()
            .unwrap()
            .contains("prepay_attestation_storage"),
        "{check:?}"
    );
    assert_eq!(by_doctor.status, check.status, "{by_doctor:?}");
    assert_eq!(by_doctor.cause, check.cause);
    assert_eq!(doctor.code, 2, "warnings only: {doctor:?}");
}
