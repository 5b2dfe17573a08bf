//! What a keyshare's plaintext says about itself: its epoch and the key ids
//! of its shares (near/mpc `keyshare/permanent.rs`), never the shares.
//!
//! `PermanentKeyshareData` is `{"epoch_id": E, "keyshares": [{"key_id":
//! {"epoch_id", "domain_id", "attempt_id"}, "data": {…}}]}`, one share per
//! domain; older homes may hold `LegacyRootKeyshareData` (`{"epoch",
//! "private_share", "public_key"}`), one ECDSA share the node migrates on
//! start to domain 0, attempt 0. Every `data`, `private_share` and
//! `public_key` is skipped unread (`IgnoredAny`).

use std::collections::BTreeSet;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::sealed::{self, OpenError};
use crate::secrets::Secret;

/// One share's identity: the epoch, the domain and the attempt that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId {
    pub epoch_id: u64,
    pub domain_id: u64,
    pub attempt_id: u64,
}

/// How the plaintext is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyshareFormat {
    /// `PermanentKeyshareData`, what the node writes.
    Permanent,
    /// `LegacyRootKeyshareData`, one ECDSA share from before domains.
    Legacy,
}

/// A keyshare's epoch and key ids, ordered by domain. A legacy share is
/// described as the node migrates it: domain 0, attempt 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyshareContents {
    pub format: KeyshareFormat,
    pub epoch_id: u64,
    pub key_ids: Vec<KeyId>,
}

/// Why sealed bytes are not a keyshare the node would load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentsError {
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Neither format; the position of the first error in the plaintext, not
    /// the error's text (it could quote what it read).
    #[error(
        "the plaintext is neither PermanentKeyshareData nor LegacyRootKeyshareData (JSON {category} error at line {line}, column {column})"
    )]
    NotAKeyshare {
        category: &'static str,
        line: usize,
        column: usize,
    },
    /// Parsed, but the node refuses it: an empty keyset, a share of another
    /// epoch, a domain twice.
    #[error("the keyset is one the node refuses: {rule}")]
    Refused { rule: String },
}

#[derive(Deserialize)]
struct PermanentKeyshareData {
    epoch_id: u64,
    keyshares: Vec<Keyshare>,
}

#[derive(Deserialize)]
struct Keyshare {
    key_id: KeyId,
    #[serde(rename = "data")]
    _data: IgnoredAny,
}

#[derive(Deserialize)]
struct LegacyRootKeyshareData {
    epoch: u64,
    #[serde(rename = "private_share")]
    _private_share: IgnoredAny,
    #[serde(rename = "public_key")]
    _public_key: IgnoredAny,
}

/// Opens `sealed` with `store_key` and reads what it holds; the plaintext is
/// wiped before this returns.
pub fn contents(store_key: &Secret, sealed: &[u8]) -> Result<KeyshareContents, ContentsError> {
    let plaintext = sealed::open(store_key, sealed)?;
    read(&plaintext)
}

/// What `plaintext` holds, as the node reads it (`PermanentKeyshareData`
/// first, the legacy format when that fails).
fn read(plaintext: &[u8]) -> Result<KeyshareContents, ContentsError> {
    let permanent = match serde_json::from_slice::<PermanentKeyshareData>(plaintext) {
        Ok(data) => return keyset(data),
        Err(e) => e,
    };
    if let Ok(legacy) = serde_json::from_slice::<LegacyRootKeyshareData>(plaintext) {
        return Ok(KeyshareContents {
            format: KeyshareFormat::Legacy,
            epoch_id: legacy.epoch,
            key_ids: vec![KeyId {
                epoch_id: legacy.epoch,
                domain_id: 0,
                attempt_id: 0,
            }],
        });
    }
    Err(ContentsError::NotAKeyshare {
        category: match permanent.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "end-of-input",
        },
        line: permanent.line(),
        column: permanent.column(),
    })
}

/// The rules of upstream's `PermanentKeyshareData::new`.
fn keyset(data: PermanentKeyshareData) -> Result<KeyshareContents, ContentsError> {
    let refused = |rule: String| Err(ContentsError::Refused { rule });
    if data.keyshares.is_empty() {
        return refused("it holds no share".into());
    }
    let mut domains = BTreeSet::new();
    for share in &data.keyshares {
        if share.key_id.epoch_id != data.epoch_id {
            return refused(format!(
                "the share of domain {} is of epoch {}, the keyset of epoch {}",
                share.key_id.domain_id, share.key_id.epoch_id, data.epoch_id
            ));
        }
        if !domains.insert(share.key_id.domain_id) {
            return refused(format!("domain {} has two shares", share.key_id.domain_id));
        }
    }
    let mut key_ids: Vec<KeyId> = data.keyshares.iter().map(|s| s.key_id).collect();
    key_ids.sort_by_key(|k| k.domain_id);
    Ok(KeyshareContents {
        format: KeyshareFormat::Permanent,
        epoch_id: data.epoch_id,
        key_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_data_is_never_read_and_never_quoted() {
        let text = br#"{"epoch_id": 4, "keyshares": [
            {"key_id": {"epoch_id": 4, "domain_id": 1, "attempt_id": 2}, "data": {"Ed25519": {"private_share": "SECRETSECRET"}}},
            {"key_id": {"epoch_id": 4, "domain_id": 0, "attempt_id": 0}, "data": {"Secp256k1": ["anything", 1, null]}}
        ]}"#;
        let contents = read(text).unwrap();
        assert_eq!(contents.format, KeyshareFormat::Permanent);
        assert_eq!(contents.epoch_id, 4);
        assert_eq!(
            contents
                .key_ids
                .iter()
                .map(|k| (k.domain_id, k.attempt_id))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 2)]
        );
        let broken = br#"{"epoch_id": "SECRETSECRET", "keyshares": []}"#;
        let err = read(broken).unwrap_err();
        assert!(matches!(err, ContentsError::NotAKeyshare { .. }), "{err:?}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn a_legacy_share_is_named_and_read_as_the_node_migrates_it() {
        let text = br#"{"epoch": 7, "private_share": "AB", "public_key": "02CD"}"#;
        assert_eq!(
            read(text).unwrap(),
            KeyshareContents {
                format: KeyshareFormat::Legacy,
                epoch_id: 7,
                key_ids: vec![KeyId {
                    epoch_id: 7,
                    domain_id: 0,
                    attempt_id: 0
                }],
            }
        );
        // A legacy share needs its share and its key, as upstream's struct does.
        assert!(read(br#"{"epoch": 7}"#).is_err());
    }

    #[test]
    fn keysets_the_node_refuses_are_refused() {
        for (text, says) in [
            (r#"{"epoch_id": 1, "keyshares": []}"#, "no share"),
            (
                r#"{"epoch_id": 2, "keyshares": [{"key_id": {"epoch_id": 1, "domain_id": 0, "attempt_id": 0}, "data": {}}]}"#,
                "of epoch 1",
            ),
            (
                r#"{"epoch_id": 1, "keyshares": [{"key_id": {"epoch_id": 1, "domain_id": 0, "attempt_id": 0}, "data": {}}, {"key_id": {"epoch_id": 1, "domain_id": 0, "attempt_id": 1}, "data": {}}]}"#,
                "two shares",
            ),
        ] {
            let err = read(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }
}
