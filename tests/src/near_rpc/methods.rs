//! The JSON-RPC methods the stand-in serves, answered from a `Scenario` with
//! nearcore's own request, response and error types.
//!
//! Served: `status`; `query` with `view_access_key_list`, `view_access_key`,
//! `view_account` and `call_function`; `EXPERIMENTAL_view_access_key_list` and
//! `EXPERIMENTAL_call_function`. The block reference is accepted and ignored:
//! every answer is at the scenario's latest block. `query`'s errors come in
//! the scenario's [`ErrorForm`].

use std::num::NonZeroU32;

use near_crypto::{KeyType, PublicKey, PublicKeyHandle};
use near_jsonrpc_primitives::errors::{RpcError, RpcErrorKind};
use near_jsonrpc_primitives::message::Request;
use near_jsonrpc_primitives::types::call_function::{
    RpcCallFunctionError, RpcCallFunctionRequest, RpcCallFunctionResponse,
};
use near_jsonrpc_primitives::types::query::{
    QueryResponseKind, RpcQueryError, RpcQueryRequest, RpcQueryResponse,
};
use near_jsonrpc_primitives::types::view_access_key_list::{
    RpcViewAccessKeyListError, RpcViewAccessKeyListRequest, RpcViewAccessKeyListResponse,
};
use near_primitives::errors::{CompilationError, FunctionCallError, MethodResolveError};
use near_primitives::hash::{CryptoHash, hash};
use near_primitives::types::{AccountId, Balance};
use near_primitives::version::{PROTOCOL_VERSION, Version};
use near_primitives::views::{
    AccessKeyInfoView, AccessKeyList, AccessKeyView, AccountView, CallResult, QueryRequest,
    StatusResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ContractViews, ErrorForm, Scenario, block_hash};

/// The one view method a contract in the scenario has.
const STATE_METHOD: &str = "state";

/// Answers one JSON-RPC request the way nearcore's RPC server would.
pub(super) fn answer(
    scenario: &Scenario,
    uptime_sec: i64,
    request: &Request,
) -> Result<Value, RpcError> {
    let params = request.params.clone();
    match request.method.as_str() {
        "status" => serialize(&status(scenario, uptime_sec)?),
        "query" => query_response(scenario, query(scenario, parse(params)?)),
        "EXPERIMENTAL_view_access_key_list" => {
            let request: RpcViewAccessKeyListRequest = parse(params)?;
            let list = access_key_list(
                scenario,
                &request.account_id,
                request.after_key,
                request.limit,
            )
            .map_err(|err| RpcError::from(RpcViewAccessKeyListError::from(err)))?;
            serialize(&RpcViewAccessKeyListResponse {
                access_key_list: list,
                block_height: scenario.latest_block_height,
                block_hash: block_hash(scenario.latest_block_height),
            })
        }
        "EXPERIMENTAL_call_function" => {
            let request: RpcCallFunctionRequest = parse(params)?;
            let result = call_function(
                scenario,
                &request.account_id,
                &request.method_name,
                &request.args,
            )
            .map_err(|err| RpcError::from(RpcCallFunctionError::from(err)))?;
            serialize(&RpcCallFunctionResponse {
                result,
                block_height: scenario.latest_block_height,
                block_hash: block_hash(scenario.latest_block_height),
            })
        }
        other => Err(RpcError::method_not_found(other.to_string())),
    }
}

fn status(scenario: &Scenario, uptime_sec: i64) -> Result<StatusResponse, RpcError> {
    let sync_info = scenario
        .sync_info()
        .map_err(|err| RpcError::new_internal_error(None, format!("latest_block_time: {err}")))?;
    Ok(StatusResponse {
        version: Version {
            version: "stand-in".to_string(),
            build: "agent-tests".to_string(),
            commit: String::new(),
            rustc_version: String::new(),
        },
        chain_id: scenario.chain_id.clone(),
        protocol_version: PROTOCOL_VERSION,
        latest_protocol_version: PROTOCOL_VERSION,
        rpc_addr: None,
        validators: Vec::new(),
        sync_info,
        validator_account_id: None,
        validator_public_key: None,
        node_public_key: PublicKey::empty(KeyType::ED25519),
        node_key: None,
        uptime_sec,
        genesis_hash: hash(scenario.chain_id.as_bytes()),
        detailed_debug_status: None,
    })
}

