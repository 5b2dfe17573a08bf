//! Judging a [`KeyReport`]: one [`Check`] per question, the overall
//! [`KeysVerdict`], and the chain's answers as [`ChainFacts`] so that another
//! key pair can be judged without asking again.

use near_crypto::{PublicKey, PublicKeyHandle};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{KeyFit, describe};
use super::contract::{ContractState, Participant, Standing};
use super::migration::MigrationFinding;
use super::report::{AccessKey, ContractFinding, EndpointResult, KeyReport, OnChain};
use super::tee::ViewFinding;
use crate::check::{Check, Status};
use crate::config::Chain;

/// The ids of the stage's checks, in the order [`KeyReport::checks`] gives them.
pub mod check_ids {
    pub const RPC: &str = "keys.rpc";
    pub const CHAIN_ID: &str = "keys.chain_id";
    pub const ACCESS_KEY: &str = "keys.access_key";
    pub const CONTRACT: &str = "keys.contract";
    pub const PARTICIPANT: &str = "keys.participant";
    pub const ATTESTATION_GRANT: &str = "keys.attestation_grant";
}
use check_ids::*;

/// The stage's answer for the policy (`AGENT_ON_KEY_MISMATCH`, `AGENT_ON_RPC_UNAVAILABLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeysVerdict {
    /// The chain accepts the node's keys (warnings aside: not yet a
    /// participant, a finite allowance, a contract not yet initialized).
    Match,
    /// The chain holds something else: the signer key is not usable for the
    /// contract, the account or the contract is missing, the contract knows
    /// the participant by another p2p key, or the RPC serves another chain.
    Mismatch,
    /// No endpoint answered every request.
    RpcUnavailable,
}

impl KeyReport {
    /// One check per question: the RPC, its chain, the signer key, the
    /// contract, the participant entry, the attestation grant.
    pub fn checks(&self) -> Vec<Check> {
        vec![
            self.rpc_check(),
            self.chain_id_check(),
            self.access_key_check(),
            self.contract_check(),
            self.participant_check(),
            self.attestation_grant_check(),
        ]
    }

    pub fn verdict(&self) -> KeysVerdict {
        let checks = self.checks();
        let failed = |id: &str| {
            checks
                .iter()
                .any(|check| check.id == id && check.status == Status::Fail)
        };
        if failed(RPC) {
            KeysVerdict::RpcUnavailable
        } else if checks.iter().any(|check| check.status == Status::Fail) {
            KeysVerdict::Mismatch
        } else {
            KeysVerdict::Match
        }
    }

    /// The chain's answers about the account and the contract, `None` when
    /// no endpoint gave them.
    pub fn chain_facts(&self) -> Option<ChainFacts> {
        let on_chain = self.on_chain.as_ref()?;
        Some(ChainFacts {
            access_keys: on_chain
                .access_keys
                .iter()
                .filter(|key| KeyFit::of(&key.permission, &self.node.contract_id).usable())
                .map(|key| key.public_key.clone())
                .collect(),
            // While the account migrates, the key the contract lists once
            // the migration concludes: the destination's.
            participant_p2p_key: match (&on_chain.standing, on_chain.migration.destination()) {
                (Some(Standing::Member { .. } | Standing::Leaving { .. }), Some(destination)) => {
                    Some(destination.tls_public_key.clone())
                }
                (Some(Standing::Member { entry } | Standing::Leaving { entry }), None) => {
                    Some(entry.tls_public_key.clone())
                }
                _ => None,
            },
        })
    }

    fn rpc_check(&self) -> Check {
        let trouble: Vec<String> = self
            .endpoints
            .iter()
            .filter_map(|endpoint| match &endpoint.result {
                EndpointResult::Answered => None,
                EndpointResult::OtherChain { chain_id } => Some(format!(
                    "{} serves chain {chain_id} ({} ms)",
                    endpoint.url, endpoint.elapsed_ms
                )),
                EndpointResult::Failed(failure) => Some(format!(
                    "{} {} on {} after {} ms and {} tries: {}",
                    endpoint.url,
                    failure.kind.as_str(),
                    failure.request,
                    endpoint.elapsed_ms,
                    failure.attempts,
                    failure.detail
                )),
            })
            .collect();
        let detail = json!({ "endpoints": self.endpoints });
        let answered_at_all = self
            .endpoints
            .iter()
            .any(|e| !matches!(e.result, EndpointResult::Failed(_)));
        if self.endpoints.is_empty() {
            return Check::fail(RPC, "no NEAR RPC URL to ask", "set AGENT_NEAR_RPC_URL");
        }
        if !answered_at_all {
            return Check::fail(
                RPC,
                format!("no NEAR RPC could be used: {}", trouble.join("; ")),
                "check AGENT_NEAR_RPC_URL, and that the task can reach it (security group egress, NAT, DNS); a slow RPC needs a longer AGENT_RPC_TIMEOUT",
            )
            .with_detail(detail);
        }
        let Some(on_chain) = &self.on_chain else {
            // Only endpoints on other chains answered: keys.chain_id says so.
            return Check::warn(
                RPC,
                format!(
                    "no NEAR RPC serves {}: {}",
                    self.node.chain.as_str(),
                    trouble.join("; ")
                ),
                "see keys.chain_id",
            )
            .with_detail(detail);
        };
        let mut cause = format!(
            "{} answered in {} ms: block {} at {}",
            on_chain.rpc_url,
            on_chain.latency_ms,
            on_chain.latest_block_height,
            on_chain.latest_block_time
        );
        let mut fixes = Vec::new();
        if on_chain.syncing {
            cause.push_str("; it is still syncing, so its answers may be old");
            fixes.push("point AGENT_NEAR_RPC_URL at a synced RPC node");
        }
        if !trouble.is_empty() {
            cause.push_str(&format!("; before it, {}", trouble.join("; ")));
            fixes.push("fix or remove the failing URLs in AGENT_NEAR_RPC_URL");
        }
        if fixes.is_empty() {
            Check::ok(RPC, cause).with_detail(detail)
        } else {
            Check::warn(RPC, cause, fixes.join("; ")).with_detail(detail)
        }
    }

