//! Runs stand-in `mpc-node` commands for the homes stage the plain way (a
//! tokio child process), where the agent would go through its reaper.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use entrypoint::node_binary::{Finished, NodeCommands, NodeExit};
use tokio::io::AsyncReadExt;

/// Spawns the command with `env` on top of a clean environment (PATH only);
/// kills it after `kill_after` when set, and in any case after 30 s.
#[derive(Clone, Debug, Default)]
pub struct SpawnNode {
    pub env: Vec<(String, String)>,
    pub kill_after: Option<Duration>,
}

const LIMIT: Duration = Duration::from_secs(30);

impl NodeCommands for SpawnNode {
    async fn run(&self, program: &Path, args: &[OsString]) -> io::Result<Finished> {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let read = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            out.extend_from_slice(&err);
            out
        };
        let deadline = self.kill_after.unwrap_or(LIMIT).min(LIMIT);
        let waited = async {
            tokio::select! {
                status = child.wait() => status,
                () = tokio::time::sleep(deadline) => {
                    child.start_kill()?;
                    child.wait().await
                }
            }
        };
        let (status, output) = tokio::join!(waited, read);
        let status = status?;
        let exit = match status.code() {
            Some(code) => NodeExit::Code(code),
            None => NodeExit::Signal(status.signal().unwrap_or_default()),
        };
        Ok(Finished {
            exit,
            output: String::from_utf8_lossy(&output).into_owned(),
        })
    }
}