fn query(
    scenario: &Scenario,
    request: RpcQueryRequest,
) -> Result<QueryResponseKind, RpcQueryError> {
    match request.request {
        QueryRequest::ViewAccessKeyList {
            account_id,
            after_key,
            limit,
        } => access_key_list(scenario, &account_id, after_key, limit)
            .map(QueryResponseKind::AccessKeyList),
        QueryRequest::ViewAccessKey {
            account_id,
            public_key,
        } => access_key(scenario, &account_id, public_key).map(QueryResponseKind::AccessKey),
        QueryRequest::ViewAccount { account_id } => {
            account(scenario, &account_id).map(QueryResponseKind::ViewAccount)
        }
        QueryRequest::CallFunction {
            account_id,
            method_name,
            args,
        } => call_function(scenario, &account_id, &method_name, &args)
            .map(QueryResponseKind::CallResult),
        other => Err(RpcQueryError::InternalError {
            error_message: format!("the NEAR RPC stand-in does not serve {other:?}"),
        }),
    }
}

/// nearcore's `process_query_response` under the scenario's [`ErrorForm`]:
/// in the legacy form two errors of `query` are, for backward
/// compatibility, a *result* carrying an `error` string (which
/// near-jsonrpc-client turns back into the typed error); in the structured
/// forms they go into the JSON-RPC error envelope like every other error.
fn query_response(
    scenario: &Scenario,
    kind: Result<QueryResponseKind, RpcQueryError>,
) -> Result<Value, RpcError> {
    let err = match kind {
        Ok(kind) => {
            return serialize(&RpcQueryResponse {
                kind,
                block_height: scenario.latest_block_height,
                block_hash: block_hash(scenario.latest_block_height),
            });
        }
        Err(err) => err,
    };
    match (scenario.errors, err) {
        (
            ErrorForm::Legacy,
            RpcQueryError::ContractExecutionError {
                vm_error,
                block_height,
                block_hash,
                ..
            },
        ) => Ok(legacy_query_error(vm_error, block_height, block_hash)),
        (
            ErrorForm::Legacy,
            RpcQueryError::UnknownAccessKey {
                public_key,
                block_height,
                block_hash,
            },
        ) => {
            let error = format!("access key {public_key} does not exist while viewing");
            Ok(legacy_query_error(error, block_height, block_hash))
        }
        (ErrorForm::StructuredTextOnly, err) => Err(text_only(RpcError::from(err))),
        (_, err) => Err(err.into()),
    }
}

fn legacy_query_error(error: String, block_height: u64, block_hash: CryptoHash) -> Value {
    json!({ "error": error, "logs": [], "block_height": block_height, "block_hash": block_hash })
}

/// `error` taken out of a `CONTRACT_EXECUTION_ERROR` cause: the cause as
/// [`ErrorForm::StructuredTextOnly`] has it. Every other error is unchanged.
fn text_only(mut error: RpcError) -> RpcError {
    if let Some(RpcErrorKind::HandlerError(cause)) = &mut error.error_struct
        && cause["name"] == "CONTRACT_EXECUTION_ERROR"
        && let Some(info) = cause["info"].as_object_mut()
    {
        info.remove("error");
    }
    error
}

