//! First boot: the node's own `mpc-node init`, made idempotent and resumable.
//!
//! # The scheme
//!
//! nearcore's init writes `config.json`, `genesis.json`, `node_key.json` (and
//! `validator_key.json`) one after the other, in place, and does not recover
//! when interrupted: a home with `config.json` but no complete `genesis.json`
//! fails with "Failed to read genesis config" for ever. start.sh decides
//! "initialized" by `config.json` alone. The agent instead:
//!
//! 1. Under the home's lock (the [`HomeLock`] argument proves it), reads
//!    `.agent/initialized.json`, the marker written last. Present: done (a
//!    marker for another chain is refused).
//! 2. A *complete* staging directory (`.agent/init-staging/` with its
//!    `staged.json` record, for the same inputs) is resumed at step 6.
//! 3. Any other staging directory is the debris of an interrupted init: it
//!    belongs to the agent, not to the node's state, and is removed.
//! 4. A home that already has `config.json`, `genesis.json` and
//!    `node_key.json` (start.sh, an earlier agent) is adopted: marker, done.
//!    A broken one of those is refused, never replaced.
//! 5. `mpc-node init --dir .agent/init-staging/home …` runs into the empty
//!    staging directory. For mpc-localnet the original genesis is put back
//!    and `validator_key.json` removed there, as start.sh does. The files are
//!    fsynced, given to the node user, and `staged.json` is written: the
//!    staging is complete.
//! 6. Each staged file is hard-linked into the home under its name. A link
//!    never replaces: a name the home already has keeps the home's file (and
//!    a name already linked by an interrupted step 6 is recognised by its
//!    inode). `data/` and every share are never touched.
//! 7. `.agent/initialized.json` is written, then the staging directory removed.
//!
//! A crash anywhere leaves the home as it was plus, at most, files of one
//! complete init: before step 5 ends, only staging debris (removed by the next
//! attempt); from then on, a complete staging that the next attempt finishes
//! with the *same* files, so the home converges to what one uninterrupted
//! init would have made.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::atomic::{self, Previous};
use super::lock::{AGENT_DIR, HomeLock};
use super::owner::NodeUser;
use super::{AGENT_VERSION, HomeError};
use crate::check::Check;
use crate::config::{Chain, HomeSettings, Node};

const MARKER_FILE: &str = "initialized.json";
const STAGING_DIR: &str = "init-staging";
const STAGED_RECORD: &str = "staged.json";
/// What a usable near home has; init must leave all three.
const REQUIRED: [&str; 3] = ["config.json", "genesis.json", "node_key.json"];

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

/// What the first init needs: the binary and the chain's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitPlan {
    pub node_bin: PathBuf,
    pub chain: Chain,
    pub boot_nodes: Option<String>,
    /// The genesis given to init and put back after it (mpc-localnet only).
    pub genesis: Option<PathBuf>,
}

impl InitPlan {
    pub fn new(node: &Node, settings: &HomeSettings) -> InitPlan {
        InitPlan {
            node_bin: node.bin.clone(),
            chain: node.chain,
            boot_nodes: node.boot_nodes.clone(),
            genesis: (node.chain == Chain::Localnet).then(|| settings.localnet_genesis.clone()),
        }
    }

    /// `init --dir DIR --chain-id CHAIN` and the chain's flags, as start.sh passes them.
    pub fn args(&self, dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "init".into(),
            "--dir".into(),
            dir.into(),
            "--chain-id".into(),
            self.chain.as_str().into(),
        ];
        match &self.genesis {
            Some(genesis) => args.extend(["--genesis".into(), genesis.into()]),
            None => args.extend(["--download-genesis".into(), "--download-config".into()]),
        }
        if let Some(boot_nodes) = &self.boot_nodes {
            args.extend(["--boot-nodes".into(), boot_nodes.into()]);
        }
        args
    }

    fn marker(&self, origin: Origin) -> InitMarker {
        InitMarker {
            agent_version: AGENT_VERSION.to_string(),
            chain: self.chain.as_str().to_string(),
            boot_nodes: self.boot_nodes.clone(),
            genesis_path: self.genesis.clone(),
            origin,
        }
    }
}

/// `.agent/initialized.json`: the home is initialized, by whom and from what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitMarker {
    pub agent_version: String,
    pub chain: String,
    pub boot_nodes: Option<String>,
    pub genesis_path: Option<PathBuf>,
    pub origin: Origin,
}

impl InitMarker {
    fn same_inputs(&self, other: &InitMarker) -> bool {
        (&self.chain, &self.boot_nodes, &self.genesis_path)
            == (&other.chain, &other.boot_nodes, &other.genesis_path)
    }
}

