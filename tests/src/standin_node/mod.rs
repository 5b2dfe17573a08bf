//! What the stand-in `mpc-node` does once started: the switches tests flip to
//! make it print, exit, crash, hang, ignore SIGTERM, leave orphans behind, or
//! serve a `/health` and `/metrics` like the node's web UI; the indexer a
//! test moves by rewriting a file ([`Indexer`]); the switches of its `init`;
//! and a way to run its commands for the homes stage.
//!
//! Keysets, as the node stores them ([`keyshare`]): `mpc-node
//! write-test-share` stores one and exits; a started stand-in stores each
//! [`KeysetRequest`] a test writes to `<home>/standin-keyset-request.json`
//! (a resharing, a new domain), polled every 50 ms, and writes the
//! [`KeysetResult`] to `<home>/standin-keyset-result.json`. Its `/metrics`
//! carries the keyset gauges of `<home>/standin-keyset-metrics.json`
//! ([`KeysetMetrics`]), read on every scrape.

mod commands;
pub mod keyshare;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use commands::SpawnNode;
pub use keyshare::{
    DomainShare, KEYSET_REQUEST_FILE, KEYSET_RESULT_FILE, KeysetRequest, KeysetResult,
};

/// `MPC_NODE_STANDIN_CONFIG_FILE=1`: the image has `start-with-config-file`
/// (listed by `--help` and accepted).
pub const CONFIG_FILE_SWITCH: &str = "MPC_NODE_STANDIN_CONFIG_FILE";
/// The version `--version` prints (default 3.14.1).
pub const VERSION_SWITCH: &str = "MPC_NODE_STANDIN_VERSION";
/// `init` pauses this many milliseconds after each file (default 30).
pub const INIT_PAUSE_MS: &str = "MPC_NODE_STANDIN_INIT_PAUSE_MS";
/// `init` kills itself with SIGKILL right after writing this many files.
pub const INIT_STOP_AFTER: &str = "MPC_NODE_STANDIN_INIT_STOP_AFTER";
/// `INIT_OFFLINE=1`: `init --download-*` fails as without outbound HTTPS.
pub const INIT_OFFLINE: &str = "MPC_NODE_STANDIN_INIT_OFFLINE";

/// A file every command of the stand-in appends one JSON line to, a
/// [`Logged`]. Set in the agent's environment, it reaches the stand-in only
/// as the node's environment rule lets it.
pub const ENV_LOG: &str = "MPC_NODE_STANDIN_ENV_LOG";

/// One command of the stand-in, as [`ENV_LOG`] records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Logged {
    /// The first argument: `start`, `init`, `--help`, …
    pub command: String,
    /// The names of its environment (never values).
    pub env: Vec<String>,
    /// `start`: the backup key the node runs with, and whether it made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_key: Option<BackupKeyUsed>,
    /// `start`: the indexer's enums the node runs with, from config.yaml or
    /// the start file's `[node.indexer]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexer: Option<IndexerEnums>,
}

/// The externally tagged enums of upstream's `ConfigFile` (near/mpc
/// `crates/node-config`, `IndexerConfig`), in upstream's shapes: the
/// stand-in reads them as mpc-node does, with serde_yaml from config.yaml
/// and with toml from the start file, and so refuses what it refuses (the
/// map form `{Block: {height: N}}` in config.yaml, a tag-like string in
/// the start file). A field left out is not checked.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IndexerEnums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<SyncMode>,
    /// nearcore's own `Finality` (`optimistic`, `near-final`, `final`), the
    /// type upstream uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<near_primitives::types::Finality>,
}

