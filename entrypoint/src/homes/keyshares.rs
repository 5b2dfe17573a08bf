//! One look at the home's keyshares: `permanent_keys/` listed and each
//! keyshare read from the home's fd, no link followed, as it is on disk.
//!
//! The node stores a keyset by creating its file new, writing it, syncing
//! it, then removing `<home>/key` and linking it again to the new file: a
//! look may find no `key`, or a file still growing. A file is taken once two
//! looks agree on it ([`Look::settled`]). File work only, synchronous: the
//! caller runs it off the async threads, under its own timeout.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::stat::FileStat;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::HomeError;
use super::beneath::{self, Dir, Refusal};
use crate::keyshare::KeyshareName;

/// The directory of the node's keysets, below the home.
pub const PERMANENT_KEYS: &str = "permanent_keys";
/// The hard link to the keyset the node loads.
pub const KEY_LINK: &str = "key";

/// Whether a look keeps the files' bytes (to upload them) or only their digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Bytes,
    Digests,
}

/// One keyshare file as it was read.
#[derive(Clone, Debug, Serialize)]
pub struct KeyshareFile {
    pub name: KeyshareName,
    /// Bytes read.
    pub size: u64,
    /// SHA-256 of the bytes read, in hex.
    pub sha256: String,
    #[serde(serialize_with = "rfc3339")]
    pub modified: SystemTime,
    /// The bytes, exactly as on disk, when the look kept them.
    #[serde(skip)]
    pub bytes: Option<Zeroizing<Vec<u8>>>,
    #[serde(skip)]
    inode: (u64, u64),
    /// What `stat` said before the bytes were read.
    #[serde(skip)]
    stamp: Stamp,
    /// When they were read.
    #[serde(skip)]
    read_at: SystemTime,
}

/// What changes when a file's bytes do: its inode, size, and modification
/// and change times (a rewrite that sets the modification time back still
/// moves the change time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    inode: (u64, u64),
    size: i64,
    modified: (i64, i64),
    changed: (i64, i64),
}

/// A digest is taken again by [`look_again`] unless the file had been left
/// alone this long when it was read: file times tick coarsely (a jiffy, or
/// a second on some servers), so a write just after a read may not move them.
const QUIET_BEFORE_READ: Duration = Duration::from_secs(2);

/// A name under `permanent_keys/` that was not read, and why (a link, a
/// directory, a file too large).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub path: PathBuf,
    pub reason: String,
}

/// What `<home>/key` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "name")]
pub enum KeyLink {
    /// None: a home without a keyset, or the node between removing and
    /// linking it again.
    Absent,
    /// A hard link to this keyshare file.
    Linked(KeyshareName),
    /// Something else: a file of its own (a legacy home), a link, or a
    /// file of `permanent_keys/` this look could not read.
    Other,
}

/// The home's keyshares at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Look {
    /// Ordered oldest first.
    pub files: Vec<KeyshareFile>,
    pub refused: Vec<Refused>,
    /// Regular files whose names are not keyshare names.
    pub ignored: Vec<PathBuf>,
    pub key: KeyLink,
}

impl Look {
    /// The newest keyshare file (the greatest epoch, then domains).
    pub fn newest(&self) -> Option<&KeyshareFile> {
        self.files.last()
    }

    pub fn file(&self, name: KeyshareName) -> Option<&KeyshareFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The files `previous` saw with the same size, bytes and modification
    /// time: no longer being written. A file new since `previous`, or
    /// changed, waits for the next look.
    pub fn settled(&self, previous: &Look) -> Vec<&KeyshareFile> {
        self.files
            .iter()
            .filter(|f| {
                previous.file(f.name).is_some_and(|p| {
                    p.size == f.size && p.sha256 == f.sha256 && p.modified == f.modified
                })
            })
            .collect()
    }
}

/// Looks at `home`'s `permanent_keys/` and `key`. A home without
/// `permanent_keys/` has no keyshare; `permanent_keys` itself as a link is
/// an error naming it.
pub fn look(home: &Path, keep: Keep) -> Result<Look, HomeError> {
    look_at(home, keep, None)
}

/// [`look`] keeping digests only, after `previous`: a file `stat` finds as
/// `previous` read it (and left alone for a while then) keeps its digest
/// without being read again, so a steady home costs a listing and a `stat`
/// per file.
pub fn look_again(home: &Path, previous: &Look) -> Result<Look, HomeError> {
    look_at(home, Keep::Digests, Some(previous))
}

