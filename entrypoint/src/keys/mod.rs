//! The `keys` stage: ask NEAR RPC what the chain holds for the node's account
//! and the signer contract, and judge the node's public keys against it.
//!
//! Each URL of `AGENT_NEAR_RPC_URL` is asked in turn until one answers every
//! request: `status` (chain id, head, sync), the account and all its access
//! keys (every page), and the contract's `state()`, `migration_info()` and
//! TEE views (allowed image hashes, attestation grants, attested nodes).

mod access;
mod contract;
mod migration;
mod report;
mod rpc;
mod tee;
mod verdict;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use near_crypto::{PublicKey, PublicKeyHandle};
use near_jsonrpc_client::methods::query::{RpcQueryRequest, RpcQueryResponse};
use near_jsonrpc_client::methods::status::RpcStatusRequest;
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_primitives::types::{AccountId, BlockReference, Finality, FunctionArgs};
use near_primitives::views::QueryRequest;
use serde::{Deserialize, Serialize};

pub use access::{KeyFit, NEWER_NODE_METHODS, NODE_METHODS, describe};
pub use contract::{
    ContractState, Keyset, KeysetDomain, Participant, ParticipantSet, Standing, StateError,
};
pub use migration::{Destination, MigrationFinding};
pub(crate) use report::rfc3339;
pub use report::{
    AccessKey, AccountBalance, ContractFinding, EndpointOutcome, EndpointResult, KeyReport, OnChain,
};
pub use rpc::{ATTEMPTS, EndpointFailure, FailureKind, endpoint_budget, shown_url};
pub use tee::{AllowedImageHash, TeeAccount, TeeViews, ViewFinding};
pub use verdict::{
    Acceptance, ChainFacts, KeysVerdict, P2pKeyMatch, check_ids, migration_concluded,
};

use crate::clients::Clients;
use crate::config::{Chain, ChainRpc};
use rpc::{CallError, Endpoint, HandlerError};

/// Keys asked for per `view_access_key_list` page (nodes cap it lower).
const KEY_PAGE: u32 = 100;
/// The most access keys of the account the checks consider: an MPC node's
/// account holds a handful; more is refused rather than read without end.
pub const MAX_ACCESS_KEYS: usize = 500;
/// The most `view_access_key_list` pages read (a node may cap a page far
/// below [`KEY_PAGE`]; an endpoint whose pages never end is cut off here).
pub const MAX_KEY_PAGES: u32 = 64;

/// What the stage judges: the node's identity and its two public keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeysInput {
    /// The chain the node joins (`MPC_ENV`).
    pub chain: Chain,
    pub account_id: AccountId,
    pub contract_id: AccountId,
    pub signer_public_key: PublicKey,
    pub p2p_public_key: PublicKey,
    /// Where each key came from, for the fix texts (e.g. "Secrets Manager
    /// secret mpc-node-0-MPC_ACCOUNT_SK").
    pub signer_key_source: String,
    pub p2p_key_source: String,
}

impl KeysInput {
    /// What the stage judges for `node`, from its validated secrets.
    pub fn new(node: &crate::config::Node, secrets: &crate::secrets::NodeSecrets) -> KeysInput {
        use crate::secrets::SecretName;
        KeysInput {
            chain: node.chain,
            account_id: node.account_id.clone(),
            contract_id: node.contract_id.clone(),
            signer_public_key: secrets.account.public.clone(),
            p2p_public_key: secrets.p2p.public.clone(),
            signer_key_source: secrets.source(SecretName::AccountSk).to_string(),
            p2p_key_source: secrets.source(SecretName::P2pPrivateKey).to_string(),
        }
    }
}

/// What the stage asks the chain about: ids from the configuration, no key.
/// Nothing read depends on the secrets, so the chain can be read while they
/// are still being fetched; only the judgment needs the public keys.
#[derive(Clone, Debug)]
pub struct ChainQuery {
    pub chain: Chain,
    pub account_id: AccountId,
    pub contract_id: AccountId,
}

impl ChainQuery {
    pub fn of(node: &crate::config::Node) -> ChainQuery {
        ChainQuery {
            chain: node.chain,
            account_id: node.account_id.clone(),
            contract_id: node.contract_id.clone(),
        }
    }
}

