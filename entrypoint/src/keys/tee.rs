//! The signer contract's TEE views, read in the round of `state()`: the
//! image hashes it allows (`allowed_docker_image_hashes`), the
//! attestation-storage grants the node's account has left
//! (`available_attestation_grants`, near/mpc main since #4016, not in
//! 3.14.1) and the nodes whose attestation it stores (`get_tee_accounts`).
//! Wire shapes as near/mpc's `near-mpc-contract-interface` serializes them:
//! `[{image_hash: "<64 hex>", expiry_timestamp_seconds: u64 | null}]`, a
//! `u32`, and `[{account_id, tls_public_key, account_public_key}]`; other
//! fields are ignored.

use near_crypto::PublicKey;
use near_primitives::types::AccountId;
use serde::{Deserialize, Serialize};

use super::rpc::MAX_DETAIL_CHARS;
use crate::excerpt::excerpt;

/// The most entries of a list view the checks keep; a longer answer is unreadable.
pub const MAX_VIEW_ENTRIES: usize = 1000;

/// What one of the contract's views answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", content = "value", rename_all = "snake_case")]
pub enum ViewFinding<T> {
    /// The contract has no such view (an older contract).
    NoView,
    Read(T),
    /// An answer not of the view's shape, or a view that failed otherwise.
    Unreadable {
        error: String,
    },
}

impl<T> ViewFinding<T> {
    pub fn read(&self) -> Option<&T> {
        match self {
            ViewFinding::Read(value) => Some(value),
            _ => None,
        }
    }

    /// The finding for a view's answer, `parse` reading its bytes.
    pub(super) fn of(
        method: &str,
        bytes: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> ViewFinding<T> {
        match parse(bytes) {
            Ok(value) => ViewFinding::Read(value),
            Err(error) => ViewFinding::failed(&format!(
                "{method} is not the signer contract's shape: {error}"
            )),
        }
    }

    /// A view that failed (the VM's error, a parse failure), as a bounded excerpt.
    pub(super) fn failed(error: &str) -> ViewFinding<T> {
        ViewFinding::Unreadable {
            error: excerpt(error, MAX_DETAIL_CHARS),
        }
    }
}

/// The contract's TEE views, as one endpoint answered them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeeViews {
    pub allowed_image_hashes: ViewFinding<Vec<AllowedImageHash>>,
    /// `available_attestation_grants` of the node's account.
    pub attestation_grants: ViewFinding<u32>,
    pub tee_accounts: ViewFinding<Vec<TeeAccount>>,
}

impl TeeViews {
    /// A contract without any of the views.
    pub fn none() -> TeeViews {
        TeeViews {
            allowed_image_hashes: ViewFinding::NoView,
            attestation_grants: ViewFinding::NoView,
            tee_accounts: ViewFinding::NoView,
        }
    }

    /// The account whose attestation the contract stores under `tls_public_key`,
    /// when `get_tee_accounts` was read and lists it.
    pub fn attestation_owner(&self, tls_public_key: &PublicKey) -> Option<&AccountId> {
        self.tee_accounts
            .read()?
            .iter()
            .find(|entry| &entry.tls_public_key == tls_public_key)
            .map(|entry| &entry.account_id)
    }
}

/// An image the contract allows: the hash nodes report as `[tee] image_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedImageHash {
    /// 64 lowercase hex digits, without `sha256:`.
    pub image_hash: String,
    /// When the contract drops it; `None` while not yet known.
    pub expiry_timestamp_seconds: Option<u64>,
}

/// A node whose attestation the contract stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeeAccount {
    pub account_id: AccountId,
    pub tls_public_key: PublicKey,
}

/// Reads `allowed_docker_image_hashes()`.
pub fn image_hashes(bytes: &[u8]) -> Result<Vec<AllowedImageHash>, String> {
    let hashes: Vec<AllowedImageHash> = bounded_list(bytes)?;
    hashes
        .into_iter()
        .map(|mut entry| {
            let hex = &entry.image_hash;
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "image_hash {} is not 32 bytes as 64 hex digits",
                    excerpt(hex, 80)
                ));
            }
            entry.image_hash = hex.to_ascii_lowercase();
            Ok(entry)
        })
        .collect()
}

/// Reads `available_attestation_grants({account_id})`.
pub fn grants(bytes: &[u8]) -> Result<u32, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Reads `get_tee_accounts()`.
pub fn tee_accounts(bytes: &[u8]) -> Result<Vec<TeeAccount>, String> {
    bounded_list(bytes)
}

fn bounded_list<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if entries.len() > MAX_VIEW_ENTRIES {
        return Err(format!(
            "{} entries, more than the {MAX_VIEW_ENTRIES} the checks read",
            entries.len()
        ));
    }
    entries
        .into_iter()
        .map(|entry| serde_json::from_value(entry).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ed25519:6E8sCci9badyRkXb3JoRpBj5p8C6Tw41ELDZoiihKEtp";

    #[test]
    fn the_views_are_read_in_near_mpc_s_wire_shapes() {
        let hash = "C6D3A6B0C1E0F7B7D1B8C0A1F2E3D4C5B6A7980112233445566778899AABBCCD";
        let hashes = image_hashes(
            format!(r#"[{{"image_hash":"{hash}","expiry_timestamp_seconds":null}}]"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(hashes[0].image_hash, hash.to_ascii_lowercase());
        assert!(image_hashes(br#"[{"image_hash":"abc","expiry_timestamp_seconds":1}]"#).is_err());
        assert_eq!(grants(b"3"), Ok(3));
        assert!(grants(b"-1").is_err());
        let accounts = tee_accounts(
            format!(
                r#"[{{"account_id":"node0.near","tls_public_key":"{KEY}","account_public_key":"{KEY}"}}]"#
            )
            .as_bytes(),
        )
        .unwrap();
        let views = TeeViews {
            tee_accounts: ViewFinding::Read(accounts),
            ..TeeViews::none()
        };
        assert_eq!(
            views
                .attestation_owner(&KEY.parse().unwrap())
                .map(ToString::to_string),
            Some("node0.near".to_string())
        );
    }

    #[test]
    fn a_list_longer_than_the_checks_read_is_refused() {
        let long = format!("[{}]", vec!["{}"; MAX_VIEW_ENTRIES + 1].join(","));
        assert!(
            tee_accounts(long.as_bytes())
                .unwrap_err()
                .contains("more than")
        );
    }
}
