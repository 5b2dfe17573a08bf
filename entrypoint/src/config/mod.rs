//! The `config` stage: settings from the command line, the environment, a TOML
//! file and defaults (in that order of precedence), parsed into a typed
//! [`Config`] or refused with every problem named at once.

pub mod settings;
pub mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use near_primitives::types::AccountId;
use serde::{Deserialize, Serialize};

pub use crate::chain::Chain;
use crate::check::{Check, Rule};
use crate::keyshare::VaultLocation;
use crate::secrets::{SecretName, SecretRef, SecretSettings};
use settings::Id;
pub use settings::{Command, SETTINGS, Setting};
pub use values::{Backoff, CrashLoop, UserSpec};

/// The environment variable naming the config file (same as `--config`).
pub const CONFIG_FILE_VAR: &str = "AGENT_CONFIG";

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cli,
    Env,
    File,
    Default,
}

/// One setting as the agent ended up seeing it, for `/config` and `agent config`.
#[derive(Clone, Debug)]
pub struct Effective {
    pub id: Id,
    pub value: Option<String>,
    pub source: Source,
}

/// The raw layers a configuration is resolved from. Not `Debug`: the
/// environment holds secrets.
#[derive(Default)]
pub struct Layers {
    /// Values given as flags.
    pub cli: BTreeMap<Id, String>,
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// The `--config` file, if one was named.
    pub file: Option<PathBuf>,
}

impl Layers {
    /// The process environment with no flags and no file.
    pub fn from_env() -> Self {
        Layers {
            env: std::env::vars().collect(),
            ..Layers::default()
        }
    }

    /// The setting's non-empty environment value: an empty variable counts as unset.
    pub fn env_value(&self, id: Id) -> Option<&str> {
        self.env
            .get(id.name())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// How the agent writes its own log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Plain,
}

/// When the supervisor starts the child again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

/// Where the key checks ask the chain (`AGENT_NEAR_RPC_URL`, `AGENT_RPC_TIMEOUT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRpc {
    /// Tried in order; the next one is used when one fails.
    pub urls: Vec<String>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// How mpc-node is started (`AGENT_START_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// Ask the binary: `start-with-config-file` when its `--help` lists it.
    Auto,
    /// `mpc-node start` with `config.yaml` and the environment (what start.sh does).
    Legacy,
    /// `mpc-node start-with-config-file <toml>`.
    ConfigFile,
}

/// Which side wins when `secrets.json` differs from the validated keys (`AGENT_SECRETS_JSON`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsJsonPolicy {
    /// The keys the chain accepts win; when the chain cannot tell, the file stays.
    Reconcile,
    /// The file stays; the drift is reported.
    Keep,
    /// The validated keys replace the file.
    Replace,
}

/// How the agent treats the node's home (the `homes` stage).
#[derive(Clone, Debug)]
pub struct HomeSettings {
    /// Refuse a home on a filesystem that does not outlive the task.
    pub require_persistent: bool,
    /// Free bytes below which the home is refused (warn below twice this).
    pub min_free: u64,
    /// How long to wait for another agent's lock; `None` waits forever.
    pub lock_wait: Option<Duration>,
    /// How long one piece of file work on the home may take before the boot fails.
    pub io_timeout: Duration,
    pub start_mode: StartMode,
    pub secrets_json: SecretsJsonPolicy,
    /// The user the node runs as; `None` means the owner of the home.
    pub node_user: Option<UserSpec>,
    /// The genesis for the first init on mpc-localnet.
    pub localnet_genesis: PathBuf,
    /// Generate the store key when none exists and no share does (`agent run`, `agent init`).
    pub generate_store_key: bool,
    /// Keep a backup key (the home's, or a generated one) in Secrets Manager when none is configured.
    pub generate_backup_key: bool,
    /// nearcore's listen addresses for config.json (`rpc.addr`, `network.addr`), when set.
    pub nearcore_rpc_addr: Option<SocketAddr>,
    pub nearcore_network_addr: Option<SocketAddr>,
}

/// How the child is supervised (`agent exec` and `agent run`).
#[derive(Clone, Debug)]
pub struct Supervision {
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    pub restart_reset: Duration,
    pub crash_loop: CrashLoop,
    pub stop_grace: Duration,
    pub prestop_delay: Duration,
    pub ready_url: Option<String>,
    pub ready_interval: Duration,
    pub fail_linger: Duration,
    /// An exit code the child is known to end with when a restart is all it
    /// needs: counted toward the crash loop at most once per window.
    pub restartable_exit: Option<i32>,
    /// Who gets the node's log tail on `/status` (`AGENT_STATUS_LOG_TAIL`).
    pub status_log_tail: LogTailAccess,
}

/// Who gets the node's log tail on `/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTailAccess {
    /// Clients whose address is loopback: on the box, not the VPC.
    Loopback,
    Never,
    Always,
}

impl LogTailAccess {
    /// Does a client at `peer` get the tail?
    pub fn allows(self, peer: std::net::IpAddr) -> bool {
        match self {
            LogTailAccess::Loopback => peer.to_canonical().is_loopback(),
            LogTailAccess::Never => false,
            LogTailAccess::Always => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogTailAccess::Loopback => "loopback",
            LogTailAccess::Never => "never",
            LogTailAccess::Always => "always",
        }
    }
}

/// mpc-node's exit when its indexer is wedged after epoch sync and a restart
/// clears it (near/mpc #3909, PR #4443); `agent run` knows it.
pub const NODE_RESTARTABLE_EXIT: i32 = 70;

/// The upstream `start.sh` environment, validated.
#[derive(Clone, Debug)]
pub struct Node {
    pub bin: PathBuf,
    pub home_dir: PathBuf,
    pub chain: Chain,
    pub account_id: AccountId,
    pub contract_id: AccountId,
    pub responder_id: AccountId,
    pub boot_nodes: Option<String>,
    pub tier3_public_addr: Option<SocketAddr>,
    pub log_format: Option<String>,
}

/// What to do about a key the chain does not accept (or an invalid secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMismatch {
    Hold,
    Exit,
    Warn,
}

/// What to do when no NEAR RPC answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRpcUnavailable {
    Hold,
    Skip,
}

/// How `agent run` and `agent init` react to what the stages find.
#[derive(Clone, Debug)]
pub struct Policy {
    pub on_key_mismatch: OnMismatch,
    pub on_rpc_unavailable: OnRpcUnavailable,
}