impl From<&KeysInput> for ChainQuery {
    fn from(input: &KeysInput) -> ChainQuery {
        ChainQuery {
            chain: input.chain,
            account_id: input.account_id.clone(),
            contract_id: input.contract_id.clone(),
        }
    }
}

/// What the endpoints of `AGENT_NEAR_RPC_URL` answered, before any judgment.
#[derive(Clone, Debug)]
pub struct ChainReading {
    /// Every endpoint asked, in order.
    pub endpoints: Vec<EndpointOutcome>,
    /// From the endpoint that answered every request; `None` when none did.
    pub on_chain: Option<OnChain>,
    /// How long the reading took, every endpoint included.
    pub took: Duration,
}

impl KeyReport {
    /// The report on `input`'s keys from what the chain answered.
    pub fn new(input: KeysInput, reading: ChainReading) -> KeyReport {
        KeyReport {
            node: input,
            endpoints: reading.endpoints,
            on_chain: reading.on_chain,
        }
    }
}

/// Asks the chain and reports. Never fails: an RPC that cannot be used is
/// an outcome in the report. Takes at most `urls × endpoint_budget(timeout)`.
pub async fn check(rpc: &ChainRpc, input: &KeysInput, clients: &Clients) -> KeyReport {
    KeyReport::new(
        input.clone(),
        read(rpc, &ChainQuery::from(input), clients).await,
    )
}