/// nearcore's `TrieViewer::view_access_keys`: keys in trie order; a request
/// with `after_key` or `limit` is paginated (page = `limit` capped by the
/// node's page size, `last_key` set only when more keys remain); one with
/// neither gets every key, or `TOO_MANY_ACCESS_KEYS` above the node's cap.
fn access_key_list(
    scenario: &Scenario,
    account_id: &AccountId,
    after_key: Option<PublicKeyHandle>,
    limit: Option<NonZeroU32>,
) -> Result<AccessKeyList, RpcQueryError> {
    let mut keys = account_keys(scenario, account_id)?;
    keys.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    if let Some(after) = &after_key {
        keys.retain(|key| key.public_key > *after);
    }
    let node_cap = scenario
        .access_key_page_size
        .map_or(u32::MAX, NonZeroU32::get);
    let paginated = after_key.is_some() || limit.is_some();
    if !paginated {
        if keys.len() > node_cap as usize {
            return Err(RpcQueryError::TooManyAccessKeys {
                requested_account_id: account_id.clone(),
                limit: node_cap,
                block_height: scenario.latest_block_height,
                block_hash: block_hash(scenario.latest_block_height),
            });
        }
        return Ok(AccessKeyList {
            keys,
            last_key: None,
        });
    }
    let page = limit.map_or(node_cap, |limit| limit.get().min(node_cap)) as usize;
    let last_key = (keys.len() > page).then(|| keys[page - 1].public_key.clone());
    keys.truncate(page);
    Ok(AccessKeyList { keys, last_key })
}

fn access_key(
    scenario: &Scenario,
    account_id: &AccountId,
    public_key: PublicKey,
) -> Result<AccessKeyView, RpcQueryError> {
    let wanted = PublicKeyHandle::from(&public_key);
    account_keys(scenario, account_id)?
        .into_iter()
        .find(|key| key.public_key == wanted)
        .map(|key| key.access_key)
        .ok_or_else(|| RpcQueryError::UnknownAccessKey {
            public_key,
            block_height: scenario.latest_block_height,
            block_hash: block_hash(scenario.latest_block_height),
        })
}

fn account_keys(
    scenario: &Scenario,
    account_id: &AccountId,
) -> Result<Vec<AccessKeyInfoView>, RpcQueryError> {
    if !scenario.account_exists(account_id) {
        return Err(unknown_account(scenario, account_id));
    }
    let keys = scenario
        .accounts
        .get(account_id)
        .map(|account| account.keys.as_slice());
    Ok(keys
        .unwrap_or_default()
        .iter()
        .map(|key| {
            let view = AccessKeyView {
                nonce: key.nonce,
                permission: key.permission.clone(),
            };
            AccessKeyInfoView::new(&key.public_key, view)
        })
        .collect())
}

fn account(scenario: &Scenario, account_id: &AccountId) -> Result<AccountView, RpcQueryError> {
    if !scenario.account_exists(account_id) {
        return Err(unknown_account(scenario, account_id));
    }
    let code_hash = match (
        scenario.contracts.get(account_id),
        scenario.panicking_contracts.get(account_id),
        scenario.contract_views.get(account_id),
    ) {
        (Some(state), _, _) => hash(state.to_string().as_bytes()),
        (None, Some(message), _) => hash(message.as_bytes()),
        (None, None, Some(views)) => hash(format!("{views:?}").as_bytes()),
        (None, None, None) => CryptoHash::default(),
    };
    let held = scenario.accounts.get(account_id);
    Ok(AccountView {
        amount: held
            .and_then(|a| a.amount)
            .unwrap_or(Balance::from_near(100)),
        locked: Balance::ZERO,
        code_hash,
        storage_usage: held.map_or(0, |a| a.storage_usage),
        storage_paid_at: 0,
        global_contract_hash: None,
        global_contract_account_id: None,
        state: Default::default(),
        bootstrap_nonce: None,
    })
}

