//! The `keys` stage reads a NEAR RPC's errors alike in every form it may
//! send them: nearcore's legacy result holding `error`, and the JSON-RPC
//! error object with or without the VM's error as a value. Every view the
//! stage reads, missing from the contract or panicking, gives the same
//! checks (ids, statuses, causes, fixes, details) and the same findings.

use std::net::SocketAddr;
use std::time::Duration;

use agent_tests::near_rpc::{ContractViews, ErrorForm, NearRpcStandin, Scenario};
use agent_tests::node_fixture::{ACCOUNT, CONTRACT, scenario};
use entrypoint::check::{Check, Status};
use entrypoint::clients::Clients;
use entrypoint::config::{Chain, ChainRpc};
use entrypoint::keys::{
    self, ContractFinding, KeyReport, KeysInput, MigrationFinding, ViewFinding, check_ids,
};
use near_crypto::{ED25519PublicKey, PublicKey};
use near_primitives::types::AccountId;

/// The contract's views beside `state()`, as the stage asks for them.
const VIEWS: [&str; 4] = [
    "migration_info",
    "allowed_docker_image_hashes",
    "available_attestation_grants",
    "get_tee_accounts",
];

/// Key 2 is the node's signer key, key 9 its p2p key.
fn key(n: u8) -> PublicKey {
    PublicKey::ED25519(ED25519PublicKey([n; 32]))
}

fn account(id: &str) -> AccountId {
    id.parse().unwrap()
}

fn input() -> KeysInput {
    KeysInput {
        chain: Chain::Localnet,
        account_id: account(ACCOUNT),
        contract_id: account(CONTRACT),
        signer_public_key: key(2),
        p2p_public_key: key(9),
        signer_key_source: "environment variable MPC_ACCOUNT_SK".to_string(),
        p2p_key_source: "environment variable MPC_P2P_PRIVATE_KEY".to_string(),
    }
}

/// The node is participant 0 of a running contract that has no view but
/// `state()`.
fn chain() -> Scenario {
    scenario(&key(2).to_string(), &key(9).to_string())
}

/// Runs the stage once per form against one stand-in (one URL, so the
/// checks can be compared whole), asserts that every form gives the legacy
/// form's checks and findings, and returns the legacy form's report. The
/// RPC check is compared by status: its cause carries the round trip's time.
async fn the_same_in_every_form(chain: Scenario, input: &KeysInput) -> KeyReport {
    let standin = NearRpcStandin::start("127.0.0.1:0".parse::<SocketAddr>().unwrap(), chain)
        .await
        .unwrap();
    let rpc = ChainRpc {
        urls: vec![standin.url()],
        timeout: Duration::from_secs(2),
    };
    let clients = Clients::new();
    let mut reports = Vec::new();
    for form in ErrorForm::ALL {
        let mut chain = standin.scenario();
        chain.errors = form;
        standin.set_scenario(chain);
        reports.push((form, keys::check(&rpc, input, &clients).await));
    }
    let (_, legacy) = reports.remove(0);
    let comparable = |report: &KeyReport| -> Vec<Check> {
        report
            .checks()
            .into_iter()
            .map(|check| match check.id.as_str() {
                check_ids::RPC => Check {
                    cause: String::new(),
                    detail: serde_json::Value::Null,
                    ..check
                },
                _ => check,
            })
            .collect()
    };
    let expected = comparable(&legacy);
    for (form, report) in &reports {
        assert_eq!(comparable(report), expected, "{form:?} against legacy");
        let (Some(found), Some(legacy_found)) = (&report.on_chain, &legacy.on_chain) else {
            panic!("{form:?}: no endpoint answered: {:?}", report.endpoints);
        };
        assert_eq!(found.contract, legacy_found.contract, "{form:?}");
        assert_eq!(found.migration, legacy_found.migration, "{form:?}");
        assert_eq!(found.tee, legacy_found.tee, "{form:?}");
        assert_eq!(found.access_keys, legacy_found.access_keys, "{form:?}");
    }
    legacy
}

fn find(report: &KeyReport, id: &str) -> Check {
    let check = report.checks().into_iter().find(|c| c.id == id).unwrap();
    println!("{}", check.summary());
    check
}

fn assert_no_views(report: &KeyReport) {
    let on_chain = report.on_chain.as_ref().unwrap();
    assert_eq!(on_chain.migration, MigrationFinding::NoView);
    assert_eq!(on_chain.tee.allowed_image_hashes, ViewFinding::NoView);
    assert_eq!(on_chain.tee.attestation_grants, ViewFinding::NoView);
    assert_eq!(on_chain.tee.tee_accounts, ViewFinding::NoView);
}

#[tokio::test]
async fn views_the_contract_lacks_are_no_views_in_every_form() {
    let report = the_same_in_every_form(chain(), &input()).await;

    assert_no_views(&report);
    assert_eq!(find(&report, check_ids::RPC).status, Status::Ok);
    assert_eq!(find(&report, check_ids::PARTICIPANT).status, Status::Ok);
    assert_eq!(
        find(&report, check_ids::ATTESTATION_GRANT).status,
        Status::Skipped
    );
}