/// Reads what the checks need from the first endpoint of `rpc` that answers
/// every request, in one round: every request to an endpoint is sent at once.
pub async fn read(rpc: &ChainRpc, query: &ChainQuery, clients: &Clients) -> ChainReading {
    let began = Instant::now();
    let mut endpoints = Vec::new();
    let mut on_chain = None;
    for url in &rpc.urls {
        let endpoint = Endpoint::new(url, rpc.timeout, clients.rpc());
        let started = Instant::now();
        let (result, found) = match read_chain(&endpoint, query).await {
            Ok(found) => (EndpointResult::Answered, Some(found)),
            Err(Stop::OtherChain { chain_id }) => (EndpointResult::OtherChain { chain_id }, None),
            Err(Stop::Failed(failure)) => (EndpointResult::Failed(failure), None),
        };
        endpoints.push(EndpointOutcome {
            url: endpoint.shown_url().to_string(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            result,
        });
        if found.is_some() {
            on_chain = found;
            break;
        }
    }
    ChainReading {
        endpoints,
        on_chain,
        took: began.elapsed(),
    }
}

/// The chain's head height from the first endpoint of `rpc` that answers
/// `status`, or what each one said.
pub async fn chain_head(rpc: &ChainRpc, clients: &Clients) -> Result<u64, String> {
    let mut trouble = Vec::new();
    for url in &rpc.urls {
        let endpoint = Endpoint::new(url, rpc.timeout, clients.rpc());
        match endpoint.call("status", &RpcStatusRequest).await {
            Ok(status) => return Ok(status.sync_info.latest_block_height),
            Err(err) => trouble.push(format!(
                "{}: {}",
                endpoint.shown_url(),
                failure("status", err).detail
            )),
        }
    }
    Err(trouble.join("; "))
}

/// Why one endpoint's reading stopped.
enum Stop {
    OtherChain { chain_id: String },
    Failed(EndpointFailure),
}

impl From<EndpointFailure> for Stop {
    fn from(failure: EndpointFailure) -> Self {
        Stop::Failed(failure)
    }
}

/// Everything the checks need, from one endpoint: `status`, the account and
/// its first access-key page, `state()`, `migration_info()` and the TEE
/// views all sent at once; the chain id is judged when they are back.
async fn read_chain(endpoint: &Endpoint, query: &ChainQuery) -> Result<OnChain, Stop> {
    let started = Instant::now();
    let status = async {
        let status = endpoint.call("status", &RpcStatusRequest).await;
        (status, started.elapsed().as_millis() as u64)
    };
    let ((status, latency_ms), access_keys, contract, migration, tee) = tokio::join!(
        status,
        read_access_keys(endpoint, &query.account_id),
        read_contract(endpoint, &query.contract_id),
        read_migration(endpoint, &query.contract_id, &query.account_id),
        read_tee(endpoint, &query.contract_id, &query.account_id)
    );
    let status = status.map_err(|err| failure("status", err))?;
    // The endpoint's own words: shown as a bounded excerpt.
    let chain_id = crate::excerpt::excerpt(&status.chain_id, 64);
    if !serves(query.chain, &status.chain_id) {
        return Err(Stop::OtherChain { chain_id });
    }
    let (account, access_keys) = access_keys?.unzip();
    let contract = contract?;
    let migration = migration?;
    let tee = tee?;
    let standing = match &contract {
        ContractFinding::State { state } => Some(state.standing_of(&query.account_id)),
        _ => None,
    };
    let sync = status.sync_info;
    Ok(OnChain {
        rpc_url: endpoint.shown_url().to_string(),
        latency_ms,
        chain_id,
        latest_block_height: sync.latest_block_height,
        latest_block_time: report::rfc3339(sync.latest_block_time.unix_timestamp()),
        syncing: sync.syncing,
        account_exists: access_keys.is_some(),
        account,
        access_keys: access_keys.unwrap_or_default(),
        contract,
        standing,
        migration,
        tee,
    })
}

/// Does an RPC on `chain_id` serve the chain the node joins? A localnet may
/// have any id.
fn serves(chain: Chain, chain_id: &str) -> bool {
    chain == Chain::Localnet || chain.as_str() == chain_id
}

/// The account's balance and access keys, every page; `None` when the
/// account does not exist (asked with `view_account`, since a node may list
/// no keys for an unknown account instead of refusing).
async fn read_access_keys(
    endpoint: &Endpoint,
    account_id: &AccountId,
) -> Result<Option<(AccountBalance, Vec<AccessKey>)>, EndpointFailure> {
    // The balance and the first page at once; later pages only when the
    // first is not the last.
    let account = query(QueryRequest::ViewAccount {
        account_id: account_id.clone(),
    });
    let (account, first_page) = tokio::join!(
        endpoint.call("view_account", &account),
        key_page(endpoint, account_id, None)
    );
    let balance = match account {
        Ok(RpcQueryResponse {
            kind: QueryResponseKind::ViewAccount(view),
            ..
        }) => AccountBalance {
            amount: view.amount,
            locked: view.locked,
            storage_usage: view.storage_usage,
        },
        Ok(other) => return Err(unexpected_kind("view_account", &other.kind)),
        Err(CallError::Answer(RpcQueryError::UnknownAccount { .. })) => return Ok(None),
        Err(err) => return Err(failure("view_account", err)),
    };
    let mut keys = Vec::new();
    let mut after_key = None;
    let mut next_page = Some(first_page);
    for _ in 0..MAX_KEY_PAGES {
        let page = match next_page.take() {
            Some(page) => page,
            None => key_page(endpoint, account_id, after_key.clone()).await,
        };
        let page = match page {
            Ok(RpcQueryResponse {
                kind: QueryResponseKind::AccessKeyList(page),
                ..
            }) => page,
            Ok(other) => return Err(unexpected_kind("view_access_key_list", &other.kind)),
            Err(CallError::Answer(RpcQueryError::UnknownAccount { .. })) => return Ok(None),
            Err(err) => return Err(failure("view_access_key_list", err)),
        };
        if keys.len() + page.keys.len() > MAX_ACCESS_KEYS {
            return Err(too_many_keys(format!(
                "the account lists more than {MAX_ACCESS_KEYS} access keys"
            )));
        }
        keys.extend(page.keys.into_iter().map(|info| AccessKey {
            public_key: info.public_key,
            permission: info.access_key.permission,
        }));
        match page.last_key {
            None => return Ok(Some((balance, keys))),
            Some(last) if after_key.as_ref() == Some(&last) => {
                return Err(EndpointFailure::unexpected(
                    "view_access_key_list",
                    format!("paging did not advance past {last}"),
                ));
            }
            Some(last) => after_key = Some(last),
        }
    }
    Err(too_many_keys(format!(
        "the account's access keys did not end within {MAX_KEY_PAGES} pages ({} keys read)",
        keys.len()
    )))
}

/// One `view_access_key_list` page, after `after_key`.
async fn key_page(
    endpoint: &Endpoint,
    account_id: &AccountId,
    after_key: Option<PublicKeyHandle>,
) -> Result<RpcQueryResponse, CallError<RpcQueryError>> {
    let request = query(QueryRequest::ViewAccessKeyList {
        account_id: account_id.clone(),
        after_key,
        limit: NonZeroU32::new(KEY_PAGE),
    });
    endpoint.call("view_access_key_list", &request).await
}

fn too_many_keys(what: String) -> EndpointFailure {
    EndpointFailure::unexpected(
        "view_access_key_list",
        format!(
            "{what}; the checks consider at most {MAX_ACCESS_KEYS} keys in {MAX_KEY_PAGES} pages: delete the account's unused keys, or ask another RPC"
        ),
    )
}

/// What the contract's `state()` view gives.
async fn read_contract(
    endpoint: &Endpoint,
    contract_id: &AccountId,
) -> Result<ContractFinding, EndpointFailure> {
    const REQUEST: &str = "call_function state";
    let request = query(QueryRequest::CallFunction {
        account_id: contract_id.clone(),
        method_name: "state".to_string(),
        args: FunctionArgs::from(b"{}".to_vec()),
    });
    match endpoint.call(REQUEST, &request).await {
        Ok(RpcQueryResponse {
            kind: QueryResponseKind::CallResult(call),
            ..
        }) => Ok(ContractFinding::read(&call.result)),
        Ok(other) => Err(unexpected_kind(REQUEST, &other.kind)),
        Err(CallError::Answer(answer)) => match answer {
            RpcQueryError::UnknownAccount { .. } => Ok(ContractFinding::NoAccount),
            RpcQueryError::NoContractCode { .. } => Ok(ContractFinding::NoCode),
            // Every form of the answer carries the VM's error as text: read
            // that, not the value only some forms carry.
            RpcQueryError::ContractExecutionError { vm_error, .. } => {
                Ok(ContractFinding::from_vm_error(vm_error))
            }
            other => Err(failure(REQUEST, CallError::Answer(other))),
        },
        Err(err) => Err(failure(REQUEST, err)),
    }
}

/// What the contract's `migration_info()` view says of the account, asked in
/// the same round as `state()`.
async fn read_migration(
    endpoint: &Endpoint,
    contract_id: &AccountId,
    account_id: &AccountId,
) -> Result<MigrationFinding, EndpointFailure> {
    Ok(
        match call_view(endpoint, contract_id, "migration_info", b"{}".to_vec()).await? {
            ViewAnswer::Bytes(bytes) => MigrationFinding::read(&bytes, account_id),
            ViewAnswer::NoView => MigrationFinding::NoView,
            ViewAnswer::Failed(error) => MigrationFinding::Unreadable {
                error: crate::excerpt::excerpt(&error, rpc::MAX_DETAIL_CHARS),
            },
        },
    )
}

/// The contract's TEE views, asked at once (in the round of `state()`).
async fn read_tee(
    endpoint: &Endpoint,
    contract_id: &AccountId,
    account_id: &AccountId,
) -> Result<TeeViews, EndpointFailure> {
    let account = serde_json::json!({ "account_id": account_id }).to_string();
    let (hashes, grants, accounts) = tokio::join!(
        read_view(
            endpoint,
            contract_id,
            "allowed_docker_image_hashes",
            b"{}".to_vec(),
            tee::image_hashes
        ),
        read_view(
            endpoint,
            contract_id,
            "available_attestation_grants",
            account.into_bytes(),
            tee::grants
        ),
        read_view(
            endpoint,
            contract_id,
            "get_tee_accounts",
            b"{}".to_vec(),
            tee::tee_accounts
        ),
    );
    Ok(TeeViews {
        allowed_image_hashes: hashes?,
        attestation_grants: grants?,
        tee_accounts: accounts?,
    })
}

/// One view's finding, `parse` reading its answer.
async fn read_view<T>(
    endpoint: &Endpoint,
    contract_id: &AccountId,
    method: &str,
    args: Vec<u8>,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<ViewFinding<T>, EndpointFailure> {
    Ok(
        match call_view(endpoint, contract_id, method, args).await? {
            ViewAnswer::Bytes(bytes) => ViewFinding::of(method, &bytes, parse),
            ViewAnswer::NoView => ViewFinding::NoView,
            ViewAnswer::Failed(error) => ViewFinding::failed(&error),
        },
    )
}

/// What a view of the contract beside `state()` answered.
enum ViewAnswer {
    Bytes(Vec<u8>),
    /// The contract has no such method (an older contract), or there is no
    /// contract (`keys.contract` says so).
    NoView,
    /// The view failed otherwise: the VM's error.
    Failed(String),
}

/// Calls the view `method` of `contract_id` with the JSON `args`.
async fn call_view(
    endpoint: &Endpoint,
    contract_id: &AccountId,
    method: &str,
    args: Vec<u8>,
) -> Result<ViewAnswer, EndpointFailure> {
    let label = format!("call_function {method}");
    let request = query(QueryRequest::CallFunction {
        account_id: contract_id.clone(),
        method_name: method.to_string(),
        args: FunctionArgs::from(args),
    });
    match endpoint.call(&label, &request).await {
        Ok(RpcQueryResponse {
            kind: QueryResponseKind::CallResult(call),
            ..
        }) => Ok(ViewAnswer::Bytes(call.result)),
        Ok(other) => Err(unexpected_kind(&label, &other.kind)),
        Err(CallError::Answer(answer)) => match answer {
            RpcQueryError::UnknownAccount { .. } | RpcQueryError::NoContractCode { .. } => {
                Ok(ViewAnswer::NoView)
            }
            RpcQueryError::ContractExecutionError { vm_error, .. } => Ok(view_error(vm_error)),
            other => Err(failure(&label, CallError::Answer(other))),
        },
        Err(err) => Err(failure(&label, err)),
    }
}

/// A view's failure: a method or contract that is not there is no view.
fn view_error(vm_error: String) -> ViewAnswer {
    match VmFailure::of(&vm_error) {
        VmFailure::NoCode | VmFailure::NoMethod => ViewAnswer::NoView,
        VmFailure::NotInitialized | VmFailure::Other => ViewAnswer::Failed(vm_error),
    }
}

/// What a failed view call says. Read from the VM's error text alone: every
/// form a NEAR RPC answers in carries that same text (the legacy result's
/// `error`, the structured cause's `vm_error`); only some carry more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VmFailure {
    /// No contract deployed on the account (`CodeDoesNotExist`).
    NoCode,
    /// The contract has no such method (`MethodNotFound`).
    NoMethod,
    /// The signer contract deployed but never initialized: its views panic
    /// with `Calling default not allowed.`
    NotInitialized,
    /// Another failure: a panic, a VM limit.
    Other,
}

impl VmFailure {
    fn of(vm_error: &str) -> VmFailure {
        if vm_error.contains("CodeDoesNotExist") {
            VmFailure::NoCode
        } else if vm_error.contains("MethodNotFound") {
            VmFailure::NoMethod
        } else if vm_error.contains("Calling default not allowed") {
            VmFailure::NotInitialized
        } else {
            VmFailure::Other
        }
    }
}

fn query(request: QueryRequest) -> RpcQueryRequest {
    RpcQueryRequest {
        block_reference: BlockReference::Finality(Finality::Final),
        request,
    }
}

/// A failed request; an answer that does not fit it counts as unexpected.
fn failure<E: HandlerError>(request: &str, err: CallError<E>) -> EndpointFailure {
    match err {
        CallError::Endpoint(failure) => failure,
        CallError::Answer(answer) => {
            EndpointFailure::unexpected(request, format!("answered: {answer}"))
        }
    }
}

fn unexpected_kind(request: &str, kind: &QueryResponseKind) -> EndpointFailure {
    let name = match kind {
        QueryResponseKind::ViewAccount(_) => "an account",
        QueryResponseKind::ViewCode(_) => "contract code",
        QueryResponseKind::ViewState(_) => "contract storage",
        QueryResponseKind::CallResult(_) => "a call result",
        QueryResponseKind::AccessKey(_) => "an access key",
        QueryResponseKind::AccessKeyList(_) => "an access key list",
        QueryResponseKind::GasKeyNonces(_) => "gas key nonces",
    };
    EndpointFailure::unexpected(request, format!("answered with {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_without_the_view_is_told_from_a_failing_one() {
        assert!(matches!(
            view_error(
                "wasm execution failed with error: MethodResolveError(MethodNotFound)".into()
            ),
            ViewAnswer::NoView
        ));
        assert!(matches!(
            view_error("wasm execution failed with error: CompilationError(CodeDoesNotExist { account_id: \"x\" })".into()),
            ViewAnswer::NoView
        ));
        assert!(matches!(
            view_error("Smart contract panicked: boom".into()),
            ViewAnswer::Failed(_)
        ));
    }
}
