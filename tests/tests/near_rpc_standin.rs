//! The NEAR RPC stand-in, driven by the real `near-jsonrpc-client` over
//! loopback: every answer must parse into nearcore's typed views and errors.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_tests::near_rpc::{ErrorForm, Fault, NearRpcStandin, Scenario};
use near_crypto::{ED25519PublicKey, PublicKey};
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::{JsonRpcClient, methods};
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_jsonrpc_primitives::types::view_access_key_list::RpcViewAccessKeyListResponse;
use near_primitives::errors::{CompilationError, FunctionCallError};
use near_primitives::types::{AccountId, Balance, BlockReference, Finality, FunctionArgs};
use near_primitives::views::{AccessKeyList, AccessKeyPermissionView, CallResult, QueryRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const NODE: &str = "node0.test.near";
const CONTRACT: &str = "v1.signer.test.near";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn key(n: u8) -> PublicKey {
    PublicKey::ED25519(ED25519PublicKey([n; 32]))
}

fn account(id: &str) -> AccountId {
    id.parse().unwrap()
}

fn contract_state() -> Value {
    json!({ "Running": { "parameters": { "participants": { "next_id": 1, "participants": [
        [NODE, 0, { "url": "https://node0.test:80", "tls_public_key": key(9).to_string() }]
    ] }, "threshold": 1 } } })
}

/// A node account with a full-access key and a function-call key for the
/// contract, and the contract in `Running`.
fn scenario() -> Scenario {
    serde_json::from_value(json!({
        "chain_id": "mpc-localnet",
        "latest_block_height": 4242,
        "latest_block_time": "2025-06-01T12:00:00Z",
        "syncing": false,
        "accounts": { NODE: { "keys": [
            { "public_key": key(1).to_string(), "permission": "FullAccess" },
            { "public_key": key(2).to_string(), "permission": { "FunctionCall": {
                "receiver_id": CONTRACT, "method_names": [], "allowance": null } } },
            { "public_key": key(3).to_string(), "nonce": 7, "permission": { "FunctionCall": {
                "receiver_id": CONTRACT, "method_names": ["respond", "vote_pk"],
                "allowance": "250000000000000000000000" } } },
        ] } },
        "contracts": { CONTRACT: contract_state() },
    }))
    .expect("the scenario's JSON shape")
}

async fn start(scenario: Scenario) -> (NearRpcStandin, JsonRpcClient) {
    let standin = NearRpcStandin::start(loopback(), scenario).await.unwrap();
    let client = client(&standin.url());
    (standin, client)
}

/// near-jsonrpc-client to `url`; its reqwest takes the process's TLS
/// provider, which this sets as the agent does.
fn client(url: &str) -> JsonRpcClient {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    JsonRpcClient::connect(url)
}

fn key_list_request(account_id: &str) -> methods::query::RpcQueryRequest {
    paged_key_list_request(account_id, None, None)
}

fn paged_key_list_request(
    account_id: &str,
    after_key: Option<near_crypto::PublicKeyHandle>,
    limit: Option<u32>,
) -> methods::query::RpcQueryRequest {
    methods::query::RpcQueryRequest {
        block_reference: BlockReference::Finality(Finality::Final),
        request: QueryRequest::ViewAccessKeyList {
            account_id: account(account_id),
            after_key,
            limit: limit.map(|limit| limit.try_into().unwrap()),
        },
    }
}

fn state_request(contract_id: &str) -> methods::query::RpcQueryRequest {
    methods::query::RpcQueryRequest {
        block_reference: BlockReference::Finality(Finality::Final),
        request: QueryRequest::CallFunction {
            account_id: account(contract_id),
            method_name: "state".to_string(),
            args: FunctionArgs::from(b"{}".to_vec()),
        },
    }
}

async fn key_list(client: &JsonRpcClient, account_id: &str) -> AccessKeyList {
    let response = client.call(key_list_request(account_id)).await.unwrap();
    let QueryResponseKind::AccessKeyList(list) = response.kind else {
        panic!("not an access key list: {:?}", response.kind)
    };
    list
}

async fn call_state(client: &JsonRpcClient, contract_id: &str) -> CallResult {
    let response = client.call(state_request(contract_id)).await.unwrap();
    let QueryResponseKind::CallResult(result) = response.kind else {
        panic!("not a call result: {:?}", response.kind)
    };
    result
}

#[tokio::test]
async fn status_reports_chain_id_and_sync_info() {
    let (_standin, client) = start(scenario()).await;

    let status = client
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap();

    assert_eq!(status.chain_id, "mpc-localnet");
    assert_eq!(status.sync_info.latest_block_height, 4242);
    assert!(!status.sync_info.syncing);
    assert_eq!(
        status.sync_info.latest_block_time.unix_timestamp(),
        1_748_779_200
    );
}

#[tokio::test]
async fn access_key_list_round_trips_into_typed_views() {
    let (standin, client) = start(scenario()).await;

    let list = key_list(&client, NODE).await;

    assert_eq!(list.last_key, None);
    let keys: Vec<_> = list
        .keys
        .iter()
        .map(|k| (k.public_key.to_string(), k))
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].0, key(1).to_string());
    assert_eq!(
        keys[0].1.access_key.permission,
        AccessKeyPermissionView::FullAccess
    );
    assert_eq!(
        keys[1].1.access_key.permission,
        AccessKeyPermissionView::FunctionCall {
            allowance: None,
            receiver_id: CONTRACT.to_string(),
            method_names: vec![],
        }
    );
    assert_eq!(keys[2].1.access_key.nonce, 7);
    assert_eq!(
        keys[2].1.access_key.permission,
        AccessKeyPermissionView::FunctionCall {
            allowance: Some(Balance::from_millinear(250)),
            receiver_id: CONTRACT.to_string(),
            method_names: vec!["respond".to_string(), "vote_pk".to_string()],
        }
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "query");
    assert_eq!(requests[0].request_type(), Some("view_access_key_list"));
}

