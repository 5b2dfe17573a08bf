//! The node's sealed files: AES-128-GCM under `MPC_SECRET_STORE_KEY`, laid
//! out `nonce (12) ‖ ciphertext ‖ tag (16)` with no associated data (near/mpc
//! `db.rs`), the layout of `<home>/key`, `permanent_keys/*` and
//! `temporary_keys/*`. A store key is judged by opening a file: the tag
//! verifies or it does not.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use zeroize::Zeroizing;

use crate::secrets::Secret;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why sealed bytes did not open. Never carries a byte of the key or of the
/// plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The store key's text broke `rule`.
    #[error("MPC_SECRET_STORE_KEY {rule}")]
    MalformedKey { rule: &'static str },
    #[error(
        "{len} bytes are fewer than a sealed file's nonce and tag ({NONCE_LEN} + {TAG_LEN}): the file is cut short"
    )]
    TooShort { len: usize },
    #[error(
        "the AES-GCM tag did not verify: the file was sealed under another store key, or its bytes changed"
    )]
    AnotherKey,
}

/// Whether `store_key` is a store key at all: 32 hex characters (16 bytes).
pub fn check_store_key(store_key: &Secret) -> Result<(), OpenError> {
    cipher(store_key).map(drop)
}

/// The plaintext of `sealed`, wiped when dropped.
pub fn open(store_key: &Secret, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let cipher = cipher(store_key)?;
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::TooShort { len: sealed.len() });
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| OpenError::AnotherKey)
}

fn cipher(store_key: &Secret) -> Result<Aes128Gcm, OpenError> {
    let key = Zeroizing::new(hex::decode(store_key.expose().as_bytes()).map_err(|_| {
        OpenError::MalformedKey {
            rule: "is not hex: must be 32 hex characters",
        }
    })?);
    Aes128Gcm::new_from_slice(&key).map_err(|_| OpenError::MalformedKey {
        rule: "must be 32 hex characters (16 bytes)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{AeadCore, OsRng};

    const KEY: &str = "00112233445566778899aabbccddeeff";

    fn seal(key_hex: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes128Gcm::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let nonce = Aes128Gcm::generate_nonce(&mut OsRng);
        [
            nonce.as_slice(),
            &cipher.encrypt(&nonce, plaintext).unwrap(),
        ]
        .concat()
    }

    #[test]
    fn the_key_that_sealed_opens_and_another_is_named_as_such() {
        let sealed = seal(KEY, b"{\"epoch_id\":1}");
        assert_eq!(
            open(&Secret::new(KEY), &sealed).unwrap().as_slice(),
            b"{\"epoch_id\":1}"
        );
        let other = Secret::new("ffeeddccbbaa99887766554433221100");
        assert_eq!(open(&other, &sealed), Err(OpenError::AnotherKey));
        let mut changed = sealed.clone();
        changed[NONCE_LEN] ^= 1;
        assert_eq!(
            open(&Secret::new(KEY), &changed),
            Err(OpenError::AnotherKey)
        );
    }

    #[test]
    fn short_files_and_malformed_keys_are_refused_without_the_key() {
        assert_eq!(
            open(&Secret::new(KEY), &[0; NONCE_LEN + TAG_LEN - 1]),
            Err(OpenError::TooShort { len: 27 })
        );
        // The tag alone over an empty plaintext is a whole file.
        assert_eq!(open(&Secret::new(KEY), &seal(KEY, b"")).unwrap().len(), 0);
        for bad in ["0123", "zz112233445566778899aabbccddeeff"] {
            let err = open(&Secret::new(bad), &seal(KEY, b"x")).unwrap_err();
            assert!(matches!(err, OpenError::MalformedKey { .. }), "{err:?}");
            assert!(!err.to_string().contains(bad), "{err}");
            assert_eq!(check_store_key(&Secret::new(bad)), Err(err));
        }
        assert_eq!(check_store_key(&Secret::new(KEY)), Ok(()));
    }
}
