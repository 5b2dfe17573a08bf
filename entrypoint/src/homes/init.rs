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
//!    and `validator_key.json` removed there, as start.sh does, and the
//!    staged `config.json` gets the edits upstream makes once after a fresh
//!    init (nearcore's block message caps lifted on mpc-localnet). The files
//!    are fsynced, given to the node user, and `staged.json` is written: the
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
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::atomic::{self, Previous};
use super::beneath::{self, Dir, Refusal};
use super::config_json;
use super::lock::{AGENT_DIR, HomeLock};
use super::owner::NodeUser;
use super::{AGENT_VERSION, HomeError};
use crate::check::Check;
use crate::config::{Chain, HomeSettings, Node};
use crate::node_binary::{NodeCommands, NodeExit};

const MARKER_FILE: &str = "initialized.json";
const STAGING_DIR: &str = "init-staging";
const STAGED_RECORD: &str = "staged.json";
/// What a usable near home has; init must leave all three.
const REQUIRED: [&str; 3] = ["config.json", "genesis.json", "node_key.json"];

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
    /// The config.json settings changed right after this init, as upstream
    /// changes them after a fresh one (see [`config_json::patch_fresh_init`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fresh_init_edits: Vec<String>,
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
        if !self.fresh_init_edits.is_empty() {
            cause.push_str(&format!(
                "; set {} in config.json, as upstream does after a fresh init",
                self.fresh_init_edits.join(", ")
            ));
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

/// The end of `output` as a bounded excerpt, key-like strings redacted:
/// about the last 2000 characters, from a word's start (a cut through a key
/// would leave a piece too short to be recognized as one).
fn tail(output: &str) -> String {
    let trimmed = output.trim();
    let mut start = trimmed.len().saturating_sub(2000);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    let mut end = &trimmed[start..];
    if start > 0 {
        end = end
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest);
    }
    crate::excerpt::excerpt(end, 2000)
}

/// `.agent/initialized.json`, if the home has one.
pub fn read_marker(home: &Path) -> Result<Option<InitMarker>, HomeError> {
    read_json(home, &Path::new(AGENT_DIR).join(MARKER_FILE))
}

