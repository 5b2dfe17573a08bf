//! How the stand-in stores a keyset, as mpc-node's `PermanentKeyStorage::store`
//! with its local backend does (near/mpc `keyshare/permanent.rs`,
//! `keyshare/local.rs`, `db.rs`), written here on its own so that a wrong
//! reader in the agent is not matched by the same mistake in a writer.
//!
//! The keyset is JSON `PermanentKeyshareData` (`epoch_id`, `keyshares`: per
//! domain `key_id` {`epoch_id`, `domain_id`, `attempt_id`} and fake but
//! well-formed `data`), sealed with AES-128-GCM under the store key as
//! `nonce ‖ ciphertext ‖ tag`. Its file `permanent_keys/epoch_<E>_with_<D>_domains`
//! is created new (never overwritten), written (in pieces with pauses when
//! asked, so a test can watch it grow) and synced; then `<home>/key` is
//! removed and hard-linked to it. What the node refuses is refused: an older
//! epoch, fewer domains, the same epoch without a new domain, a missing
//! domain, or another key id for a domain of the same epoch.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use serde::{Deserialize, Serialize};

/// `<home>/standin-keyset-request.json`: a running stand-in polls it; when it
/// appears, the stand-in removes it, stores the [`KeysetRequest`] it holds
/// (a resharing, a new domain) and writes the outcome to [`KEYSET_RESULT_FILE`].
pub const KEYSET_REQUEST_FILE: &str = "standin-keyset-request.json";
/// `<home>/standin-keyset-result.json`: a [`KeysetResult`].
pub const KEYSET_RESULT_FILE: &str = "standin-keyset-result.json";

/// A keyset for the stand-in to store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysetRequest {
    pub epoch: u64,
    /// One share per domain, in any order.
    pub shares: Vec<DomainShare>,
    /// The file is written in this many pieces (at least 1)…
    #[serde(default = "one")]
    pub pieces: u32,
    /// …with this pause after each piece but the last.
    #[serde(default)]
    pub pause_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainShare {
    pub domain_id: u64,
    pub attempt_id: u64,
}

impl KeysetRequest {
    /// Domains `0..domains`, each at attempt 0, written at once.
    pub fn new(epoch: u64, domains: u64) -> KeysetRequest {
        KeysetRequest {
            epoch,
            shares: (0..domains)
                .map(|domain_id| DomainShare {
                    domain_id,
                    attempt_id: 0,
                })
                .collect(),
            pieces: 1,
            pause_ms: 0,
        }
    }

    /// Domain `domain_id`'s share made at `attempt_id`.
    pub fn attempt(mut self, domain_id: u64, attempt_id: u64) -> KeysetRequest {
        for share in &mut self.shares {
            if share.domain_id == domain_id {
                share.attempt_id = attempt_id;
            }
        }
        self
    }

    /// Written in `pieces` with `pause` after each piece but the last.
    pub fn slowly(mut self, pieces: u32, pause: Duration) -> KeysetRequest {
        self.pieces = pieces;
        self.pause_ms = pause.as_millis() as u64;
        self
    }

    /// The name of the file it is stored as.
    pub fn file_name(&self) -> String {
        format!("epoch_{}_with_{}_domains", self.epoch, self.shares.len())
    }
}

/// What became of a [`KeysetRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeysetResult {
    /// Stored as `permanent_keys/<name>`, and `key` linked to it.
    Stored(String),
    /// Refused, with the node's words.
    Refused(String),
}

/// `PermanentKeyshareData` as the node serializes it.
#[derive(Serialize, Deserialize)]
struct Keyset {
    epoch_id: u64,
    keyshares: Vec<Keyshare>,
}