/// Who made the near home the marker vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The agent ran `mpc-node init`.
    Init,
    /// The files were there before the agent (start.sh or an older agent).
    Existing,
}

/// What [`init_home`] did this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitAction {
    /// The marker was there.
    AlreadyInitialized,
    /// Ran init and moved its files into place.
    Initialized,
    /// Finished moving the files of an earlier, interrupted attempt.
    Resumed,
    /// Recorded the near home that was already there.
    Adopted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InitOutcome {
    pub action: InitAction,
    pub marker: InitMarker,
    /// Files moved into the home from the staging directory.
    pub moved: Vec<String>,
    /// Files init made that the home already had: the home's were kept.
    pub kept: Vec<String>,
}

impl InitOutcome {
    /// `homes.init`.
    pub fn check(&self) -> Check {
        let chain = &self.marker.chain;
        let moved = self.moved.join(", ");
        let mut cause = match self.action {
            InitAction::AlreadyInitialized => format!(
                "the home is initialized for {chain} (by agent {}, {})",
                self.marker.agent_version,
                match self.marker.origin {
                    Origin::Init => "mpc-node init",
                    Origin::Existing => "adopted existing files",
                }
            ),
            InitAction::Initialized => {
                format!("ran mpc-node init for {chain}; moved {moved} into the home")
            }
            InitAction::Resumed => {
                format!("finished an interrupted init for {chain}; moved {moved} into the home")
            }
            InitAction::Adopted => format!(
                "the home already had {} (start.sh or an earlier agent); recorded it as initialized for {chain}",
                REQUIRED.join(", ")
            ),
        };
        if !self.kept.is_empty() {
            cause.push_str(&format!("; kept the home's own {}", self.kept.join(", ")));
        }
        Check::ok("homes.init", cause).with_detail(json!(self))
    }
}

/// Errors of the first init, beside the stage's I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the home was initialized for {initialized}, but MPC_ENV is {configured}")]
    OtherChain {
        initialized: String,
        configured: String,
    },
    #[error("the localnet genesis {} does not exist", path.display())]
    GenesisMissing { path: PathBuf },
    #[error("cannot run {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} init ended with {exit}: {}", program.display(), tail(output))]
    Failed {
        program: PathBuf,
        exit: NodeExit,
        output: String,
    },
    #[error("{} init exited 0 but did not write {}", program.display(), missing.join(", "))]
    Incomplete {
        program: PathBuf,
        missing: Vec<&'static str>,
    },
}

impl InitError {
    pub fn check(&self) -> Check {
        let fix = match self {
            InitError::OtherChain { .. } => {
                "set MPC_ENV to the chain this home belongs to, or give this chain its own MPC_HOME_DIR"
            }
            InitError::GenesisMissing { .. } => {
                "set AGENT_LOCALNET_GENESIS to the localnet genesis file (the image has /app/localnet-genesis.json)"
            }
            InitError::Spawn { .. } => "set AGENT_NODE_BIN to the mpc-node binary of the image",
            InitError::Failed { .. } | InitError::Incomplete { .. } => {
                "read the node's output; off localnet, init downloads the genesis and config: the task needs outbound HTTPS. The next boot retries from a clean staging directory"
            }
        };
        Check::fail("homes.init", self.to_string(), fix)
    }
}

/// The last 2000 characters of `output`, trimmed.
fn tail(output: &str) -> &str {
    let trimmed = output.trim();
    let mut start = trimmed.len().saturating_sub(2000);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    &trimmed[start..]
}

