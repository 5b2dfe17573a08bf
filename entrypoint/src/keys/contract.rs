//! The signer contract's `state()` answer, read into the little the key checks
//! need: the state's name, its participants (account, id, url, p2p key) and
//! the keyset the network holds (its epoch, and per domain the attempt that
//! made the key), which a keyshare must match to rejoin.
//!
//! near/mpc's own interface crate cannot parse every release's wire shape, so
//! these types read only the participant paths, accept the key under both of
//! its names (`tls_public_key`, `sign_pk` before contract 3.10) and ignore
//! every other field.

use near_crypto::PublicKey;
use near_primitives::types::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The states of the signer contract, with the participant sets each carries.
/// Its serde form is the key report's (`{"name": "Running", …}`), read back
/// by whoever reads the report; the contract's own answer is read by
/// [`ContractState::parse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum ContractState {
    NotInitialized,
    /// Generating the first keys; the set is the one generating them.
    Initializing {
        participants: ParticipantSet,
    },
    Running {
        participants: ParticipantSet,
        /// `None` when the answer has none this agent can read.
        keyset: Option<Keyset>,
    },
    /// Moving the keys from the current set to the next one; the keyset
    /// stays the previous epoch's until the resharing ends.
    Resharing {
        current: ParticipantSet,
        next: ParticipantSet,
        keyset: Option<Keyset>,
    },
}

/// The keys the network holds: their epoch and, per domain, the attempt
/// that made the key (`KeyForDomain`). A node's keyshare is current when its
/// epoch and every domain's attempt are these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    pub epoch_id: u64,
    pub domains: Vec<KeysetDomain>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysetDomain {
    pub domain_id: u64,
    pub attempt: u64,
}

/// One participant set and its signing threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantSet {
    pub threshold: u64,
    pub participants: Vec<Participant>,
}

/// One entry of a participant set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub account_id: AccountId,
    pub id: u32,
    pub url: String,
    /// The p2p public key the contract knows the participant by.
    pub tls_public_key: PublicKey,
}

/// Why a `state()` answer could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error("the contract answered state {0:?}, which this agent does not know")]
    UnknownState(String),
    #[error("the contract's state is not one the signer contract answers: {0}")]
    Malformed(String),
}

/// Where `account_id` stands in a contract state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// The state has no participants yet (`NotInitialized`).
    NoParticipants,
    /// In the set the node works with (the next set while resharing).
    Member {
        entry: Participant,
    },
    /// Resharing away: in the current set, not in the next one.
    Leaving {
        entry: Participant,
    },
    NotMember,
}