/// Upstream's `SyncMode`: where the indexer starts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SyncMode {
    Interruption,
    Latest,
    Block(BlockArgs),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockArgs {
    pub height: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupKeyUsed {
    /// The agent's fingerprint of the key (`Secret::fingerprint`).
    pub fingerprint: String,
    /// Made by the node and written to `backup_encryption_key.hex`.
    pub generated: bool,
}

/// The lines of an [`ENV_LOG`] file.
pub fn env_log(path: &std::path::Path) -> Vec<Logged> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Where `write-test-share` puts the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShareKind {
    /// `permanent_keys/epoch_<E>_with_<D>_domains` and the `<home>/key` link
    /// to it, as the node stores a keyset (refusing what it refuses).
    Key,
    /// `permanent_keys/epoch_<E>_with_1_domains` only.
    Permanent,
    /// `temporary_keys/keyshare_<E>_0_0` and its empty `started_<E>_0_0` marker.
    Temporary,
    /// `<home>/key` alone in the legacy single-ECDSA format of nodes before domains.
    Legacy,
}

/// How the stand-in behaves after it starts. Every field has a quiet default:
/// the default stand-in prints nothing, serves nothing and runs until signalled.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Lines printed to stdout at start, in order.
    pub stdout: Vec<String>,
    /// Lines printed to stderr at start, in order.
    pub stderr: Vec<String>,
    /// Exit with this code after `after_ms`.
    pub exit_code: Option<i32>,
    /// Kill itself with this signal number after `after_ms`.
    pub die_by_signal: Option<i32>,
    /// Delay before `exit_code` / `die_by_signal` apply.
    pub after_ms: u64,
    /// What SIGTERM and SIGINT do.
    pub on_stop: OnStop,
    /// Orphans left behind: an intermediate process forks this many
    /// grandchildren and exits at once, so they are reparented to the reaper.
    pub orphans: u32,
    /// How long each orphan lives before it exits.
    pub orphan_ms: u64,
    /// Children that stay in the stand-in's process group and outlive it.
    pub group_children: u32,
    /// Serve `GET /health` → 200 `OK` here, like the node's web UI.
    pub health: Option<SocketAddr>,
    /// Bind `health` only after this delay (the node binds it after start-up work).
    pub health_after_ms: u64,
    /// What `/public_data` answers (set by `start` from `secrets.json`).
    #[serde(skip)]
    pub public_data: Option<serde_json::Value>,
    /// The file `/metrics` reads its indexer from on every scrape (`start`:
    /// [`INDEXER_FILE`] in the home). Absent or unset: `/metrics` has no
    /// indexer gauges, as an image from before them.
    pub indexer_file: Option<PathBuf>,
    /// A file polled while running: when it appears, the stand-in removes it
    /// and exits with the code it holds (`start`: [`EXIT_FILE`] in the home).
    pub exit_file: Option<PathBuf>,
    /// The file `/metrics` reads the keyset gauges from on every scrape
    /// (`start`: [`KEYSET_METRICS_FILE`] in the home).
    pub keyset_metrics_file: Option<PathBuf>,
    /// Where keyset requests are polled and stored (`start`: the home,
    /// with the store key the node runs with).
    #[serde(skip)]
    pub keysets: Option<KeysetControl>,
}

/// The home a started stand-in stores requested keysets in, and its store key.
#[derive(Clone, PartialEq)]
pub struct KeysetControl {
    pub home: PathBuf,
    pub store_key: String,
}

impl std::fmt::Debug for KeysetControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysetControl")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// `<home>/standin-keyset-metrics.json`: the keyset gauges `start` reports.
pub const KEYSET_METRICS_FILE: &str = "standin-keyset-metrics.json";

/// The node's keyset gauges, in mpc-node's names (near/mpc
/// `crates/node/src/metrics.rs`); each absent until set, as the node's are
/// until first observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysetMetrics {
    /// `mpc_current_epoch_id`: the contract's keyset epoch.
    pub current_epoch_id: Option<i64>,
    /// `mpc_last_backup_served_epoch`: the last keyset the backup service was served.
    pub last_backup_served_epoch: Option<i64>,
    /// `mpc_last_backup_served_timestamp_seconds`: when.
    pub last_backup_served_timestamp_seconds: Option<i64>,
}