    fn chain_id_check(&self) -> Check {
        let env = self.node.chain.as_str();
        if let Some(on_chain) = &self.on_chain {
            let detail = json!({ "chain_id": on_chain.chain_id, "mpc_env": env });
            let cause = if self.node.chain == Chain::Localnet {
                format!(
                    "{} serves chain {}; MPC_ENV={env} takes any chain id",
                    on_chain.rpc_url, on_chain.chain_id
                )
            } else {
                format!(
                    "{} serves chain {}, as MPC_ENV={env} wants",
                    on_chain.rpc_url, on_chain.chain_id
                )
            };
            return Check::ok(CHAIN_ID, cause).with_detail(detail);
        }
        let others: Vec<String> = self
            .endpoints
            .iter()
            .filter_map(|endpoint| match &endpoint.result {
                EndpointResult::OtherChain { chain_id } => {
                    Some(format!("{} serves chain {chain_id}", endpoint.url))
                }
                _ => None,
            })
            .collect();
        if others.is_empty() {
            return not_checked(CHAIN_ID);
        }
        let example = match self.node.chain.public_rpc_url() {
            Some(url) => format!(" (e.g. {url})"),
            None => String::new(),
        };
        Check::fail(
            CHAIN_ID,
            format!("{}; MPC_ENV={env} wants chain {env}", others.join("; ")),
            format!("point AGENT_NEAR_RPC_URL at a {env} RPC{example}, or correct MPC_ENV"),
        )
        .with_detail(json!({ "mpc_env": env, "endpoints": self.endpoints }))
    }

    fn access_key_check(&self) -> Check {
        let Some(on_chain) = &self.on_chain else {
            return not_checked(ACCESS_KEY);
        };
        let account = &self.node.account_id;
        let contract = &self.node.contract_id;
        let signer = &self.node.signer_public_key;
        let source = &self.node.signer_key_source;
        let detail = json!({
            "account_id": account,
            "signer_public_key": signer,
            "signer_key_source": source,
            "account_exists": on_chain.account_exists,
            "access_keys": on_chain.access_keys,
        });
        if !on_chain.account_exists {
            return Check::fail(
                ACCESS_KEY,
                format!("account {account} does not exist on {}", on_chain.chain_id),
                format!("correct MPC_ACCOUNT_ID, or create {account} and add {signer} to it as a function-call key for {contract}"),
            )
            .with_detail(detail);
        }
        let signer_handle = PublicKeyHandle::from(signer);
        let others_usable: Vec<String> = on_chain
            .access_keys
            .iter()
            .filter(|key| key.public_key != signer_handle)
            .filter(|key| KeyFit::of(&key.permission, contract).usable())
            .map(|key| key.public_key.to_string())
            .collect();
        let use_another = if others_usable.is_empty() {
            String::new()
        } else {
            format!(
                ", or put the secret key of one of [{}] into {source}",
                others_usable.join(", ")
            )
        };
        let Some(key) = on_chain
            .access_keys
            .iter()
            .find(|key| key.public_key == signer_handle)
        else {
            return Check::fail(
                ACCESS_KEY,
                format!(
                    "signer key {signer} from {source} is not an access key of {account}; the account holds {}",
                    list_keys(&on_chain.access_keys)
                ),
                format!("add {signer} to {account} as a function-call key for {contract} (a full-access key is needed to add it){use_another}"),
            )
            .with_detail(detail);
        };
        let held = format!(
            "signer key {signer} from {source} is an access key of {account}: {}",
            describe(&key.permission)
        );
        let add_again = format!(
            "delete {signer} from {account} and add it again as a function-call key for {contract} with no method list and unlimited allowance (a full-access key is needed){use_another}"
        );
        let check = match KeyFit::of(&key.permission, contract) {
            KeyFit::FullAccess => Check::ok(ACCESS_KEY, held),
            KeyFit::ContractCall {
                allowance,
                missing_newer_methods,
            } => {
                let mut warnings = Vec::new();
                if allowance.is_some() {
                    warnings.push("the node's calls fail once that allowance is spent".to_string());
                }
                if !missing_newer_methods.is_empty() {
                    warnings.push(format!(
                        "its method list leaves out {}, which newer releases call",
                        missing_newer_methods.join(", ")
                    ));
                }
                if warnings.is_empty() {
                    Check::ok(ACCESS_KEY, held)
                } else {
                    Check::warn(
                        ACCESS_KEY,
                        format!("{held}: {}", warnings.join("; ")),
                        add_again,
                    )
                }
            }
            KeyFit::OtherReceiver { receiver_id } => Check::fail(
                ACCESS_KEY,
                format!("{held}: it may call only {receiver_id}, not {contract}"),
                add_again,
            ),
            KeyFit::MissingMethods { missing } => Check::fail(
                ACCESS_KEY,
                format!(
                    "{held}: its method list leaves out {}, which the node calls",
                    missing.join(", ")
                ),
                add_again,
            ),
            KeyFit::AllowanceSpent => Check::fail(
                ACCESS_KEY,
                format!("{held}: its allowance is spent"),
                add_again,
            ),
            KeyFit::GasKey => Check::fail(
                ACCESS_KEY,
                format!(
                    "{held}: a gas key signs only transactions that carry a nonce index, and mpc-node sends ordinary ones"
                ),
                add_again,
            ),
        };
        check.with_detail(detail)
    }

