//! The node's short commands (`mpc-node init`, `mpc-node --help`), run to
//! their end through the agent's reaper, as the node user, with no secret in
//! their environment; killed with their process group if the agent gives up.
//! `agent doctor` asks `--help` without a reaper.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::collections::BTreeMap;

use entrypoint::homes::{IoWatch, NodeUser};
use entrypoint::node_binary::{Finished, NodeCommands, NodeExit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use crate::life::views::Exit;
use crate::supervisor::Reaper;

/// How much of a command's output is kept for the report.
const OUTPUT_TAIL: usize = 4096;

pub struct ReapedCommands {
    pub reaper: Reaper,
    pub user: NodeUser,
    /// The variables the commands get (no secrets: init and `--help` need none).
    pub env: Vec<(String, String)>,
    /// A command runs aside: the home stage's clock stops while it runs.
    pub io: IoWatch,
}

impl ReapedCommands {
    /// Commands as `user`, with what `process_env` passes through.
    pub fn new(
        reaper: Reaper,
        user: &NodeUser,
        process_env: &BTreeMap<String, String>,
        io: IoWatch,
    ) -> ReapedCommands {
        ReapedCommands {
            reaper,
            user: user.clone(),
            env: entrypoint::launch::node_environment(process_env).collect(),
            io,
        }
    }
}

impl NodeCommands for ReapedCommands {
    async fn run(&self, program: &Path, args: &[OsString]) -> io::Result<Finished> {
        self.io.aside(self.run_to_end(program, args)).await
    }
}

impl ReapedCommands {
    async fn run_to_end(&self, program: &Path, args: &[OsString]) -> io::Result<Finished> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if nix::unistd::geteuid().is_root() {
            command.uid(self.user.uid).gid(self.user.gid);
        }
        let waiting = |cause: &'static str, e: &io::Error, delay: Duration| {
            tracing::warn!(program = %program.display(), cause, error = %e, delay_ms = delay.as_millis() as u64, "cannot run the node's command yet; trying again after a backoff");
        };
        let (mut child, exit) = self
            .reaper
            .spawn_when_fds_allow(&mut command, waiting)
            .await?;
        let group = KillOnDrop(Some(Pid::from_raw(child.id() as i32)));
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().expect("piped"))?;
        let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().expect("piped"))?;
        let (out, err, exit) = tokio::join!(read_all(stdout), read_all(stderr), exit);
        let exit =
            exit.map_err(|_| io::Error::other("the reaper dropped the command's exit status"))?;
        group.disarm();
        let exit = match exit {
            Exit::Code(c) => NodeExit::Code(c),
            Exit::Signal(n) => NodeExit::Signal(n),
        };
        Ok(finished(exit, &out, &err))
    }
}

/// The node's `--help` for `agent doctor`, which supervises nothing: run to
/// its end by tokio (no reaper owns `waitpid` there), as doctor's own user,
/// with the node's environment (no secrets), killed when doctor stops waiting.
pub struct DoctorCommands {
    env: Vec<(String, String)>,
}

impl DoctorCommands {
    pub fn new(process_env: &BTreeMap<String, String>) -> DoctorCommands {
        DoctorCommands {
            env: entrypoint::launch::node_environment(process_env).collect(),
        }
    }
}

impl NodeCommands for DoctorCommands {
    async fn run(&self, program: &Path, args: &[OsString]) -> io::Result<Finished> {
        use std::os::unix::process::ExitStatusExt;
        let ran = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        let exit = match (ran.status.code(), ran.status.signal()) {
            (Some(code), _) => NodeExit::Code(code),
            (None, signal) => NodeExit::Signal(signal.unwrap_or(0)),
        };
        Ok(finished(exit, &ran.stdout, &ran.stderr))
    }
}

/// A command's end: its exit and the last [`OUTPUT_TAIL`] bytes of what it printed.
fn finished(exit: NodeExit, stdout: &[u8], stderr: &[u8]) -> Finished {
    let mut output = String::from_utf8_lossy(stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(stderr));
    if output.len() > OUTPUT_TAIL {
        let mut cut = output.len() - OUTPUT_TAIL;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
    Finished { exit, output }
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut buf = Vec::new();
    // A read error ends the output; the exit status still tells what happened.
    let _ = pipe.read_to_end(&mut buf).await;
    buf
}

/// Kills the command's process group if the agent stops waiting for it (a
/// SIGTERM to the agent cancels the stage that runs it).
struct KillOnDrop(Option<Pid>);

impl KillOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}