/// The JSON file `rel` below `home`; `None` when there is none.
fn read_json<T: serde::de::DeserializeOwned>(
    home: &Path,
    rel: &Path,
) -> Result<Option<T>, HomeError> {
    let path = &home.join(rel);
    let Some(bytes) = beneath::read_file(home, rel).map_err(HomeError::io("read", path))? else {
        return Ok(None);
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
    let agent_rel = Path::new(AGENT_DIR);
    let staging_rel = agent_rel.join(STAGING_DIR);
    let staged_rel = staging_rel.join("home");
    let record_rel = staging_rel.join(STAGED_RECORD);
    let staged_home = home.join(&staged_rel);
    let record = home.join(&record_rel);

    if let Some(marker) = read_marker(home)? {
        if marker.chain != plan.chain.as_str() {
            return Err(HomeError::Init(InitError::OtherChain {
                initialized: marker.chain,
                configured: plan.chain.as_str().to_string(),
            }));
        }
        remove_staging(home, &staging_rel)?;
        return Ok(InitOutcome {
            action: InitAction::AlreadyInitialized,
            marker,
            moved: Vec::new(),
            kept: Vec::new(),
            fresh_init_edits: Vec::new(),
        });
    }

    let wanted = plan.marker(Origin::Init);
    let staged: Option<InitMarker> = read_json(home, &record_rel).unwrap_or(None);
    if staged.is_some_and(|s| s.same_inputs(&wanted)) {
        let (moved, kept) = move_into_place(home, &staged_rel)?;
        finish(home, &wanted, user)?;
        return Ok(InitOutcome {
            action: InitAction::Resumed,
            marker: wanted,
            moved,
            kept,
            fresh_init_edits: Vec::new(),
        });
    }
    remove_staging(home, &staging_rel)?;

    if existing_near_home(home)? {
        let marker = plan.marker(Origin::Existing);
        finish(home, &marker, user)?;
        return Ok(InitOutcome {
            action: InitAction::Adopted,
            marker,
            moved: Vec::new(),
            kept: Vec::new(),
            fresh_init_edits: Vec::new(),
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
    for rel in [agent_rel, &staging_rel, &staged_rel] {
        atomic::ensure_dir(home, rel, 0o755, user)
            .map_err(HomeError::io("create", &home.join(rel)))?;
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
        atomic::write_file(
            home,
            &staged_rel.join("genesis.json"),
            &genesis,
            0o644,
            Previous::Discard,
            user,
        )
        .map_err(HomeError::io("write", &path))?;
        let validator_key = staged_home.join("validator_key.json");
        let removed = Dir::open(home).and_then(|home| {
            let staged = home
                .dir(&staged_rel)?
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            Ok(unlinkat(
                &staged,
                "validator_key.json",
                UnlinkatFlags::NoRemoveDir,
            )?)
        });
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(HomeError::io("remove", &validator_key)(e));
            }
            _ => {}
        }
    }
    let staged_dir = Dir::open(home)
        .and_then(|home| home.dir(&staged_rel))
        .map_err(HomeError::io("read", &staged_home))?;
    let missing: Vec<&'static str> = REQUIRED
        .into_iter()
        .filter(|name| {
            !staged_dir.as_ref().is_some_and(|dir| {
                dir.stat(Path::new(name))
                    .ok()
                    .flatten()
                    .is_some_and(|s| beneath::is_file(&s))
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(HomeError::Init(InitError::Incomplete { program, missing }));
    }
    let fresh_init_edits = config_json::update_staged_config_json(
        home,
        &staged_rel.join("config.json"),
        plan.chain,
        user,
    )?
    .into_iter()
    .map(|edit| edit.path)
    .collect();
    user.own_tree(home, &staged_rel)
        .map_err(HomeError::io("chown", &staged_home))?;
    Dir::open(home)
        .and_then(|home| home.dir(&staged_rel))
        .and_then(|dir| dir.map_or(Ok(()), |dir| sync_tree(&dir)))
        .map_err(HomeError::io("fsync", &staged_home))?;
    let text = serde_json::to_vec_pretty(&wanted).expect("a marker serializes");
    atomic::write_file(home, &record_rel, &text, 0o644, Previous::Discard, user)
        .map_err(HomeError::io("write", &record))?;

    let (moved, kept) = move_into_place(home, &staged_rel)?;
    finish(home, &wanted, user)?;
    Ok(InitOutcome {
        action: InitAction::Initialized,
        marker: wanted,
        moved,
        kept,
        fresh_init_edits,
    })
}

/// Whether the home already is a near home; a broken required file is refused
/// (and so is a link or anything but a regular file at a required name).
fn existing_near_home(home: &Path) -> Result<bool, HomeError> {
    let dir = Dir::open(home).map_err(HomeError::io("open", home))?;
    let mut present = 0;
    for name in REQUIRED {
        let path = home.join(name);
        let rel = Path::new(name);
        let Some(stat) = dir.stat(rel).map_err(HomeError::io("read", &path))? else {
            continue;
        };
        if !beneath::is_file(&stat) {
            let refusal = match beneath::kind_of(&stat) {
                "a symbolic link" => Refusal::Symlink { path },
                kind => Refusal::NotAFile { path, kind },
            };
            return Err(HomeError::Refused(refusal));
        }
        present += 1;
        let broken = if name == "genesis.json" {
            // Several GB on testnet: not parsed, only required to be non-empty.
            (stat.st_size == 0).then(|| "it is empty".to_string())
        } else {
            let bytes = dir
                .read(rel)
                .map_err(HomeError::io("read", &path))?
                .unwrap_or_default();
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

/// Links every staged entry (`staged` below `home`) into `home` unless the
/// home has that name: files by `linkat`, directories by `renameat`, both on
/// directory fds. Returns (moved, kept).
fn move_into_place(home: &Path, staged: &Path) -> Result<(Vec<String>, Vec<String>), HomeError> {
    let staged_path = home.join(staged);
    let home_dir = Dir::open(home).map_err(HomeError::io("open", home))?;
    let staged_dir = home_dir
        .dir(staged)
        .and_then(|d| d.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
        .map_err(HomeError::io("list", &staged_path))?;
    let entries = staged_dir
        .entries()
        .map_err(HomeError::io("list", &staged_path))?;
    let (mut moved, mut kept) = (Vec::new(), Vec::new());
    for (name, stat) in entries {
        let to = home.join(&name);
        let placed = if beneath::is_dir(&stat) {
            match home_dir.stat(Path::new(&name)) {
                Ok(Some(_)) => Err(Errno::EEXIST),
                _ => renameat(&staged_dir, name.as_os_str(), &home_dir, name.as_os_str()),
            }
        } else {
            linkat(
                &staged_dir,
                name.as_os_str(),
                &home_dir,
                name.as_os_str(),
                AtFlags::empty(),
            )
        };
        let name_text = name.to_string_lossy().into_owned();
        match placed {
            Ok(()) => moved.push(name_text),
            Err(Errno::EEXIST) => {
                let same = home_dir
                    .stat(Path::new(&name))
                    .ok()
                    .flatten()
                    .is_some_and(|at| (at.st_dev, at.st_ino) == (stat.st_dev, stat.st_ino));
                if same {
                    moved.push(name_text);
                } else {
                    kept.push(name_text);
                }
            }
            Err(e) => return Err(HomeError::io("link into the home", &to)(e.into())),
        }
    }
    home_dir.sync().map_err(HomeError::io("fsync", home))?;
    Ok((moved, kept))
}

/// Writes the marker, then removes the staging directory.
fn finish(home: &Path, marker: &InitMarker, user: &NodeUser) -> Result<(), HomeError> {
    let agent_rel = Path::new(AGENT_DIR);
    atomic::ensure_dir(home, agent_rel, 0o755, user)
        .map_err(HomeError::io("create", &home.join(agent_rel)))?;
    let rel = agent_rel.join(MARKER_FILE);
    let text = serde_json::to_vec_pretty(marker).expect("a marker serializes");
    atomic::write_file(home, &rel, &text, 0o644, Previous::Backup, user)
        .map_err(HomeError::io("write", &home.join(&rel)))?;
    remove_staging(home, &agent_rel.join(STAGING_DIR))
}

/// Removes the agent's staging directory (never anything of the node's),
/// walking directory fds: a link in it is removed as a link.
fn remove_staging(home: &Path, staging: &Path) -> Result<(), HomeError> {
    let path = home.join(staging);
    let removed = (|| {
        let home = Dir::open(home)?;
        let (parent, name) = match home.parent_of(staging) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(dir) = parent.dir(Path::new(name))? else {
            return Ok(());
        };
        remove_contents(&dir)?;
        unlinkat(&*parent, name, UnlinkatFlags::RemoveDir)?;
        parent.sync()
    })();
    removed.map_err(HomeError::io("remove", &path))
}

fn remove_contents(dir: &Dir) -> io::Result<()> {
    for (name, stat) in dir.entries()? {
        if beneath::is_dir(&stat) {
            if let Some(below) = dir.dir(Path::new(&name))? {
                remove_contents(&below)?;
            }
            unlinkat(dir, name.as_os_str(), UnlinkatFlags::RemoveDir)?;
        } else {
            unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    Ok(())
}

/// fsyncs every regular file below `dir` and the directories themselves
/// (opened non-blocking and without following a link: a FIFO is skipped).
fn sync_tree(dir: &Dir) -> io::Result<()> {
    for (name, stat) in dir.entries()? {
        let rel = Path::new(&name);
        if beneath::is_dir(&stat) {
            if let Some(below) = dir.dir(rel)? {
                sync_tree(&below)?;
            }
        } else if beneath::is_file(&stat) {
            let fd = dir.open_at(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())?;
            let (file, _) = dir.regular(fd, rel)?;
            file.sync_all()?;
        }
    }
    dir.sync()
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