    fn contract_check(&self) -> Check {
        let Some(on_chain) = &self.on_chain else {
            return not_checked(CONTRACT);
        };
        let contract = &self.node.contract_id;
        let detail = json!({ "contract_id": contract, "contract": on_chain.contract });
        let wrong_contract = "check MPC_CONTRACT_ID: it names the signer contract (v1.signer-prod.testnet on testnet, v1.signer on mainnet)";
        let check = match &on_chain.contract {
            ContractFinding::State {
                state: ContractState::NotInitialized,
            } => Check::warn(
                CONTRACT,
                format!("contract {contract} is NotInitialized: it has no participants yet"),
                "nothing to do on this node: it waits until the contract's operators initialize it",
            ),
            ContractFinding::State { state } => Check::ok(
                CONTRACT,
                format!("contract {contract} is {}", describe_state(state)),
            ),
            ContractFinding::UnknownState { name } => Check::warn(
                CONTRACT,
                format!(
                    "contract {contract} is in state {name:?}, which this agent does not know; its participants were not checked"
                ),
                "use an agent release that knows this contract's states",
            ),
            ContractFinding::Unreadable { error } => Check::fail(
                CONTRACT,
                format!(
                    "contract {contract} answered state() with something else than a signer contract's state: {error}"
                ),
                wrong_contract,
            ),
            ContractFinding::NoAccount => Check::fail(
                CONTRACT,
                format!(
                    "contract account {contract} does not exist on {}",
                    on_chain.chain_id
                ),
                wrong_contract,
            ),
            ContractFinding::NoCode => Check::fail(
                CONTRACT,
                format!("account {contract} has no contract deployed"),
                wrong_contract,
            ),
            ContractFinding::Uninitialized { vm_error } => Check::warn(
                CONTRACT,
                format!(
                    "contract {contract} is deployed but not initialized (state() fails: {vm_error})"
                ),
                "nothing to do on this node: it waits until the contract's operators initialize it",
            ),
            ContractFinding::ViewFailed { vm_error } => Check::fail(
                CONTRACT,
                format!("contract {contract}'s state() view fails: {vm_error}"),
                wrong_contract,
            ),
        };
        check.with_detail(detail)
    }

    fn participant_check(&self) -> Check {
        let Some(OnChain {
            contract: ContractFinding::State { state },
            standing: Some(standing),
            migration,
            access_keys,
            ..
        }) = &self.on_chain
        else {
            return Check::skipped(
                PARTICIPANT,
                "not checked: the contract's state was not read",
            );
        };
        let account = &self.node.account_id;
        let contract = &self.node.contract_id;
        let p2p = &self.node.p2p_public_key;
        let source = &self.node.p2p_key_source;
        let detail = json!({
            "account_id": account,
            "p2p_public_key": p2p,
            "p2p_key_source": source,
            "state": state.name(),
            "standing": standing,
            "migration": migration,
            "migration_role": MigrationRole::of(standing, migration, p2p),
        });
        let destination = migration.destination();
        let entry_text = |entry: &Participant| {
            format!(
                "{account} is participant {} ({}) in {}",
                entry.id,
                entry.url,
                state.name()
            )
        };
        let check = match standing {
            Standing::NoParticipants => Check::skipped(
                PARTICIPANT,
                format!("contract {contract} has no participants yet"),
            ),
            Standing::Member { entry } if &entry.tls_public_key == p2p => {
                let leaving = destination.map_or(String::new(), |d| {
                    format!(
                        "; a migration of {account} to {} (p2p key {}) is under way: this node stops taking part when it concludes",
                        d.url, d.tls_public_key
                    )
                });
                Check::ok(
                    PARTICIPANT,
                    format!(
                        "{}, known by the p2p key {p2p} from {source}{leaving}",
                        entry_text(entry)
                    ),
                )
            }
            Standing::Member { entry } if destination.is_some_and(|d| &d.tls_public_key == p2p) => {
                let d = destination.expect("just matched");
                let signer = PublicKeyHandle::from(&d.signer_account_pk);
                if access_keys.iter().any(|k| k.public_key == signer) {
                    Check::ok(
                        PARTICIPANT,
                        format!(
                            "this node is the migration destination of {account}: migration_info names {} with this node's p2p key {p2p} from {source}; the contract lists {} ({}) until the migration concludes; the node starts so that the backup service can put the keyshares on its migration port (8079)",
                            d.url,
                            entry_text(entry),
                            entry.tls_public_key
                        ),
                    )
                } else {
                    Check::fail(
                        PARTICIPANT,
                        format!(
                            "this node is the migration destination of {account} ({}), but migration_info's signer_account_pk {} is not an access key of {account}",
                            d.url, d.signer_account_pk
                        ),
                        format!(
                            "add {} to {account} as a function-call key for {contract} (it is the new node's near_signer_public_key), or start the migration again with this node's signer key",
                            d.signer_account_pk
                        ),
                    )
                }
            }
            Standing::Member { entry } if destination.is_some() => {
                let d = destination.expect("just matched");
                Check::fail(
                    PARTICIPANT,
                    format!(
                        "{} with tls_public_key {}, and migration_info names the destination {} with tls_public_key {}, but the p2p key from {source} is {p2p}: this node is neither",
                        entry_text(entry),
                        entry.tls_public_key,
                        d.url,
                        d.tls_public_key
                    ),
                    format!(
                        "put the secret key of {} (the migration's destination) into {source}, or call start_node_migration again with {p2p} as the destination's tls_public_key",
                        d.tls_public_key
                    ),
                )
            }
            Standing::Member { entry } => Check::fail(
                PARTICIPANT,
                format!(
                    "{} with tls_public_key {}, but the p2p key from {source} is {p2p}",
                    entry_text(entry),
                    entry.tls_public_key
                ),
                format!(
                    "put the secret key of {} into {source}, or have {contract} register {p2p} for {account} (a node migration)",
                    entry.tls_public_key
                ),
            ),
            Standing::Leaving { entry } => Check::warn(
                PARTICIPANT,
                format!(
                    "{}'s current set with tls_public_key {}, but not in the next set: it leaves when resharing ends",
                    entry_text(entry),
                    entry.tls_public_key
                ),
                "nothing to do if the node is meant to leave; otherwise ask the participants to vote it back in",
            ),
            Standing::NotMember => Check::warn(
                PARTICIPANT,
                format!(
                    "{account} is not a participant of {contract} ({}, participants: {})",
                    state.name(),
                    participant_accounts(state)
                ),
                format!(
                    "a new node takes part once the participants vote it in with {p2p} as its tls_public_key; until then it idles"
                ),
            ),
        };
        check.with_detail(detail)
    }
}