/// A view call: the contract's `state` answers the scenario's JSON, or fails
/// with the scenario's panic message the way the VM reports a guest panic;
/// its other views answer from [`ContractViews`]. A method the contract does
/// not have fails with `MethodNotFound`; an account without a contract fails
/// the way the VM does (`CodeDoesNotExist`), which nearcore reports as a
/// contract execution error, not `NO_CONTRACT_CODE` (that one belongs to
/// `view_code`).
fn call_function(
    scenario: &Scenario,
    account_id: &AccountId,
    method_name: &str,
    args: &[u8],
) -> Result<CallResult, RpcQueryError> {
    if !scenario.account_exists(account_id) {
        return Err(unknown_account(scenario, account_id));
    }
    let state = scenario.contracts.get(account_id);
    let state_panic = scenario.panicking_contracts.get(account_id);
    let views = scenario.contract_views.get(account_id);
    let answered = match method_name {
        STATE_METHOD => match (state, state_panic) {
            (Some(state), _) => Some(Ok(state.clone())),
            (None, Some(message)) => Some(Err(guest_panic(message))),
            (None, None) => None,
        },
        _ => views.and_then(|views| other_view(views, method_name, args)),
    };
    let vm_error = match answered {
        Some(Ok(result)) => {
            return Ok(CallResult {
                result: result.to_string().into_bytes(),
                logs: Vec::new(),
            });
        }
        Some(Err(vm_error)) => vm_error,
        None if state.is_some() || state_panic.is_some() || views.is_some() => {
            FunctionCallError::MethodResolveError(MethodResolveError::MethodNotFound)
        }
        None => FunctionCallError::CompilationError(CompilationError::CodeDoesNotExist {
            account_id: account_id.clone(),
        }),
    };
    Err(RpcQueryError::ContractExecutionError {
        vm_error: format!("wasm execution failed with error: {vm_error:?}"),
        error: vm_error,
        block_height: scenario.latest_block_height,
        block_hash: block_hash(scenario.latest_block_height),
    })
}

/// The VM's guest panic, as near-vm-runner words it.
fn guest_panic(message: &str) -> FunctionCallError {
    FunctionCallError::ExecutionError(format!("Smart contract panicked: {message}"))
}

/// The answer of a view beside `state` the contract has (`None`: it does not
/// have `method_name`); a view in `views.panics` panics with its message, and
/// arguments the contract cannot read make it panic as near-sdk does.
fn other_view(
    views: &ContractViews,
    method_name: &str,
    args: &[u8],
) -> Option<Result<Value, FunctionCallError>> {
    if let Some(message) = views.panics.get(method_name) {
        return Some(Err(guest_panic(message)));
    }
    let bad_input = || guest_panic("Failed to deserialize input from JSON.");
    Some(match method_name {
        "migration_info" => {
            serde_json::to_value(views.migration_info.as_ref()?).map_err(|_| bad_input())
        }
        "allowed_docker_image_hashes" => {
            serde_json::to_value(views.allowed_docker_image_hashes.as_ref()?)
                .map_err(|_| bad_input())
        }
        "get_tee_accounts" => {
            serde_json::to_value(views.get_tee_accounts.as_ref()?).map_err(|_| bad_input())
        }
        "available_attestation_grants" => {
            let grants = views.available_attestation_grants.as_ref()?;
            #[derive(serde::Deserialize)]
            struct Args {
                account_id: AccountId,
            }
            serde_json::from_slice::<Args>(args)
                .map(|a| json!(grants.get(&a.account_id).copied().unwrap_or(0)))
                .map_err(|_| bad_input())
        }
        _ => return None,
    })
}

fn unknown_account(scenario: &Scenario, account_id: &AccountId) -> RpcQueryError {
    RpcQueryError::UnknownAccount {
        requested_account_id: account_id.clone(),
        block_height: scenario.latest_block_height,
        block_hash: block_hash(scenario.latest_block_height),
    }
}

fn parse<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|err| RpcError::parse_error(err.to_string()))
}

fn serialize<T: Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|err| RpcError::serialization_error(err.to_string()))
}