/// How `agent run` holds and what it watches while the node runs.
#[derive(Clone, Debug)]
pub struct Lifetime {
    /// How long holding is a warning before it is a failure.
    pub hold_grace: Duration,
    pub hold_retry: Backoff,
    pub secret_refresh: Duration,
    pub sync: SyncSettings,
    pub chain_watch: Duration,
    /// The least available balance the account should keep.
    pub min_balance: near_primitives::types::Balance,
}

/// How the node's indexer is followed (`AGENT_NODE_METRICS_URL` and the rest).
#[derive(Clone, Debug)]
pub struct SyncSettings {
    pub metrics_url: String,
    pub ready_max_lag: Duration,
    pub progress_every: Duration,
    pub stall: Duration,
    pub on_stall: OnStall,
}

/// What a stalled indexer does beyond the warning (`AGENT_ON_STALL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStall {
    Warn,
    Restart,
}

/// Where the home's keyshares are copied off the home, and how closely
/// (`AGENT_KEYSHARE_VAULT*`).
#[derive(Clone, Debug)]
pub struct VaultSettings {
    pub location: VaultLocation,
    /// The KMS key objects are written under; `None`: the bucket's default.
    pub kms_key: Option<String>,
}

/// How `agent run` follows the home's keyshares, with a vault or without:
/// how often it looks and how long the newest may live only on the home
/// (`AGENT_KEYSHARE_VAULT_INTERVAL`, `AGENT_KEYSHARE_VAULT_MAX_BEHIND`;
/// `doctor` reads only the latter, its interval is zero).
#[derive(Clone, Copy, Debug)]
pub struct KeyshareWatch {
    pub interval: Duration,
    pub max_behind: Duration,
}

/// Whether `agent run` and `agent init` restore a home with no keyshare
/// from the vault (`AGENT_KEYSHARE_RESTORE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestorePolicy {
    Auto,
    Off,
}

/// The metrics the agent writes to its log for CloudWatch
/// (`AGENT_CLOUDWATCH_NAMESPACE`, `AGENT_CLOUDWATCH_NODE`,
/// `AGENT_METRICS_EMF_INTERVAL`).
#[derive(Clone, Debug)]
pub struct CloudWatchSettings {
    pub namespace: String,
    /// The value of the `Node` dimension.
    pub node: String,
    pub interval: Duration,
}

/// What every command reads, and every setting it read with its source.
#[derive(Clone, Debug)]
pub struct Config {
    pub command: Command,
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub rust_log: Option<String>,
    /// Every setting the command reads, with its value and source.
    pub effective: Vec<Effective>,
}

/// The node's identity and where its keys are judged: what `run`, `init`,
/// `keys` and `doctor` read.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node: Node,
    pub secrets: SecretSettings,
    pub chain_rpc: ChainRpc,
}

/// `agent run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub base: Config,
    pub supervision: Supervision,
    pub node: NodeConfig,
    pub homes: HomeSettings,
    pub policy: Policy,
    pub lifetime: Lifetime,
    /// `AGENT_EFS_FILE_SYSTEM_ID` (shown on /config for `agent doctor`).
    pub efs_file_system_id: Option<String>,
    /// `None`: no vault configured.
    pub vault: Option<VaultSettings>,
    /// The home's keyshares followed even without a vault.
    pub keyshares: KeyshareWatch,
    pub restore: RestorePolicy,
    /// `None`: no metrics lines written.
    pub cloudwatch: Option<CloudWatchSettings>,
}

/// `agent exec`.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    pub base: Config,
    pub supervision: Supervision,
}

/// `agent init`.
#[derive(Clone, Debug)]
pub struct InitConfig {
    pub base: Config,
    pub node: NodeConfig,
    pub homes: HomeSettings,
    pub policy: Policy,
    pub vault: Option<VaultSettings>,
    pub restore: RestorePolicy,
}

/// `agent keys`.
#[derive(Clone, Debug)]
pub struct KeysConfig {
    pub base: Config,
    pub node: NodeConfig,
}

/// `agent doctor`.
#[derive(Clone, Debug)]
pub struct DoctorConfig {
    pub base: Config,
    pub node: NodeConfig,
    pub homes: HomeSettings,
    pub efs_file_system_id: Option<String>,
    pub vault: Option<VaultSettings>,
    pub keyshares: KeyshareWatch,
    /// What `agent run` does on a home without its keyshare (doctor says it).
    pub restore: RestorePolicy,
    pub cloudwatch: Option<CloudWatchSettings>,
}

/// `agent vault restore` and `agent vault verify`: the node, its home and
/// the vault, which must be configured.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    pub base: Config,
    pub node: NodeConfig,
    pub homes: HomeSettings,
    pub vault: VaultSettings,
    pub cloudwatch: Option<CloudWatchSettings>,
}

/// Every problem found in the configuration, each a failed [`Check`].
#[derive(Debug, thiserror::Error)]
#[error("{} configuration problem(s): {}", .0.len(), .0.iter().map(Check::summary).collect::<Vec<_>>().join("; "))]
pub struct ConfigError(pub Vec<Check>);

impl RunConfig {
    pub fn resolve(layers: &Layers) -> Result<RunConfig, ConfigError> {
        let mut r = Resolver::new(Command::Run, layers);
        let supervision = r.supervision();
        let node = r.node_config();
        let homes = r.homes();
        let policy = r.policy();
        let lifetime = r.lifetime();
        let efs_file_system_id = r.efs_file_system_id();
        let vault = r.vault();
        let keyshares = r.keyshare_watch();
        let restore = r.restore();
        let cloudwatch = r.cloudwatch(node.as_ref());
        r.finish(|base| {
            Some(RunConfig {
                base,
                supervision: supervision?,
                node: node?,
                homes: homes?,
                policy: policy?,
                lifetime: lifetime?,
                efs_file_system_id,
                vault: vault?,
                keyshares: keyshares?,
                restore: restore?,
                cloudwatch: cloudwatch?,
            })
        })
    }
}

impl ExecConfig {
    pub fn resolve(layers: &Layers) -> Result<ExecConfig, ConfigError> {
        let mut r = Resolver::new(Command::Exec, layers);
        let supervision = r.supervision();
        r.finish(|base| {
            Some(ExecConfig {
                base,
                supervision: supervision?,
            })
        })
    }
}