fn look_at(home: &Path, keep: Keep, previous: Option<&Look>) -> Result<Look, HomeError> {
    let root = Dir::open(home).map_err(HomeError::io("open", home))?;
    let mut look = Look {
        files: Vec::new(),
        refused: Vec::new(),
        ignored: Vec::new(),
        key: KeyLink::Absent,
    };
    let dir_path = home.join(PERMANENT_KEYS);
    let Some(dir) = root
        .dir(Path::new(PERMANENT_KEYS))
        .map_err(HomeError::io("open", &dir_path))?
    else {
        look.key = key_link(&root, &look.files)?;
        return Ok(look);
    };
    let entries = dir.entries().map_err(HomeError::io("list", &dir_path))?;
    for (name, stat) in entries {
        let path = dir_path.join(&name);
        let keyshare = name.to_str().and_then(KeyshareName::parse);
        if !beneath::is_file(&stat) {
            look.refused.push(Refused {
                path,
                reason: format!(
                    "{}: only regular files are read under {PERMANENT_KEYS}/, and no link is followed",
                    beneath::kind_of(&stat)
                ),
            });
            continue;
        }
        let Some(keyshare) = keyshare else {
            look.ignored.push(path);
            continue;
        };
        let known = previous.and_then(|p| p.file(keyshare)).filter(|known| {
            known.stamp == stamp(&stat)
                && known
                    .read_at
                    .duration_since(known.modified)
                    .is_ok_and(|quiet| quiet >= QUIET_BEFORE_READ)
        });
        if let Some(known) = known {
            look.files.push(KeyshareFile {
                bytes: None,
                ..known.clone()
            });
            continue;
        }
        match read(&dir, &name, keyshare, keep) {
            Ok(Some(file)) => look.files.push(file),
            // Gone since the listing.
            Ok(None) => {}
            Err(e) => match Refusal::take(e) {
                Ok(refusal) => look.refused.push(Refused {
                    path,
                    reason: refusal.to_string(),
                }),
                Err(source) => {
                    return Err(HomeError::Io {
                        action: "read",
                        path,
                        source,
                    });
                }
            },
        }
    }
    look.files.sort_by_key(|f| f.name);
    look.key = key_link(&root, &look.files)?;
    Ok(look)
}

fn read(
    dir: &Dir,
    name: &OsStr,
    keyshare: KeyshareName,
    keep: Keep,
) -> std::io::Result<Option<KeyshareFile>> {
    let read_at = SystemTime::now();
    let Some((bytes, stat)) = dir.read_with_stat(Path::new(name))? else {
        return Ok(None);
    };
    Ok(Some(KeyshareFile {
        stamp: stamp(&stat),
        read_at,
        name: keyshare,
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes.as_slice())),
        modified: modified(&stat),
        bytes: (keep == Keep::Bytes).then_some(bytes),
        inode: inode(&stat),
    }))
}

fn key_link(root: &Dir, files: &[KeyshareFile]) -> Result<KeyLink, HomeError> {
    let stat = root
        .stat(Path::new(KEY_LINK))
        .map_err(HomeError::io("read", &root.join(KEY_LINK)))?;
    Ok(match stat {
        None => KeyLink::Absent,
        Some(stat) if beneath::is_file(&stat) => files
            .iter()
            .find(|f| f.inode == inode(&stat))
            .map_or(KeyLink::Other, |f| KeyLink::Linked(f.name)),
        Some(_) => KeyLink::Other,
    })
}

fn stamp(stat: &FileStat) -> Stamp {
    Stamp {
        inode: inode(stat),
        size: stat.st_size,
        modified: (stat.st_mtime, stat.st_mtime_nsec),
        changed: (stat.st_ctime, stat.st_ctime_nsec),
    }
}

fn inode(stat: &FileStat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

fn modified(stat: &FileStat) -> SystemTime {
    let since = |secs: i64, nanos: i64| {
        Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.max(0) as u64)
    };
    if stat.st_mtime >= 0 {
        SystemTime::UNIX_EPOCH + since(stat.st_mtime, stat.st_mtime_nsec)
    } else {
        SystemTime::UNIX_EPOCH - since(stat.st_mtime, 0)
    }
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_nanos(*time))
}