/// `.agent/initialized.json`, if the home has one.
pub fn read_marker(home: &Path) -> Result<Option<InitMarker>, HomeError> {
    read_json(&home.join(AGENT_DIR).join(MARKER_FILE))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, HomeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HomeError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| HomeError::Unparsable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Makes sure the home is initialized (see the module documentation).
pub async fn init_home(
    lock: &HomeLock,
    plan: &InitPlan,
    user: &NodeUser,
    node: &impl NodeCommands,
) -> Result<InitOutcome, HomeError> {
    let home = lock.home();
    let agent_dir = home.join(AGENT_DIR);
    let staging = agent_dir.join(STAGING_DIR);
    let staged_home = staging.join("home");
    let record = staging.join(STAGED_RECORD);

    if let Some(marker) = read_marker(home)? {
        if marker.chain != plan.chain.as_str() {
            return Err(HomeError::Init(InitError::OtherChain {
                initialized: marker.chain,
                configured: plan.chain.as_str().to_string(),
            }));
        }
        remove_staging(&staging)?;
        return Ok(InitOutcome {
            action: InitAction::AlreadyInitialized,
            marker,
            moved: Vec::new(),
            kept: Vec::new(),
        });
    }

    let wanted = plan.marker(Origin::Init);
    let staged: Option<InitMarker> = read_json(&record).unwrap_or(None);
    if staged.is_some_and(|s| s.same_inputs(&wanted)) {
        let (moved, kept) = move_into_place(&staged_home, home)?;
        finish(&agent_dir, &staging, &wanted, user)?;
        return Ok(InitOutcome {
            action: InitAction::Resumed,
            marker: wanted,
            moved,
            kept,
        });
    }
    remove_staging(&staging)?;

    if existing_near_home(home)? {
        let marker = plan.marker(Origin::Existing);
        finish(&agent_dir, &staging, &marker, user)?;
        return Ok(InitOutcome {
            action: InitAction::Adopted,
            marker,
            moved: Vec::new(),
            kept: Vec::new(),
        });
    }

    let genesis = match &plan.genesis {
        Some(path) => Some(std::fs::read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                HomeError::Init(InitError::GenesisMissing { path: path.clone() })
            }
            _ => HomeError::io("read", path)(e),
        })?),
        None => None,
    };
    for dir in [&agent_dir, &staging, &staged_home] {
        atomic::ensure_dir(dir, user).map_err(HomeError::io("create", dir))?;
    }
    let program = plan.node_bin.clone();
    let finished = node
        .run(&program, &plan.args(&staged_home))
        .await
        .map_err(|source| {
            HomeError::Init(InitError::Spawn {
                program: program.clone(),
                source,
            })
        })?;
    if finished.exit != NodeExit::Code(0) {
        return Err(HomeError::Init(InitError::Failed {
            program,
            exit: finished.exit,
            output: finished.output,
        }));
    }
    if let Some(genesis) = genesis {
        let path = staged_home.join("genesis.json");
        atomic::write_file(&path, &genesis, 0o644, Previous::Discard, user)
            .map_err(HomeError::io("write", &path))?;
        let validator_key = staged_home.join("validator_key.json");
        match std::fs::remove_file(&validator_key) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(HomeError::io("remove", &validator_key)(e));
            }
            _ => {}
        }
    }
    let missing: Vec<&'static str> = REQUIRED
        .into_iter()
        .filter(|name| !staged_home.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(HomeError::Init(InitError::Incomplete { program, missing }));
    }
    user.own_tree(&staged_home)
        .map_err(HomeError::io("chown", &staged_home))?;
    sync_tree(&staged_home).map_err(HomeError::io("fsync", &staged_home))?;
    let text = serde_json::to_vec_pretty(&wanted).expect("a marker serializes");
    atomic::write_file(&record, &text, 0o644, Previous::Discard, user)
        .map_err(HomeError::io("write", &record))?;

    let (moved, kept) = move_into_place(&staged_home, home)?;
    finish(&agent_dir, &staging, &wanted, user)?;
    Ok(InitOutcome {
        action: InitAction::Initialized,
        marker: wanted,
        moved,
        kept,
    })
}

/// Whether the home already is a near home; a broken required file is refused.
fn existing_near_home(home: &Path) -> Result<bool, HomeError> {
    let mut present = 0;
    for name in REQUIRED {
        let path = home.join(name);
        let bytes_len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(HomeError::io("read", &path)(e)),
        };
        present += 1;
        let broken = if name == "genesis.json" {
            // Several GB on testnet: not parsed, only required to be non-empty.
            (bytes_len == 0).then(|| "it is empty".to_string())
        } else {
            let bytes = std::fs::read(&path).map_err(HomeError::io("read", &path))?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .err()
                .map(|e| format!("not JSON: {e}"))
        };
        if let Some(reason) = broken {
            return Err(HomeError::Unparsable { path, reason });
        }
    }
    Ok(present == REQUIRED.len())
}