impl InitConfig {
    pub fn resolve(layers: &Layers) -> Result<InitConfig, ConfigError> {
        let mut r = Resolver::new(Command::Init, layers);
        let node = r.node_config();
        let homes = r.homes();
        let policy = r.policy();
        let vault = r.vault();
        let restore = r.restore();
        r.finish(|base| {
            Some(InitConfig {
                base,
                node: node?,
                homes: homes?,
                policy: policy?,
                vault: vault?,
                restore: restore?,
            })
        })
    }
}

impl KeysConfig {
    pub fn resolve(layers: &Layers) -> Result<KeysConfig, ConfigError> {
        let mut r = Resolver::new(Command::Keys, layers);
        let node = r.node_config();
        r.finish(|base| Some(KeysConfig { base, node: node? }))
    }
}

impl DoctorConfig {
    pub fn resolve(layers: &Layers) -> Result<DoctorConfig, ConfigError> {
        let mut r = Resolver::new(Command::Doctor, layers);
        let node = r.node_config();
        let homes = r.homes();
        let efs_file_system_id = r.efs_file_system_id();
        let vault = r.vault();
        let keyshares = r.keyshare_watch();
        let restore = r.restore();
        let cloudwatch = r.cloudwatch(node.as_ref());
        r.finish(|base| {
            Some(DoctorConfig {
                base,
                node: node?,
                homes: homes?,
                efs_file_system_id,
                vault: vault?,
                keyshares: keyshares?,
                restore: restore?,
                cloudwatch: cloudwatch?,
            })
        })
    }
}

impl VaultConfig {
    pub fn resolve(layers: &Layers) -> Result<VaultConfig, ConfigError> {
        let mut r = Resolver::new(Command::Vault, layers);
        let node = r.node_config();
        let homes = r.homes();
        let vault = r.required_vault();
        let cloudwatch = r.cloudwatch(node.as_ref());
        r.finish(|base| {
            Some(VaultConfig {
                base,
                node: node?,
                homes: homes?,
                vault: vault?,
                cloudwatch: cloudwatch?,
            })
        })
    }
}

impl Config {
    /// What the command reads beside its own sections (`agent health`).
    pub fn resolve(command: Command, layers: &Layers) -> Result<Config, ConfigError> {
        Resolver::new(command, layers).finish(Some)
    }

    /// The local URL of this agent's own HTTP server (`0.0.0.0` becomes loopback).
    pub fn local_url(&self, path: &str) -> String {
        local_url(self.listen, path)
    }
}

/// `http://127.0.0.1:PORT/path` for a listener on `addr`, loopback for a wildcard.
pub fn local_url(addr: SocketAddr, path: &str) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}{path}", SocketAddr::new(ip, addr.port()))
}

fn log_format_named(name: &str) -> LogFormat {
    if name == "json" {
        LogFormat::Json
    } else {
        LogFormat::Plain
    }
}

impl LogFormat {
    /// JSON lines unless a person is watching stdout.
    pub fn for_stdout() -> LogFormat {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            LogFormat::Plain
        } else {
            LogFormat::Json
        }
    }

    /// The format named in the layers, read leniently so that logging can start
    /// before the configuration is validated (a bad value is reported later).
    pub fn from_layers(layers: &Layers) -> LogFormat {
        let named = layers
            .cli
            .get(&Id::LogFormat)
            .map(String::as_str)
            .or_else(|| layers.env_value(Id::LogFormat));
        match named {
            Some("json") => LogFormat::Json,
            Some("plain") => LogFormat::Plain,
            _ => LogFormat::for_stdout(),
        }
    }
}

/// Looks settings up through the layers, collecting problems instead of stopping at the first.
struct Resolver<'a> {
    command: Command,
    layers: &'a Layers,
    file: BTreeMap<String, String>,
    problems: Vec<Check>,
    effective: Vec<Effective>,
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    rust_log: Option<String>,
}

impl<'a> Resolver<'a> {
    fn new(command: Command, layers: &'a Layers) -> Self {
        let mut r = Resolver {
            command,
            layers,
            file: BTreeMap::new(),
            problems: Vec::new(),
            effective: Vec::new(),
            listen: None,
            log_format: None,
            rust_log: None,
        };
        if let Some(path) = &layers.file {
            match read_file(path) {
                Ok(file) => r.file = file,
                Err(problem) => r.problems.push(problem),
            }
        }
        r.listen = r.parse(Id::Listen, values::socket_addr);
        r.log_format = r.parse(Id::LogFormat, |v| {
            values::choice(v, &["json", "plain"]).map(log_format_named)
        });
        r.rust_log = r.value(Id::RustLog);
        r
    }

    /// The command's configuration, or every problem found. `build` gets the
    /// common part and assembles the command's sections: each is there
    /// unless it had a problem.
    fn finish<T>(mut self, build: impl FnOnce(Config) -> Option<T>) -> Result<T, ConfigError> {
        self.unknown_names();
        if !self.problems.is_empty() {
            return Err(ConfigError(self.problems));
        }
        let command = self.command;
        let incomplete = || {
            ConfigError(vec![Check::fail(
                "config",
                format!(
                    "the configuration of agent {} is incomplete without a problem named",
                    command.name()
                ),
                "report this as a bug of the agent",
            )])
        };
        let listen = self.listen.ok_or_else(incomplete)?;
        let base = Config {
            command,
            file: self.layers.file.clone(),
            listen,
            log_format: self.log_format.unwrap_or_else(LogFormat::for_stdout),
            rust_log: self.rust_log,
            effective: self.effective,
        };
        build(base).ok_or_else(incomplete)
    }

