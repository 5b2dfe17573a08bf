//! The `homes` stage: where `MPC_HOME_DIR` is and whether it can hold the
//! node's state, one node per home, the first-boot init, and the files the
//! node reads on every boot. Nothing that exists on the home is ever deleted
//! or overwritten in place.
//!
//! Two entry points: [`inspect`] (read-only, before the lock: the checks
//! `agent doctor` shows, with [`HomeInspection::survey`]) and [`prepare`]
//! (under the lock: store key, init, patches, secrets.json → [`NodeHome`]).
//! Their pieces:
//! - [`filesystem`]: the filesystem and mount under the home, free space,
//!   owner, a real write ([`Check`]s, nothing written except the probe);
//! - [`owner`]: the user the node runs as, owner of everything written here;
//! - [`lock`]: the exclusive lock and its holder; [`scratch`]: what an
//!   interrupted agent leaves, swept under the lock;
//! - [`store_key`]: the existing shares and whether the store key decrypts them;
//! - [`backup_key`]: the backup key kept across starts;
//! - [`init`]: `mpc-node init` in a staging directory, moved into place;
//! - [`restore`]: a keyshare from the vault written onto a home without one;
//! - [`config_json`], [`config_yaml`], [`start_config`], [`secrets_file`]:
//!   the files the node reads, each written through [`atomic`];
//! - [`beneath`]: every name on the home opened from the home's fd, never
//!   through a link;
//! - [`runner`]: file work on the home on a thread of its own, watched.

pub mod atomic;
pub mod backup_key;
pub mod beneath;
pub mod config_json;
pub mod config_yaml;
pub mod efs;
pub mod filesystem;
pub mod init;
mod inspect;
mod keyshares;
pub mod lock;
pub mod owner;
mod prepare;
pub mod restore;
pub mod runner;
pub mod scratch;
pub mod secrets_file;
pub mod store_key;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::check::Check;
use crate::stage::Failure;

pub use atomic::Written;
pub use inspect::{HomeInputs, HomeInspection, WriteTest, inspect};
pub use keyshares::{
    KEY_LINK, Keep, KeyLink, KeyshareFile, Look, PERMANENT_KEYS, Refused, look, look_again,
};
pub use lock::{Holder, HomeLock};
pub use owner::NodeUser;
pub use prepare::{NodeHome, prepare};
pub use runner::{IoWatch, Stall};

/// The version recorded in `holder.json` and `initialized.json`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One value changed in a file the node reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edit {
    /// Dotted path of the value (`store.load_mem_tries_for_tracked_shards`).
    pub path: String,
    /// `None` when the value was absent.
    pub from: Option<Value>,
    pub to: Value,
}

impl Edit {
    fn new(path: String, from: Option<Value>, to: Value) -> Edit {
        Edit { path, from, to }
    }
}

/// What an every-boot update did to one file the node reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileUpdate {
    pub path: PathBuf,
    pub written: Written,
    pub edits: Vec<Edit>,
}

impl FileUpdate {
    /// `homes.<file name>`: what changed, and where the previous version is.
    pub fn check(&self) -> Check {
        let name = self
            .path
            .file_name()
            .map_or("file".into(), |n| n.to_string_lossy());
        let id = format!("homes.{name}");
        let changed = || {
            self.edits
                .iter()
                .map(|e| e.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cause = match &self.written {
            Written::Unchanged => format!("{name} is up to date"),
            Written::Created => format!("wrote {name}"),
            Written::Replaced {
                backup: Some(backup),
            } => format!(
                "updated {} in {name}; the previous version is {}",
                changed(),
                backup.display()
            ),
            Written::Replaced { backup: None } => format!("updated {} in {name}", changed()),
        };
        Check::ok(id, cause).with_detail(json!(self))
    }
}

/// Why the home cannot be used. Carries paths, public keys and holders, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("MPC_HOME_DIR {} does not exist", home.display())]
    Missing { home: PathBuf },
    #[error("MPC_HOME_DIR {} is not a directory", home.display())]
    NotADirectory { home: PathBuf },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("AGENT_NODE_USER {spec}: {reason}")]
    UnknownUser { spec: String, reason: String },
    #[error("another agent has held the lock on {} for the last {}s: {}", home.display(), waited.as_secs(), holder.as_ref().map_or("holder unknown".to_string(), |h| h.to_string()))]
    LockTimeout {
        home: PathBuf,
        waited: Duration,
        holder: Option<Holder>,
    },
    #[error("cannot lock {}: {source}", home.display())]
    LockUnsupported {
        home: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} cannot be parsed ({reason}); it is left as it is", path.display())]
    Unparsable { path: PathBuf, reason: String },
    /// A name on the home that is a link, not a regular file, too large,
    /// hard-linked or someone else's.
    #[error(transparent)]
    Refused(#[from] beneath::Refusal),
    #[error(transparent)]
    Init(#[from] init::InitError),
}

impl HomeError {
    /// For `map_err`: an I/O error while doing `action` to `path`.
    pub(crate) fn io(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> HomeError + use<> {
        let path = path.to_path_buf();
        move |source| match beneath::Refusal::take(source) {
            Ok(refusal) => HomeError::Refused(refusal),
            Err(source) => HomeError::Io {
                action,
                path,
                source,
            },
        }
    }

    /// The error as the failure a stage stops on.
    pub fn failure(&self) -> Failure {
        Failure::refusal(self.check())
    }

    /// The error as a failed check, with the fix.
    pub fn check(&self) -> Check {
        let cause = self.to_string();
        match self {
            HomeError::Missing { .. } | HomeError::NotADirectory { .. } => Check::fail(
                "homes.home",
                cause,
                "mount an EFS volume at MPC_HOME_DIR (task definition volumes + mountPoints), or point MPC_HOME_DIR at the mounted directory",
            ),
            HomeError::Io { .. } => Check::fail(
                "homes.io",
                cause,
                "check the mount and the permissions of MPC_HOME_DIR (NFS port 2049 reachable, EFS IAM policy allows ClientWrite)",
            ),
            HomeError::UnknownUser { .. } => Check::fail(
                "homes.node_user",
                cause,
                "name a user of the image, or write AGENT_NODE_USER=UID:GID",
            ),
            HomeError::LockTimeout { holder, .. } => Check::fail(
                "homes.lock",
                cause,
                "stop the other task on this home (rolling deploys: minimumHealthyPercent 0 so the old task stops first), or raise AGENT_LOCK_WAIT",
            )
            .with_detail(serde_json::json!({ "holder": holder })),
            HomeError::LockUnsupported { .. } => Check::fail(
                "homes.lock",
                cause,
                "mount the home with file locking (EFS supports it; do not mount with nolock or local_lock)",
            ),
            HomeError::Unparsable { path, .. } => Check::fail(
                format!(
                    "homes.{}",
                    path.file_name().map_or("file".into(), |n| n.to_string_lossy())
                ),
                cause,
                format!(
                    "fix the file, or move it aside (mv {0} {0}.broken) so the agent writes a fresh one",
                    path.display()
                ),
            ),
            HomeError::Refused(refusal) => {
                let (id, fix) = refusal.id_and_fix();
                Check::fail(id, cause, fix)
            }
            HomeError::Init(e) => e.check(),
        }
    }
}