#[tokio::test]
async fn unknown_account_is_a_typed_handler_error() {
    let (_standin, client) = start(scenario()).await;

    for request in [
        key_list_request("nobody.test.near"),
        state_request("nobody.test.near"),
    ] {
        let err = client.call(request).await.unwrap_err();
        match err.handler_error() {
            Some(RpcQueryError::UnknownAccount {
                requested_account_id,
                block_height,
                ..
            }) => {
                assert_eq!(requested_account_id.as_str(), "nobody.test.near");
                assert_eq!(*block_height, 4242);
            }
            other => panic!("expected UnknownAccount, got {other:?} from {err:?}"),
        }
    }
}

#[tokio::test]
async fn call_function_state_returns_the_contract_json() {
    let (_standin, client) = start(scenario()).await;

    let result = call_state(&client, CONTRACT).await;

    let state: Value = serde_json::from_slice(&result.result).unwrap();
    assert_eq!(state, contract_state());
    assert!(result.logs.is_empty());
}

#[tokio::test]
async fn account_without_contract_fails_like_the_vm() {
    let (_standin, client) = start(scenario()).await;

    let err = client.call(state_request(NODE)).await.unwrap_err();

    match err.handler_error() {
        Some(RpcQueryError::ContractExecutionError { vm_error, .. }) => {
            let expected =
                FunctionCallError::CompilationError(CompilationError::CodeDoesNotExist {
                    account_id: account(NODE),
                });
            assert_eq!(
                *vm_error,
                format!("wasm execution failed with error: {expected:?}")
            );
            assert!(vm_error.contains("CodeDoesNotExist"), "{vm_error}");
        }
        other => panic!("expected ContractExecutionError, got {other:?} from {err:?}"),
    }
}

/// `query` for a view the contract lacks and for a key the account lacks,
/// as raw JSON-RPC bodies.
async fn failing_queries(addr: SocketAddr) -> [Value; 2] {
    let requests = [
        json!({ "request_type": "call_function", "finality": "final", "account_id": CONTRACT,
                "method_name": "migration_info", "args_base64": "e30=" }),
        json!({ "request_type": "view_access_key", "finality": "final", "account_id": NODE,
                "public_key": key(7).to_string() }),
    ];
    let mut answers = Vec::new();
    for params in requests {
        let body =
            json!({ "jsonrpc": "2.0", "id": "dontcare", "method": "query", "params": params });
        let (status, body) = http(addr, "POST", "/", &body.to_string()).await;
        assert_eq!(status, 200, "{body}");
        answers.push(serde_json::from_str(&body).unwrap());
    }
    answers.try_into().unwrap()
}

