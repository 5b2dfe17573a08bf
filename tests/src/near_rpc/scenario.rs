//! The chain state the NEAR RPC stand-in answers from, as a JSON document.
//!
//! ```json
//! {
//!   "chain_id": "mpc-localnet",
//!   "latest_block_height": 1000,
//!   "latest_block_time": "2025-06-01T12:00:00Z",
//!   "syncing": false,
//!   "accounts": {
//!     "node0.test.near": { "keys": [
//!       { "public_key": "ed25519:…", "permission": "FullAccess" },
//!       { "public_key": "ed25519:…", "permission": { "FunctionCall": {
//!           "receiver_id": "v1.signer.test.near", "method_names": [], "allowance": null } } }
//!     ] }
//!   },
//!   "contracts": { "v1.signer.test.near": { "Running": { "…": "…" } } },
//!   "access_key_page_size": 100,
//!   "fault": "none"
//! }
//! ```
//!
//! `panicking_contracts` maps a contract account to the message its `state`
//! view panics with, e.g. `"Calling default not allowed."` for near/mpc's
//! contract deployed but never initialized.
//!
//! `contract_views` gives a contract the signer contract's other views, in
//! near/mpc's wire shapes ([`ContractViews`]); a view left out is one the
//! contract does not have (an older contract), answered `MethodNotFound`,
//! and a view in its `panics` panics with the message given. A contract in
//! `contract_views` and in neither `contracts` nor `panicking_contracts` has
//! no `state` view.
//!
//! An account may carry `"amount"` (yoctoNEAR decimal string, default 100
//! NEAR) and `"storage_usage"` (bytes, default 0) for `view_account`.
//!
//! `latest_block_time` is an ISO 8601 / RFC 3339 date-time, the form nearcore
//! itself writes in `status`. `permission` is nearcore's own
//! `AccessKeyPermissionView` (an allowance is a yoctoNEAR decimal string or
//! `null` for unlimited). An account exists when it is in `accounts`,
//! `contracts`, `panicking_contracts` or `contract_views`. `fault` is `"none"`, `"blackhole"`, `"http_500"`,
//! `{"delay_ms": N}`, `{"redirect_to_port": PORT}`, `{"answer_bytes": N}` or
//! `{"streamed_bytes": N}`.
//!
//! `errors` picks how a contract's failure (`CONTRACT_EXECUTION_ERROR`) and
//! an unknown access key (`UNKNOWN_ACCESS_KEY`) of `query` come back
//! ([`ErrorForm`]): `"legacy"` (the default, nearcore's `query` today),
//! `"structured"` or `"structured_text_only"`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use near_crypto::PublicKey;
use near_primitives::types::{AccountId, Balance, Nonce};
use near_primitives::views::{AccessKeyPermissionView, StatusSyncInfo};
use serde::{Deserialize, Serialize};

/// Everything the stand-in knows about the chain. Replaceable while it runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub chain_id: String,
    pub latest_block_height: u64,
    /// ISO 8601 / RFC 3339, e.g. `2025-06-01T12:00:00Z`.
    pub latest_block_time: String,
    #[serde(default)]
    pub syncing: bool,
    #[serde(default)]
    pub accounts: BTreeMap<AccountId, Account>,
    /// Contract account → the JSON value its `state` view returns.
    #[serde(default)]
    pub contracts: BTreeMap<AccountId, serde_json::Value>,
    /// Contract account → the message its `state` view panics with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub panicking_contracts: BTreeMap<AccountId, String>,
    /// Contract account → its views beside `state`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contract_views: BTreeMap<AccountId, ContractViews>,
    /// The node's cap on one `view_access_key_list` page (nearcore's
    /// `access_keys_limit`). `None`: no cap, paging only when the caller asks
    /// for a `limit`.
    #[serde(default)]
    pub access_key_page_size: Option<NonZeroU32>,
    #[serde(default)]
    pub fault: Fault,
    #[serde(default)]
    pub errors: ErrorForm,
}

/// How `query` answers a contract's failure and an unknown access key; every
/// other error of `query` is the JSON-RPC error object in all forms.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorForm {
    /// nearcore's `process_query_response`: for backward compatibility, a
    /// *result* holding the error as text in `error`.
    #[default]
    Legacy,
    /// The JSON-RPC error object nearcore's own `RpcError::from(RpcQueryError)`
    /// makes (`HANDLER_ERROR` with the `RpcQueryError` as `cause`), as RPC
    /// servers built on near-jsonrpc-primitives 0.38 send it: a contract's
    /// failure carries the VM's error as text (`vm_error`) and as a value
    /// (`error`).
    Structured,
    /// The same object as nearcore's published RPC schema and the
    /// near-jsonrpc-primitives releases before `error` describe
    /// `CONTRACT_EXECUTION_ERROR`: `vm_error`, `block_height` and
    /// `block_hash` only, as providers and proxies on those releases send it.
    StructuredTextOnly,
}

impl ErrorForm {
    /// Every form, the legacy one first.
    pub const ALL: [ErrorForm; 3] = [
        ErrorForm::Legacy,
        ErrorForm::Structured,
        ErrorForm::StructuredTextOnly,
    ];
}