    /// How the child is supervised (`run`, `exec`).
    fn supervision(&mut self) -> Option<Supervision> {
        let restart = self.parse(Id::Restart, |v| {
            values::choice(v, &["never", "on-failure", "always"]).map(|c| match c {
                "never" => RestartPolicy::Never,
                "always" => RestartPolicy::Always,
                _ => RestartPolicy::OnFailure,
            })
        });
        let backoff = self.parse(Id::RestartBackoff, values::backoff);
        let restart_reset = self.parse(Id::RestartReset, values::duration);
        let crash_loop = self.parse(Id::CrashLoop, values::crash_loop);
        let stop_grace = self.parse(Id::StopGrace, values::duration);
        let prestop_delay = self.parse(Id::PrestopDelay, values::duration);
        let ready_url = match self.raw(Id::ReadyUrl) {
            Some((value, source)) => {
                Some(self.parse_found(Id::ReadyUrl, value, source, values::http_url)?)
            }
            None => None,
        };
        let ready_interval = self.parse(Id::ReadyInterval, values::duration);
        let fail_linger = self.parse(Id::FailLinger, values::duration);
        let status_log_tail = self.parse(Id::StatusLogTail, |v| {
            values::choice(v, &["loopback", "never", "always"]).map(|c| match c {
                "never" => LogTailAccess::Never,
                "always" => LogTailAccess::Always,
                _ => LogTailAccess::Loopback,
            })
        });
        Some(Supervision {
            restart: restart?,
            backoff: backoff?,
            restart_reset: restart_reset?,
            crash_loop: crash_loop?,
            stop_grace: stop_grace?,
            prestop_delay: prestop_delay?,
            ready_url,
            ready_interval: ready_interval?,
            fail_linger: fail_linger?,
            restartable_exit: (self.command == Command::Run).then_some(NODE_RESTARTABLE_EXIT),
            status_log_tail: status_log_tail?,
        })
    }

    /// The node, its secrets and its chain (`run`, `init`, `keys`, `doctor`).
    fn node_config(&mut self) -> Option<NodeConfig> {
        let node = self.node();
        let chain = node.as_ref().map(|n| n.chain);
        let secrets = self.secrets(chain);
        let chain_rpc = self.chain_rpc(chain);
        Some(NodeConfig {
            node: node?,
            secrets: secrets?,
            chain_rpc: chain_rpc?,
        })
    }

    fn efs_file_system_id(&mut self) -> Option<String> {
        self.parse(Id::EfsFileSystemId, values::efs_id)
    }

    /// The vault, when one is named (`Some(None)`: none is). A refused
    /// value is a problem of the resolution, which then fails.
    fn vault(&mut self) -> Option<Option<VaultSettings>> {
        let location = self.parse(Id::KeyshareVault, crate::keyshare::location);
        let kms_key = self.parse(Id::KeyshareVaultKmsKey, values::kms_key);
        Some(location.map(|location| VaultSettings { location, kms_key }))
    }

    /// How the home's keyshares are followed: `run` reads both settings,
    /// `doctor` only the max-behind (its interval is zero).
    fn keyshare_watch(&mut self) -> Option<KeyshareWatch> {
        let interval = match self.command {
            Command::Run => self.parse(Id::KeyshareVaultInterval, values::positive_duration)?,
            _ => Duration::ZERO,
        };
        let max_behind = self.parse(Id::KeyshareVaultMaxBehind, values::positive_duration)?;
        Some(KeyshareWatch {
            interval,
            max_behind,
        })
    }

    /// The vault `agent vault` works on: unset is a problem.
    fn required_vault(&mut self) -> Option<VaultSettings> {
        let vault = self.vault()?;
        if vault.is_none() {
            let name = Id::KeyshareVault.name();
            self.problems.push(Check::fail(
                format!("config.{name}"),
                format!("{name} is not set; agent vault works on the keyshare vault it names"),
                format!(
                    "set {name}=s3://BUCKET[/PREFIX], the vault agent run copies the keyshares to"
                ),
            ));
        }
        vault
    }

    fn restore(&mut self) -> Option<RestorePolicy> {
        self.parse(Id::KeyshareRestore, |v| {
            values::choice(v, &["auto", "off"]).map(|c| match c {
                "off" => RestorePolicy::Off,
                _ => RestorePolicy::Auto,
            })
        })
    }

    /// The metrics lines, when a namespace is named: `Some(None)` when none
    /// is. The `Node` dimension defaults to the node's account.
    fn cloudwatch(&mut self, node: Option<&NodeConfig>) -> Option<Option<CloudWatchSettings>> {
        let namespace = self.parse(Id::CloudwatchNamespace, values::cloudwatch_namespace);
        let named = self.parse(Id::CloudwatchNode, values::cloudwatch_dimension);
        let interval = match self.command {
            Command::Run => self.parse(Id::MetricsEmfInterval, values::positive_duration)?,
            _ => Duration::ZERO,
        };
        let Some(namespace) = namespace else {
            return Some(None);
        };
        let node = named.or_else(|| node.map(|n| n.node.account_id.to_string()))?;
        Some(Some(CloudWatchSettings {
            namespace,
            node,
            interval,
        }))
    }

    /// The raw value of `id` and where it came from; records it as effective.
    fn raw(&mut self, id: Id) -> Option<(String, Source)> {
        let setting = id.setting();
        debug_assert!(
            setting.read_by(self.command),
            "{} is not read by {:?}",
            setting.name,
            self.command
        );
        let found = if let Some(v) = self.layers.cli.get(&id).filter(|v| !v.is_empty()) {
            Some((v.clone(), Source::Cli))
        } else if let Some(v) = self.layers.env_value(id) {
            Some((v.to_string(), Source::Env))
        } else if let Some(v) = self.file.get(&setting.file_key()).filter(|v| !v.is_empty()) {
            Some((v.clone(), Source::File))
        } else {
            setting
                .default_for(self.command)
                .map(|v| (v.to_string(), Source::Default))
        };
        self.effective.push(Effective {
            id,
            value: found.as_ref().map(|(v, _)| v.clone()),
            source: found
                .as_ref()
                .map(|(_, s)| s.clone())
                .unwrap_or(Source::Default),
        });
        found
    }

    fn value(&mut self, id: Id) -> Option<String> {
        self.raw(id).map(|(v, _)| v)
    }

    /// Parses `id`; a refused value becomes a problem naming the setting, its source, the rule and the fix.
    fn parse<T>(&mut self, id: Id, parse: impl FnOnce(&str) -> Result<T, Rule>) -> Option<T> {
        let (value, source) = self.raw(id)?;
        self.parse_found(id, value, source, parse)
    }

    /// Like [`Resolver::parse`], and an unset value is a problem too.
    fn required<T>(
        &mut self,
        id: Id,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, Rule>,
    ) -> Option<T> {
        let Some((value, source)) = self.raw(id) else {
            let name = id.name();
            self.problems.push(Check::fail(
                format!("config.{name}"),
                format!("{name} is not set; it is required ({what})"),
                format!("set {name} in the task definition's environment or the config file"),
            ));
            return None;
        };
        self.parse_found(id, value, source, parse)
    }