impl KeyReport {
    /// `keys.attestation_grant`, on a contract with attestation-storage
    /// grants (near/mpc main, #4016): the node's `submit_participant_info`
    /// under a p2p key the contract stores no attestation of for the account
    /// uses one of the account's grants, and is refused
    /// (`NoAttestationStorageGrant`) when there is none. That is a new node,
    /// or a migration's destination: neither can join without it. The node
    /// still starts.
    fn attestation_grant_check(&self) -> Check {
        let Some(on_chain) = &self.on_chain else {
            return not_checked(ATTESTATION_GRANT);
        };
        let account = &self.node.account_id;
        let contract = &self.node.contract_id;
        let p2p = &self.node.p2p_public_key;
        let tee = &on_chain.tee;
        let grants = match &tee.attestation_grants {
            ViewFinding::NoView => {
                return Check::skipped(
                    ATTESTATION_GRANT,
                    format!(
                        "contract {contract} has no available_attestation_grants view: it predates attestation-storage grants, so the node's attestation needs none"
                    ),
                );
            }
            ViewFinding::Unreadable { error } => {
                return Check::skipped(
                    ATTESTATION_GRANT,
                    format!(
                        "not checked: contract {contract}'s available_attestation_grants: {error}"
                    ),
                );
            }
            ViewFinding::Read(grants) => *grants,
        };
        let owner = tee.attestation_owner(p2p);
        let registered = matches!(
            &on_chain.standing,
            Some(Standing::Member { entry } | Standing::Leaving { entry }) if &entry.tls_public_key == p2p
        );
        let role = match (&on_chain.standing, on_chain.migration.destination()) {
            (_, Some(d)) if &d.tls_public_key == p2p => "the migration's destination",
            _ if registered => "a participant",
            _ => "a new node",
        };
        let detail = json!({
            "account_id": account,
            "p2p_public_key": p2p,
            "available_attestation_grants": grants,
            "attestation_owner": owner,
            "tee_accounts": match &tee.tee_accounts {
                ViewFinding::Read(_) => "read",
                ViewFinding::NoView => "no_view",
                ViewFinding::Unreadable { .. } => "unreadable",
            },
        });
        let check = match owner {
            Some(owner) if owner == account => Check::ok(
                ATTESTATION_GRANT,
                format!(
                    "contract {contract} stores an attestation of {account} under this node's p2p key {p2p}: renewing it needs no grant"
                ),
            ),
            Some(other) => Check::warn(
                ATTESTATION_GRANT,
                format!(
                    "contract {contract} stores the attestation under this node's p2p key {p2p} for {other}: its submit_participant_info as {account} is refused"
                ),
                "give this node a p2p key of its own (a new MPC_P2P_PRIVATE_KEY)",
            ),
            // Without get_tee_accounts, a registered key is taken as attested.
            None if registered && tee.tee_accounts.read().is_none() => Check::ok(
                ATTESTATION_GRANT,
                format!(
                    "{account} is a participant under this node's p2p key {p2p}: renewing its attestation needs no grant"
                ),
            ),
            None if grants > 0 => Check::ok(
                ATTESTATION_GRANT,
                format!(
                    "{account} has {grants} attestation-storage grant(s) on {contract}: the first submit_participant_info of this node ({role}) under p2p key {p2p} uses one"
                ),
            ),
            None => Check::warn(
                ATTESTATION_GRANT,
                format!(
                    "{account} has no attestation-storage grant on {contract}, and the contract stores no attestation under this node's p2p key {p2p} ({role}): its submit_participant_info is refused (NoAttestationStorageGrant), so it cannot be voted in nor receive a migration's keyshares"
                ),
                format!(
                    "buy a grant: call prepay_attestation_storage on {contract} with {{\"account_id\": \"{account}\", \"grants\": 1}}, attaching exactly the contract's attestation_storage_fee_millinear (its config() view) per grant; anyone may pay it, and the node's function-call key cannot"
                ),
            ),
        };
        check.with_detail(detail)
    }
}

