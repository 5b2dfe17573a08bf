//! Whether an access key of the node's account lets mpc-node sign its calls to
//! the signer contract, judged from the key's permission alone.

use near_primitives::types::{AccountId, Balance};
use near_primitives::views::AccessKeyPermissionView;
use serde::Serialize;

/// The contract methods every mpc-node 3.x calls (near/mpc
/// `ChainSendTransactionRequest::method`, unchanged from 3.0 to 3.14).
pub const NODE_METHODS: &[&str] = &[
    "respond",
    "respond_ckd",
    "vote_pk",
    "vote_reshared",
    "start_keygen_instance",
    "start_reshare_instance",
    "vote_abort_key_event_instance",
    "verify_tee",
    "submit_participant_info",
    "conclude_node_migration",
];

/// Methods only newer releases call (foreign-chain support, 3.10 and later).
pub const NEWER_NODE_METHODS: &[&str] = &[
    "respond_verify_foreign_tx",
    "register_foreign_chain_config",
    "register_foreign_chains_config",
];

/// How one access key serves the node's calls to the contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fit", rename_all = "snake_case")]
pub enum KeyFit {
    FullAccess,
    /// A function-call key for the contract that allows what the node calls.
    ContractCall {
        /// `None`: unlimited.
        allowance: Option<Balance>,
        /// Methods of newer releases the key's method list leaves out.
        missing_newer_methods: Vec<String>,
    },
    /// A function-call key for another account.
    OtherReceiver {
        receiver_id: String,
    },
    /// A function-call key for the contract whose method list leaves out
    /// methods every node calls.
    MissingMethods {
        missing: Vec<String>,
    },
    /// A function-call key for the contract with no allowance left.
    AllowanceSpent,
    /// A gas key: it signs only transactions that carry a nonce index, and
    /// mpc-node sends ordinary ones.
    GasKey,
}

impl KeyFit {
    /// How a key with `permission` serves calls to `contract_id`.
    pub fn of(permission: &AccessKeyPermissionView, contract_id: &AccountId) -> KeyFit {
        match permission {
            AccessKeyPermissionView::FullAccess => KeyFit::FullAccess,
            AccessKeyPermissionView::GasKeyFunctionCall { .. }
            | AccessKeyPermissionView::GasKeyFullAccess { .. } => KeyFit::GasKey,
            AccessKeyPermissionView::FunctionCall {
                allowance,
                receiver_id,
                method_names,
            } => {
                if receiver_id != contract_id.as_str() {
                    return KeyFit::OtherReceiver {
                        receiver_id: receiver_id.clone(),
                    };
                }
                let missing = |wanted: &[&str]| -> Vec<String> {
                    if method_names.is_empty() {
                        return Vec::new();
                    }
                    wanted
                        .iter()
                        .filter(|m| !method_names.iter().any(|n| n == *m))
                        .map(|m| m.to_string())
                        .collect()
                };
                let missing_core = missing(NODE_METHODS);
                if !missing_core.is_empty() {
                    return KeyFit::MissingMethods {
                        missing: missing_core,
                    };
                }
                if allowance.is_some_and(|left| left.is_zero()) {
                    return KeyFit::AllowanceSpent;
                }
                KeyFit::ContractCall {
                    allowance: *allowance,
                    missing_newer_methods: missing(NEWER_NODE_METHODS),
                }
            }
        }
    }

    /// Can the node sign its contract calls with this key?
    pub fn usable(&self) -> bool {
        matches!(self, KeyFit::FullAccess | KeyFit::ContractCall { .. })
    }
}

