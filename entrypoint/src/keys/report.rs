//! What the key checks found, as served on `/status` and by `--json`: the
//! node's keys and where they came from, every endpoint asked, and what the
//! chain holds. The JSON written reads back into the same types.

use std::time::{Duration, UNIX_EPOCH};

use near_crypto::PublicKeyHandle;
use near_primitives::types::Balance;
use near_primitives::views::AccessKeyPermissionView;
use serde::{Deserialize, Serialize};

use super::contract::{ContractState, Standing, StateError};
use super::migration::MigrationFinding;
use super::rpc::{EndpointFailure, MAX_DETAIL_CHARS};
use super::tee::TeeViews;
use super::{KeysInput, VmFailure};
use crate::excerpt::excerpt;

/// The `keys` stage's findings. Judged by [`KeyReport::checks`] and
/// [`KeyReport::verdict`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyReport {
    /// What was judged: the node's identity, keys and their sources.
    #[serde(flatten)]
    pub node: KeysInput,
    /// Every endpoint asked, in order.
    pub endpoints: Vec<EndpointOutcome>,
    /// What the chain holds, from the endpoint that answered every request;
    /// `None` when none did.
    pub on_chain: Option<OnChain>,
}

/// How one endpoint fared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointOutcome {
    /// Without credentials or query string.
    pub url: String,
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub result: EndpointResult,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EndpointResult {
    /// Answered every request; its answers are in [`KeyReport::on_chain`].
    Answered,
    /// Serves another chain than the node joins.
    OtherChain {
        chain_id: String,
    },
    Failed(EndpointFailure),
}

/// The chain's answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OnChain {
    pub rpc_url: String,
    /// Round trip of `status`.
    pub latency_ms: u64,
    pub chain_id: String,
    pub latest_block_height: u64,
    /// RFC 3339, UTC.
    pub latest_block_time: String,
    pub syncing: bool,
    pub account_exists: bool,
    /// The account's balance, when it exists.
    pub account: Option<AccountBalance>,
    /// Every access key of the account, in the order the node lists them.
    pub access_keys: Vec<AccessKey>,
    pub contract: ContractFinding,
    /// Where the account stands among the participants; `None` when the
    /// contract's state was not read.
    pub standing: Option<Standing>,
    /// A node migration of the account, as `migration_info()` says.
    pub migration: MigrationFinding,
    /// The contract's TEE views.
    pub tee: TeeViews,
}

/// What `view_account` says of the account's money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub amount: Balance,
    /// Staked.
    pub locked: Balance,
    /// Bytes of state the account pays storage for.
    pub storage_usage: u64,
}

impl AccountBalance {
    /// nearcore's storage price (`storage_amount_per_byte`, 10^19 yoctoNEAR
    /// on mainnet and testnet since genesis).
    pub const STORAGE_PER_BYTE: Balance = Balance::from_yoctonear(10_000_000_000_000_000_000);

    /// What the account can spend: its amount less what storage locks beyond
    /// the staked part (the wallets' "available balance").
    pub fn available(&self) -> Balance {
        let storage = Self::STORAGE_PER_BYTE.saturating_mul(u128::from(self.storage_usage));
        self.amount
            .saturating_sub(storage.saturating_sub(self.locked))
    }
}

/// One access key of the account, with nearcore's permission view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    pub public_key: PublicKeyHandle,
    pub permission: AccessKeyPermissionView,
}

/// What the contract's `state()` view gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum ContractFinding {
    State {
        state: ContractState,
    },
    /// A state name this agent does not know (a newer contract).
    UnknownState {
        name: String,
    },
    /// An answer that is not a signer contract's state.
    Unreadable {
        error: String,
    },
    /// The contract account does not exist.
    NoAccount,
    /// The account exists, with no contract deployed.
    NoCode,
    /// The signer contract deployed but never initialized: its `state()`
    /// panics with `Calling default not allowed.`
    Uninitialized {
        vm_error: String,
    },
    /// The view failed otherwise (no such method, another panic).
    ViewFailed {
        vm_error: String,
    },
}

impl ContractFinding {
    /// The finding for the bytes `state()` returned; what it quotes of
    /// them is a bounded excerpt.
    pub(super) fn read(bytes: &[u8]) -> ContractFinding {
        match ContractState::parse(bytes) {
            Ok(state) => ContractFinding::State { state },
            Err(StateError::UnknownState(name)) => ContractFinding::UnknownState {
                name: excerpt(&name, 64),
            },
            Err(err @ StateError::Malformed(_)) => ContractFinding::Unreadable {
                error: excerpt(&err.to_string(), MAX_DETAIL_CHARS),
            },
        }
    }

    /// The finding for a failed `state()` call, from the VM's error text
    /// (kept as a bounded excerpt).
    pub(super) fn from_vm_error(vm_error: String) -> ContractFinding {
        let shown = excerpt(&vm_error, MAX_DETAIL_CHARS);
        match VmFailure::of(&vm_error) {
            VmFailure::NoCode => ContractFinding::NoCode,
            VmFailure::NotInitialized => ContractFinding::Uninitialized { vm_error: shown },
            VmFailure::NoMethod | VmFailure::Other => {
                ContractFinding::ViewFailed { vm_error: shown }
            }
        }
    }
}

/// `2025-06-01T12:00:00Z` for a Unix time in seconds (times before 1970 show as 1970).
pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    let since_epoch = Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + since_epoch).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_errors_tell_missing_code_from_an_uninitialized_contract() {
        let no_code = "wasm execution failed with error: CompilationError(CodeDoesNotExist { account_id: AccountId(\"x.near\") })";
        assert_eq!(
            ContractFinding::from_vm_error(no_code.to_string()),
            ContractFinding::NoCode
        );
        let uninitialized = "wasm execution failed with error: ExecutionError(\"Smart contract panicked: Calling default not allowed.\")";
        assert!(matches!(
            ContractFinding::from_vm_error(uninitialized.to_string()),
            ContractFinding::Uninitialized { .. }
        ));
        let no_method = "wasm execution failed with error: MethodResolveError(MethodNotFound)";
        assert!(matches!(
            ContractFinding::from_vm_error(no_method.to_string()),
            ContractFinding::ViewFailed { .. }
        ));
    }

    #[test]
    fn state_answers_are_read_into_findings() {
        assert!(matches!(
            ContractFinding::read(br#""NotInitialized""#),
            ContractFinding::State {
                state: ContractState::NotInitialized
            }
        ));
        assert_eq!(
            ContractFinding::read(br#"{"Migrating": {}}"#),
            ContractFinding::UnknownState {
                name: "Migrating".to_string()
            }
        );
        assert!(matches!(
            ContractFinding::read(b"[1, 2]"),
            ContractFinding::Unreadable { .. }
        ));
    }

    #[test]
    fn the_available_balance_leaves_out_what_storage_locks() {
        let balance = AccountBalance {
            amount: Balance::from_near(2),
            locked: Balance::ZERO,
            storage_usage: 100_000,
        };
        assert_eq!(balance.available(), Balance::from_near(1));
        let staked = AccountBalance {
            locked: Balance::from_near(5),
            ..balance
        };
        assert_eq!(staked.available(), Balance::from_near(2));
    }

    #[test]
    fn block_times_are_rfc3339() {
        assert_eq!(rfc3339(1_748_779_200), "2025-06-01T12:00:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