#[derive(Serialize, Deserialize)]
struct Keyshare {
    key_id: KeyEventId,
    data: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct KeyEventId {
    epoch_id: u64,
    domain_id: u64,
    attempt_id: u64,
}

/// `LegacyRootKeyshareData`: what nodes before domains wrote to `<home>/key`.
#[derive(Serialize, Deserialize)]
struct LegacyKeyshare {
    epoch: u64,
    private_share: String,
    public_key: String,
}

/// Stores `request` on `home` under `store_key_hex`, as the node does.
/// Asks the stand-in node running on `home` to store `request` (the file
/// written whole, by a rename, so the node never reads half of it) and
/// waits for what became of it.
pub fn request(home: &Path, request: &KeysetRequest) -> KeysetResult {
    let result = home.join(KEYSET_RESULT_FILE);
    let _ = std::fs::remove_file(&result);
    let temp = home.join("standin-keyset-request.tmp");
    std::fs::write(&temp, serde_json::to_string(request).unwrap()).unwrap();
    std::fs::rename(&temp, home.join(KEYSET_REQUEST_FILE)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&result) {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-in node stored no keyset within 30 s (is it running?)"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn store(home: &Path, store_key_hex: &str, request: &KeysetRequest) -> KeysetResult {
    match try_store(home, store_key_hex, request) {
        Ok(name) => KeysetResult::Stored(name),
        Err(why) => KeysetResult::Refused(why),
    }
}

fn try_store(home: &Path, store_key_hex: &str, request: &KeysetRequest) -> Result<String, String> {
    let cipher = cipher(store_key_hex)?;
    let keyset = keyset(request)?;
    if let Some(existing) = load(home, &cipher)? {
        refuses(&existing, &keyset)?;
    }
    let sealed = seal(&cipher, &serde_json::to_vec(&keyset).expect("JSON"));
    let name = request.file_name();
    let dir = home.join("permanent_keys");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(&name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("Failed to create PermanentKeyshareData file: {e}"))?;
    let pieces = request.pieces.max(1) as usize;
    let size = sealed.len().div_ceil(pieces).max(1);
    let mut chunks = sealed.chunks(size).peekable();
    while let Some(chunk) = chunks.next() {
        file.write_all(chunk)
            .and_then(|()| file.flush())
            .map_err(|e| format!("Failed to write PermanentKeyshareData file: {e}"))?;
        if chunks.peek().is_some() {
            std::thread::sleep(Duration::from_millis(request.pause_ms));
        }
    }
    file.sync_all()
        .map_err(|e| format!("Failed to sync PermanentKeyshareData file: {e}"))?;
    drop(file);
    let link = home.join("key");
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&path, &link)
        .map_err(|e| format!("Failed to link PermanentKeyshareData file: {e}"))?;
    Ok(name)
}

/// The sealed bytes of `request`'s keyset, as the node writes them.
pub fn sealed(store_key_hex: &str, request: &KeysetRequest) -> Result<Vec<u8>, String> {
    let keyset = keyset(request)?;
    Ok(seal(
        &cipher(store_key_hex)?,
        &serde_json::to_vec(&keyset).expect("JSON"),
    ))
}

/// The keyset of `request`, refused as `PermanentKeyshareData::new` refuses one.
fn keyset(request: &KeysetRequest) -> Result<Keyset, String> {
    let mut shares = request.shares.clone();
    shares.sort_by_key(|s| s.domain_id);
    if shares.is_empty() {
        return Err("Keyshares must not be empty".into());
    }
    if let Some(twice) = shares.windows(2).find(|w| w[0].domain_id == w[1].domain_id) {
        return Err(format!(
            "Duplicate domain_id DomainId({}) in keyshares",
            twice[0].domain_id
        ));
    }
    Ok(Keyset {
        epoch_id: request.epoch,
        keyshares: shares
            .iter()
            .map(|s| Keyshare {
                key_id: KeyEventId {
                    epoch_id: request.epoch,
                    domain_id: s.domain_id,
                    attempt_id: s.attempt_id,
                },
                data: fake_share(s.domain_id),
            })
            .collect(),
    })
}

/// Writes `<home>/key` in the legacy single-ECDSA format, as nodes before
/// domains did (no `permanent_keys/` file); refuses an existing `key`.
pub fn store_legacy(home: &Path, store_key_hex: &str, epoch: u64) -> Result<(), String> {
    let cipher = cipher(store_key_hex)?;
    let legacy = LegacyKeyshare {
        epoch,
        private_share: hex::encode_upper(rand::random::<[u8; 32]>()),
        public_key: public_key(0, 33),
    };
    let sealed = seal(&cipher, &serde_json::to_vec(&legacy).expect("JSON"));
    std::fs::create_dir_all(home).map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(home.join("key"))
        .map_err(|_| "Refusing to overwrite existing local keyshare".to_string())?;
    file.write_all(&sealed)
        .and_then(|()| file.sync_all())
        .map_err(|e| e.to_string())
}

fn cipher(store_key_hex: &str) -> Result<aes_gcm::Aes128Gcm, String> {
    let refused = || "Invalid encryption key: must be 32 hex characters (16 bytes)".to_string();
    let key = hex::decode(store_key_hex).map_err(|_| refused())?;
    aes_gcm::Aes128Gcm::new_from_slice(&key).map_err(|_| refused())
}

fn seal(cipher: &aes_gcm::Aes128Gcm, plaintext: &[u8]) -> Vec<u8> {
    let nonce = aes_gcm::Aes128Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher.encrypt(&nonce, plaintext).expect("encrypt");
    [nonce.as_slice(), &sealed].concat()
}

/// The keyset `<home>/key` holds, a legacy one as the node migrates it.
fn load(home: &Path, cipher: &aes_gcm::Aes128Gcm) -> Result<Option<Keyset>, String> {
    let Ok(bytes) = std::fs::read(home.join("key")) else {
        return Ok(None);
    };
    let plaintext = (bytes.len() >= 12)
        .then(|| {
            cipher
                .decrypt(aes_gcm::Nonce::from_slice(&bytes[..12]), &bytes[12..])
                .ok()
        })
        .flatten()
        .ok_or("Checking existing keyshare: Failed to decrypt key file")?;
    if let Ok(keyset) = serde_json::from_slice::<Keyset>(&plaintext) {
        return Ok(Some(keyset));
    }
    let legacy: LegacyKeyshare = serde_json::from_slice(&plaintext)
        .map_err(|e| format!("Checking existing keyshare: {e}"))?;
    Ok(Some(Keyset {
        epoch_id: legacy.epoch,
        keyshares: vec![Keyshare {
            key_id: KeyEventId {
                epoch_id: legacy.epoch,
                domain_id: 0,
                attempt_id: 0,
            },
            data: serde_json::json!({"Secp256k1": {"private_share": legacy.private_share, "public_key": legacy.public_key}}),
        }],
    }))
}

/// The rules of `PermanentKeyStorage::store`, in its words.
fn refuses(existing: &Keyset, new: &Keyset) -> Result<(), String> {
    let (old_epoch, new_epoch) = (existing.epoch_id, new.epoch_id);
    let (old_len, new_len) = (existing.keyshares.len(), new.keyshares.len());
    if old_epoch > new_epoch {
        return Err(format!(
            "Refusing to overwrite existing permanent keyshares of epoch {old_epoch} with new permanent keyshares of older epoch {new_epoch}"
        ));
    }
    if old_len > new_len {
        return Err(format!(
            "Refusing to overwrite existing permanent keyshares for {old_len} domains with new permanent keyshares for fewer domains {new_len}"
        ));
    }
    let same_epoch = old_epoch == new_epoch;
    if same_epoch && old_len >= new_len {
        return Err(format!(
            "Refusing to overwrite existing permanent keyshares of epoch {old_epoch} with new permanent keyshares of same epoch but equal number of domains"
        ));
    }
    for old in &existing.keyshares {
        let Some(new) = new
            .keyshares
            .iter()
            .find(|n| n.key_id.domain_id == old.key_id.domain_id)
        else {
            return Err(format!(
                "Refusing to overwrite existing permanent keyshare for domain id {:?} with new permanent keyshares missing that domain",
                old.key_id
            ));
        };
        if same_epoch && old.key_id != new.key_id {
            return Err(format!(
                "Refusing to overwrite existing permanent keyshare of key id {:?} with new permanent keyshare of different key id {:?} for the same epoch.",
                old.key_id, new.key_id
            ));
        }
        if public_key_of(&old.data) != public_key_of(&new.data) {
            return Err(format!(
                "Refusing to overwrite existing permanent keyshare of key id {:?} with new permanent keyshare of same domin id  {:?} but different public key.",
                old.key_id, new.key_id
            ));
        }
    }
    Ok(())
}

fn public_key_of(data: &serde_json::Value) -> Option<&serde_json::Value> {
    data.as_object()?.values().next()?.get("public_key")
}

/// A share of domain `domain_id` as the node serializes its `KeyshareData`:
/// the curve's variant around a fresh private share and the domain's
/// public key (the same in every epoch, as a resharing keeps it).
fn fake_share(domain_id: u64) -> serde_json::Value {
    let private_share = hex::encode_upper(rand::random::<[u8; 32]>());
    match domain_id % 3 {
        0 => {
            serde_json::json!({"Secp256k1": {"private_share": private_share, "public_key": public_key(domain_id, 33)}})
        }
        1 => {
            serde_json::json!({"Ed25519": {"private_share": private_share, "public_key": public_key(domain_id, 32)}})
        }
        _ => {
            serde_json::json!({"Bls12381": {"private_share": private_share, "public_key": public_key(domain_id, 96)}})
        }
    }
}

/// `len` bytes in upper-case hex that depend only on the domain.
fn public_key(domain_id: u64, len: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::with_capacity(len);
    let mut counter = 0u64;
    while bytes.len() < len {
        let mut hasher = Sha256::new();
        hasher.update(b"stand-in public key\0");
        hasher.update(domain_id.to_be_bytes());
        hasher.update(counter.to_be_bytes());
        bytes.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    bytes.truncate(len);
    hex::encode_upper(bytes)
}
