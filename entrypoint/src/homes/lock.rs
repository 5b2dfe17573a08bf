//! One node per home (invariant 3): an exclusive lock on `<home>/.agent/lock`
//! held for the agent's whole life, and `<home>/.agent/holder.json` saying who
//! holds it.
//!
//! # Which lock
//!
//! An open file description (OFD) record lock: `fcntl(F_OFD_SETLK)` on the
//! whole file.
//! - NFSv4 (EFS) honours it across clients: the Linux NFS client sends
//!   byte-range locks to the server, so an agent on another host sees the
//!   conflict.
//! - `flock(2)` is no alternative: since Linux 2.6.12 the NFS client emulates
//!   it as a whole-file byte-range lock, so it means one thing on a local disk
//!   and another on EFS (and stays local when mounted with `local_lock=flock`).
//! - A classic POSIX record lock (`F_SETLK`) belongs to the process: closing
//!   *any* descriptor of the file releases it (reading `.agent/lock` for a
//!   report would silently drop the lock), and it never conflicts with another
//!   lock of the same process. An OFD lock belongs to the open file
//!   description: it is released only when the last descriptor of that open
//!   file is closed, and a second `open()` in the same process conflicts.
//! - The descriptor is close-on-exec, so the node (a child) never inherits it:
//!   the lock ends with the agent, not with the node. Between its fork and
//!   its exec a child shares the open file, so a lock dropped at that instant
//!   is free only once the child has exec'd; the agent holds the lock for its
//!   whole life, so this never shortens it.
//!
//! # When the holder dies
//!
//! On the same host, the kernel releases the lock when the holding process
//! exits for any reason, `kill -9` included (its descriptors are closed). On
//! NFS, when the holding host or task disappears without closing, the server
//! releases the lock once that client's NFSv4 lease expires without renewal
//! (the server's lease time), and a waiting agent takes it at its next poll.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::HomeError;
use super::atomic::{self, Previous};
use super::beneath::Dir;
use super::owner::NodeUser;
use super::runner::IoWatch;

/// The agent's own directory on the home: lock, holder, init marker, staging.
pub const AGENT_DIR: &str = ".agent";
const LOCK_FILE: &str = "lock";
const HOLDER_FILE: &str = "holder.json";
/// How often a waiting agent tries the lock again.
const POLL: Duration = Duration::from_millis(500);

/// Who holds (or last held) the lock on a home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub hostname: String,
    pub pid: u32,
    /// `ECS_CONTAINER_METADATA_URI_V4` of the holder (names its ECS task and container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_container_metadata_uri: Option<String>,
    /// RFC 3339, seconds.
    pub started_at: String,
    pub agent_version: String,
}

impl Holder {
    /// This process: host name, pid, ECS metadata URI when present, now, this version.
    pub fn this_process() -> Holder {
        Holder {
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "unknown".to_string()),
            pid: std::process::id(),
            ecs_container_metadata_uri: std::env::var("ECS_CONTAINER_METADATA_URI_V4")
                .ok()
                .filter(|v| !v.is_empty()),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            agent_version: super::AGENT_VERSION.to_string(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.hostname)?;
        if let Some(uri) = &self.ecs_container_metadata_uri {
            write!(f, " (ECS container {uri})")?;
        }
        write!(
            f,
            " since {} (agent {})",
            self.started_at, self.agent_version
        )
    }
}

/// The home, locked for this agent. Dropping it releases the lock.
#[derive(Debug)]
pub struct HomeLock {
    home: PathBuf,
    holder: Holder,
    /// The open file description that owns the lock.
    _file: File,
}

