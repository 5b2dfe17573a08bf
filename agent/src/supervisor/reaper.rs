//! The one owner of `waitpid`: reaps every child and orphan, and hands each
//! exit status to whoever spawned that process. Spawning goes through here too,
//! so a process can never be reaped before its waiter is registered.

use std::collections::HashMap;
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use super::Exit;
use crate::life::state::State;

/// Reaps processes on SIGCHLD. Clones share one process table.
#[derive(Clone)]
pub struct Reaper {
    table: Arc<Mutex<HashMap<i32, oneshot::Sender<Exit>>>>,
    state: State,
}

/// How the agent came to reap orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// PID 1 of its PID namespace: the kernel reparents every orphan here.
    Init,
    /// Registered with `PR_SET_CHILD_SUBREAPER`: orphans of its descendants come here.
    Subreaper,
}

impl Reaper {
    /// Becomes subreaper unless PID 1, then reaps on every SIGCHLD.
    /// Must run inside the tokio runtime, before any process is spawned.
    pub fn start(state: State) -> io::Result<(Reaper, Role)> {
        let role = if std::process::id() == 1 {
            Role::Init
        } else {
            nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
            Role::Subreaper
        };
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Reaper {
            table: Arc::default(),
            state,
        };
        let r = reaper.clone();
        tokio::spawn(async move {
            while sigchld.recv().await.is_some() {
                r.reap();
            }
        });
        Ok((reaper, role))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<Exit>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `command`; the receiver yields its exit status once reaped.
    ///
    /// The table stays locked across the spawn: the reaper cannot collect the
    /// new process (or one the standard library reaps itself after a failed
    /// exec) before its waiter is in the table.
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> io::Result<(std::process::Child, oneshot::Receiver<Exit>)> {
        let mut table = self.lock();
        let child = command.spawn()?;
        let (tx, rx) = oneshot::channel();
        table.insert(child.id() as i32, tx);
        Ok((child, rx))
    }

    /// Like [`Reaper::spawn`], but a spawn that fails for want of file
    /// descriptors (they free up as connections close) is tried again after a
    /// backoff instead of failing; `waiting` hears of each wait with its cause.
    pub async fn spawn_when_fds_allow(
        &self,
        command: &mut Command,
        mut waiting: impl FnMut(&'static str, &io::Error, Duration),
    ) -> io::Result<(std::process::Child, oneshot::Receiver<Exit>)> {
        let mut backoff = FdBackoff::default();
        loop {
            let e = match self.spawn(command) {
                Err(e) => e,
                done => return done,
            };
            let Some(cause) = out_of_fds(&e) else {
                return Err(e);
            };
            let delay = backoff.next_delay();
            waiting(cause, &e, delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// Collects every exited process; orphans are counted, spawned children reported.
    fn reap(&self) {
        let mut table = self.lock();
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Exit::Signal(signal as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    return;
                }
            };
            match table.remove(&pid.as_raw()) {
                // The waiter may be gone (the agent is exiting); nothing to tell then.
                Some(waiter) => drop(waiter.send(exit)),
                None => {
                    self.state.metrics().orphans_reaped.inc();
                    tracing::debug!(pid = pid.as_raw(), ?exit, "reaped orphan");
                }
            }
        }
    }
}

/// The cause, when a spawn failed for want of file descriptors: a passing
/// shortage, worth waiting out rather than exiting.
pub fn out_of_fds(e: &io::Error) -> Option<&'static str> {
    match Errno::from_raw(e.raw_os_error()?) {
        Errno::EMFILE => Some("the agent is out of file descriptors (EMFILE: its RLIMIT_NOFILE)"),
        Errno::ENFILE => Some("the system is out of file descriptors (ENFILE: fs.file-max)"),
        _ => None,
    }
}

/// The waits between spawn attempts while out of file descriptors: 100 ms,
/// doubling up to 5 s.
#[derive(Default)]
struct FdBackoff {
    attempts: u32,
}

impl FdBackoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST
            .saturating_mul(1 << self.attempts.min(16))
            .min(Self::MAX);
        self.attempts += 1;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lack_of_file_descriptors_is_waited_out() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let enfile = io::Error::from_raw_os_error(libc::ENFILE);
        assert!(out_of_fds(&emfile).unwrap().contains("EMFILE"));
        assert!(out_of_fds(&enfile).unwrap().contains("ENFILE"));
        for other in [libc::ENOENT, libc::EACCES, libc::ENOEXEC, libc::EAGAIN] {
            assert_eq!(out_of_fds(&io::Error::from_raw_os_error(other)), None);
        }
        assert_eq!(out_of_fds(&io::Error::other("no errno")), None);
    }

    #[test]
    fn the_waits_double_up_to_five_seconds() {
        let mut b = FdBackoff::default();
        let waits: Vec<u64> = (0..10).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }
}