impl KeysetMetrics {
    /// Writes it where a stand-in reads it (temp file and rename).
    pub fn write_to(&self, path: &Path) {
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, serde_json::to_vec(self).expect("JSON")).expect("write metrics");
        std::fs::rename(&temp, path).expect("rename metrics");
    }

    /// The Prometheus text the node's `/metrics` carries for them.
    pub fn exposition(&self) -> String {
        [
            (
                "mpc_current_epoch_id",
                "Epoch id of the keyset the contract currently holds, as last observed by this node",
                self.current_epoch_id,
            ),
            (
                "mpc_last_backup_served_epoch",
                "Epoch id of the most recent keyset successfully served to the registered backup service",
                self.last_backup_served_epoch,
            ),
            (
                "mpc_last_backup_served_timestamp_seconds",
                "Unix time at which keyshares were most recently served to the registered backup service",
                self.last_backup_served_timestamp_seconds,
            ),
        ]
        .into_iter()
        .filter_map(|(name, help, value)| {
            value.map(|v| format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"))
        })
        .collect()
    }
}

/// `<home>/standin-indexer.json`: the indexer `start` reports.
pub const INDEXER_FILE: &str = "standin-indexer.json";
/// `<home>/standin-exit`: write a code here to make a started stand-in exit with it once.
pub const EXIT_FILE: &str = "standin-exit";

/// The node's indexer as its `/metrics` shows it, in mpc-node's names
/// (near/mpc `crates/node/src/metrics.rs`): `mpc_indexer_latest_block_height`,
/// `mpc_indexer_latest_block_timestamp_seconds`, `mpc_current_job_state{state}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Indexer {
    pub height: u64,
    /// Unix time of the latest block processed, in seconds.
    pub block_timestamp_seconds: i64,
    /// The top-level job the node runs (e.g. `Running`), if any.
    #[serde(default)]
    pub job: Option<String>,
}

impl Indexer {
    /// At `height`, its latest block `behind` the wall clock.
    pub fn behind(height: u64, behind: std::time::Duration) -> Indexer {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        Indexer {
            height,
            block_timestamp_seconds: now.saturating_sub(behind).as_secs() as i64,
            job: Some("Running".to_string()),
        }
    }

    /// Writes it where a stand-in reads it (temp file and rename: a scrape
    /// never sees half a file).
    pub fn write_to(&self, path: &Path) {
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, serde_json::to_vec(self).expect("JSON")).expect("write indexer");
        std::fs::rename(&temp, path).expect("rename indexer");
    }

    /// The Prometheus text the node's `/metrics` carries for it.
    pub fn exposition(&self) -> String {
        let mut text = format!(
            "# HELP mpc_indexer_latest_block_height Latest block height processed by the near indexer\n\
             # TYPE mpc_indexer_latest_block_height gauge\n\
             mpc_indexer_latest_block_height {}\n\
             # HELP mpc_indexer_latest_block_timestamp_seconds Unix time of the latest block processed by the near indexer\n\
             # TYPE mpc_indexer_latest_block_timestamp_seconds gauge\n\
             mpc_indexer_latest_block_timestamp_seconds {}\n",
            self.height, self.block_timestamp_seconds
        );
        if let Some(job) = &self.job {
            text.push_str(&format!(
                "# HELP mpc_current_job_state Current state of the top-level MPC job\n\
                 # TYPE mpc_current_job_state gauge\n\
                 mpc_current_job_state{{state=\"{job}\"}} 1\n"
            ));
        }
        text
    }
}

/// The stand-in's answer to SIGTERM and SIGINT.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OnStop {
    /// Print that it stops and exit 0, as the node does since 3.12.
    #[default]
    ExitClean,
    /// Die of the signal (no handler).
    Die,
    /// Print and carry on (the node before 3.13 during its first sync).
    Ignore,
}

/// Runs `mpc-node write-test-share --home HOME --store-key KEY ARGS…` to its end.
pub fn write_test_share(home: &Path, store_key: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::harness::standin_node_bin())
        .args(["write-test-share", "--home"])
        .arg(home)
        .args(["--store-key", store_key])
        .args(args)
        .output()
        .expect("run the stand-in")
}
