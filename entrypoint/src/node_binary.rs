//! mpc-node's binary as the agent asks it things: its short commands
//! ([`NodeCommands`]: `init`, `--help`) and how they ended, and which start it
//! offers ([`Launch`]: `start`, or `start-with-config-file` in images since
//! 3.7). The home stage (the first init, the checks a start would refuse)
//! and the launch stage both ask it.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::StartMode;

/// Runs a node command for the stage. The caller spawns the process through
/// the agent's reaper (which owns `waitpid`), as the node user, with an
/// environment free of secrets (init needs none), and waits for it.
pub trait NodeCommands {
    fn run(
        &self,
        program: &Path,
        args: &[OsString],
    ) -> impl Future<Output = io::Result<Finished>> + Send;
}

/// How a node command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub exit: NodeExit,
    /// The end of what it printed (stdout and stderr), for the report.
    pub output: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeExit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for NodeExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeExit::Code(code) => write!(f, "exit code {code}"),
            NodeExit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// The command the node is started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    /// `mpc-node start`.
    Start,
    /// `mpc-node start-with-config-file <toml>`.
    StartWithConfigFile,
}

/// Whether `mpc-node --help` lists the `start-with-config-file` command.
pub fn lists_start_with_config_file(help: &str) -> bool {
    help.lines()
        .any(|line| line.split_whitespace().next() == Some("start-with-config-file"))
}

/// The launch for `AGENT_START_MODE`. For `auto`, `help` is the output of
/// `mpc-node --help`, run by the caller with the secrets removed from its
/// environment (the node's help prints env values); `None` when that probe
/// failed, which falls back to `start`, as start.sh does.
pub fn launch(mode: StartMode, help: Option<&str>) -> Launch {
    match mode {
        StartMode::Legacy => Launch::Start,
        StartMode::ConfigFile => Launch::StartWithConfigFile,
        StartMode::Auto if help.is_some_and(lists_start_with_config_file) => {
            Launch::StartWithConfigFile
        }
        StartMode::Auto => Launch::Start,
    }
}

/// How `bin` is started under `mode`: as configured, or, for `auto`, as its
/// `--help` says.
pub async fn kind(mode: StartMode, bin: &Path, commands: &impl NodeCommands) -> Launch {
    if mode != StartMode::Auto {
        return launch(mode, None);
    }
    let help = commands
        .run(bin, &["--help".into()])
        .await
        .ok()
        .filter(|f| f.exit == NodeExit::Code(0))
        .map(|f| f.output);
    launch(mode, help.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP_3_14: &str = "\
Usage: mpc-node [OPTIONS] <COMMAND>

Commands:
  start-with-config-file  Starts the MPC node using a single TOML configuration file instead of environment variables and CLI flags
  start
  init                    Generates/downloads required files for Near node to run
  help                    Print this message or the help of the given subcommand(s)
";
    const HELP_3_6: &str = "\
Usage: mpc-node <COMMAND>

Commands:
  start
  init   Generates/downloads required files for Near node to run
  help   Print this message or the help of the given subcommand(s)
";

    #[test]
    fn auto_follows_the_help_text() {
        assert_eq!(
            launch(StartMode::Auto, Some(HELP_3_14)),
            Launch::StartWithConfigFile
        );
        assert_eq!(launch(StartMode::Auto, Some(HELP_3_6)), Launch::Start);
        assert_eq!(launch(StartMode::Auto, None), Launch::Start);
        assert_eq!(launch(StartMode::Legacy, Some(HELP_3_14)), Launch::Start);
        assert_eq!(
            launch(StartMode::ConfigFile, None),
            Launch::StartWithConfigFile
        );
        assert!(!lists_start_with_config_file(
            "Usage: see start-with-config-file in newer releases"
        ));
    }
}