    fn parse_found<T>(
        &mut self,
        id: Id,
        value: String,
        source: Source,
        parse: impl FnOnce(&str) -> Result<T, Rule>,
    ) -> Option<T> {
        match parse(value.trim()) {
            Ok(v) => Some(v),
            Err(rule) => {
                self.problem(id, &value, &source, rule);
                None
            }
        }
    }

    fn problem(&mut self, id: Id, value: &str, source: &Source, rule: Rule) {
        let name = id.name();
        let from = match source {
            Source::Cli => "command line".to_string(),
            Source::Env => "environment".to_string(),
            Source::File => format!(
                "config file {}",
                self.layers
                    .file
                    .as_deref()
                    .unwrap_or(Path::new("?"))
                    .display()
            ),
            Source::Default => "default".to_string(),
        };
        // A URL may carry an API key: its value is never quoted.
        let (cause, detail) = if id.setting().is_url() {
            (
                format!("{name} (from {from}; the value is not shown) {}", rule.rule),
                serde_json::json!({ "setting": name, "source": source }),
            )
        } else {
            (
                format!("{name}={value:?} (from {from}) {}", rule.rule),
                serde_json::json!({ "setting": name, "value": value, "source": source }),
            )
        };
        self.problems
            .push(Check::fail(format!("config.{name}"), cause, rule.fix).with_detail(detail));
    }

    /// The upstream node environment (`agent run`).
    fn node(&mut self) -> Option<Node> {
        let bin = self.value(Id::NodeBin).map(PathBuf::from);
        let home_dir = self.required(Id::MpcHomeDir, "the node's home directory", |v| {
            Ok(PathBuf::from(v))
        });
        let chain = self.required(Id::MpcEnv, "the chain the node joins", |v| {
            values::choice(v, &Chain::NAMES).map(chain_named)
        });
        let account_id = self.required(
            Id::MpcAccountId,
            "the node operator's NEAR account",
            account,
        );
        let contract_id =
            self.required(Id::MpcContractId, "the signer contract's account", account);
        let responder_id = match self.raw(Id::MpcResponderId) {
            Some((value, source)) => self.parse_found(Id::MpcResponderId, value, source, account),
            None => account_id.clone(),
        };
        let boot_nodes = self.parse(Id::NearBootNodes, boot_nodes);
        let tier3_public_addr = self.parse(Id::MpcTier3PublicAddr, values::socket_addr);
        let log_format = self.parse(Id::MpcLogFormat, |v| {
            values::choice(v, &["plain", "json"]).map(str::to_string)
        });
        Some(Node {
            bin: bin?,
            home_dir: home_dir?,
            chain: chain?,
            account_id: account_id?,
            contract_id: contract_id?,
            responder_id: responder_id?,
            boot_nodes,
            tier3_public_addr,
            log_format,
        })
    }

    fn policy(&mut self) -> Option<Policy> {
        let on_key_mismatch = self.parse(Id::OnKeyMismatch, |v| {
            values::choice(v, &["hold", "exit", "warn"]).map(|c| match c {
                "exit" => OnMismatch::Exit,
                "warn" => OnMismatch::Warn,
                _ => OnMismatch::Hold,
            })
        });
        let on_rpc_unavailable = self.parse(Id::OnRpcUnavailable, |v| {
            values::choice(v, &["hold", "skip"]).map(|c| match c {
                "skip" => OnRpcUnavailable::Skip,
                _ => OnRpcUnavailable::Hold,
            })
        });
        Some(Policy {
            on_key_mismatch: on_key_mismatch?,
            on_rpc_unavailable: on_rpc_unavailable?,
        })
    }

    fn lifetime(&mut self) -> Option<Lifetime> {
        let hold_grace = self.parse(Id::HoldGrace, values::duration);
        let hold_retry = self.parse(Id::HoldRetry, values::backoff);
        let secret_refresh = self.parse(Id::SecretRefresh, values::positive_duration);
        let metrics_url = self.parse(Id::NodeMetricsUrl, values::http_url);
        let ready_max_lag = self.parse(Id::ReadyMaxLag, values::duration);
        let progress_every = self.parse(Id::ProgressEvery, values::positive_duration);
        let stall = self.parse(Id::IndexerStall, values::positive_duration);
        let on_stall = self.parse(Id::OnStall, |v| {
            values::choice(v, &["warn", "restart"]).map(|c| match c {
                "restart" => OnStall::Restart,
                _ => OnStall::Warn,
            })
        });
        let chain_watch = self.parse(Id::ChainWatch, values::positive_duration);
        let min_balance = self.parse(Id::MinBalance, values::near_amount);
        Some(Lifetime {
            hold_grace: hold_grace?,
            hold_retry: hold_retry?,
            secret_refresh: secret_refresh?,
            sync: SyncSettings {
                metrics_url: metrics_url?,
                ready_max_lag: ready_max_lag?,
                progress_every: progress_every?,
                stall: stall?,
                on_stall: on_stall?,
            },
            chain_watch: chain_watch?,
            min_balance: min_balance?,
        })
    }

    fn secrets(&mut self, chain: Option<Chain>) -> Option<SecretSettings> {
        let mut ids = BTreeMap::new();
        for secret in SecretName::ALL {
            if let Some(id) = self.parse(secret_id_setting(secret), SecretRef::check) {
                ids.insert(secret.env_name(), id);
            }
        }
        let template = self.parse(Id::SecretIdTemplate, SecretRef::check_template);
        let dir = self.value(Id::SecretsDir).map(PathBuf::from);
        let timeout = self.parse(Id::SecretsTimeout, values::duration);
        let jitter = self.parse(Id::SecretsJitter, values::duration);
        Some(SecretSettings {
            ids,
            template,
            dir,
            timeout: timeout?,
            jitter: jitter?,
            chain: chain?,
        })
    }

    /// The NEAR RPC for the key checks. Its default depends on the chain;
    /// without one (the node settings have problems) there is no default.
    fn chain_rpc(&mut self, chain: Option<Chain>) -> Option<ChainRpc> {
        let timeout = self.parse(Id::RpcTimeout, values::positive_duration);
        let urls = match self.raw(Id::NearRpcUrl) {
            Some((value, source)) => {
                self.parse_found(Id::NearRpcUrl, value, source, values::http_or_https_urls)
            }
            None => self.public_rpc_of(chain?, Id::NearRpcUrl),
        };
        Some(ChainRpc {
            urls: urls?,
            timeout: timeout?,
        })
    }

