//! The `keys` stage against the NEAR RPC stand-in on loopback: every outcome
//! of the issue, through the real `near-jsonrpc-client` and nearcore's own
//! answer types. One test against a real RPC when `TEST_NEAR_RPC_URL` is set.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, keys_report};
use agent_tests::near_rpc::{ErrorForm, Fault, NearRpcStandin, Scenario};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::views::Checks;
use entrypoint::check::{Check, Status};
use entrypoint::clients::Clients;
use entrypoint::config::{Chain, ChainRpc};
use entrypoint::keys::{
    self, ContractFinding, EndpointResult, FailureKind, KeyReport, KeysInput, KeysVerdict,
    P2pKeyMatch, Standing, check_ids,
};
use near_crypto::{ED25519PublicKey, KeyType, PublicKey, SecretKey};
use near_primitives::types::AccountId;
use serde_json::{Value, json};

const NODE: &str = "node0.test.near";
const PEER: &str = "node1.test.near";
const CONTRACT: &str = "v1.signer.test.near";
/// The requests of one round to an endpoint, all sent at once: `status`,
/// `view_account`, the first `view_access_key_list` page, `state()`,
/// `migration_info()`, `allowed_docker_image_hashes()`,
/// `available_attestation_grants()` and `get_tee_accounts()`.
const ONE_ROUND: usize = 8;
const SIGNER_SOURCE: &str = "Secrets Manager secret mpc-node-0-MPC_ACCOUNT_SK";
const P2P_SOURCE: &str = "Secrets Manager secret mpc-node-0-MPC_P2P_PRIVATE_KEY";

/// Key 1 is the account's full-access key, key 2 the signer's function-call
/// key for the contract, key 9 the node's p2p key, key 8 the peer's.
fn key(n: u8) -> PublicKey {
    PublicKey::ED25519(ED25519PublicKey([n; 32]))
}