/// This node's part in a node migration of its account, in the
/// participant check's detail (`migration_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationRole {
    /// No migration of the account is under way (or the contract has no
    /// `migration_info` view).
    None,
    /// The contract lists this node's p2p key; a migration away from it is under way.
    Source,
    /// `migration_info` names this node's p2p key as the destination.
    Destination,
    /// A migration is under way, to a node with another p2p key.
    Elsewhere,
}

impl MigrationRole {
    fn of(standing: &Standing, migration: &MigrationFinding, p2p: &PublicKey) -> MigrationRole {
        let Some(destination) = migration.destination() else {
            return MigrationRole::None;
        };
        match standing {
            _ if &destination.tls_public_key == p2p => MigrationRole::Destination,
            Standing::Member { entry } | Standing::Leaving { entry }
                if &entry.tls_public_key == p2p =>
            {
                MigrationRole::Source
            }
            _ => MigrationRole::Elsewhere,
        }
    }
}

/// The text to log when `after`'s participant check finds this node the
/// registered participant where `before`'s found it the migration
/// destination: the migration concluded. Takes the keys stage's checks.
pub fn migration_concluded(before: &[Check], after: &[Check]) -> Option<String> {
    fn role(checks: &[Check]) -> Option<(MigrationRole, &Check)> {
        let check = checks.iter().find(|c| c.id == PARTICIPANT)?;
        let role = serde_json::from_value(check.detail["migration_role"].clone()).ok()?;
        Some((role, check))
    }
    let (was, _) = role(before)?;
    let (now, check) = role(after)?;
    let registered = check.status == Status::Ok && check.detail["standing"]["standing"] == "member";
    (was == MigrationRole::Destination && now != MigrationRole::Destination && registered)
        .then(|| format!("the node migration to this node concluded: {}", check.cause))
}

/// The chain's answers that judge a key pair: what [`KeyReport`] read,
/// reusable for another pair (e.g. the keys in an existing `secrets.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChainFacts {
    /// The account's keys the node can sign its contract calls with.
    pub access_keys: Vec<PublicKeyHandle>,
    /// The p2p key the contract knows the account by, when it is a participant.
    pub participant_p2p_key: Option<PublicKey>,
}

/// How a key pair fares against [`ChainFacts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// The signer key is one the node can sign its contract calls with.
    pub signer_key: bool,
    pub p2p_key: P2pKeyMatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum P2pKeyMatch {
    /// The contract knows the account by this key.
    Registered,
    /// The contract knows the account by another key.
    Differs,
    /// The account is not a participant (yet).
    NoEntry,
}

impl ChainFacts {
    pub fn accepts(&self, signer: &PublicKey, p2p: &PublicKey) -> Acceptance {
        let signer = PublicKeyHandle::from(signer);
        Acceptance {
            signer_key: self.access_keys.contains(&signer),
            p2p_key: match &self.participant_p2p_key {
                None => P2pKeyMatch::NoEntry,
                Some(registered) if registered == p2p => P2pKeyMatch::Registered,
                Some(_) => P2pKeyMatch::Differs,
            },
        }
    }
}

impl Acceptance {
    /// The chain takes both keys (a pair not yet registered as a participant included).
    pub fn accepted(&self) -> bool {
        self.signer_key && self.p2p_key != P2pKeyMatch::Differs
    }
}

fn not_checked(id: &str) -> Check {
    Check::skipped(id, "not checked: no NEAR RPC answered")
}

/// `ed25519:A (full access), ed25519:B (function call for …)`, or `no access keys`.
fn list_keys(keys: &[AccessKey]) -> String {
    if keys.is_empty() {
        return "no access keys".to_string();
    }
    let listed: Vec<String> = keys
        .iter()
        .map(|key| format!("{} ({})", key.public_key, describe(&key.permission)))
        .collect();
    format!("{} key(s): {}", keys.len(), listed.join(", "))
}

/// `Running (3 participants, threshold 2)`.
fn describe_state(state: &ContractState) -> String {
    match state {
        ContractState::NotInitialized => "NotInitialized".to_string(),
        ContractState::Initializing { participants }
        | ContractState::Running { participants, .. } => {
            format!(
                "{} ({} participants, threshold {})",
                state.name(),
                participants.participants.len(),
                participants.threshold
            )
        }
        ContractState::Resharing { current, next, .. } => format!(
            "Resharing (from {} participants to {}, threshold {})",
            current.participants.len(),
            next.participants.len(),
            next.threshold
        ),
    }
}