    /// The public RPC of `chain`, recorded as the effective value of `id`;
    /// a localnet has none, so the setting is required there.
    fn public_rpc_of(&mut self, chain: Chain, id: Id) -> Option<Vec<String>> {
        let name = id.name();
        let Some(url) = chain.public_rpc_url() else {
            self.problems.push(Check::fail(
                format!("config.{name}"),
                format!(
                    "{name} is not set; it is required with MPC_ENV={} (a localnet has no public RPC)",
                    chain.as_str()
                ),
                format!("set {name} to the localnet's RPC, e.g. http://localnet-node:3030"),
            ));
            return None;
        };
        if let Some(effective) = self.effective.iter_mut().rev().find(|e| e.id == id) {
            effective.value = Some(url.to_string());
        }
        Some(vec![url.to_string()])
    }

    /// How the home is checked and prepared (`agent run`, `init`, `doctor`).
    fn homes(&mut self) -> Option<HomeSettings> {
        let require_persistent = self.parse(Id::RequirePersistentHome, values::boolean);
        let min_free = self.parse(Id::MinFree, values::size);
        let lock_wait = self.parse(Id::LockWait, values::wait_limit);
        let io_timeout = self.parse(Id::HomeIoTimeout, values::positive_duration);
        let start_mode = self.parse(Id::StartMode, |v| {
            values::choice(v, &["auto", "legacy", "config-file"]).map(|c| match c {
                "legacy" => StartMode::Legacy,
                "config-file" => StartMode::ConfigFile,
                _ => StartMode::Auto,
            })
        });
        let secrets_json = self.parse(Id::SecretsJson, |v| {
            values::choice(v, &["reconcile", "keep", "replace"]).map(|c| match c {
                "keep" => SecretsJsonPolicy::Keep,
                "replace" => SecretsJsonPolicy::Replace,
                _ => SecretsJsonPolicy::Reconcile,
            })
        });
        let node_user = match self.raw(Id::NodeUser) {
            Some((value, source)) => {
                Some(self.parse_found(Id::NodeUser, value, source, values::user_spec)?)
            }
            None => None,
        };
        let localnet_genesis = self.value(Id::LocalnetGenesis).map(PathBuf::from);
        let generate_store_key = self.parse(Id::GenerateStoreKey, values::boolean);
        let generate_backup_key = self.parse(Id::GenerateBackupKey, values::boolean);
        let nearcore_rpc_addr = self.parse(Id::NearcoreRpcAddr, values::socket_addr);
        let nearcore_network_addr = self.parse(Id::NearcoreNetworkAddr, values::socket_addr);
        Some(HomeSettings {
            require_persistent: require_persistent?,
            min_free: min_free?,
            lock_wait: lock_wait?,
            io_timeout: io_timeout?,
            start_mode: start_mode?,
            secrets_json: secrets_json?,
            node_user,
            localnet_genesis: localnet_genesis?,
            generate_store_key: generate_store_key?,
            generate_backup_key: generate_backup_key?,
            nearcore_rpc_addr,
            nearcore_network_addr,
        })
    }

    /// `AGENT_*` variables and file keys that name no setting are mistakes, not noise.
    fn unknown_names(&mut self) {
        let known = || SETTINGS.iter().map(|s| s.name);
        let unknown_env: Vec<String> = self
            .layers
            .env
            .keys()
            .filter(|k| {
                k.starts_with("AGENT_") && *k != CONFIG_FILE_VAR && settings::find(k).is_none()
            })
            .cloned()
            .collect();
        for name in unknown_env {
            let fix = match values::suggest(&name, known().filter(|n| n.starts_with("AGENT_"))) {
                Some(near) => format!(
                    "did you mean {near}? (agent {} --help lists every setting)",
                    self.command.name()
                ),
                None => format!(
                    "remove it; agent {} --help lists every setting",
                    self.command.name()
                ),
            };
            self.problems.push(Check::fail(
                format!("config.{name}"),
                format!("{name} is set in the environment but is not a setting of the agent"),
                fix,
            ));
        }
        let file_keys: Vec<String> = self.file.keys().cloned().collect();
        let keys: Vec<String> = SETTINGS.iter().map(Setting::file_key).collect();
        for key in file_keys {
            if keys.contains(&key) {
                continue;
            }
            let fix = match values::suggest(&key, keys.iter().map(String::as_str)) {
                Some(near) => format!("did you mean {near}?"),
                None => "remove it; keys are the setting names in lower case without AGENT_ (e.g. stop_grace)".to_string(),
            };
            self.problems.push(Check::fail(
                format!("config.file.{key}"),
                format!(
                    "key {key:?} in {} is not a setting of the agent",
                    self.layers
                        .file
                        .as_deref()
                        .unwrap_or(Path::new("?"))
                        .display()
                ),
                fix,
            ));
        }
    }
}

/// Reads the TOML file into `key → value as text` so that every layer parses the same way.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, Check> {
    let id = "config.file";
    let text = std::fs::read_to_string(path).map_err(|e| {
        Check::fail(
            id,
            format!("cannot read config file {}: {e}", path.display()),
            "pass an existing, readable TOML file to --config, or drop the flag",
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Check::fail(
            id,
            format!(
                "config file {} is not valid TOML: {}",
                path.display(),
                e.message()
            ),
            "write one `key = value` per line, e.g. stop_grace = \"25s\"",
        )
    })?;
    table
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key, s)),
            toml::Value::Integer(i) => Ok((key, i.to_string())),
            toml::Value::Float(f) => Ok((key, f.to_string())),
            toml::Value::Boolean(b) => Ok((key, b.to_string())),
            other => Err(Check::fail(
                format!("config.file.{key}"),
                format!(
                    "key {key:?} in {} is a {}; settings are strings, numbers or booleans",
                    path.display(),
                    other.type_str()
                ),
                format!("write it like {key} = \"value\""),
            )),
        })
        .collect()
}

/// The setting holding the Secrets Manager id of `secret`.
fn secret_id_setting(secret: SecretName) -> Id {
    match secret {
        SecretName::AccountSk => Id::SecretIdMpcAccountSk,
        SecretName::P2pPrivateKey => Id::SecretIdMpcP2pPrivateKey,
        SecretName::SecretStoreKey => Id::SecretIdMpcSecretStoreKey,
        SecretName::BackupEncryptionKey => Id::SecretIdMpcBackupEncryptionKeyHex,
    }
}