impl HomeLock {
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value (l_pid must be 0 for OFD locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock
}

/// Takes the exclusive lock on `home`, waiting while another agent holds it.
///
/// While waiting, `on_wait` is called with the holder read from
/// `holder.json` (`None` when there is none yet) the first time and whenever
/// it changes. The lock is tried every 500 ms; the future can be dropped at
/// any point to stop waiting. `wait` bounds the wait (`None`: forever); past
/// it the error names the holder. Once taken, `holder` is written to
/// `holder.json` (atomically, replacing the previous holder). The pauses
/// between tries are marked aside on `io`; the rest is file work.
pub async fn acquire(
    home: &Path,
    holder: Holder,
    wait: Option<Duration>,
    owner: &NodeUser,
    io: &IoWatch,
    mut on_wait: impl FnMut(Option<&Holder>),
) -> Result<HomeLock, HomeError> {
    io.start(format!("taking the home's lock ({AGENT_DIR}/{LOCK_FILE})"));
    let dir = home.join(AGENT_DIR);
    let agent_dir = atomic::ensure_dir(home, Path::new(AGENT_DIR), 0o755, owner)
        .map_err(HomeError::io("create", &dir))?;
    let path = dir.join(LOCK_FILE);
    let file = open_lock(&agent_dir, owner).map_err(HomeError::io("open", &path))?;
    let started = Instant::now();
    let mut reported: Option<Option<Holder>> = None;
    loop {
        match fcntl(
            file.as_fd(),
            FcntlArg::F_OFD_SETLK(&whole_file(libc::F_WRLCK as _)),
        ) {
            Ok(_) => break,
            Err(Errno::EAGAIN | Errno::EACCES) => {}
            Err(e) => {
                return Err(HomeError::LockUnsupported {
                    home: home.to_path_buf(),
                    source: io::Error::from(e),
                });
            }
        }
        let current = read_holder(home).unwrap_or(None);
        if reported.as_ref() != Some(&current) {
            on_wait(current.as_ref());
            reported = Some(current.clone());
        }
        let waited = started.elapsed();
        let pause = match wait {
            Some(limit) if waited >= limit => {
                return Err(HomeError::LockTimeout {
                    home: home.to_path_buf(),
                    waited,
                    holder: current,
                });
            }
            Some(limit) => POLL.min(limit - waited),
            None => POLL,
        };
        io.aside(tokio::time::sleep(pause)).await;
    }
    let swept = super::scratch::remove_stale(
        home,
        &[
            Path::new(""),
            Path::new(AGENT_DIR),
            Path::new(super::PERMANENT_KEYS),
        ],
    )
    .map_err(HomeError::io("sweep", home))?;
    if !swept.is_empty() {
        tracing::info!(files = ?swept, "removed what an interrupted agent left on the home");
    }
    let holder_path = dir.join(HOLDER_FILE);
    let text = serde_json::to_vec_pretty(&holder).expect("a holder serializes");
    let rel = Path::new(AGENT_DIR).join(HOLDER_FILE);
    atomic::write_file(home, &rel, &text, 0o644, Previous::Discard, owner)
        .map_err(HomeError::io("write", &holder_path))?;
    Ok(HomeLock {
        home: home.to_path_buf(),
        holder,
        _file: file,
    })
}

/// `.agent/lock`, created when absent: a regular file with one link, the
/// node user's or the agent's, given to the node user; never through a link.
fn open_lock(agent_dir: &Dir, owner: &NodeUser) -> io::Result<File> {
    let rel = Path::new(LOCK_FILE);
    let fd = agent_dir.open_at(
        rel,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NONBLOCK,
        Mode::from_bits_truncate(0o644),
    )?;
    let (file, stat) = agent_dir.regular(fd, rel)?;
    atomic::check_ours(&agent_dir.join(rel), &stat, owner)?;
    owner.own_fd(&file, &stat)?;
    Ok(file)
}

/// The holder `holder.json` names, without taking the lock (for `agent
/// doctor`). It is the last agent that took the lock: see [`is_held`] for
/// whether that agent still holds it.
pub fn read_holder(home: &Path) -> Result<Option<Holder>, HomeError> {
    let path = home.join(AGENT_DIR).join(HOLDER_FILE);
    let text = match Dir::open(home)
        .and_then(|home| home.read(&Path::new(AGENT_DIR).join(HOLDER_FILE)))
        .map_err(HomeError::io("read", &path))?
    {
        Some(text) => text,
        None => return Ok(None),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| HomeError::Unparsable {
            path,
            reason: e.to_string(),
        })
}

/// Whether some agent holds the lock on `home` right now (`F_OFD_GETLK`).
pub fn is_held(home: &Path) -> Result<bool, HomeError> {
    let path = home.join(AGENT_DIR).join(LOCK_FILE);
    let rel = Path::new(AGENT_DIR).join(LOCK_FILE);
    let opened = Dir::open(home).and_then(|home| {
        let fd = home.open_at(&rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())?;
        home.regular(fd, &rel)
    });
    let file = match opened {
        Ok((file, _)) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(HomeError::io("open", &path)(e)),
    };
    let mut probe = whole_file(libc::F_WRLCK as _);
    fcntl(file.as_fd(), FcntlArg::F_OFD_GETLK(&mut probe)).map_err(|e| {
        HomeError::LockUnsupported {
            home: home.to_path_buf(),
            source: io::Error::from(e),
        }
    })?;
    Ok(probe.l_type != libc::F_UNLCK as libc::c_short)
}