/// Links every staged entry into `home` unless the home has that name.
/// Returns (moved, kept).
fn move_into_place(staged: &Path, home: &Path) -> Result<(Vec<String>, Vec<String>), HomeError> {
    let mut entries: Vec<_> = std::fs::read_dir(staged)
        .map_err(HomeError::io("list", staged))?
        .collect::<Result<_, _>>()
        .map_err(HomeError::io("list", staged))?;
    entries.sort_by_key(|e| e.file_name());
    let (mut moved, mut kept) = (Vec::new(), Vec::new());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let from = entry.path();
        let to = home.join(entry.file_name());
        let is_dir = entry
            .file_type()
            .map_err(HomeError::io("read", &from))?
            .is_dir();
        let placed = if is_dir {
            if to.exists() {
                Err(io::Error::from(io::ErrorKind::AlreadyExists))
            } else {
                std::fs::rename(&from, &to)
            }
        } else {
            std::fs::hard_link(&from, &to)
        };
        match placed {
            Ok(()) => moved.push(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_file(&from, &to) {
                    moved.push(name);
                } else {
                    kept.push(name);
                }
            }
            Err(e) => return Err(HomeError::io("link into the home", &to)(e)),
        }
    }
    atomic::sync_dir(home).map_err(HomeError::io("fsync", home))?;
    Ok((moved, kept))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Writes the marker, then removes the staging directory.
fn finish(
    agent_dir: &Path,
    staging: &Path,
    marker: &InitMarker,
    user: &NodeUser,
) -> Result<(), HomeError> {
    atomic::ensure_dir(agent_dir, user).map_err(HomeError::io("create", agent_dir))?;
    let path = agent_dir.join(MARKER_FILE);
    let text = serde_json::to_vec_pretty(marker).expect("a marker serializes");
    atomic::write_file(&path, &text, 0o644, Previous::Backup, user)
        .map_err(HomeError::io("write", &path))?;
    remove_staging(staging)
}

/// Removes the agent's staging directory (never anything of the node's).
fn remove_staging(staging: &Path) -> Result<(), HomeError> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(HomeError::io("remove", staging)(e)),
        _ => Ok(()),
    }
}

/// fsyncs every file below `dir` and the directories themselves.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    atomic::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(chain: Chain) -> InitPlan {
        InitPlan {
            node_bin: PathBuf::from("/app/mpc-node"),
            chain,
            boot_nodes: Some("ed25519:K@1.2.3.4:24567".into()),
            genesis: (chain == Chain::Localnet)
                .then(|| PathBuf::from("/app/localnet-genesis.json")),
        }
    }

    fn args(plan: &InitPlan) -> Vec<String> {
        plan.args(Path::new("/h"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn localnet_init_gets_the_genesis_and_other_chains_download() {
        assert_eq!(
            args(&plan(Chain::Localnet)),
            [
                "init",
                "--dir",
                "/h",
                "--chain-id",
                "mpc-localnet",
                "--genesis",
                "/app/localnet-genesis.json",
                "--boot-nodes",
                "ed25519:K@1.2.3.4:24567"
            ]
        );
        assert_eq!(
            args(&plan(Chain::Testnet)),
            [
                "init",
                "--dir",
                "/h",
                "--chain-id",
                "testnet",
                "--download-genesis",
                "--download-config",
                "--boot-nodes",
                "ed25519:K@1.2.3.4:24567"
            ]
        );
        let mut no_boot_nodes = plan(Chain::Mainnet);
        no_boot_nodes.boot_nodes = None;
        assert!(!args(&no_boot_nodes).contains(&"--boot-nodes".to_string()));
    }

    #[test]
    fn the_plan_takes_the_localnet_genesis_only_for_localnet() {
        use crate::config::{InitConfig, Layers};
        let resolve = |chain: &str| {
            let env = [
                ("MPC_HOME_DIR", "/data"),
                ("MPC_ENV", chain),
                ("MPC_ACCOUNT_ID", "node0.testnet"),
                ("MPC_CONTRACT_ID", "v1.signer-prod.testnet"),
                ("AGENT_LOCALNET_GENESIS", "/etc/genesis.json"),
                ("AGENT_NEAR_RPC_URL", "http://127.0.0.1:3030"),
            ];
            let layers = Layers {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Layers::default()
            };
            let config = InitConfig::resolve(&layers).unwrap();
            InitPlan::new(&config.node.node, &config.homes)
        };
        assert_eq!(
            resolve("mpc-localnet").genesis,
            Some(PathBuf::from("/etc/genesis.json"))
        );
        assert_eq!(resolve("testnet").genesis, None);
        assert_eq!(resolve("mainnet").node_bin, PathBuf::from("/app/mpc-node"));
    }

    #[test]
    fn a_failed_init_names_the_exit_and_the_end_of_the_output() {
        let err = InitError::Failed {
            program: PathBuf::from("/app/mpc-node"),
            exit: NodeExit::Signal(9),
            output: format!("{}\nError: download failed\n", "x".repeat(5000)),
        };
        let text = err.to_string();
        assert!(text.contains("signal 9"), "{text}");
        assert!(text.ends_with("Error: download failed"), "{text}");
        assert!(text.len() < 2200);
    }
}
