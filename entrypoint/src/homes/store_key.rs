//! The secret store key against the shares already on the home (invariant 2):
//! what counts as an existing share, and whether a key decrypts one.
//!
//! The node encrypts `<home>/key` (a hard link to the newest
//! `permanent_keys/*`), `temporary_keys/keyshare_*` and the values of the
//! `assets/` database with AES-128-GCM under `MPC_SECRET_STORE_KEY`; a file is
//! `nonce (12) ‖ ciphertext ‖ tag (16)` with no associated data. A key is
//! checked by opening one file with [`keyshare::open`]: the tag either
//! verifies or it does not.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use super::HomeError;
use super::beneath;
use crate::check::Check;
use crate::keyshare::{self, OpenError};
use crate::secrets::Secret;

/// Where a share was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareKind {
    /// `<home>/key`, the share the node loads.
    Key,
    /// A file in `permanent_keys/`.
    Permanent,
    /// A `temporary_keys/keyshare_*` file (not the empty `started_*` markers).
    Temporary,
    /// A non-empty `assets/` database.
    Assets,
}

/// Evidence that the home already holds encrypted state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Share {
    pub kind: ShareKind,
    pub path: PathBuf,
}

/// Every existing share on `home`: files, never empty directories (the node
/// creates `permanent_keys/` and `temporary_keys/` on every start).
pub fn shares(home: &Path) -> Result<Vec<Share>, HomeError> {
    let mut found = Vec::new();
    let key = home.join("key");
    if non_empty_file(&key)? {
        found.push(Share {
            kind: ShareKind::Key,
            path: key,
        });
    }
    for path in files_in(&home.join("permanent_keys"))? {
        if non_empty_file(&path)? {
            found.push(Share {
                kind: ShareKind::Permanent,
                path,
            });
        }
    }
    for path in files_in(&home.join("temporary_keys"))? {
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("keyshare_"));
        if named && non_empty_file(&path)? {
            found.push(Share {
                kind: ShareKind::Temporary,
                path,
            });
        }
    }
    let assets = home.join("assets");
    if !files_in(&assets)?.is_empty() {
        found.push(Share {
            kind: ShareKind::Assets,
            path: assets,
        });
    }
    Ok(found)
}

/// The entries of `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, HomeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HomeError::Io {
                action: "list",
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(HomeError::io("list", dir))?;
    paths.sort();
    Ok(paths)
}

/// A link is not a share: `lstat`, not `stat`.
fn non_empty_file(path: &Path) -> Result<bool, HomeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_file() && meta.len() > 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(HomeError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What a store key means for the home. Keys appear only as fingerprints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum StoreKeyVerdict {
    /// Nothing is encrypted yet: any valid key fits (and may be generated).
    NoShares,
    /// The key decrypts `file`.
    Decrypts { file: PathBuf, fingerprint: String },
    /// The key does not decrypt `file`: the node would stop with "Failed to decrypt key file".
    DoesNotDecrypt { file: PathBuf, fingerprint: String },
    /// Shares exist, but none is a key file the key can be tried on (only `assets/`).
    Unverifiable { shares: Vec<PathBuf> },
    /// The key is not 32 hex characters.
    Malformed { rule: &'static str },
}

impl StoreKeyVerdict {
    /// `homes.store_key`.
    pub fn check(&self) -> Check {
        let id = "homes.store_key";
        let check = match self {
            StoreKeyVerdict::NoShares => Check::ok(
                id,
                "no keyshare on the home yet: the node will encrypt its first share with MPC_SECRET_STORE_KEY",
            ),
            StoreKeyVerdict::Decrypts { file, fingerprint } => Check::ok(
                id,
                format!(
                    "MPC_SECRET_STORE_KEY (sha256:{fingerprint}…) decrypts {}",
                    file.display()
                ),
            ),
            StoreKeyVerdict::DoesNotDecrypt { file, fingerprint } => Check::fail(
                id,
                format!(
                    "MPC_SECRET_STORE_KEY (sha256:{fingerprint}…) does not decrypt {}; the node would stop with \"Failed to decrypt key file\"",
                    file.display()
                ),
                "restore the store key these shares were written with (Secrets Manager keeps earlier versions, e.g. AWSPREVIOUS); never replace it while shares exist",
            ),
            StoreKeyVerdict::Unverifiable { shares } => Check::warn(
                id,
                format!(
                    "the home holds encrypted state ({}) but no key file to try MPC_SECRET_STORE_KEY on",
                    shares
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "make sure MPC_SECRET_STORE_KEY is the key this home was written with",
            ),
            StoreKeyVerdict::Malformed { rule } => Check::fail(
                id,
                format!("MPC_SECRET_STORE_KEY {rule}"),
                "set it to the 32 hex characters (16 bytes) of the AES-128 store key",
            ),
        };
        check.with_detail(serde_json::to_value(self).unwrap_or(json!(null)))
    }
}

/// Tries `key_hex` on the home's shares: `<home>/key`, else the first
/// `permanent_keys/` file, else the first `temporary_keys/keyshare_*`.
pub fn verify_store_key(home: &Path, key_hex: &Secret) -> Result<StoreKeyVerdict, HomeError> {
    if let Err(OpenError::MalformedKey { rule }) = keyshare::check_store_key(key_hex) {
        return Ok(StoreKeyVerdict::Malformed { rule });
    }
    let found = shares(home)?;
    if found.is_empty() {
        return Ok(StoreKeyVerdict::NoShares);
    }
    let candidate = [ShareKind::Key, ShareKind::Permanent, ShareKind::Temporary]
        .into_iter()
        .find_map(|kind| found.iter().find(|s| s.kind == kind));
    let Some(share) = candidate else {
        return Ok(StoreKeyVerdict::Unverifiable {
            shares: found.into_iter().map(|s| s.path).collect(),
        });
    };
    let rel = share.path.strip_prefix(home).unwrap_or(&share.path);
    let bytes = beneath::read_file(home, rel)
        .and_then(|b| b.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
        .map_err(HomeError::io("read", &share.path))?;
    let file = share.path.clone();
    let fingerprint = key_hex.fingerprint();
    Ok(match keyshare::open(key_hex, &bytes) {
        Ok(_) => StoreKeyVerdict::Decrypts { file, fingerprint },
        Err(OpenError::MalformedKey { rule }) => StoreKeyVerdict::Malformed { rule },
        Err(OpenError::TooShort { .. } | OpenError::AnotherKey) => {
            StoreKeyVerdict::DoesNotDecrypt { file, fingerprint }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_keys_are_named_without_their_value() {
        let home = tempfile::tempdir().unwrap();
        for bad in ["0123", "zz23456789abcdef0123456789abcdef", ""] {
            let verdict = verify_store_key(home.path(), &Secret::new(bad)).unwrap();
            assert!(
                matches!(verdict, StoreKeyVerdict::Malformed { .. }),
                "{verdict:?}"
            );
            let shown = serde_json::to_string(&verdict.check()).unwrap();
            assert!(bad.is_empty() || !shown.contains(bad), "{shown}");
        }
    }

    #[test]
    fn a_file_shorter_than_a_nonce_does_not_decrypt() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("key"), b"short").unwrap();
        let verdict = verify_store_key(
            home.path(),
            &Secret::new("00112233445566778899aabbccddeeff"),
        )
        .unwrap();
        assert!(
            matches!(verdict, StoreKeyVerdict::DoesNotDecrypt { .. }),
            "{verdict:?}"
        );
    }
}