impl ContractState {
    /// Reads the bytes of a `state()` answer.
    pub fn parse(bytes: &[u8]) -> Result<ContractState, StateError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| StateError::Malformed(format!("not JSON: {err}")))?;
        let (name, body) = match value {
            Value::String(name) => (name, Value::Null),
            Value::Object(map) if map.len() == 1 => {
                map.into_iter().next().expect("an object with one entry")
            }
            other => {
                return Err(StateError::Malformed(format!(
                    "expected a state name or {{\"<state>\": {{…}}}}, got {}",
                    kind_of(&other)
                )));
            }
        };
        // Where in the body a participant set is, and what went wrong there.
        let set_at = |path: &'static str| -> Result<ParticipantSet, StateError> {
            let inner = match path {
                "" => Some(&body),
                field => body.get(field),
            };
            let set = match inner {
                Some(inner) => WithParameters::deserialize(inner).map(ParticipantSet::from),
                None => Err(serde::de::Error::missing_field(path)),
            };
            set.map_err(|err| {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!(".{path}")
                };
                StateError::Malformed(format!("{name}{at}: {err}"))
            })
        };
        match name.as_str() {
            "NotInitialized" => Ok(ContractState::NotInitialized),
            "Initializing" => Ok(ContractState::Initializing {
                participants: set_at("generating_key")?,
            }),
            "Running" => Ok(ContractState::Running {
                participants: set_at("")?,
                keyset: keyset_at(body.get("keyset")),
            }),
            "Resharing" => Ok(ContractState::Resharing {
                current: set_at("previous_running_state")?,
                next: set_at("resharing_key")?,
                keyset: keyset_at(
                    body.get("previous_running_state")
                        .and_then(|running| running.get("keyset")),
                ),
            }),
            _ => Err(StateError::UnknownState(name)),
        }
    }

    /// `NotInitialized`, `Initializing`, `Running` or `Resharing`.
    pub fn name(&self) -> &'static str {
        match self {
            ContractState::NotInitialized => "NotInitialized",
            ContractState::Initializing { .. } => "Initializing",
            ContractState::Running { .. } => "Running",
            ContractState::Resharing { .. } => "Resharing",
        }
    }

    /// The keyset the network holds, when the state has one.
    pub fn keyset(&self) -> Option<&Keyset> {
        match self {
            ContractState::Running { keyset, .. } | ContractState::Resharing { keyset, .. } => {
                keyset.as_ref()
            }
            ContractState::NotInitialized | ContractState::Initializing { .. } => None,
        }
    }

    /// The set whose members hold a share of [`ContractState::keyset`]:
    /// the running set, and while resharing the set being reshared from.
    pub fn keyset_holders(&self) -> Option<&ParticipantSet> {
        match self {
            ContractState::Running { participants, .. } => Some(participants),
            ContractState::Resharing { current, .. } => Some(current),
            ContractState::NotInitialized | ContractState::Initializing { .. } => None,
        }
    }

    /// The set the node takes part in: the next one while resharing.
    pub fn working_set(&self) -> Option<&ParticipantSet> {
        match self {
            ContractState::NotInitialized => None,
            ContractState::Initializing { participants }
            | ContractState::Running { participants, .. } => Some(participants),
            ContractState::Resharing { next, .. } => Some(next),
        }
    }

    /// Where `account_id` stands: near/mpc nodes build their mesh from the
    /// next set while resharing, and take part only when they are in it.
    pub fn standing_of(&self, account_id: &AccountId) -> Standing {
        let Some(working) = self.working_set() else {
            return Standing::NoParticipants;
        };
        if let Some(entry) = working.find(account_id) {
            return Standing::Member {
                entry: entry.clone(),
            };
        }
        match self {
            ContractState::Resharing { current, .. } => match current.find(account_id) {
                Some(entry) => Standing::Leaving {
                    entry: entry.clone(),
                },
                None => Standing::NotMember,
            },
            _ => Standing::NotMember,
        }
    }
}

impl ParticipantSet {
    pub fn find(&self, account_id: &AccountId) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|p| &p.account_id == account_id)
    }
}

/// A keyset as the contract writes it; `None` when absent or not one this
/// agent reads (the participant checks do not depend on it).
fn keyset_at(value: Option<&Value>) -> Option<Keyset> {
    Keyset::deserialize(value?).ok()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object with other than one entry",
    }
}

// The wire shapes, reduced to the participant paths.

#[derive(Deserialize)]
struct WithParameters {
    parameters: WireParameters,
}

#[derive(Deserialize)]
struct WireParameters {
    participants: WireParticipants,
    threshold: u64,
}

#[derive(Deserialize)]
struct WireParticipants {
    participants: Vec<(AccountId, u32, WireParticipantInfo)>,
}

#[derive(Deserialize)]
struct WireParticipantInfo {
    url: String,
    #[serde(alias = "sign_pk")]
    tls_public_key: PublicKey,
}

