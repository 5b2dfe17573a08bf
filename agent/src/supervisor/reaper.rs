//! The one owner of `waitpid`: reaps every child and orphan, and hands each
//! exit status to whoever spawned that process. Spawning goes through here too,
//! so a process can never be reaped before its waiter is registered.

use std::collections::HashMap;
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use super::Exit;
use crate::http::state::State;

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