/// The accounts of the set the node would work with.
fn participant_accounts(state: &ContractState) -> String {
    let accounts: Vec<&str> = state
        .working_set()
        .map(|set| {
            set.participants
                .iter()
                .map(|p| p.account_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    if accounts.is_empty() {
        "none".to_string()
    } else {
        accounts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeysInput;
    use crate::keys::report::EndpointOutcome;
    use crate::keys::rpc::{EndpointFailure, FailureKind};
    use near_crypto::ED25519PublicKey;
    use near_primitives::types::{AccountId, Balance};
    use near_primitives::views::AccessKeyPermissionView;

    const NODE_ACCOUNT: &str = "node0.testnet";
    const SIGNER_CONTRACT: &str = "v1.signer-prod.testnet";

    fn key(n: u8) -> PublicKey {
        PublicKey::ED25519(ED25519PublicKey([n; 32]))
    }

    fn id(account: &str) -> AccountId {
        account.parse().unwrap()
    }

    fn access_key(n: u8, permission: AccessKeyPermissionView) -> AccessKey {
        AccessKey {
            public_key: PublicKeyHandle::from(&key(n)),
            permission,
        }
    }

    fn contract_call(receiver: &str, allowance: Option<Balance>) -> AccessKeyPermissionView {
        AccessKeyPermissionView::FunctionCall {
            allowance,
            receiver_id: receiver.to_string(),
            method_names: vec![],
        }
    }

    fn running(participants: &[(&str, u32, u8)]) -> ContractFinding {
        ContractFinding::State {
            state: ContractState::Running {
                participants: crate::keys::ParticipantSet {
                    threshold: 2,
                    participants: participants
                        .iter()
                        .map(|(account, n, key_n)| Participant {
                            account_id: id(account),
                            id: *n,
                            url: format!("https://{account}"),
                            tls_public_key: key(*key_n),
                        })
                        .collect(),
                },
                keyset: None,
            },
        }
    }

    impl ContractFinding {
        fn state_standing(&self, account: &str) -> Option<Standing> {
            match self {
                ContractFinding::State { state } => Some(state.standing_of(&id(account))),
                _ => None,
            }
        }
    }

    /// Signer key 1 (function call for the contract), p2p key 9, participant 0 with key 9.
    fn report() -> KeyReport {
        let contract = running(&[(NODE_ACCOUNT, 0, 9), ("node1.testnet", 1, 8)]);
        let standing = match &contract {
            ContractFinding::State { state } => state.standing_of(&id(NODE_ACCOUNT)),
            _ => unreachable!(),
        };
        KeyReport {
            node: KeysInput {
                chain: Chain::Testnet,
                account_id: id(NODE_ACCOUNT),
                contract_id: id(SIGNER_CONTRACT),
                signer_public_key: key(1),
                p2p_public_key: key(9),
                signer_key_source: "env MPC_ACCOUNT_SK".to_string(),
                p2p_key_source: "env MPC_P2P_PRIVATE_KEY".to_string(),
            },
            endpoints: vec![EndpointOutcome {
                url: "https://rpc.testnet.near.org".to_string(),
                elapsed_ms: 120,
                result: EndpointResult::Answered,
            }],
            on_chain: Some(OnChain {
                rpc_url: "https://rpc.testnet.near.org".to_string(),
                latency_ms: 40,
                chain_id: "testnet".to_string(),
                latest_block_height: 1000,
                latest_block_time: "2025-06-01T12:00:00Z".to_string(),
                syncing: false,
                account_exists: true,
                account: None,
                access_keys: vec![
                    access_key(1, contract_call(SIGNER_CONTRACT, None)),
                    access_key(2, AccessKeyPermissionView::FullAccess),
                ],
                contract,
                standing: Some(standing),
                migration: MigrationFinding::NoView,
                tee: crate::keys::TeeViews::none(),
            }),
        }
    }

    fn on_chain(report: &mut KeyReport) -> &mut OnChain {
        report.on_chain.as_mut().unwrap()
    }

    fn check(report: &KeyReport, id: &str) -> Check {
        report.checks().into_iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn matching_keys_pass_every_check() {
        let report = report();
        for check in report.checks() {
            let expected = if check.id == ATTESTATION_GRANT {
                Status::Skipped
            } else {
                Status::Ok
            };
            assert_eq!(check.status, expected, "{}", check.summary());
        }
        assert_eq!(report.verdict(), KeysVerdict::Match);
        let ids: Vec<String> = report.checks().into_iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                RPC,
                CHAIN_ID,
                ACCESS_KEY,
                CONTRACT,
                PARTICIPANT,
                ATTESTATION_GRANT
            ]
        );
    }

    #[test]
    fn a_missing_signer_key_lists_what_the_account_holds_and_the_fix() {
        let mut report = report();
        report.node.signer_public_key = key(5);
        let check = check(&report, ACCESS_KEY);
        assert_eq!(check.status, Status::Fail);
        assert!(check.cause.contains(&key(5).to_string()), "{}", check.cause);
        assert!(
            check.cause.contains("env MPC_ACCOUNT_SK"),
            "{}",
            check.cause
        );
        assert!(
            check.cause.contains(&format!("{} (full access)", key(2))),
            "{}",
            check.cause
        );
        let fix = check.fix.unwrap();
        assert!(
            fix.contains(&format!(
                "put the secret key of one of [{}, {}] into env MPC_ACCOUNT_SK",
                key(1),
                key(2)
            )),
            "{fix}"
        );
        assert!(
            fix.contains(&format!(
                "add {} to {NODE_ACCOUNT} as a function-call key for {SIGNER_CONTRACT}",
                key(5)
            )),
            "{fix}"
        );
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    }

    #[test]
    fn a_key_for_another_receiver_fails_naming_it() {
        let mut report = report();
        on_chain(&mut report).access_keys[0] = access_key(1, contract_call("v1.signer", None));
        let check = check(&report, ACCESS_KEY);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .cause
                .contains("may call only v1.signer, not v1.signer-prod.testnet"),
            "{}",
            check.cause
        );
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    }

    #[test]
    fn a_finite_allowance_warns_with_the_amount_left() {
        let mut report = report();
        on_chain(&mut report).access_keys[0] = access_key(
            1,
            contract_call(SIGNER_CONTRACT, Some(Balance::from_millinear(250))),
        );
        let check = check(&report, ACCESS_KEY);
        assert_eq!(check.status, Status::Warn);
        assert!(check.cause.contains("0.25 NEAR"), "{}", check.cause);
        assert_eq!(report.verdict(), KeysVerdict::Match);
    }

    #[test]
    fn an_unknown_account_is_its_own_failure() {
        let mut report = report();
        on_chain(&mut report).account_exists = false;
        on_chain(&mut report).access_keys.clear();
        let check = check(&report, ACCESS_KEY);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.cause,
            "account node0.testnet does not exist on testnet"
        );
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
        assert_eq!(report.chain_facts().unwrap().access_keys, vec![]);
    }

    #[test]
    fn a_participant_known_by_another_p2p_key_fails() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.cause.contains(&format!("tls_public_key {}", key(9))),
            "{}",
            check.cause
        );
        assert!(check.fix.unwrap().contains(&format!(
            "put the secret key of {} into env MPC_P2P_PRIVATE_KEY",
            key(9)
        )));
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    }

    /// The account migrates to a node with p2p key `to`, signer key `signer`.
    fn migrating(report: &mut KeyReport, to: u8, signer: u8) {
        on_chain(report).migration = MigrationFinding::Read {
            backup_service_key: Some(key(3)),
            destination: Some(Box::new(crate::keys::Destination {
                signer_account_pk: key(signer),
                url: "http://new-node.testnet:80".to_string(),
                tls_public_key: key(to),
            })),
        };
    }

    #[test]
    fn the_migration_destination_passes_and_says_so() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        migrating(&mut report, 7, 1);
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(
            check
                .cause
                .contains("this node is the migration destination")
                && check.cause.contains("http://new-node.testnet:80"),
            "{}",
            check.cause
        );
        assert_eq!(check.detail["migration_role"], "destination");
        assert_eq!(report.verdict(), KeysVerdict::Match);
        assert_eq!(
            report.chain_facts().unwrap().participant_p2p_key,
            Some(key(7))
        );
    }

    #[test]
    fn a_destination_signer_key_the_account_lacks_fails() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        migrating(&mut report, 7, 5);
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .cause
                .contains(&format!("signer_account_pk {}", key(5))),
            "{}",
            check.cause
        );
    }

    #[test]
    fn another_destination_key_fails_naming_both() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        migrating(&mut report, 6, 1);
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Fail);
        for named in [key(6), key(7), key(9)] {
            assert!(check.cause.contains(&named.to_string()), "{}", check.cause);
        }
        assert_eq!(check.detail["migration_role"], "elsewhere");
    }

    #[test]
    fn the_source_of_a_migration_runs_on_and_is_told() {
        let mut report = report();
        migrating(&mut report, 6, 1);
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Ok);
        assert!(check.cause.contains("a migration of"), "{}", check.cause);
        assert_eq!(check.detail["migration_role"], "source");
    }

    #[test]
    fn a_concluded_migration_is_told_once() {
        let mut before = report();
        before.node.p2p_public_key = key(7);
        migrating(&mut before, 7, 1);
        let mut after = report();
        after.node.p2p_public_key = key(7);
        after.on_chain = Some(OnChain {
            contract: running(&[(NODE_ACCOUNT, 0, 7)]),
            standing: running(&[(NODE_ACCOUNT, 0, 7)]).state_standing(NODE_ACCOUNT),
            migration: MigrationFinding::Read {
                backup_service_key: None,
                destination: None,
            },
            ..before.on_chain.clone().unwrap()
        });
        let text = migration_concluded(&before.checks(), &after.checks()).expect("concluded");
        assert!(text.contains("concluded"), "{text}");
        assert_eq!(migration_concluded(&after.checks(), &after.checks()), None);
        assert_eq!(
            migration_concluded(&before.checks(), &before.checks()),
            None
        );
    }

    /// The contract has grants: `grants` left for the account, `attested`
    /// the (account, p2p key) pairs whose attestation it stores.
    fn with_grants(report: &mut KeyReport, grants: u32, attested: &[(&str, u8)]) {
        on_chain(report).tee = crate::keys::TeeViews {
            attestation_grants: ViewFinding::Read(grants),
            tee_accounts: ViewFinding::Read(
                attested
                    .iter()
                    .map(|(account, n)| crate::keys::TeeAccount {
                        account_id: id(account),
                        tls_public_key: key(*n),
                    })
                    .collect(),
            ),
            ..crate::keys::TeeViews::none()
        };
    }

    #[test]
    fn a_migration_destination_without_a_grant_is_told_to_prepay() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        migrating(&mut report, 7, 1);
        with_grants(&mut report, 0, &[(NODE_ACCOUNT, 9)]);
        let check = check(&report, ATTESTATION_GRANT);
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.cause.contains("the migration's destination"),
            "{}",
            check.cause
        );
        assert!(check.cause.contains(&key(7).to_string()));
        assert!(check.fix.unwrap().contains("prepay_attestation_storage"));
        assert_eq!(
            report.verdict(),
            KeysVerdict::Match,
            "the node still starts"
        );
    }

    #[test]
    fn a_grant_left_or_a_stored_attestation_is_enough() {
        let mut report = report();
        report.node.p2p_public_key = key(7);
        migrating(&mut report, 7, 1);
        with_grants(&mut report, 2, &[]);
        let granted = check(&report, ATTESTATION_GRANT);
        assert_eq!(granted.status, Status::Ok, "{granted:?}");
        assert!(granted.cause.contains("2 attestation-storage grant(s)"));
        with_grants(&mut report, 0, &[(NODE_ACCOUNT, 7)]);
        assert_eq!(check_status(&report, ATTESTATION_GRANT), Status::Ok);
        with_grants(&mut report, 5, &[("node1.testnet", 7)]);
        let taken = check(&report, ATTESTATION_GRANT);
        assert_eq!(taken.status, Status::Warn, "{taken:?}");
        assert!(taken.cause.contains("node1.testnet"));
    }

    #[test]
    fn a_registered_participant_needs_no_grant_and_an_older_contract_has_none() {
        let mut report = report();
        assert_eq!(check_status(&report, ATTESTATION_GRANT), Status::Skipped);
        assert!(
            check(&report, ATTESTATION_GRANT)
                .cause
                .contains("predates attestation-storage grants")
        );
        on_chain(&mut report).tee.attestation_grants = ViewFinding::Read(0);
        assert_eq!(check_status(&report, ATTESTATION_GRANT), Status::Ok);
    }

    fn check_status(report: &KeyReport, id: &str) -> Status {
        check(report, id).status
    }

    #[test]
    fn not_yet_a_participant_is_a_warning() {
        let mut report = report();
        let contract = running(&[("node1.testnet", 1, 8)]);
        on_chain(&mut report).standing = Some(Standing::NotMember);
        on_chain(&mut report).contract = contract;
        let check = check(&report, PARTICIPANT);
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.cause.contains("participants: node1.testnet"),
            "{}",
            check.cause
        );
        assert_eq!(report.verdict(), KeysVerdict::Match);
    }

    #[test]
    fn no_usable_endpoint_makes_the_rpc_unavailable() {
        let mut report = report();
        report.on_chain = None;
        report.endpoints[0].result = EndpointResult::Failed(EndpointFailure {
            request: "status".to_string(),
            kind: FailureKind::TimedOut,
            detail: "no answer within 5000 ms".to_string(),
            attempts: 3,
        });
        let checks = report.checks();
        assert_eq!(checks[0].status, Status::Fail);
        assert!(
            checks[0].cause.contains(
                "https://rpc.testnet.near.org timed out on status after 120 ms and 3 tries"
            ),
            "{}",
            checks[0].cause
        );
        assert!(checks[1..].iter().all(|c| c.status == Status::Skipped));
        assert_eq!(report.verdict(), KeysVerdict::RpcUnavailable);
        assert_eq!(report.chain_facts(), None);
    }

    #[test]
    fn an_rpc_on_another_chain_is_a_mismatch() {
        let mut report = report();
        report.on_chain = None;
        report.endpoints[0].result = EndpointResult::OtherChain {
            chain_id: "mainnet".to_string(),
        };
        let check = check(&report, CHAIN_ID);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.cause.contains("serves chain mainnet"),
            "{}",
            check.cause
        );
        assert!(check.fix.unwrap().contains("https://rpc.testnet.near.org"));
        assert_eq!(report.verdict(), KeysVerdict::Mismatch);
    }

    #[test]
    fn chain_facts_judge_another_key_pair_without_asking_again() {
        let facts = report().chain_facts().unwrap();
        assert_eq!(facts.participant_p2p_key, Some(key(9)));
        let same = facts.accepts(&key(1), &key(9));
        assert_eq!(
            same,
            Acceptance {
                signer_key: true,
                p2p_key: P2pKeyMatch::Registered
            }
        );
        assert!(same.accepted());
        let full_access = facts.accepts(&key(2), &key(9));
        assert!(full_access.accepted());
        let stale = facts.accepts(&key(3), &key(4));
        assert_eq!(
            stale,
            Acceptance {
                signer_key: false,
                p2p_key: P2pKeyMatch::Differs
            }
        );
        assert!(!stale.accepted());
    }

    #[test]
    fn the_report_serializes_for_status_and_json() {
        let value = serde_json::to_value(report()).unwrap();
        assert_eq!(value["endpoints"][0]["result"], "answered");
        assert_eq!(value["on_chain"]["contract"]["finding"], "state");
        assert_eq!(value["on_chain"]["contract"]["state"]["name"], "Running");
        assert_eq!(value["on_chain"]["standing"]["standing"], "member");
        assert_eq!(value["on_chain"]["standing"]["entry"]["id"], 0);
        assert_eq!(
            value["on_chain"]["access_keys"][1]["permission"],
            "FullAccess"
        );
        assert_eq!(value["signer_public_key"], key(1).to_string());
    }
}