impl From<WithParameters> for ParticipantSet {
    fn from(wire: WithParameters) -> Self {
        ParticipantSet {
            threshold: wire.parameters.threshold,
            participants: wire
                .parameters
                .participants
                .participants
                .into_iter()
                .map(|(account_id, id, info)| Participant {
                    account_id,
                    id,
                    // Shown in reports: the contract's words, bounded.
                    url: crate::excerpt::excerpt(&info.url, 256),
                    tls_public_key: info.tls_public_key,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEY_A: &str = "ed25519:6anbDQNCcVh2f6okexjaX1VGj6tEnizJ1kV5UTBS8Zhi";
    const KEY_B: &str = "ed25519:Borqy3dEjw9az7Uj9nW69A9ZDansFGHWEggUx7tkv44f";
    const KEY_C: &str = "ed25519:AUH6c4QLMr2qQr9N5Kkpz5astDM9gBNroXCSxQiFTGQv";

    fn parse(value: Value) -> Result<ContractState, StateError> {
        ContractState::parse(value.to_string().as_bytes())
    }

    fn account(id: &str) -> AccountId {
        id.parse().unwrap()
    }

    fn parameters(entries: &[(&str, u32, &str)], threshold: u64) -> Value {
        let participants: Vec<Value> = entries
            .iter()
            .map(|(account, id, key)| {
                json!([account, id, { "url": format!("http://{account}"), "tls_public_key": key }])
            })
            .collect();
        json!({ "participants": { "next_id": entries.len(), "participants": participants },
                "threshold": threshold })
    }

    /// A current contract's full `Running` answer (near/mpc main, three participants).
    fn running_answer() -> Value {
        json!({"Running":{
          "domains":{"domains":[
              {"id":0,"protocol":"CaitSith","reconstruction_threshold":2,"purpose":"Sign"},
              {"id":1,"protocol":"Frost","reconstruction_threshold":2,"purpose":"Sign"}],
            "next_domain_id":2},
          "keyset":{"epoch_id":3,"domains":[
              {"domain_id":0,"key":{"Secp256k1":{"near_public_key":"secp256k1:4jCrUezRXeiBqbkiLvSdqDxAyrg1mSccpHovTuHihRoyViugoLmowSmueQCzxWzJNkmPesKJm6aJHFxpE8wvnq6Z"}},"attempt":0}]},
          "parameters": parameters(
              &[("mpc-node-a.testnet", 0, KEY_A), ("mpc-node-b.testnet", 1, KEY_B), ("mpc-node-c.testnet", 2, KEY_C)], 2),
          "parameters_votes":{"proposal_by_account":{}},
          "add_domains_votes":{"proposal_by_account":{}},
          "previously_cancelled_resharing_epoch_id":null}})
    }

    #[test]
    fn running_state_yields_its_participants_and_ignores_the_rest() {
        let state = parse(running_answer()).unwrap();
        assert_eq!(state.name(), "Running");
        let set = state.working_set().unwrap();
        assert_eq!(set.threshold, 2);
        assert_eq!(set.participants.len(), 3);
        let b = set.find(&account("mpc-node-b.testnet")).unwrap();
        assert_eq!(b.id, 1);
        assert_eq!(b.url, "http://mpc-node-b.testnet");
        assert_eq!(b.tls_public_key.to_string(), KEY_B);
    }

    #[test]
    fn the_keyset_is_read_while_running_and_kept_from_before_a_resharing() {
        let running = parse(running_answer()).unwrap();
        let expected = Keyset {
            epoch_id: 3,
            domains: vec![KeysetDomain {
                domain_id: 0,
                attempt: 0,
            }],
        };
        assert_eq!(running.keyset(), Some(&expected));
        let resharing = parse(json!({"Resharing": {
            "previous_running_state": {
                "keyset": {"epoch_id": 3, "domains": [{"domain_id": 0, "key": {}, "attempt": 0}]},
                "parameters": parameters(&[("a.near", 0, KEY_A)], 1) },
            "resharing_key": { "epoch_id": 4, "parameters": parameters(&[("a.near", 0, KEY_A)], 1) } }}))
        .unwrap();
        assert_eq!(
            resharing.keyset(),
            Some(&expected),
            "the old epoch's keyset"
        );
        let unreadable = parse(json!({"Running": {
            "keyset": {"epoch_id": "three"},
            "parameters": parameters(&[("a.near", 0, KEY_A)], 1) }}))
        .unwrap();
        assert_eq!(unreadable.keyset(), None);
        assert!(
            unreadable.working_set().is_some(),
            "the participants still read"
        );
    }

    #[test]
    fn not_initialized_has_no_participants() {
        let state = parse(json!("NotInitialized")).unwrap();
        assert_eq!(state, ContractState::NotInitialized);
        assert_eq!(
            state.standing_of(&account("a.near")),
            Standing::NoParticipants
        );
    }

    #[test]
    fn initializing_participants_sit_under_the_generating_key() {
        let state = parse(json!({"Initializing": {
            "domains": {}, "epoch_id": 0, "generated_keys": [], "cancel_votes": [],
            "generating_key": { "epoch_id": 0, "domain": {}, "next_attempt_id": 1,
                "parameters": parameters(&[("a.near", 0, KEY_A), ("b.near", 1, KEY_B)], 2),
                "instance": { "attempt_id": 0, "started_in": 1, "expires_on": 2,
                              "completed": [0], "public_key": null } } }}))
        .unwrap();
        assert_eq!(state.name(), "Initializing");
        match state.standing_of(&account("b.near")) {
            Standing::Member { entry } => assert_eq!(entry.id, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resharing_works_with_the_next_set_and_sees_who_leaves() {
        let state = parse(json!({"Resharing": {
            "previous_running_state": { "parameters": parameters(&[("a.near", 0, KEY_A), ("b.near", 1, KEY_B)], 2) },
            "reshared_keys": [], "cancellation_requests": [], "per_domain_thresholds": {"0": 2},
            "resharing_key": { "epoch_id": 4, "instance": null, "next_attempt_id": 0,
                "parameters": parameters(&[("a.near", 0, KEY_A), ("c.near", 2, KEY_C)], 2) } }}))
        .unwrap();
        assert_eq!(state.name(), "Resharing");
        assert!(matches!(
            state.standing_of(&account("c.near")),
            Standing::Member { entry } if entry.id == 2
        ));
        assert!(matches!(
            state.standing_of(&account("b.near")),
            Standing::Leaving { entry } if entry.id == 1
        ));
        assert_eq!(state.standing_of(&account("d.near")), Standing::NotMember);
    }

    #[test]
    fn the_key_is_read_under_its_name_before_contract_3_10() {
        let state = parse(json!({"Running": { "parameters": {
            "participants": { "next_id": 1, "participants": [
                ["a.near", 0, { "url": "http://a", "sign_pk": KEY_A, "cipher_pk": [1, 2] }]] },
            "threshold": 1 } }}))
        .unwrap();
        let entry = state
            .working_set()
            .unwrap()
            .find(&account("a.near"))
            .unwrap();
        assert_eq!(entry.tls_public_key.to_string(), KEY_A);
    }

    #[test]
    fn unknown_states_and_broken_shapes_are_told_apart() {
        assert_eq!(
            parse(json!({"Migrating": {}})),
            Err(StateError::UnknownState("Migrating".to_string()))
        );
        let broken = [
            json!({"Running": {"participants": []}}),
            json!({"Initializing": {"parameters": parameters(&[], 1)}}),
            json!({"Resharing": {"previous_running_state": {"parameters": parameters(&[], 1)}}}),
            json!({"Running": {"parameters": {"participants": {"participants": [["a.near", 0, {"url": "u"}]]}, "threshold": 1}}}),
            json!({"Running": {"parameters": {"participants": {"participants": [["Not Valid", 0, {"url": "u", "tls_public_key": KEY_A}]]}, "threshold": 1}}}),
            json!({"Running": {}, "Resharing": {}}),
            json!(42),
        ];
        for value in broken {
            assert!(
                matches!(parse(value.clone()), Err(StateError::Malformed(_))),
                "{value}"
            );
        }
        let err = parse(json!({"Initializing": {}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the contract's state is not one the signer contract answers: Initializing.generating_key: missing field `generating_key`"
        );
        assert!(ContractState::parse(b"<html>").is_err());
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("Running".to_string()),
                Just("parameters".to_string()),
                Just(KEY_A.to_string()),
                ".*".prop_map(String::from),
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            let keys = prop_oneof![
                Just("Running".to_string()),
                Just("Initializing".to_string()),
                Just("Resharing".to_string()),
                Just("parameters".to_string()),
                Just("participants".to_string()),
                Just("threshold".to_string()),
                Just("generating_key".to_string()),
                Just("previous_running_state".to_string()),
                Just("resharing_key".to_string()),
                Just("tls_public_key".to_string()),
                "[a-z_]{0,12}".prop_map(String::from),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_parser_never_panics_on_any_json(value in arbitrary_json()) {
            let _ = parse(value);
        }

        #[test]
        fn the_parser_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = ContractState::parse(&bytes);
        }
    }
}
