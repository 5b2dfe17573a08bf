//! A keyshare from the vault written onto a home that holds none, as the
//! node writes one: `permanent_keys/<file name>` holding the backup's bytes
//! exactly, then `key` hard-linked to it, under the home's lock, through the
//! home's fd (no link followed), owned by the node user.
//!
//! # Order, and why a kill at any point converges
//!
//! 1. The home is looked at under the lock. Anything there — `key`, a file
//!    of `permanent_keys/`, a name that is not a keyshare's — refuses the
//!    restore and is named; nothing is deleted or replaced. One state is
//!    taken as this restore's own, interrupted: `permanent_keys/` holding
//!    only the file this restore writes, with these very bytes, and `key`
//!    absent or linked to it. Then the steps left are done, and none is
//!    done twice.
//! 2. `permanent_keys/<name>` is written as a temp file beside it, synced,
//!    and linked to its name ([`atomic::create_new`]: link(2) never
//!    replaces), then the directory is synced. A kill before the link
//!    leaves a temp name, which the next agent to take the lock sweeps.
//! 3. `key` is linked to that file with link(2) straight away, then the
//!    home's directory is synced. There is no `key` to replace (step 1), so
//!    the node's own order — remove `key`, then link it — has nothing to
//!    remove, and no temp link is needed: link(2) makes `key` appear whole,
//!    pointing at a file already synced. A kill before it leaves step 1's
//!    interrupted state; a rerun links it.
//!
//! So `key` only ever names a complete file whose bytes the restore's
//! judgment opened under the store key: there is never a `key` that does
//! not decrypt.

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::linkat;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic;
use super::beneath::Dir;
use super::keyshares::{KEY_LINK, Keep, KeyLink, Look, PERMANENT_KEYS, look};
use super::{HomeError, HomeLock, NodeUser};
use crate::check::Check;
use crate::keyshare::KeyshareName;

/// The mode of the restored keyshare: the node user's alone (the node
/// itself writes it with the umask's mode; a restore has no reason to let
/// anyone else read it).
const KEYSHARE_MODE: u32 = 0o600;
/// The mode of `permanent_keys/` when the restore creates it.
const PERMANENT_KEYS_MODE: u32 = 0o700;

/// The check ids of the write.
pub mod check_ids {
    /// What the home holds before the write.
    pub const HOME: &str = "restore.home";
    /// The write itself.
    pub const WRITE: &str = "restore.write";
}

/// What a restore did on the home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreOutcome {
    /// The keyshare and `key` were written.
    Written,
    /// An interrupted restore of the same bytes was finished.
    Finished,
    /// The home already held exactly this keyshare, linked: nothing written.
    AlreadyThere,
}

/// A keyshare restored onto the home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub outcome: RestoreOutcome,
    pub name: KeyshareName,
    /// `permanent_keys/<name>` on the home.
    pub path: PathBuf,
    /// `<home>/key`, a hard link to `path`.
    pub key: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl Restored {
    /// `restore.write`: what was written where.
    pub fn check(&self) -> Check {
        let what = format!(
            "{} ({} bytes, sha256 {}) and {} linked to it",
            self.path.display(),
            self.size,
            self.sha256,
            self.key.display()
        );
        let cause = match self.outcome {
            RestoreOutcome::Written => format!("wrote {what}"),
            RestoreOutcome::Finished => {
                format!("finished an interrupted restore of the same keyshare: {what}")
            }
            RestoreOutcome::AlreadyThere => {
                format!("the home already holds this keyshare, nothing written: {what}")
            }
        };
        Check::ok(check_ids::WRITE, cause).with_detail(serde_json::json!(self))
    }
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The home holds a keyshare (or something in its place).
    #[error(
        "MPC_HOME_DIR {} already holds {}; the agent never deletes or replaces a keyshare",
        home.display(),
        found.join(", ")
    )]
    Occupied { home: PathBuf, found: Vec<String> },
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl RestoreError {
    pub fn check(&self) -> Check {
        match self {
            RestoreError::Occupied { home, .. } => Check::fail(
                check_ids::HOME,
                self.to_string(),
                format!(
                    "move it aside yourself if you mean to replace it (e.g. mv {0}/{PERMANENT_KEYS} {0}/{PERMANENT_KEYS}.aside and mv {0}/{KEY_LINK} {0}/{KEY_LINK}.aside), then run the restore again",
                    home.display()
                ),
            ),
            RestoreError::Home(e) => e.check(),
        }
    }
}