/// The signer contract's views beside `state`, each `None` when the contract
/// does not have it. Shapes as near/mpc's `near-mpc-contract-interface` DTOs
/// serialize them (`types/node_migrations.rs`, `types/tee.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContractViews {
    /// `migration_info()`: account → `[backup_service_info | null, destination_node_info | null]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_info: Option<BTreeMap<AccountId, MigrationEntry>>,
    /// `allowed_docker_image_hashes()`, newest expiry first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_docker_image_hashes: Option<Vec<AllowedMpcDockerImageHash>>,
    /// `available_attestation_grants({account_id})`: accounts with grants (others have 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_attestation_grants: Option<BTreeMap<AccountId, u32>>,
    /// `get_tee_accounts()`: the nodes whose attestation the contract stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_tee_accounts: Option<Vec<NodeId>>,
    /// View → the message it panics with, whatever the fields above say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub panics: BTreeMap<String, String>,
}

/// A node whose attestation the contract stores (near/mpc's `NodeId`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeId {
    pub account_id: AccountId,
    pub tls_public_key: PublicKey,
    /// The account's key the attestation was submitted with.
    pub account_public_key: PublicKey,
}

/// One account's `migration_info()` entry: `[backup_service_info | null, destination_node_info | null]`.
pub type MigrationEntry = (Option<BackupServiceInfo>, Option<DestinationNodeInfo>);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupServiceInfo {
    pub public_key: PublicKey,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationNodeInfo {
    pub signer_account_pk: PublicKey,
    pub destination_node_info: ParticipantInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInfo {
    pub url: String,
    pub tls_public_key: PublicKey,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllowedMpcDockerImageHash {
    /// 64 hex characters (near/mpc's `NodeImageHash` serializes as bare hex).
    #[serde(deserialize_with = "image_hash")]
    pub image_hash: String,
    pub expiry_timestamp_seconds: Option<u64>,
}

fn image_hash<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match hex::decode(&text) {
        Ok(bytes) if bytes.len() == 32 => Ok(text),
        _ => Err(serde::de::Error::custom(
            "expected 32 bytes as 64 hex characters",
        )),
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    #[serde(default)]
    pub keys: Vec<Key>,
    /// `view_account`'s amount, a yoctoNEAR decimal string (default 100 NEAR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Balance>,
    /// `view_account`'s storage usage in bytes.
    #[serde(default)]
    pub storage_usage: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub public_key: PublicKey,
    pub permission: AccessKeyPermissionView,
    #[serde(default)]
    pub nonce: Nonce,
}

/// How the stand-in misbehaves on JSON-RPC requests (the control API is
/// never affected, so a fault can always be lifted).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// Accept the connection and read the request, never answer (the
    /// connection stays open until the stand-in stops).
    Blackhole,
    /// Answer HTTP 500 with no JSON-RPC body.
    #[serde(rename = "http_500")]
    Http500,
    /// Answer normally after this many milliseconds.
    DelayMs(u64),
    /// Answer `307 Temporary Redirect` to `http://127.0.0.1:PORT/`.
    RedirectToPort(u16),
    /// Answer 200 with a JSON-RPC response of this many bytes, its
    /// `Content-Length` said up front.
    AnswerBytes(u64),
    /// The same, sent chunked without a `Content-Length`.
    StreamedBytes(u64),
}

impl Scenario {
    /// A synced chain with no accounts and no contracts.
    pub fn new(chain_id: &str) -> Self {
        Scenario {
            chain_id: chain_id.to_string(),
            latest_block_height: 1000,
            latest_block_time: "2025-06-01T12:00:00Z".to_string(),
            syncing: false,
            accounts: BTreeMap::new(),
            contracts: BTreeMap::new(),
            panicking_contracts: BTreeMap::new(),
            contract_views: BTreeMap::new(),
            access_key_page_size: None,
            fault: Fault::None,
            errors: ErrorForm::Legacy,
        }
    }

    /// Rejects what cannot be served, so a bad scenario fails when loaded
    /// rather than on the first `status`.
    pub fn validate(&self) -> Result<(), String> {
        self.sync_info()
            .map(drop)
            .map_err(|err| format!("latest_block_time: {err}"))
    }

    /// Does the account exist on this chain (with or without a contract)?
    pub fn account_exists(&self, account_id: &AccountId) -> bool {
        self.accounts.contains_key(account_id)
            || self.contracts.contains_key(account_id)
            || self.panicking_contracts.contains_key(account_id)
            || self.contract_views.contains_key(account_id)
    }

    /// `sync_info` of `status`. nearcore's block time type has no constructor
    /// reachable from here, so nearcore's own deserializer builds it, which
    /// also checks the date-time format.
    pub(crate) fn sync_info(&self) -> Result<StatusSyncInfo, serde_json::Error> {
        let block_hash = super::block_hash(self.latest_block_height);
        serde_json::from_value(serde_json::json!({
            "latest_block_hash": block_hash,
            "latest_block_height": self.latest_block_height,
            "latest_state_root": near_primitives::hash::hash(block_hash.as_ref()),
            "latest_block_time": self.latest_block_time,
            "syncing": self.syncing,
            "earliest_block_hash": null,
            "earliest_block_height": null,
            "earliest_block_time": null,
            "epoch_id": null,
            "epoch_start_height": null,
        }))
    }
}