#[tokio::test]
async fn a_contract_without_a_state_view_is_a_named_view_failure_in_every_form() {
    let mut chain = chain();
    chain.contracts.clear();
    chain
        .contract_views
        .insert(account(CONTRACT), ContractViews::default());

    let report = the_same_in_every_form(chain, &input()).await;

    match &report.on_chain.as_ref().unwrap().contract {
        ContractFinding::ViewFailed { vm_error } => {
            assert!(vm_error.contains("MethodNotFound"), "{vm_error}")
        }
        other => panic!("state() without the view: {other:?}"),
    }
    assert_eq!(find(&report, check_ids::CONTRACT).status, Status::Fail);
    assert_no_views(&report);
}

#[tokio::test]
async fn an_account_without_code_has_no_contract_and_no_views_in_every_form() {
    let mut input = input();
    input.contract_id = account(ACCOUNT);

    let report = the_same_in_every_form(chain(), &input).await;

    assert_eq!(
        report.on_chain.as_ref().unwrap().contract,
        ContractFinding::NoCode
    );
    let contract = find(&report, check_ids::CONTRACT);
    assert_eq!(contract.status, Status::Fail);
    assert_eq!(
        contract.cause,
        format!("account {ACCOUNT} has no contract deployed")
    );
    assert_no_views(&report);
}

#[tokio::test]
async fn a_missing_contract_account_reads_the_same_in_every_form() {
    let mut input = input();
    input.contract_id = account("v2.signer.test.near");

    let report = the_same_in_every_form(chain(), &input).await;

    assert_eq!(
        report.on_chain.as_ref().unwrap().contract,
        ContractFinding::NoAccount
    );
    assert_no_views(&report);
}

#[tokio::test]
async fn views_that_panic_are_named_failures_in_every_form() {
    let mut chain = chain();
    let views = ContractViews {
        panics: VIEWS
            .iter()
            .map(|view| (view.to_string(), format!("{view} is broken")))
            .collect(),
        ..ContractViews::default()
    };
    chain.contract_views.insert(account(CONTRACT), views);

    let report = the_same_in_every_form(chain, &input()).await;

    let on_chain = report.on_chain.as_ref().unwrap();
    let unreadable = [
        match &on_chain.migration {
            MigrationFinding::Unreadable { error } => error.clone(),
            other => panic!("migration_info: {other:?}"),
        },
        unreadable(&on_chain.tee.allowed_image_hashes),
        unreadable(&on_chain.tee.attestation_grants),
        unreadable(&on_chain.tee.tee_accounts),
    ];
    for (view, error) in VIEWS.iter().zip(unreadable) {
        assert!(
            error.contains(&format!("Smart contract panicked: {view} is broken")),
            "{view}: {error}"
        );
    }
    assert!(matches!(on_chain.contract, ContractFinding::State { .. }));
}

fn unreadable<T: std::fmt::Debug>(finding: &ViewFinding<T>) -> String {
    match finding {
        ViewFinding::Unreadable { error } => error.clone(),
        other => panic!("a panicking view: {other:?}"),
    }
}

#[tokio::test]
async fn a_state_that_panics_reads_the_same_in_every_form() {
    for (message, uninitialized) in [
        ("Calling default not allowed.", true),
        ("the state is broken", false),
    ] {
        let mut chain = chain();
        chain.contracts.clear();
        chain
            .panicking_contracts
            .insert(account(CONTRACT), message.to_string());

        let report = the_same_in_every_form(chain, &input()).await;

        let contract = find(&report, check_ids::CONTRACT);
        match &report.on_chain.as_ref().unwrap().contract {
            ContractFinding::Uninitialized { vm_error } if uninitialized => {
                assert!(vm_error.contains(message), "{vm_error}");
                assert_eq!(contract.status, Status::Warn);
            }
            ContractFinding::ViewFailed { vm_error } if !uninitialized => {
                assert!(vm_error.contains(message), "{vm_error}");
                assert_eq!(contract.status, Status::Fail);
            }
            other => panic!("state() panicking with {message:?}: {other:?}"),
        }
        assert_no_views(&report);
    }
}

#[tokio::test]
async fn access_keys_read_the_same_in_every_form() {
    let mut missing_key = input();
    missing_key.signer_public_key = key(5);
    let report = the_same_in_every_form(chain(), &missing_key).await;
    assert_eq!(find(&report, check_ids::ACCESS_KEY).status, Status::Fail);

    let mut no_account = chain();
    no_account.accounts.clear();
    let report = the_same_in_every_form(no_account, &input()).await;
    assert!(!report.on_chain.as_ref().unwrap().account_exists);
    assert_eq!(find(&report, check_ids::ACCESS_KEY).status, Status::Fail);
}
