//! The `keys` stage: ask NEAR RPC what the chain holds for the node's account
//! and the signer contract, and judge the node's public keys against it.
//!
//! Each URL of `AGENT_NEAR_RPC_URL` is asked in turn until one answers every
//! request: `status` (chain id, head, sync), the account and all its access
//! keys (every page), and the contract's `state()`.

mod access;
mod contract;
mod report;
mod rpc;
mod verdict;

use std::num::NonZeroU32;
use std::time::Instant;

use near_crypto::PublicKey;
use near_jsonrpc_client::methods::query::{RpcQueryRequest, RpcQueryResponse};
use near_jsonrpc_client::methods::status::RpcStatusRequest;
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_primitives::types::{AccountId, BlockReference, Finality, FunctionArgs};
use near_primitives::views::QueryRequest;
use serde::Serialize;

pub use access::{KeyFit, NEWER_NODE_METHODS, NODE_METHODS, describe};
pub use contract::{ContractState, Participant, ParticipantSet, Standing, StateError};
pub use report::{
    AccessKey, AccountBalance, ContractFinding, EndpointOutcome, EndpointResult, KeyReport, OnChain,
};
pub use rpc::{ATTEMPTS, EndpointFailure, FailureKind, endpoint_budget, shown_url};
pub use verdict::{Acceptance, ChainFacts, KeysVerdict, P2pKeyMatch, check_ids};

use crate::config::{Chain, ChainRpc};
use rpc::{CallError, Endpoint, HandlerError};

/// Keys asked for per `view_access_key_list` page (nodes cap it lower).
const KEY_PAGE: u32 = 100;

/// What the stage judges: the node's identity and its two public keys.
#[derive(Clone, Debug, Serialize)]
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

/// Asks the chain and reports. Never fails: an RPC that cannot be used is
/// an outcome in the report. Takes at most `urls × endpoint_budget(timeout)`.
pub async fn check(rpc: &ChainRpc, input: &KeysInput) -> KeyReport {
    let mut endpoints = Vec::new();
    let mut on_chain = None;
    for url in &rpc.urls {
        let endpoint = Endpoint::new(url, rpc.timeout);
        let started = Instant::now();
        let (result, found) = match read_chain(&endpoint, input).await {
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
    KeyReport {
        node: input.clone(),
        endpoints,
        on_chain,
    }
}

/// The chain's head height from the first endpoint of `rpc` that answers
/// `status`, or what each one said.
pub async fn chain_head(rpc: &ChainRpc) -> Result<u64, String> {
    let mut trouble = Vec::new();
    for url in &rpc.urls {
        let endpoint = Endpoint::new(url, rpc.timeout);
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

/// Everything the checks need, from one endpoint.
async fn read_chain(endpoint: &Endpoint, input: &KeysInput) -> Result<OnChain, Stop> {
    let started = Instant::now();
    let status = endpoint
        .call("status", &RpcStatusRequest)
        .await
        .map_err(|err| failure("status", err))?;
    let latency_ms = started.elapsed().as_millis() as u64;
    if !serves(input.chain, &status.chain_id) {
        return Err(Stop::OtherChain {
            chain_id: status.chain_id,
        });
    }
    let (access_keys, contract) = tokio::join!(
        read_access_keys(endpoint, &input.account_id),
        read_contract(endpoint, &input.contract_id)
    );
    let (account, access_keys) = access_keys?.unzip();
    let contract = contract?;
    let standing = match &contract {
        ContractFinding::State { state } => Some(state.standing_of(&input.account_id)),
        _ => None,
    };
    let sync = status.sync_info;
    Ok(OnChain {
        rpc_url: endpoint.shown_url().to_string(),
        latency_ms,
        chain_id: status.chain_id,
        latest_block_height: sync.latest_block_height,
        latest_block_time: report::rfc3339(sync.latest_block_time.unix_timestamp()),
        syncing: sync.syncing,
        account_exists: access_keys.is_some(),
        account,
        access_keys: access_keys.unwrap_or_default(),
        contract,
        standing,
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
    let request = query(QueryRequest::ViewAccount {
        account_id: account_id.clone(),
    });
    let balance = match endpoint.call("view_account", &request).await {
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
    loop {
        let request = query(QueryRequest::ViewAccessKeyList {
            account_id: account_id.clone(),
            after_key: after_key.clone(),
            limit: NonZeroU32::new(KEY_PAGE),
        });
        let page = match endpoint.call("view_access_key_list", &request).await {
            Ok(RpcQueryResponse {
                kind: QueryResponseKind::AccessKeyList(page),
                ..
            }) => page,
            Ok(other) => return Err(unexpected_kind("view_access_key_list", &other.kind)),
            Err(CallError::Answer(RpcQueryError::UnknownAccount { .. })) => return Ok(None),
            Err(err) => return Err(failure("view_access_key_list", err)),
        };
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
            // nearcore sends the VM's error as text: match on it, not on
            // the structured field the client rebuilds from it.
            RpcQueryError::ContractExecutionError { vm_error, .. } => {
                Ok(ContractFinding::from_vm_error(vm_error))
            }
            other => Err(failure(REQUEST, CallError::Answer(other))),
        },
        Err(err) => Err(failure(REQUEST, err)),
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