/// The chain called `name`, one of [`Chain::NAMES`].
fn chain_named(name: &str) -> Chain {
    match name {
        "mpc-localnet" => Chain::Localnet,
        "testnet" => Chain::Testnet,
        _ => Chain::Mainnet,
    }
}

/// A NEAR account id, with the naming rules in the fix.
fn account(value: &str) -> Result<AccountId, Rule> {
    value.parse::<AccountId>().map_err(|e| {
        Rule::new(
            format!("is not a valid NEAR account id ({e})"),
            "use lowercase letters, digits and single - _ . separators, 2 to 64 characters (e.g. node0.mpc.testnet)",
        )
    })
}

/// `NEAR_BOOT_NODES`: comma-separated `ed25519:KEY@HOST:PORT`.
fn boot_nodes(value: &str) -> Result<String, Rule> {
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let refused = |what: &str| {
            Rule::new(
                format!("entry {entry:?} {what}"),
                "write peers as ed25519:KEY@HOST:PORT, separated by commas",
            )
        };
        let (key, addr) = entry.split_once('@').ok_or_else(|| refused("has no @"))?;
        key.parse::<near_crypto::PublicKey>()
            .map_err(|_| refused("does not start with a valid public key"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| refused("has no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(refused("has no valid HOST:PORT"));
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(env: &[(&str, &str)]) -> Layers {
        Layers {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Layers::default()
        }
    }

    const NODE_ENV: &[(&str, &str)] = &[
        ("MPC_HOME_DIR", "/data"),
        ("MPC_ENV", "testnet"),
        ("MPC_ACCOUNT_ID", "node0.testnet"),
        ("MPC_CONTRACT_ID", "v1.signer-prod.testnet"),
    ];

    #[test]
    fn exec_defaults_resolve_without_any_setting() {
        let config = ExecConfig::resolve(&layers(&[])).unwrap();
        let s = config.supervision;
        assert_eq!(s.restart, RestartPolicy::Never);
        assert_eq!(s.stop_grace, Duration::from_secs(25));
        assert_eq!(s.ready_url, None);
        assert_eq!(config.base.listen, "0.0.0.0:8090".parse().unwrap());
    }

    #[test]
    fn run_defaults_restart_on_failure_and_poll_the_node() {
        let config = RunConfig::resolve(&layers(NODE_ENV)).unwrap();
        let s = config.supervision;
        assert_eq!(s.restart, RestartPolicy::OnFailure);
        assert_eq!(s.ready_url.as_deref(), Some("http://127.0.0.1:8080/health"));
        let node = config.node.node;
        assert_eq!(node.chain, Chain::Testnet);
        assert_eq!(node.responder_id.as_str(), "node0.testnet");
    }

    #[test]
    fn rpc_defaults_to_the_public_rpc_of_the_chain() {
        let config = KeysConfig::resolve(&layers(NODE_ENV)).unwrap();
        let rpc = config.node.chain_rpc;
        assert_eq!(rpc.urls, ["https://rpc.testnet.near.org"]);
        assert_eq!(rpc.timeout, Duration::from_secs(5));
        let effective = config
            .base
            .effective
            .iter()
            .find(|e| e.id == Id::NearRpcUrl)
            .unwrap();
        assert_eq!(
            effective.value.as_deref(),
            Some("https://rpc.testnet.near.org")
        );
        assert_eq!(effective.source, Source::Default);

        let mut mainnet = NODE_ENV.to_vec();
        mainnet[1] = ("MPC_ENV", "mainnet");
        let config = DoctorConfig::resolve(&layers(&mainnet)).unwrap();
        assert_eq!(config.node.chain_rpc.urls, ["https://rpc.mainnet.near.org"]);
        assert!(
            !ExecConfig::resolve(&layers(&[]))
                .unwrap()
                .base
                .effective
                .iter()
                .any(|e| e.id == Id::NearRpcUrl)
        );
    }

    #[test]
    fn rpc_urls_are_required_on_localnet_and_listed_in_order() {
        let mut localnet = NODE_ENV.to_vec();
        localnet[1] = ("MPC_ENV", "mpc-localnet");
        let err = RunConfig::resolve(&layers(&localnet)).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].id, "config.AGENT_NEAR_RPC_URL");
        assert!(
            err.0[0].cause.contains("mpc-localnet"),
            "{}",
            err.0[0].cause
        );

        localnet.push((
            "AGENT_NEAR_RPC_URL",
            "http://10.0.0.5:3030, https://backup.example",
        ));
        localnet.push(("AGENT_RPC_TIMEOUT", "750ms"));
        let rpc = RunConfig::resolve(&layers(&localnet))
            .unwrap()
            .node
            .chain_rpc;
        assert_eq!(rpc.urls, ["http://10.0.0.5:3030", "https://backup.example"]);
        assert_eq!(rpc.timeout, Duration::from_millis(750));
    }

    #[test]
    fn rpc_urls_and_timeout_are_validated() {
        let mut env = NODE_ENV.to_vec();
        env.push(("AGENT_NEAR_RPC_URL", "rpc.testnet.near.org/v3/APIKEY"));
        env.push(("AGENT_RPC_TIMEOUT", "0s"));
        let err = KeysConfig::resolve(&layers(&env)).unwrap_err();
        let ids: Vec<&str> = err.0.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["config.AGENT_RPC_TIMEOUT", "config.AGENT_NEAR_RPC_URL"]
        );
        // A URL may carry an API key: the problem names the setting, not the value.
        let url = serde_json::to_string(&err.0[1]).unwrap();
        assert!(!url.contains("APIKEY"), "{url}");
        assert!(url.contains("the value is not shown"), "{url}");
        assert!(err.0[0].cause.contains("\"0s\""), "{}", err.0[0].cause);
    }

    #[test]
    fn home_settings_default_to_a_persistent_locked_home() {
        let config = RunConfig::resolve(&layers(NODE_ENV)).unwrap();
        let homes = config.homes;
        assert!(homes.require_persistent);
        assert_eq!(homes.min_free, 10 << 30);
        assert_eq!(homes.lock_wait, None);
        assert_eq!(homes.start_mode, StartMode::Auto);
        assert_eq!(homes.secrets_json, SecretsJsonPolicy::Reconcile);
        assert_eq!(homes.node_user, None);
        assert_eq!(
            homes.localnet_genesis,
            PathBuf::from("/app/localnet-genesis.json")
        );
        assert!(
            !KeysConfig::resolve(&layers(NODE_ENV))
                .unwrap()
                .base
                .effective
                .iter()
                .any(|e| e.id == Id::MinFree)
        );
    }

    #[test]
    fn home_settings_are_parsed_and_refused_by_name() {
        let mut env = NODE_ENV.to_vec();
        env.extend([
            ("AGENT_REQUIRE_PERSISTENT_HOME", "false"),
            ("AGENT_LOCK_WAIT", "90s"),
            ("AGENT_START_MODE", "config-file"),
            ("AGENT_SECRETS_JSON", "replace"),
            ("AGENT_NODE_USER", "1000:1000"),
        ]);
        let homes = InitConfig::resolve(&layers(&env)).unwrap().homes;
        assert!(!homes.require_persistent);
        assert_eq!(homes.lock_wait, Some(Duration::from_secs(90)));
        assert_eq!(homes.start_mode, StartMode::ConfigFile);
        assert_eq!(homes.secrets_json, SecretsJsonPolicy::Replace);
        assert_eq!(
            homes.node_user,
            Some(UserSpec::Ids {
                uid: 1000,
                gid: Some(1000)
            })
        );
        let mut env = NODE_ENV.to_vec();
        env.extend([
            ("AGENT_SECRETS_JSON", "overwrite"),
            ("AGENT_MIN_FREE", "lots"),
        ]);
        let err = RunConfig::resolve(&layers(&env)).unwrap_err();
        let ids: Vec<&str> = err.0.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["config.AGENT_MIN_FREE", "config.AGENT_SECRETS_JSON"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = RunConfig::resolve(&layers(&[
            ("MPC_ENV", "localnet"),
            ("AGENT_STOP_GRACE", "soon"),
            ("MPC_ACCOUNT_ID", "Node0.testnet"),
        ]))
        .unwrap_err();
        let ids: Vec<&str> = err.0.iter().map(|c| c.id.as_str()).collect();
        assert!(ids.contains(&"config.MPC_ENV"), "{ids:?}");
        assert!(ids.contains(&"config.AGENT_STOP_GRACE"), "{ids:?}");
        assert!(ids.contains(&"config.MPC_ACCOUNT_ID"), "{ids:?}");
        assert!(ids.contains(&"config.MPC_HOME_DIR"), "{ids:?}");
        assert!(ids.contains(&"config.MPC_CONTRACT_ID"), "{ids:?}");
        let env = err.0.iter().find(|c| c.id == "config.MPC_ENV").unwrap();
        assert!(
            env.fix
                .as_deref()
                .unwrap()
                .contains("did you mean mpc-localnet?")
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let config = ExecConfig::resolve(&layers(&[("AGENT_STOP_GRACE", "")])).unwrap();
        assert_eq!(config.supervision.stop_grace, Duration::from_secs(25));
    }

    #[test]
    fn cli_beats_env_beats_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("agent-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent.toml");
        std::fs::write(
            &file,
            "stop_grace = \"3s\"\nprestop_delay = 4\nrestart_reset = \"7s\"\n",
        )
        .unwrap();
        let mut l = layers(&[("AGENT_STOP_GRACE", "2s"), ("AGENT_PRESTOP_DELAY", "5s")]);
        l.file = Some(file);
        l.cli.insert(Id::StopGrace, "1s".into());
        let config = ExecConfig::resolve(&l).unwrap();
        let s = &config.supervision;
        assert_eq!(s.stop_grace, Duration::from_secs(1));
        assert_eq!(s.prestop_delay, Duration::from_secs(5));
        assert_eq!(s.restart_reset, Duration::from_secs(7));
        let source = |id| {
            config
                .base
                .effective
                .iter()
                .find(|e| e.id == id)
                .unwrap()
                .source
                .clone()
        };
        assert_eq!(source(Id::StopGrace), Source::Cli);
        assert_eq!(source(Id::PrestopDelay), Source::Env);
        assert_eq!(source(Id::RestartReset), Source::File);
        assert_eq!(source(Id::CrashLoop), Source::Default);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_agent_variables_are_named_with_a_suggestion() {
        let err = ExecConfig::resolve(&layers(&[("AGENT_STOP_GRCE", "2s")])).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.0[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("AGENT_STOP_GRACE")
        );
    }

    #[test]
    fn each_secret_has_the_id_setting_named_after_it() {
        for secret in SecretName::ALL {
            assert_eq!(
                secret_id_setting(secret).name(),
                format!("AGENT_SECRET_ID_{}", secret.env_name())
            );
        }
    }

    #[test]
    fn boot_nodes_need_key_and_address() {
        let key = "ed25519:7PGseFbWxvYVgZ89K1uTJKYoKetWs7BJtbyXDzfbAcqX";
        assert!(boot_nodes(&format!("{key}@1.2.3.4:24567,{key}@peer.example:24567")).is_ok());
        assert!(boot_nodes("1.2.3.4:24567").is_err());
        assert!(boot_nodes(&format!("{key}@1.2.3.4")).is_err());
    }

    #[test]
    fn the_log_tail_goes_to_loopback_peers_by_default() {
        let config = RunConfig::resolve(&layers(NODE_ENV)).unwrap();
        let access = config.supervision.status_log_tail;
        assert_eq!(access, LogTailAccess::Loopback);
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(access.allows(local.parse().unwrap()), "{local}");
        }
        for remote in ["10.0.3.7", "172.17.0.1", "fd00::1", "::ffff:10.0.0.1"] {
            assert!(!access.allows(remote.parse().unwrap()), "{remote}");
        }
        assert!(!LogTailAccess::Never.allows("127.0.0.1".parse().unwrap()));
        assert!(LogTailAccess::Always.allows("10.0.3.7".parse().unwrap()));
    }

    #[test]
    fn local_url_turns_wildcards_into_loopback() {
        assert_eq!(
            local_url("0.0.0.0:8090".parse().unwrap(), "/health"),
            "http://127.0.0.1:8090/health"
        );
        assert_eq!(
            local_url("[::]:8090".parse().unwrap(), "/ready"),
            "http://[::1]:8090/ready"
        );
    }
}