/// A permission in a few words: `full access`, `function call for v1.signer
/// (any method, unlimited allowance)`.
pub fn describe(permission: &AccessKeyPermissionView) -> String {
    let function_call = |receiver_id: &str, methods: &[String], allowance: &Option<Balance>| {
        let methods = if methods.is_empty() {
            "any method".to_string()
        } else {
            format!("methods {}", methods.join(", "))
        };
        let allowance = match allowance {
            None => "unlimited allowance".to_string(),
            Some(left) => format!("allowance {} left", left.exact_amount_display()),
        };
        format!("function call for {receiver_id} ({methods}, {allowance})")
    };
    match permission {
        AccessKeyPermissionView::FullAccess => "full access".to_string(),
        AccessKeyPermissionView::FunctionCall {
            allowance,
            receiver_id,
            method_names,
        } => function_call(receiver_id, method_names, allowance),
        AccessKeyPermissionView::GasKeyFunctionCall {
            allowance,
            receiver_id,
            method_names,
            ..
        } => format!(
            "gas key, {}",
            function_call(receiver_id, method_names, allowance)
        ),
        AccessKeyPermissionView::GasKeyFullAccess { .. } => "gas key, full access".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> AccountId {
        "v1.signer.testnet".parse().unwrap()
    }

    fn function_call(
        receiver: &str,
        methods: &[&str],
        allowance: Option<u128>,
    ) -> AccessKeyPermissionView {
        AccessKeyPermissionView::FunctionCall {
            allowance: allowance.map(Balance::from_yoctonear),
            receiver_id: receiver.to_string(),
            method_names: methods.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn full_access_and_an_open_function_call_key_for_the_contract_fit() {
        assert_eq!(
            KeyFit::of(&AccessKeyPermissionView::FullAccess, &contract()),
            KeyFit::FullAccess
        );
        let fit = KeyFit::of(&function_call("v1.signer.testnet", &[], None), &contract());
        assert_eq!(
            fit,
            KeyFit::ContractCall {
                allowance: None,
                missing_newer_methods: vec![]
            }
        );
        assert!(fit.usable());
    }

    #[test]
    fn a_key_for_another_receiver_is_named_by_it() {
        let fit = KeyFit::of(&function_call("v1.signer", &[], None), &contract());
        assert_eq!(
            fit,
            KeyFit::OtherReceiver {
                receiver_id: "v1.signer".to_string()
            }
        );
        assert!(!fit.usable());
    }

    #[test]
    fn a_method_list_must_name_what_every_node_calls() {
        let fit = KeyFit::of(
            &function_call("v1.signer.testnet", &["respond", "vote_pk"], None),
            &contract(),
        );
        let KeyFit::MissingMethods { missing } = &fit else {
            panic!("{fit:?}")
        };
        assert!(missing.contains(&"submit_participant_info".to_string()));
        assert!(!missing.contains(&"respond".to_string()));
        assert!(!fit.usable());

        let fit = KeyFit::of(
            &function_call("v1.signer.testnet", NODE_METHODS, None),
            &contract(),
        );
        assert_eq!(
            fit,
            KeyFit::ContractCall {
                allowance: None,
                missing_newer_methods: NEWER_NODE_METHODS.iter().map(|m| m.to_string()).collect()
            }
        );
        assert!(fit.usable());
    }

    #[test]
    fn a_finite_allowance_fits_until_it_is_spent() {
        let quarter = 250_000_000_000_000_000_000_000;
        let fit = KeyFit::of(
            &function_call("v1.signer.testnet", &[], Some(quarter)),
            &contract(),
        );
        assert!(fit.usable());
        assert!(
            matches!(fit, KeyFit::ContractCall { allowance: Some(a), .. } if a.as_yoctonear() == quarter)
        );
        let spent = KeyFit::of(
            &function_call("v1.signer.testnet", &[], Some(0)),
            &contract(),
        );
        assert_eq!(spent, KeyFit::AllowanceSpent);
        assert!(!spent.usable());
    }

    #[test]
    fn gas_keys_do_not_fit() {
        let gas_call = AccessKeyPermissionView::GasKeyFunctionCall {
            balance: Balance::from_near(1),
            num_nonces: 4,
            allowance: None,
            receiver_id: "v1.signer.testnet".to_string(),
            method_names: vec![],
        };
        let gas_full = AccessKeyPermissionView::GasKeyFullAccess {
            balance: Balance::from_near(1),
            num_nonces: 4,
        };
        for permission in [gas_call, gas_full] {
            assert_eq!(KeyFit::of(&permission, &contract()), KeyFit::GasKey);
        }
    }

    #[test]
    fn permissions_are_described_in_a_few_words() {
        assert_eq!(
            describe(&AccessKeyPermissionView::FullAccess),
            "full access"
        );
        assert_eq!(
            describe(&function_call("v1.signer.testnet", &[], None)),
            "function call for v1.signer.testnet (any method, unlimited allowance)"
        );
        assert_eq!(
            describe(&function_call(
                "x.near",
                &["a", "b"],
                Some(1_500_000_000_000_000_000_000_000)
            )),
            "function call for x.near (methods a, b, allowance 1.5 NEAR left)"
        );
    }
}