fn account(id: &str) -> AccountId {
    id.parse().unwrap()
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn function_call(receiver: &str, allowance: Option<&str>) -> Value {
    json!({ "FunctionCall": { "receiver_id": receiver, "method_names": [], "allowance": allowance } })
}

/// `{"participants": …, "threshold": 2}` with `(account, id, p2p key)` entries,
/// the key under `key_field` (`tls_public_key`, or `sign_pk` before 3.10).
fn parameters_with(entries: &[(&str, u32, u8)], key_field: &str) -> Value {
    let participants: Vec<Value> = entries
        .iter()
        .map(|(account, id, n)| {
            json!([account, id, { "url": format!("https://{account}:80"), key_field: key(*n).to_string() }])
        })
        .collect();
    json!({ "participants": { "next_id": entries.len(), "participants": participants }, "threshold": 2 })
}

fn parameters(entries: &[(&str, u32, u8)]) -> Value {
    parameters_with(entries, "tls_public_key")
}

fn running(parameters: Value) -> Value {
    json!({ "Running": {
        "domains": { "domains": [{ "id": 0, "protocol": "CaitSith", "reconstruction_threshold": 2, "purpose": "Sign" }], "next_domain_id": 1 },
        "keyset": { "epoch_id": 3, "domains": [] },
        "parameters": parameters,
        "parameters_votes": { "proposal_by_account": {} },
        "add_domains_votes": { "proposal_by_account": {} },
        "previously_cancelled_resharing_epoch_id": null } })
}

/// A synced testnet where the node's account holds keys 1 and 2 and the
/// contract runs with the node as participant 0 (p2p key 9).
fn scenario() -> Scenario {
    serde_json::from_value(json!({
        "chain_id": "testnet",
        "latest_block_height": 4242,
        "latest_block_time": "2025-06-01T12:00:00Z",
        "accounts": { NODE: { "keys": [
            { "public_key": key(1).to_string(), "permission": "FullAccess" },
            { "public_key": key(2).to_string(), "permission": function_call(CONTRACT, None) },
        ] } },
        "contracts": { CONTRACT: running(parameters(&[(NODE, 0, 9), (PEER, 1, 8)])) },
    }))
    .expect("the scenario's JSON shape")
}

fn input() -> KeysInput {
    KeysInput {
        chain: Chain::Testnet,
        account_id: account(NODE),
        contract_id: account(CONTRACT),
        signer_public_key: key(2),
        p2p_public_key: key(9),
        signer_key_source: SIGNER_SOURCE.to_string(),
        p2p_key_source: P2P_SOURCE.to_string(),
    }
}

fn rpc(urls: &[String]) -> ChainRpc {
    ChainRpc {
        urls: urls.to_vec(),
        timeout: Duration::from_secs(2),
    }
}

/// Runs the stage against a stand-in serving `scenario`; the stand-in is
/// returned for its request log.
async fn check(scenario: Scenario, input: KeysInput) -> (KeyReport, NearRpcStandin) {
    let standin = NearRpcStandin::start(loopback(), scenario).await.unwrap();
    let report = keys::check(&rpc(&[standin.url()]), &input, &Clients::new()).await;
    (report, standin)
}

fn find(report: &KeyReport, id: &str) -> Check {
    let check = report.checks().into_iter().find(|c| c.id == id).unwrap();
    println!("{}", check.summary());
    check
}

fn standing(report: &KeyReport) -> Standing {
    report.on_chain.as_ref().unwrap().standing.clone().unwrap()
}

/// `scenario` with a contract's failures answered in `errors`' form.
fn in_form(mut scenario: Scenario, errors: ErrorForm) -> Scenario {
    scenario.errors = errors;
    scenario
}

fn with_contract(state: Value) -> Scenario {
    let mut scenario = scenario();
    scenario.contracts.insert(account(CONTRACT), state);
    scenario
}

fn with_signer_permission(permission: Value) -> Scenario {
    let mut scenario = scenario();
    let keys = &mut scenario.accounts.get_mut(&account(NODE)).unwrap().keys;
    keys[1].permission = serde_json::from_value(permission).unwrap();
    scenario
}

/// A loopback URL with nothing listening.
fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn a_function_call_key_for_the_contract_with_no_method_list_matches() {
    // The contract has no view but `state()`: each of the others is answered
    // "no such method", in whatever form the RPC answers it.
    for errors in ErrorForm::ALL {
        let (report, _standin) = check(in_form(scenario(), errors), input()).await;

        for check in report.checks() {
            // A contract without grants: nothing to say of them.
            let expected = if check.id == check_ids::ATTESTATION_GRANT {
                Status::Skipped
            } else {
                Status::Ok
            };
            assert_eq!(check.status, expected, "{}", check.summary());
        }
        assert_eq!(report.verdict(), KeysVerdict::Match);
        let access = find(&report, check_ids::ACCESS_KEY);
        assert!(
            access.cause.contains(
                "function call for v1.signer.test.near (any method, unlimited allowance)"
            ),
            "{}",
            access.cause
        );
        let on_chain = report.on_chain.as_ref().unwrap();
        assert_eq!(on_chain.chain_id, "testnet");
        assert_eq!(on_chain.latest_block_height, 4242);
        assert_eq!(on_chain.latest_block_time, "2025-06-01T12:00:00Z");
        assert!(!on_chain.syncing);
        assert_eq!(on_chain.access_keys.len(), 2);
    }
}

#[tokio::test]
async fn a_full_access_signer_key_matches() {
    let mut input = input();
    input.signer_public_key = key(1);

    let (report, _standin) = check(scenario(), input).await;

    let access = find(&report, check_ids::ACCESS_KEY);
    assert_eq!(access.status, Status::Ok);
    assert!(access.cause.contains("full access"), "{}", access.cause);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_signer_key_missing_from_the_account_names_its_keys_and_the_fix() {
    let mut input = input();
    input.signer_public_key = key(5);

    let (report, _standin) = check(scenario(), input).await;

    let access = find(&report, check_ids::ACCESS_KEY);
    assert_eq!(access.status, Status::Fail);
    for expected in [
        key(5).to_string(),
        SIGNER_SOURCE.to_string(),
        format!("{} (full access)", key(1)),
        format!(
            "{} (function call for {CONTRACT} (any method, unlimited allowance))",
            key(2)
        ),
    ] {
        assert!(
            access.cause.contains(&expected),
            "{expected} not in {}",
            access.cause
        );
    }
    let fix = access.fix.unwrap();
    assert!(
        fix.contains(&format!(
            "put the secret key of one of [{}, {}] into {SIGNER_SOURCE}",
            key(1),
            key(2)
        )),
        "{fix}"
    );
    assert!(
        fix.contains(&format!(
            "add {} to {NODE} as a function-call key for {CONTRACT} (a full-access key is needed to add it)",
            key(5)
        )),
        "{fix}"
    );
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
}

#[tokio::test]
async fn a_function_call_key_for_another_receiver_is_a_mismatch_naming_it() {
    let scenario = with_signer_permission(function_call("v1.signer", None));

    let (report, _standin) = check(scenario, input()).await;

    let access = find(&report, check_ids::ACCESS_KEY);
    assert_eq!(access.status, Status::Fail);
    assert!(
        access
            .cause
            .contains("it may call only v1.signer, not v1.signer.test.near"),
        "{}",
        access.cause
    );
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    let facts = report.chain_facts().unwrap();
    assert!(!facts.accepts(&key(2), &key(9)).signer_key);
}

#[tokio::test]
async fn a_finite_allowance_warns_with_the_amount_left() {
    let scenario =
        with_signer_permission(function_call(CONTRACT, Some("250000000000000000000000")));

    let (report, _standin) = check(scenario, input()).await;

    let access = find(&report, check_ids::ACCESS_KEY);
    assert_eq!(access.status, Status::Warn);
    assert!(
        access.cause.contains("allowance 0.25 NEAR left"),
        "{}",
        access.cause
    );
    let fix = access.fix.unwrap();
    assert!(fix.contains("unlimited allowance"), "{fix}");
    assert!(
        fix.contains(&format!("put the secret key of one of [{}] into", key(1))),
        "only the other usable key is offered: {fix}"
    );
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn an_unknown_account_is_its_own_outcome() {
    let mut input = input();
    input.account_id = "nobody.test.near".parse().unwrap();

    let (report, standin) = check(scenario(), input).await;

    let access = find(&report, check_ids::ACCESS_KEY);
    assert_eq!(access.status, Status::Fail);
    assert_eq!(
        access.cause,
        "account nobody.test.near does not exist on testnet"
    );
    assert!(!report.on_chain.as_ref().unwrap().account_exists);
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    let asked: Vec<_> = standin
        .requests()
        .iter()
        .filter_map(|r| r.request_type().map(str::to_string))
        .collect();
    // The account and its first key page were asked in the same round; the
    // unknown account ends the reading there (no second page).
    assert_eq!(standin.requests().len(), ONE_ROUND, "{asked:?}");
    assert!(asked.contains(&"view_account".to_string()), "{asked:?}");
}

#[tokio::test]
async fn a_not_initialized_contract_warns_and_skips_the_participant() {
    let (report, _standin) = check(with_contract(json!("NotInitialized")), input()).await;

    assert_eq!(find(&report, check_ids::CONTRACT).status, Status::Warn);
    assert_eq!(
        find(&report, check_ids::PARTICIPANT).status,
        Status::Skipped
    );
    assert_eq!(standing(&report), Standing::NoParticipants);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn an_initializing_contract_finds_the_participant_under_the_generating_key() {
    let state = json!({ "Initializing": {
        "domains": { "domains": [], "next_domain_id": 1 }, "epoch_id": 0, "generated_keys": [],
        "generating_key": { "epoch_id": 0,
            "domain": { "id": 0, "protocol": "CaitSith", "reconstruction_threshold": 2, "purpose": "Sign" },
            "parameters": parameters(&[(PEER, 0, 8), (NODE, 1, 9)]),
            "instance": { "attempt_id": 0, "started_in": 10, "expires_on": 40, "completed": [0], "public_key": null },
            "next_attempt_id": 1 },
        "cancel_votes": [] } });

    let (report, _standin) = check(with_contract(state), input()).await;

    let contract = find(&report, check_ids::CONTRACT);
    assert!(
        contract
            .cause
            .contains("Initializing (2 participants, threshold 2)"),
        "{}",
        contract.cause
    );
    let participant = find(&report, check_ids::PARTICIPANT);
    assert_eq!(participant.status, Status::Ok);
    assert!(
        participant
            .cause
            .contains("participant 1 (https://node0.test.near:80) in Initializing"),
        "{}",
        participant.cause
    );
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_running_contract_finds_the_participant_with_its_id_and_url() {
    let (report, _standin) = check(scenario(), input()).await;

    let Standing::Member { entry } = standing(&report) else {
        panic!("not a member: {:?}", standing(&report))
    };
    assert_eq!(entry.id, 0);
    assert_eq!(entry.url, "https://node0.test.near:80");
    assert_eq!(entry.tls_public_key, key(9));
    let contract = find(&report, check_ids::CONTRACT);
    assert!(
        contract
            .cause
            .contains("Running (2 participants, threshold 2)"),
        "{}",
        contract.cause
    );
    assert_eq!(
        report.chain_facts().unwrap().participant_p2p_key,
        Some(key(9))
    );
}

#[tokio::test]
async fn a_resharing_contract_finds_the_participant_in_the_next_set() {
    let state = json!({ "Resharing": {
        "previous_running_state": running(parameters(&[(PEER, 1, 8), ("node2.test.near", 2, 7)]))["Running"],
        "reshared_keys": [],
        "resharing_key": { "epoch_id": 4,
            "domain": { "id": 0, "protocol": "CaitSith", "reconstruction_threshold": 2, "purpose": "Sign" },
            "parameters": parameters(&[(PEER, 1, 8), (NODE, 3, 9)]),
            "instance": null, "next_attempt_id": 0 },
        "cancellation_requests": [],
        "per_domain_thresholds": { "0": 2 } } });

    let (report, _standin) = check(with_contract(state), input()).await;

    assert!(matches!(standing(&report), Standing::Member { entry } if entry.id == 3));
    assert!(
        find(&report, check_ids::CONTRACT)
            .cause
            .contains("Resharing (from 2 participants to 2")
    );
    assert_eq!(find(&report, check_ids::PARTICIPANT).status, Status::Ok);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_participant_key_named_sign_pk_before_contract_3_10_is_accepted() {
    let state = running(parameters_with(&[(NODE, 0, 9), (PEER, 1, 8)], "sign_pk"));

    let (report, _standin) = check(with_contract(state), input()).await;

    assert_eq!(find(&report, check_ids::PARTICIPANT).status, Status::Ok);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_participant_known_by_another_p2p_key_is_a_mismatch() {
    let mut input = input();
    input.p2p_public_key = key(7);

    let (report, _standin) = check(scenario(), input).await;

    let participant = find(&report, check_ids::PARTICIPANT);
    assert_eq!(participant.status, Status::Fail);
    assert!(
        participant
            .cause
            .contains(&format!("tls_public_key {}", key(9))),
        "{}",
        participant.cause
    );
    assert!(
        participant
            .cause
            .contains(&format!("the p2p key from {P2P_SOURCE} is {}", key(7))),
        "{}",
        participant.cause
    );
    assert!(participant.fix.unwrap().contains(&format!(
        "put the secret key of {} into {P2P_SOURCE}",
        key(9)
    )));
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    let acceptance = report.chain_facts().unwrap().accepts(&key(2), &key(7));
    assert_eq!(acceptance.p2p_key, P2pKeyMatch::Differs);
}

#[tokio::test]
async fn an_account_not_yet_a_participant_warns_before_the_vote() {
    let state = running(parameters(&[(PEER, 1, 8), ("node2.test.near", 2, 7)]));

    let (report, _standin) = check(with_contract(state), input()).await;

    let participant = find(&report, check_ids::PARTICIPANT);
    assert_eq!(participant.status, Status::Warn);
    assert!(
        participant
            .cause
            .contains("participants: node1.test.near, node2.test.near"),
        "{}",
        participant.cause
    );
    assert!(participant.fix.unwrap().contains(&key(9).to_string()));
    assert_eq!(standing(&report), Standing::NotMember);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_contract_account_without_code_is_its_own_failure() {
    let mut input = input();
    input.contract_id = account(NODE);

    for errors in ErrorForm::ALL {
        let (report, _standin) = check(in_form(scenario(), errors), input.clone()).await;

        let contract = find(&report, check_ids::CONTRACT);
        assert_eq!(contract.status, Status::Fail);
        assert_eq!(
            contract.cause,
            format!("account {NODE} has no contract deployed")
        );
        assert_eq!(
            report.on_chain.as_ref().unwrap().contract,
            ContractFinding::NoCode
        );
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    }
}

#[tokio::test]
async fn a_missing_contract_account_is_its_own_failure() {
    let mut input = input();
    input.contract_id = "v2.signer.test.near".parse().unwrap();

    let (report, _standin) = check(scenario(), input).await;

    assert_eq!(
        report.on_chain.as_ref().unwrap().contract,
        ContractFinding::NoAccount
    );
    assert_eq!(find(&report, check_ids::CONTRACT).status, Status::Fail);
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
}

#[tokio::test]
async fn an_uninitialized_contract_whose_state_panics_is_a_warning() {
    let mut scenario = scenario();
    scenario.contracts.clear();
    scenario.panicking_contracts.insert(
        account(CONTRACT),
        "Calling default not allowed.".to_string(),
    );

    for errors in ErrorForm::ALL {
        let (report, _standin) = check(in_form(scenario.clone(), errors), input()).await;

        let contract = find(&report, check_ids::CONTRACT);
        assert_eq!(contract.status, Status::Warn);
        assert!(
            contract.cause.contains("deployed but not initialized"),
            "{}",
            contract.cause
        );
        assert!(matches!(
            report.on_chain.as_ref().unwrap().contract,
            ContractFinding::Uninitialized { .. }
        ));
        assert_eq!(
            find(&report, check_ids::PARTICIPANT).status,
            Status::Skipped
        );
        assert_eq!(report.verdict(), KeysVerdict::Match);
    }
}

#[tokio::test]
async fn an_rpc_on_another_chain_is_a_mismatch() {
    let mut scenario = scenario();
    scenario.chain_id = "mainnet".to_string();

    let (report, standin) = check(scenario, input()).await;

    let chain_id = find(&report, check_ids::CHAIN_ID);
    assert_eq!(chain_id.status, Status::Fail);
    assert!(
        chain_id
            .cause
            .contains(&format!("{} serves chain mainnet", standin.url())),
        "{}",
        chain_id.cause
    );
    assert!(
        chain_id.cause.contains("MPC_ENV=testnet"),
        "{}",
        chain_id.cause
    );
    assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    assert!(report.chain_facts().is_none());
    assert_eq!(
        standin.requests().len(),
        ONE_ROUND,
        "one round, sent at once, and nothing after it"
    );
}

/// Nothing asked of the chain waits for another answer: while the first
/// answers are still held back, every request of the round has arrived.
#[tokio::test]
async fn every_request_of_a_round_is_sent_before_any_answer() {
    let mut slow = scenario();
    // Long beside the moment the requests take to arrive, so that arriving
    // before any answer is no race even on a loaded machine.
    slow.fault = Fault::DelayMs(3000);
    let standin = NearRpcStandin::start(loopback(), slow).await.unwrap();
    let chain_rpc = ChainRpc {
        urls: vec![standin.url()],
        timeout: Duration::from_secs(10),
    };
    let input = input();
    let clients = Clients::new();
    let checking = keys::check(&chain_rpc, &input, &clients);
    tokio::pin!(checking);
    let mut arrived = 0;
    for _ in 0..250 {
        tokio::select! {
            _ = &mut checking => panic!("answered before the delay was over"),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        arrived = standin.requests().len();
        if arrived == ONE_ROUND {
            break;
        }
    }
    assert_eq!(arrived, ONE_ROUND, "{:?}", standin.requests());
    let report = checking.await;
    assert_eq!(report.verdict(), KeysVerdict::Match);
    assert_eq!(
        standin.requests().len(),
        ONE_ROUND,
        "no request after the round"
    );
}

/// A second round through the same clients (a hold loop's re-check, the
/// watch) goes over the connections the first left open: no new handshake.
/// Through fresh clients it opens its own.
#[tokio::test]
async fn a_second_round_reuses_the_connections_of_the_first() {
    let standin = NearRpcStandin::start(loopback(), scenario()).await.unwrap();
    let chain_rpc = rpc(&[standin.url()]);
    let clients = Clients::new();

    let first = keys::check(&chain_rpc, &input(), &clients).await;
    assert_eq!(first.verdict(), KeysVerdict::Match);
    let opened = standin.connections();
    assert!((1..=ONE_ROUND).contains(&opened), "{opened} connections");

    let again = keys::check(&chain_rpc, &input(), &clients).await;
    assert_eq!(again.verdict(), KeysVerdict::Match);
    assert_eq!(standin.requests().len(), 2 * ONE_ROUND);
    assert_eq!(
        standin.connections(),
        opened,
        "the second round connected anew"
    );

    let fresh = keys::check(&chain_rpc, &input(), &Clients::new()).await;
    assert_eq!(fresh.verdict(), KeysVerdict::Match);
    assert!(standin.connections() > opened);
}

#[tokio::test]
async fn a_localnet_takes_any_chain_id() {
    let mut scenario = scenario();
    scenario.chain_id = "mpc-localnet-7".to_string();
    let mut input = input();
    input.chain = Chain::Localnet;

    let (report, _standin) = check(scenario, input).await;

    assert_eq!(find(&report, check_ids::CHAIN_ID).status, Status::Ok);
    assert_eq!(report.verdict(), KeysVerdict::Match);
}

#[tokio::test]
async fn a_refused_rpc_is_unavailable_with_its_url_and_time() {
    let url = nothing_listening();
    let started = Instant::now();

    let report = keys::check(&rpc(std::slice::from_ref(&url)), &input(), &Clients::new()).await;

    assert!(started.elapsed() < Duration::from_secs(10));
    let EndpointResult::Failed(failure) = &report.endpoints[0].result else {
        panic!("{:?}", report.endpoints)
    };
    assert_eq!(failure.kind, FailureKind::Refused);
    assert_eq!(failure.request, "status");
    assert_eq!(failure.attempts, keys::ATTEMPTS);
    let rpc_check = find(&report, check_ids::RPC);
    assert_eq!(rpc_check.status, Status::Fail);
    assert!(
        rpc_check
            .cause
            .contains(&format!("{url} refused on status after")),
        "{}",
        rpc_check.cause
    );
    assert_eq!(report.verdict(), KeysVerdict::RpcUnavailable);
}

#[tokio::test]
async fn a_blackholed_rpc_times_out_within_the_budget() {
    let mut silent = scenario();
    silent.fault = Fault::Blackhole;
    let standin = NearRpcStandin::start(loopback(), silent).await.unwrap();
    let timeout = Duration::from_millis(300);
    let chain_rpc = ChainRpc {
        urls: vec![standin.url()],
        timeout,
    };
    let started = Instant::now();

    let report = keys::check(&chain_rpc, &input(), &Clients::new()).await;

    let elapsed = started.elapsed();
    assert!(elapsed >= timeout * keys::ATTEMPTS, "{elapsed:?}");
    assert!(
        elapsed < keys::endpoint_budget(timeout) + Duration::from_secs(2),
        "{elapsed:?}"
    );
    let EndpointResult::Failed(failure) = &report.endpoints[0].result else {
        panic!("{:?}", report.endpoints)
    };
    assert_eq!(failure.kind, FailureKind::TimedOut);
    assert_eq!(failure.detail, "no answer within 300 ms");
    // Each request of the round tried on its own; none restarts the others.
    assert_eq!(
        standin.requests().len(),
        ONE_ROUND * keys::ATTEMPTS as usize
    );
    let rpc_check = find(&report, check_ids::RPC);
    assert!(
        rpc_check.cause.contains("timed out on status"),
        "{}",
        rpc_check.cause
    );
    assert_eq!(report.verdict(), KeysVerdict::RpcUnavailable);
}

#[tokio::test]
async fn http_500_is_retried_then_reported() {
    let mut failing = scenario();
    failing.fault = Fault::Http500;

    let (report, standin) = check(failing, input()).await;

    assert_eq!(
        standin.requests().len(),
        ONE_ROUND * keys::ATTEMPTS as usize
    );
    assert_eq!(
        standin
            .requests()
            .iter()
            .filter(|r| r.method == "status")
            .count(),
        keys::ATTEMPTS as usize
    );
    let EndpointResult::Failed(failure) = &report.endpoints[0].result else {
        panic!("{:?}", report.endpoints)
    };
    assert_eq!(failure.kind, FailureKind::ServerError);
    assert_eq!(failure.attempts, keys::ATTEMPTS);
    assert_eq!(report.verdict(), KeysVerdict::RpcUnavailable);
}

#[tokio::test]
async fn the_second_url_is_used_when_the_first_fails() {
    let mut failing = scenario();
    failing.fault = Fault::Http500;
    let first = NearRpcStandin::start(loopback(), failing).await.unwrap();
    let second = NearRpcStandin::start(loopback(), scenario()).await.unwrap();

    let report = keys::check(
        &rpc(&[first.url(), second.url()]),
        &input(),
        &Clients::new(),
    )
    .await;

    assert_eq!(report.verdict(), KeysVerdict::Match);
    assert_eq!(first.requests().len(), ONE_ROUND * keys::ATTEMPTS as usize);
    let asked: Vec<_> = second
        .requests()
        .iter()
        .map(|r| r.request_type().unwrap_or(&r.method).to_string())
        .collect();
    for request in [
        "status",
        "view_account",
        "view_access_key_list",
        "call_function",
    ] {
        assert!(
            asked.contains(&request.to_string()),
            "{request} not in {asked:?}"
        );
    }
    assert_eq!(report.on_chain.as_ref().unwrap().rpc_url, second.url());
    let rpc_check = find(&report, check_ids::RPC);
    assert_eq!(rpc_check.status, Status::Warn);
    assert!(
        rpc_check
            .cause
            .contains(&format!("{} server error on status", first.url())),
        "{}",
        rpc_check.cause
    );
}

#[tokio::test]
async fn every_access_key_page_is_followed_to_the_signer_key_on_the_last() {
    let mut paged = scenario();
    paged.access_key_page_size = Some(2.try_into().unwrap());
    let keys = &mut paged.accounts.get_mut(&account(NODE)).unwrap().keys;
    for n in 3..=6 {
        let mut extra = keys[0].clone();
        extra.public_key = key(n);
        keys.push(extra);
    }
    keys[1].public_key = key(200);
    let mut input = input();
    input.signer_public_key = key(200);

    let (report, standin) = check(paged, input).await;

    assert_eq!(find(&report, check_ids::ACCESS_KEY).status, Status::Ok);
    assert_eq!(report.on_chain.as_ref().unwrap().access_keys.len(), 6);
    let pages: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| r.request_type() == Some("view_access_key_list"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[0].params.get("after_key"), None);
    // Trie order: keys 1, 3 | 4, 5 | 6, 200.
    assert_eq!(pages[2].params["after_key"], key(5).to_string());
}

#[tokio::test]
async fn chain_facts_judge_the_keys_of_an_existing_secrets_json_without_asking_again() {
    let (report, standin) = check(scenario(), input()).await;
    let asked = standin.requests().len();

    let facts = report.chain_facts().unwrap();

    assert!(facts.accepts(&key(1), &key(9)).accepted());
    let stale = facts.accepts(&key(4), &key(9));
    assert!(!stale.signer_key && !stale.accepted());
    assert_eq!(standin.requests().len(), asked);
}

/// Runs the read-only checks against a real NEAR RPC when asked to.
#[tokio::test]
async fn the_checks_run_against_a_real_rpc_when_one_is_named() {
    let vars = [
        "TEST_NEAR_RPC_URL",
        "TEST_NEAR_ACCOUNT_ID",
        "TEST_NEAR_CONTRACT_ID",
    ];
    let values: Vec<Option<String>> = vars
        .iter()
        .map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .collect();
    let [Some(url), Some(account_id), Some(contract_id)] = values.as_slice() else {
        agent_tests::skipped(format!(
            "set {} to run the key checks against a real NEAR RPC (this run has no network beyond loopback)",
            vars.join(", ")
        ));
        return;
    };
    // Fresh keys: the real chain holds neither, so the answers are read and
    // judged without any secret of a real node. Localnet takes any chain id.
    let input = KeysInput {
        chain: Chain::Localnet,
        account_id: account_id.parse().expect("TEST_NEAR_ACCOUNT_ID"),
        contract_id: contract_id.parse().expect("TEST_NEAR_CONTRACT_ID"),
        signer_public_key: SecretKey::from_random(KeyType::ED25519).public_key(),
        p2p_public_key: SecretKey::from_random(KeyType::ED25519).public_key(),
        signer_key_source: "a fresh test key".to_string(),
        p2p_key_source: "a fresh test key".to_string(),
    };
    let chain_rpc = ChainRpc {
        urls: vec![url.clone()],
        timeout: Duration::from_secs(10),
    };

    let report = keys::check(&chain_rpc, &input, &Clients::new()).await;

    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    for check in report.checks() {
        println!("{}", check.summary());
    }
    assert_ne!(report.verdict(), KeysVerdict::RpcUnavailable);
    let on_chain = report.on_chain.as_ref().unwrap();
    assert!(!on_chain.chain_id.is_empty());
    if on_chain.account_exists {
        assert_eq!(find(&report, check_ids::ACCESS_KEY).status, Status::Fail);
    }
}

/// The TEE views come in the same round: a contract with grants, an allowed
/// image and no stored attestation for this node's key.
#[tokio::test]
async fn the_contract_s_tee_views_are_read_with_its_state() {
    let hash = "c6d3a6b0c1e0f7b7d1b8c0a1f2e3d4c5b6a7980112233445566778899aabbccd";
    let mut chain = scenario();
    chain.contract_views.insert(
        account(CONTRACT),
        serde_json::from_value(json!({
            "allowed_docker_image_hashes": [{ "image_hash": hash, "expiry_timestamp_seconds": null }],
            "available_attestation_grants": { NODE: 1 },
            "get_tee_accounts": [
                { "account_id": PEER, "tls_public_key": key(8).to_string(), "account_public_key": key(8).to_string() },
            ],
        }))
        .unwrap(),
    );
    let (report, standin) = check(chain, input()).await;

    let tee = &report.on_chain.as_ref().unwrap().tee;
    assert_eq!(tee.allowed_image_hashes.read().unwrap()[0].image_hash, hash);
    assert_eq!(tee.attestation_grants.read(), Some(&1));
    assert_eq!(tee.attestation_owner(&key(8)), Some(&account(PEER)));
    let grant = find(&report, check_ids::ATTESTATION_GRANT);
    assert_eq!(grant.status, Status::Ok, "{}", grant.summary());
    assert!(
        grant.cause.contains("1 attestation-storage grant(s)"),
        "{}",
        grant.cause
    );
    assert_eq!(standin.requests().len(), ONE_ROUND);
}

#[test]
fn agent_keys_json_reads_back_whole_as_the_agents_report_of_what_the_chain_holds() {
    let node = NodeFixture::new();
    let out = AgentCommand::new(["keys", "--json"])
        .envs(node.env())
        .envs(node.secret_env())
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    let report = keys_report(&out);
    assert_eq!(
        serde_json::to_string_pretty(&report).unwrap(),
        out.stdout,
        "written again, the report read is the report printed"
    );
    assert!(report.valid);
    let chain = report.chain.as_ref().expect("the chain was asked");
    assert_eq!(chain.verdict, KeysVerdict::Match);
    assert_eq!(chain.check(check_ids::ACCESS_KEY).status, Status::Ok);
    assert!(matches!(
        chain.report.endpoints[0].result,
        EndpointResult::Answered
    ));
    let on_chain = chain.report.on_chain.as_ref().expect("the chain answered");
    assert!(
        on_chain
            .access_keys
            .iter()
            .any(|k| k.public_key.to_string() == node.account.public),
        "{on_chain:#?}"
    );
    let Some(Standing::Member { entry }) = &on_chain.standing else {
        panic!("a participant: {on_chain:#?}")
    };
    assert_eq!(entry.tls_public_key.to_string(), node.p2p.public);
}