/// What the home holds in the way of a keyshare, named, as a restore
/// refuses it; empty when it holds none.
pub fn found(look: &Look) -> Vec<String> {
    let mut found = Vec::new();
    match look.key {
        KeyLink::Absent => {}
        KeyLink::Linked(name) => found.push(format!(
            "{KEY_LINK} (a hard link to {PERMANENT_KEYS}/{name})"
        )),
        KeyLink::Other => found.push(format!(
            "{KEY_LINK} (a keyshare of its own, not a link to a file of {PERMANENT_KEYS}/)"
        )),
    }
    for file in &look.files {
        found.push(format!(
            "{PERMANENT_KEYS}/{} ({} bytes)",
            file.name, file.size
        ));
    }
    for refused in &look.refused {
        found.push(format!("{} ({})", refused.path.display(), refused.reason));
    }
    for stray in strays(look) {
        found.push(stray.display().to_string());
    }
    found
}

/// The names under `permanent_keys/` that are no keyshare's, but for the
/// temp files an interrupted agent left (its own, swept under the lock).
fn strays(look: &Look) -> impl Iterator<Item = &PathBuf> {
    look.ignored.iter().filter(|path| {
        !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(super::scratch::is_scratch)
    })
}

/// What a restore of `name`, whose bytes have the SHA-256 `sha256`, has to
/// do on a home `seen` as it is: everything ([`RestoreOutcome::Written`]),
/// the rest of an interrupted restore of the same bytes, or nothing. `Err`
/// when the home holds anything else of a keyshare: it is named, and left
/// as it is. The one rule for the restore's look before the lock and its
/// write under it.
pub fn to_do(
    home: &Path,
    seen: &Look,
    name: KeyshareName,
    sha256: &str,
) -> Result<RestoreOutcome, RestoreError> {
    let clean = seen.refused.is_empty() && strays(seen).next().is_none();
    let ours = clean
        && matches!(seen.files.as_slice(), [file] if file.name == name && file.sha256 == sha256);
    match (&seen.key, seen.files.is_empty()) {
        (KeyLink::Absent, true) if clean => Ok(RestoreOutcome::Written),
        (KeyLink::Absent, false) if ours => Ok(RestoreOutcome::Finished),
        (KeyLink::Linked(linked), false) if ours && *linked == name => {
            Ok(RestoreOutcome::AlreadyThere)
        }
        _ => Err(RestoreError::Occupied {
            home: home.to_path_buf(),
            found: found(seen),
        }),
    }
}

/// Writes `bytes` (a keyshare exactly as the vault holds it) onto the home
/// `lock` holds, as `permanent_keys/<name>`, and links `key` to it. Refused,
/// with nothing written, when the home holds anything of a keyshare but an
/// interrupted restore of these very bytes. File work only, synchronous:
/// the caller runs it off the async threads, under its own timeout.
pub fn write(
    lock: &HomeLock,
    name: KeyshareName,
    bytes: &[u8],
    owner: &NodeUser,
) -> Result<Restored, RestoreError> {
    let home = lock.home();
    let sha256 = hex::encode(Sha256::digest(bytes));
    let seen = look(home, Keep::Digests)?;
    let file_name = name.to_string();
    let restored = |outcome| Restored {
        outcome,
        name,
        path: home.join(PERMANENT_KEYS).join(&file_name),
        key: home.join(KEY_LINK),
        size: bytes.len() as u64,
        sha256: sha256.clone(),
    };
    let keys_dir = Path::new(PERMANENT_KEYS);
    let keys_path = home.join(PERMANENT_KEYS);
    let outcome = match to_do(home, &seen, name, &sha256)? {
        RestoreOutcome::Written => {
            let dir = atomic::ensure_dir(home, keys_dir, PERMANENT_KEYS_MODE, owner)
                .map_err(HomeError::io("create", &keys_path))?;
            atomic::create_new(&dir, &file_name, bytes, KEYSHARE_MODE, owner)
                .map_err(HomeError::io("write", &keys_path.join(&file_name)))?;
            RestoreOutcome::Written
        }
        outcome => outcome,
    };
    let root = Dir::open(home).map_err(HomeError::io("open", home))?;
    let dir = root
        .dir(keys_dir)
        .map_err(HomeError::io("open", &keys_path))?
        .ok_or_else(|| {
            HomeError::io("open", &keys_path)(io::Error::from(io::ErrorKind::NotFound))
        })?;
    if outcome != RestoreOutcome::AlreadyThere {
        link_key(&dir, &file_name, &root).map_err(HomeError::io("link", &home.join(KEY_LINK)))?;
    }
    // Durable whatever an earlier, interrupted run left unsynced.
    dir.sync().map_err(HomeError::io("sync", &keys_path))?;
    root.sync().map_err(HomeError::io("sync", home))?;
    Ok(restored(outcome))
}

/// `key` as a hard link to `permanent_keys/<file_name>`: link(2), which
/// never replaces a name (the home had no `key`, under the lock).
fn link_key(keys: &Dir, file_name: &str, home: &Dir) -> io::Result<()> {
    match linkat(keys, file_name, home, KEY_LINK, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} appeared during the restore",
                home.join(KEY_LINK).display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}