#[tokio::test]
async fn query_errors_come_in_the_scenario_s_form() {
    let (standin, client) = start(scenario()).await;
    let no_view = "wasm execution failed with error: MethodResolveError(MethodNotFound)";

    let [call, access_key] = failing_queries(standin.addr()).await;
    assert_eq!(call["result"]["error"], no_view, "{call}");
    let legacy_key = format!("access key {} does not exist while viewing", key(7));
    assert_eq!(
        access_key["result"]["error"],
        legacy_key.as_str(),
        "{access_key}"
    );

    for form in [ErrorForm::Structured, ErrorForm::StructuredTextOnly] {
        let mut chain = scenario();
        chain.errors = form;
        standin.set_scenario(chain);
        let [call, access_key] = failing_queries(standin.addr()).await;
        for answer in [&call, &access_key] {
            assert!(answer.get("result").is_none(), "{answer}");
            assert_eq!(answer["error"]["name"], "HANDLER_ERROR", "{answer}");
            assert_eq!(answer["error"]["code"], -32000, "{answer}");
        }
        let cause = &call["error"]["cause"];
        assert_eq!(cause["name"], "CONTRACT_EXECUTION_ERROR", "{call}");
        assert_eq!(cause["info"]["vm_error"], no_view, "{call}");
        assert_eq!(cause["info"]["block_height"], 4242, "{call}");
        let with_value = form == ErrorForm::Structured;
        assert_eq!(cause["info"].get("error").is_some(), with_value, "{call}");
        let cause = &access_key["error"]["cause"];
        assert_eq!(cause["name"], "UNKNOWN_ACCESS_KEY", "{access_key}");
        assert_eq!(
            cause["info"]["public_key"],
            key(7).to_string(),
            "{access_key}"
        );
    }

    // near-jsonrpc-client reads the legacy form and nearcore's own
    // structured one into the same typed errors.
    for form in [ErrorForm::Legacy, ErrorForm::Structured] {
        let mut chain = scenario();
        chain.errors = form;
        standin.set_scenario(chain);
        let mut request = state_request(CONTRACT);
        if let QueryRequest::CallFunction { method_name, .. } = &mut request.request {
            *method_name = "migration_info".to_string();
        }
        let err = client.call(request).await.unwrap_err();
        match err.handler_error() {
            Some(RpcQueryError::ContractExecutionError { vm_error, .. }) => {
                assert_eq!(vm_error, no_view, "{form:?}")
            }
            other => panic!("{form:?}: expected ContractExecutionError, got {other:?}"),
        }
        let request = methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::Final),
            request: QueryRequest::ViewAccessKey {
                account_id: account(NODE),
                public_key: key(7),
            },
        };
        let err = client.call(request).await.unwrap_err();
        match err.handler_error() {
            Some(RpcQueryError::UnknownAccessKey { public_key, .. }) => {
                assert_eq!(*public_key, key(7), "{form:?}")
            }
            other => panic!("{form:?}: expected UnknownAccessKey, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn set_scenario_changes_the_next_answer() {
    let (standin, client) = start(scenario()).await;
    assert_eq!(key_list(&client, NODE).await.keys.len(), 3);

    let mut next = scenario();
    next.accounts
        .get_mut(&account(NODE))
        .unwrap()
        .keys
        .truncate(1);
    next.contracts
        .insert(account(CONTRACT), json!("NotInitialized"));
    standin.set_scenario(next);

    assert_eq!(key_list(&client, NODE).await.keys.len(), 1);
    assert_eq!(
        call_state(&client, CONTRACT).await.result,
        br#""NotInitialized""#
    );
}

/// nearcore's paging: `limit` capped by the node's page size, `last_key`
/// only while keys remain, `after_key` exclusive; an unpaginated request
/// over the cap is refused.
#[tokio::test]
async fn access_key_list_pages_follow_last_key() {
    let mut paged = scenario();
    paged.access_key_page_size = Some(2.try_into().unwrap());
    let keys = &mut paged.accounts.get_mut(&account(NODE)).unwrap().keys;
    for n in [5, 4] {
        let mut extra = keys[0].clone();
        extra.public_key = key(n);
        keys.push(extra);
    }
    let (standin, client) = start(paged).await;

    let mut seen = Vec::new();
    let mut after_key = None;
    loop {
        let request = paged_key_list_request(NODE, after_key.take(), Some(10));
        let QueryResponseKind::AccessKeyList(page) = client.call(request).await.unwrap().kind
        else {
            panic!("not an access key list")
        };
        assert!(page.keys.len() <= 2, "page above the node's cap");
        seen.extend(page.keys.iter().map(|k| k.public_key.to_string()));
        match page.last_key {
            Some(last) => after_key = Some(last),
            None => break,
        }
    }

    let expected: Vec<_> = [1, 2, 3, 4, 5].map(|n| key(n).to_string()).into();
    assert_eq!(seen, expected);
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(
        standin.requests()[1].params["after_key"],
        key(2).to_string()
    );

    let err = client.call(key_list_request(NODE)).await.unwrap_err();
    assert!(
        matches!(
            err.handler_error(),
            Some(RpcQueryError::TooManyAccessKeys { limit: 2, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn experimental_view_access_key_list_is_served_too() {
    let standin = NearRpcStandin::start(loopback(), scenario()).await.unwrap();

    let (status, body) = http(
        standin.addr(),
        "POST",
        "/",
        &json!({ "jsonrpc": "2.0", "id": "1", "method": "EXPERIMENTAL_view_access_key_list",
                 "params": { "finality": "final", "account_id": NODE, "limit": 2 } })
        .to_string(),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let response: RpcViewAccessKeyListResponse =
        serde_json::from_value(reply["result"].clone()).unwrap();
    assert_eq!(response.access_key_list.keys.len(), 2);
    assert_eq!(
        response.access_key_list.last_key.unwrap().to_string(),
        key(2).to_string()
    );
}

#[tokio::test]
async fn blackhole_makes_a_short_timeout_expire() {
    let mut silent = scenario();
    silent.fault = Fault::Blackhole;
    let (standin, client) = start(silent).await;

    let outcome = tokio::time::timeout(
        Duration::from_millis(300),
        client.call(methods::status::RpcStatusRequest),
    )
    .await;

    assert!(outcome.is_err(), "answered: {outcome:?}");
    assert_eq!(standin.requests().len(), 1, "the request was received");
}

#[tokio::test]
async fn http_500_is_a_server_error() {
    let mut failing = scenario();
    failing.fault = Fault::Http500;
    let (_standin, client) = start(failing).await;

    let err = client
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            JsonRpcError::ServerError(JsonRpcServerError::InternalError { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn delay_answers_late() {
    let mut slow = scenario();
    slow.fault = Fault::DelayMs(200);
    let (_standin, client) = start(slow).await;

    let started = Instant::now();
    let status = client
        .call(methods::status::RpcStatusRequest)
        .await
        .unwrap();

    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(status.chain_id, "mpc-localnet");
}

#[test]
fn fault_has_a_plain_json_shape() {
    let shapes = [
        (json!("none"), Fault::None),
        (json!("blackhole"), Fault::Blackhole),
        (json!("http_500"), Fault::Http500),
        (json!({ "delay_ms": 250 }), Fault::DelayMs(250)),
    ];
    for (shape, fault) in shapes {
        assert_eq!(
            serde_json::from_value::<Fault>(shape.clone()).unwrap(),
            fault
        );
        assert_eq!(serde_json::to_value(fault).unwrap(), shape);
    }
    let mut bad_time = scenario();
    bad_time.latest_block_time = "yesterday".to_string();
    assert!(bad_time.validate().is_err());
}

/// The binary: first line names the URL, the control API swaps the chain
/// state live, SIGTERM stops it with status 0.
#[tokio::test]
async fn binary_serves_a_scenario_file_and_obeys_the_control_api() {
    let dir = std::env::temp_dir().join(format!("near-rpc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, serde_json::to_vec(&scenario()).unwrap()).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_near-rpc"))
        .args(["--listen", "127.0.0.1:0", "--scenario"])
        .arg(&file)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .await
        .unwrap();
    let url = first_line
        .trim()
        .strip_prefix("listening on ")
        .expect(&first_line)
        .to_string();
    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let client = client(&url);
    assert_eq!(key_list(&client, NODE).await.keys.len(), 3);

    let (status, body) = http(addr, "GET", "/control/scenario", "").await;
    assert_eq!(status, 200);
    let mut live: Scenario = serde_json::from_str(&body).unwrap();
    assert_eq!(live, scenario());
    live.accounts
        .get_mut(&account(NODE))
        .unwrap()
        .keys
        .push(agent_tests::near_rpc::Key {
            public_key: key(8),
            permission: AccessKeyPermissionView::FullAccess,
            nonce: 0,
        });
    let (status, _) = http(
        addr,
        "PUT",
        "/control/scenario",
        &serde_json::to_string(&live).unwrap(),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(key_list(&client, NODE).await.keys.len(), 4);

    let (status, body) = http(addr, "PUT", "/control/scenario", r#"{"chain_id": 1}"#).await;
    assert_eq!(status, 400, "{body}");

    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}
