//! The table of every setting the agent reads: its name, what it means, its
//! default, and which commands read it. `--help`, the TOML file keys, `/config`
//! and the README reference are all generated from this one table.
//!
//! The code reads a setting by its [`Id`], never by its name, so a misspelt
//! setting does not compile:
//!
//! ```
//! use entrypoint::config::settings::Id;
//! assert_eq!(Id::StopGrace.setting().name, "AGENT_STOP_GRACE");
//! ```
//!
//! ```compile_fail
//! use entrypoint::config::settings::Id;
//! assert_eq!(Id::StopGrase.setting().name, "AGENT_STOP_GRACE");
//! ```
//!
//! Adding a setting is one row in [`SETTINGS`] (in the `settings!` block
//! below): its id, the name without `AGENT_` in CamelCase (`AGENT_STOP_GRACE`
//! is `StopGrace`, `MPC_HOME_DIR` is `MpcHomeDir`), beside its [`Setting`]:
//!
//! ```text
//! VaultUrl => Setting {
//!     name: "AGENT_VAULT_URL",
//!     value_name: "URL",
//!     help: "…",
//!     default: Default::Unset("none"),
//!     group: Group::Secrets,
//!     commands: &[Run, Doctor],
//! },
//! ```
//!
//! The row makes the variant `Id::VaultUrl`, the flag `--vault-url`, the file
//! key `vault_url`, the `--help` line, and the README line
//! (`scripts/update-readme-reference` writes it). Then the resolver
//! (`config/mod.rs`) reads it into its section, e.g.
//! `self.parse(Id::VaultUrl, values::http_url)`; every command that reads it
//! must be in its `commands` (a debug build asserts it).

/// The agent's commands, as far as settings are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Boot and supervise mpc-node (the container ENTRYPOINT).
    Run,
    /// Supervise an arbitrary command as PID 1.
    Exec,
    /// The HEALTHCHECK client.
    Health,
    /// Fetch and validate the secrets, compare the keys with the chain.
    Keys,
    /// Run the pipeline up to and including the homes stage, then stop.
    Init,
    /// Every check, read-only.
    Doctor,
    /// The keyshare vault: restore a home from it, or rehearse the restore.
    Vault,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Exec => "exec",
            Command::Health => "health",
            Command::Keys => "keys",
            Command::Init => "init",
            Command::Doctor => "doctor",
            Command::Vault => "vault",
        }
    }
}

/// What a setting is when nothing sets it.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// This value, for every command.
    Value(&'static str),
    /// One value for `exec`, another for `run`; `None` means unset.
    ExecRun {
        exec: Option<&'static str>,
        run: Option<&'static str>,
    },
    /// Unset; the text says what that means.
    Unset(&'static str),
}

#[derive(Debug)]
pub struct Setting {
    /// The environment variable; also the CLI flag (`AGENT_STOP_GRACE` → `--stop-grace`)
    /// and the config file key (`stop_grace`).
    pub name: &'static str,
    pub value_name: &'static str,
    pub help: &'static str,
    pub default: Default,
    pub group: Group,
    pub commands: &'static [Command],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Agent,
    Supervision,
    Secrets,
    Node,
    Chain,
    Home,
    Policy,
    Life,
    Vault,
    Alerts,
}

impl Group {
    pub fn heading(self) -> &'static str {
        match self {
            Group::Agent => "Agent",
            Group::Supervision => "Supervision",
            Group::Secrets => "Secrets",
            Group::Node => "Node (the upstream start.sh contract)",
            Group::Chain => "Chain (keys against the chain)",
            Group::Home => "Home (MPC_HOME_DIR)",
            Group::Policy => "Policy (what agent run does about a problem)",
            Group::Life => "While the node runs (readiness, sync, the chain watch)",
            Group::Vault => "Keyshare vault (the keyshares off the home, the restore)",
            Group::Alerts => "Alerts (CloudWatch metrics in the log)",
        }
    }
}

impl Setting {
    /// The default for `command`, `None` when unset.
    pub fn default_for(&self, command: Command) -> Option<&'static str> {
        match self.default {
            Default::Value(v) => Some(v),
            Default::ExecRun { exec, run } => match command {
                Command::Exec => exec,
                _ => run,
            },
            Default::Unset(_) => None,
        }
    }

    /// The default as `--help` and the README show it.
    pub fn default_text(&self, command: Command) -> String {
        match (self.default, self.default_for(command)) {
            (Default::Unset(text), _) => text.to_string(),
            (_, Some(v)) => v.to_string(),
            (_, None) => "none".to_string(),
        }
    }

    /// `--stop-grace` for `AGENT_STOP_GRACE`, `--mpc-home-dir` for `MPC_HOME_DIR`.
    pub fn flag(&self) -> String {
        file_key(self.name).replace('_', "-")
    }

    /// `stop_grace` for `AGENT_STOP_GRACE`, `mpc_home_dir` for `MPC_HOME_DIR`.
    pub fn file_key(&self) -> String {
        file_key(self.name)
    }

    pub fn read_by(&self, command: Command) -> bool {
        self.commands.contains(&command)
    }

    /// A setting whose value is one URL or more (`value_name` `URL…`). A URL
    /// may carry credentials (a provider's API key in the path, user info, a
    /// query), so its value is shown only as `scheme://host[:port]/…`, never
    /// quoted in a configuration error, and never taken from another agent's
    /// `/config`.
    pub fn is_url(&self) -> bool {
        self.value_name.starts_with("URL")
    }
}

fn file_key(name: &str) -> String {
    name.strip_prefix("AGENT_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

use Command::*;

const ALL: &[Command] = &[Run, Exec, Health, Keys, Init, Doctor, Vault];
const SUPERVISORS: &[Command] = &[Run, Exec];
/// The commands that work on mpc-node's configuration.
const NODE: &[Command] = &[Run, Keys, Init, Doctor, Vault];
/// The commands that inspect or prepare the node's home.
const HOME: &[Command] = &[Run, Init, Doctor, Vault];

/// Declares [`Id`], one variant per row, and [`SETTINGS`], the rows in the
/// same order: `Id::X.setting()` is the row written beside `X`.
macro_rules! settings {
    ($($id:ident => $row:expr,)*) => {
        /// A setting as the code names it; [`Id::setting`] is its row of the table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Id {
            $($id,)*
        }

        impl Id {
            /// Every setting, in the table's order.
            pub const ALL: &[Id] = &[$(Id::$id,)*];
        }

        /// Every setting, in the order of [`Id`].
        pub static SETTINGS: &[Setting] = &[$($row,)*];
    };
}

impl Id {
    /// Its row of [`SETTINGS`].
    pub fn setting(self) -> &'static Setting {
        &SETTINGS[self as usize]
    }

    /// The environment variable, e.g. `AGENT_STOP_GRACE`.
    pub fn name(self) -> &'static str {
        self.setting().name
    }
}

settings! {
    Listen => Setting {
        name: "AGENT_LISTEN",
        value_name: "ADDR",
        help: "Address of the agent's HTTP server (/health, /ready, /status, /metrics, /config); `agent health` asks it",
        default: Default::Value("0.0.0.0:8090"),
        group: Group::Agent,
        commands: ALL,
    },
    LogFormat => Setting {
        name: "AGENT_LOG_FORMAT",
        value_name: "json|plain",
        help: "Format of the agent's own log lines (the child's output passes through unchanged)",
        default: Default::Unset("json when stdout is not a terminal, else plain"),
        group: Group::Agent,
        commands: ALL,
    },
    Restart => Setting {
        name: "AGENT_RESTART",
        value_name: "never|on-failure|always",
        help: "When to start the child again after it exits",
        default: Default::ExecRun {
            exec: Some("never"),
            run: Some("on-failure"),
        },
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    RestartBackoff => Setting {
        name: "AGENT_RESTART_BACKOFF",
        value_name: "MIN..MAX",
        help: "Delay before a restart: MIN after the first exit, doubled per exit (with jitter) up to MAX",
        default: Default::Value("1s..60s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    RestartReset => Setting {
        name: "AGENT_RESTART_RESET",
        value_name: "DURATION",
        help: "A child that stayed up this long starts the backoff over",
        default: Default::Value("60s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    CrashLoop => Setting {
        name: "AGENT_CRASH_LOOP",
        value_name: "EXITS/WINDOW",
        help: "This many exits within the window is a crash loop: /health fails, then the agent exits with the child's last code",
        default: Default::Value("5/300s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    StopGrace => Setting {
        name: "AGENT_STOP_GRACE",
        value_name: "DURATION",
        help: "After forwarding SIGTERM, how long the child may take before SIGKILL (keep it below ECS stopTimeout)",
        default: Default::Value("25s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    PrestopDelay => Setting {
        name: "AGENT_PRESTOP_DELAY",
        value_name: "DURATION",
        help: "On SIGTERM, /ready fails at once and the signal reaches the child after this delay (load balancer deregistration)",
        default: Default::Value("0s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    ReadyUrl => Setting {
        name: "AGENT_READY_URL",
        value_name: "URL",
        help: "The child is ready only while this URL answers 200 (polled in the background)",
        default: Default::ExecRun {
            exec: None,
            run: Some("http://127.0.0.1:8080/health"),
        },
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    ReadyInterval => Setting {
        name: "AGENT_READY_INTERVAL",
        value_name: "DURATION",
        help: "How often AGENT_READY_URL is polled; an answer older than three intervals no longer counts",
        default: Default::Value("2s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    StatusLogTail => Setting {
        name: "AGENT_STATUS_LOG_TAIL",
        value_name: "loopback|never|always",
        help: "Who gets the node's last log lines on /status (key-like strings redacted either way): clients on loopback only (docker exec … agent doctor, curl on the box), nobody, or every client",
        default: Default::Value("loopback"),
        group: Group::Agent,
        commands: SUPERVISORS,
    },
    FailLinger => Setting {
        name: "AGENT_FAIL_LINGER",
        value_name: "DURATION",
        help: "After a failure for good (crash loop), how long /health and /status keep reporting it before the agent exits",
        default: Default::Value("5s"),
        group: Group::Supervision,
        commands: SUPERVISORS,
    },
    SecretIdMpcAccountSk => Setting {
        name: "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
        value_name: "ID",
        help: "Secrets Manager secret holding MPC_ACCOUNT_SK: name, ARN, or ECS valueFrom form ARN:json-key:version-stage:version-id",
        default: Default::Unset("from AGENT_SECRET_ID_TEMPLATE"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretIdMpcP2pPrivateKey => Setting {
        name: "AGENT_SECRET_ID_MPC_P2P_PRIVATE_KEY",
        value_name: "ID",
        help: "Secrets Manager secret holding MPC_P2P_PRIVATE_KEY (same forms)",
        default: Default::Unset("from AGENT_SECRET_ID_TEMPLATE"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretIdMpcSecretStoreKey => Setting {
        name: "AGENT_SECRET_ID_MPC_SECRET_STORE_KEY",
        value_name: "ID",
        help: "Secrets Manager secret holding MPC_SECRET_STORE_KEY (same forms)",
        default: Default::Unset("from AGENT_SECRET_ID_TEMPLATE"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretIdMpcBackupEncryptionKeyHex => Setting {
        name: "AGENT_SECRET_ID_MPC_BACKUP_ENCRYPTION_KEY_HEX",
        value_name: "ID",
        help: "Secrets Manager secret holding MPC_BACKUP_ENCRYPTION_KEY_HEX (same forms)",
        default: Default::Unset("from AGENT_SECRET_ID_TEMPLATE"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretIdTemplate => Setting {
        name: "AGENT_SECRET_ID_TEMPLATE",
        value_name: "TEMPLATE",
        help: "Secret id for every secret without its own id: {name} becomes MPC_ACCOUNT_SK…, {name_lower} mpc_account_sk…",
        default: Default::Unset("none"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretsDir => Setting {
        name: "AGENT_SECRETS_DIR",
        value_name: "DIR",
        help: "Directory with one file per secret (MPC_ACCOUNT_SK or mpc_account_sk), for secrets not in the environment or Secrets Manager",
        default: Default::Unset("none"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretsTimeout => Setting {
        name: "AGENT_SECRETS_TIMEOUT",
        value_name: "DURATION",
        help: "Deadline for fetching every secret, retries included",
        default: Default::Value("20s"),
        group: Group::Secrets,
        commands: NODE,
    },
    SecretsJitter => Setting {
        name: "AGENT_SECRETS_JITTER",
        value_name: "DURATION",
        help: "Random delay (0 to this) before the first fetch, so a fleet restarting together does not hit the API at once",
        default: Default::Value("2s"),
        group: Group::Secrets,
        commands: NODE,
    },
    NodeBin => Setting {
        name: "AGENT_NODE_BIN",
        value_name: "PATH",
        help: "The mpc-node binary",
        default: Default::Value("/app/mpc-node"),
        group: Group::Node,
        commands: NODE,
    },
    MpcHomeDir => Setting {
        name: "MPC_HOME_DIR",
        value_name: "DIR",
        help: "The node's home (near home and MPC state); belongs on EFS",
        default: Default::Unset("required"),
        group: Group::Node,
        commands: NODE,
    },
    MpcEnv => Setting {
        name: "MPC_ENV",
        value_name: "CHAIN",
        help: "Which chain: mpc-localnet, testnet or mainnet",
        default: Default::Unset("required"),
        group: Group::Node,
        commands: NODE,
    },
    MpcAccountId => Setting {
        name: "MPC_ACCOUNT_ID",
        value_name: "ACCOUNT",
        help: "The node operator's NEAR account; signs every transaction of the node",
        default: Default::Unset("required"),
        group: Group::Node,
        commands: NODE,
    },
    MpcContractId => Setting {
        name: "MPC_CONTRACT_ID",
        value_name: "ACCOUNT",
        help: "The signer contract, e.g. v1.signer or v1.signer-prod.testnet",
        default: Default::Unset("required"),
        group: Group::Node,
        commands: NODE,
    },
    MpcResponderId => Setting {
        name: "MPC_RESPONDER_ID",
        value_name: "ACCOUNT",
        help: "Responder account written into config.yaml",
        default: Default::Unset("MPC_ACCOUNT_ID"),
        group: Group::Node,
        commands: NODE,
    },
    NearBootNodes => Setting {
        name: "NEAR_BOOT_NODES",
        value_name: "LIST",
        help: "Comma-separated ed25519:KEY@HOST:PORT peers for the first init",
        default: Default::Unset("none"),
        group: Group::Node,
        commands: NODE,
    },
    MpcTier3PublicAddr => Setting {
        name: "MPC_TIER3_PUBLIC_ADDR",
        value_name: "IP:PORT",
        help: "Public address for peer state sync (needed behind NAT)",
        default: Default::Unset("none"),
        group: Group::Node,
        commands: NODE,
    },
    MpcLogFormat => Setting {
        name: "MPC_LOG_FORMAT",
        value_name: "plain|json",
        help: "The node's log format",
        default: Default::Unset("the node's default"),
        group: Group::Node,
        commands: NODE,
    },
    NearRpcUrl => Setting {
        name: "AGENT_NEAR_RPC_URL",
        value_name: "URL[,URL…]",
        help: "NEAR JSON-RPC endpoints for the key checks, comma-separated, tried in order",
        default: Default::Unset(
            "by MPC_ENV: https://rpc.testnet.near.org, https://rpc.mainnet.near.org; required for mpc-localnet",
        ),
        group: Group::Chain,
        commands: NODE,
    },
    RpcTimeout => Setting {
        name: "AGENT_RPC_TIMEOUT",
        value_name: "DURATION",
        help: "How long one NEAR RPC request may take; transient failures are tried twice more",
        default: Default::Value("5s"),
        group: Group::Chain,
        commands: NODE,
    },
    OnKeyMismatch => Setting {
        name: "AGENT_ON_KEY_MISMATCH",
        value_name: "hold|exit|warn",
        help: "A secret is invalid or a key does not match the chain: hold (do not start the node, report, re-check until it matches), exit (78), or warn (start anyway; an invalid secret always holds). agent init treats hold as exit",
        default: Default::Value("hold"),
        group: Group::Policy,
        commands: &[Run, Init],
    },
    OnRpcUnavailable => Setting {
        name: "AGENT_ON_RPC_UNAVAILABLE",
        value_name: "hold|skip",
        help: "No NEAR RPC answered: hold (re-check until one does) or skip (start with a warning)",
        default: Default::Value("hold"),
        group: Group::Policy,
        commands: &[Run, Init],
    },
    HoldGrace => Setting {
        name: "AGENT_HOLD_GRACE",
        value_name: "DURATION",
        help: "How long a hold is a warning on /health (200) before it becomes a failure (503) so the orchestrator replaces the task",
        default: Default::Value("15m"),
        group: Group::Policy,
        commands: &[Run],
    },
    HoldRetry => Setting {
        name: "AGENT_HOLD_RETRY",
        value_name: "MIN..MAX",
        help: "While holding, the secrets are fetched and the chain asked again after MIN, doubling up to MAX",
        default: Default::Value("1s..60s"),
        group: Group::Policy,
        commands: &[Run],
    },
    SecretRefresh => Setting {
        name: "AGENT_SECRET_REFRESH",
        value_name: "DURATION",
        help: "How often the running agent fetches the secrets again (jittered); a changed, valid, matching secret restarts the node once",
        default: Default::Value("5m"),
        group: Group::Policy,
        commands: &[Run],
    },
    NodeMetricsUrl => Setting {
        name: "AGENT_NODE_METRICS_URL",
        value_name: "URL",
        help: "The node's Prometheus endpoint: its indexer's height and block time decide readiness, sync progress and stalls; an image without them falls back to AGENT_READY_URL alone, noted on /status",
        default: Default::Value("http://127.0.0.1:8080/metrics"),
        group: Group::Life,
        commands: &[Run],
    },
    ReadyMaxLag => Setting {
        name: "AGENT_READY_MAX_LAG",
        value_name: "DURATION",
        help: "/ready is 200 only while the indexer's latest block is at most this far behind the wall clock (/health stays 200 while it syncs)",
        default: Default::Value("60s"),
        group: Group::Life,
        commands: &[Run],
    },
    ProgressEvery => Setting {
        name: "AGENT_PROGRESS_EVERY",
        value_name: "DURATION",
        help: "While the indexer is behind, one log line of sync progress this often; one more when it catches up",
        default: Default::Value("1m"),
        group: Group::Life,
        commands: &[Run],
    },
    IndexerStall => Setting {
        name: "AGENT_INDEXER_STALL",
        value_name: "DURATION",
        help: "A running node whose indexer height has not advanced for this long is stalled: /health warns with the height, since when and the chain's head",
        default: Default::Value("10m"),
        group: Group::Life,
        commands: &[Run],
    },
    OnStall => Setting {
        name: "AGENT_ON_STALL",
        value_name: "warn|restart",
        help: "What a stall does beyond the warning: restart stops the node gracefully and starts it through the stages, at most once per AGENT_CRASH_LOOP window",
        default: Default::Value("warn"),
        group: Group::Life,
        commands: &[Run],
    },
    ChainWatch => Setting {
        name: "AGENT_CHAIN_WATCH",
        value_name: "DURATION",
        help: "How often (jittered) the running agent asks the chain again: signer key and permission, participant entry, contract state, allowance, balance; a change is a reason and a metric, never a restart",
        default: Default::Value("5m"),
        group: Group::Life,
        commands: &[Run],
    },
    MinBalance => Setting {
        name: "AGENT_MIN_BALANCE",
        value_name: "AMOUNT",
        help: "The chain watch warns when the account's available balance (what storage does not lock) falls below this; the node's transactions pay gas from it",
        default: Default::Value("1 NEAR"),
        group: Group::Life,
        commands: &[Run],
    },
    EfsFileSystemId => Setting {
        name: "AGENT_EFS_FILE_SYSTEM_ID",
        value_name: "FS_ID",
        help: "The EFS file system of the home: agent doctor checks it is available, has a mount target in this availability zone, and answers on 2049",
        default: Default::Unset("none (EFS not checked)"),
        group: Group::Home,
        commands: &[Run, Doctor],
    },
    KeyshareVault => Setting {
        name: "AGENT_KEYSHARE_VAULT",
        value_name: "S3_URI",
        help: "s3://BUCKET[/PREFIX] where every keyshare the node commits is copied, as the node's own sealed bytes, under PREFIX/<MPC_ACCOUNT_ID>/<file name> (unset: off)",
        default: Default::Unset("none (off)"),
        group: Group::Vault,
        commands: &[Run, Init, Doctor, Vault],
    },
    KeyshareVaultKmsKey => Setting {
        name: "AGENT_KEYSHARE_VAULT_KMS_KEY",
        value_name: "KMS_KEY",
        help: "KMS key (id, ARN or alias/NAME) the vault's objects are encrypted under with SSE-KMS",
        default: Default::Unset("the bucket's default encryption (agent doctor checks it)"),
        group: Group::Vault,
        commands: &[Run, Init, Doctor, Vault],
    },
    KeyshareVaultInterval => Setting {
        name: "AGENT_KEYSHARE_VAULT_INTERVAL",
        value_name: "DURATION",
        help: "How often the home's permanent_keys/ is looked at for a keyshare the vault lacks (a stat each; EFS has no inotify)",
        default: Default::Value("2s"),
        group: Group::Vault,
        commands: &[Run],
    },
    KeyshareVaultMaxBehind => Setting {
        name: "AGENT_KEYSHARE_VAULT_MAX_BEHIND",
        value_name: "DURATION",
        help: "How long the home's newest keyshare may live only on the home (not in the vault, not served to a backup service) before /health warns",
        default: Default::Value("10m"),
        group: Group::Vault,
        commands: &[Run, Doctor],
    },
    KeyshareRestore => Setting {
        name: "AGENT_KEYSHARE_RESTORE",
        value_name: "auto|off",
        help: "auto: a home with no keyshare, of a participant of the contract's keyset by this node's p2p key, is restored from the vault before the node starts; off: never (the gap is named)",
        default: Default::Value("auto"),
        group: Group::Vault,
        commands: &[Run, Init, Doctor],
    },
    CloudwatchNamespace => Setting {
        name: "AGENT_CLOUDWATCH_NAMESPACE",
        value_name: "NAMESPACE",
        help: "CloudWatch namespace of the metrics the agent writes to its log in Embedded Metric Format, for the stack's alarms (unset: none written)",
        default: Default::Unset("none (no metrics written)"),
        group: Group::Alerts,
        commands: &[Run, Doctor, Vault],
    },
    CloudwatchNode => Setting {
        name: "AGENT_CLOUDWATCH_NODE",
        value_name: "NAME",
        help: "Value of the metrics' Node dimension",
        default: Default::Unset("MPC_ACCOUNT_ID"),
        group: Group::Alerts,
        commands: &[Run, Doctor, Vault],
    },
    MetricsEmfInterval => Setting {
        name: "AGENT_METRICS_EMF_INTERVAL",
        value_name: "DURATION",
        help: "How often a metrics line is written to the log when AGENT_CLOUDWATCH_NAMESPACE is set",
        default: Default::Value("60s"),
        group: Group::Alerts,
        commands: &[Run],
    },
    RustLog => Setting {
        name: "RUST_LOG",
        value_name: "FILTER",
        help: "Log filter of the agent and of the node",
        default: Default::Unset("info"),
        group: Group::Node,
        commands: ALL,
    },
    RequirePersistentHome => Setting {
        name: "AGENT_REQUIRE_PERSISTENT_HOME",
        value_name: "BOOL",
        help: "Refuse a home on tmpfs, the container's own layer or any filesystem that does not outlive the task (EFS expected)",
        default: Default::Value("true"),
        group: Group::Home,
        commands: HOME,
    },
    MinFree => Setting {
        name: "AGENT_MIN_FREE",
        value_name: "SIZE",
        help: "Refuse to start with less free space on the home; warn below twice this",
        default: Default::Value("10GiB"),
        group: Group::Home,
        commands: HOME,
    },
    LockWait => Setting {
        name: "AGENT_LOCK_WAIT",
        value_name: "DURATION|forever",
        help: "How long to wait while another agent holds the home's lock (one node per home) before giving up",
        default: Default::Value("forever"),
        group: Group::Home,
        commands: HOME,
    },
    HomeIoTimeout => Setting {
        name: "AGENT_HOME_IO_TIMEOUT",
        value_name: "DURATION",
        help: "A piece of file work on the home (a stat, a read, the lock, a write) that has not returned after this long fails the boot by name (EFS unreachable, an NFS hard mount waiting on a server that is gone); /health keeps answering and SIGTERM keeps working",
        default: Default::Value("60s"),
        group: Group::Home,
        commands: HOME,
    },
    StartMode => Setting {
        name: "AGENT_START_MODE",
        value_name: "auto|legacy|config-file",
        help: "Start mpc-node with `start` and config.yaml (legacy) or `start-with-config-file`; auto asks the binary's --help",
        default: Default::Value("auto"),
        group: Group::Home,
        commands: HOME,
    },
    SecretsJson => Setting {
        name: "AGENT_SECRETS_JSON",
        value_name: "reconcile|keep|replace",
        help: "When secrets.json differs from the validated keys: the side the chain accepts wins (reconcile), the file stays (keep), or it is replaced; a backup is kept",
        default: Default::Value("reconcile"),
        group: Group::Home,
        commands: HOME,
    },
    NodeUser => Setting {
        name: "AGENT_NODE_USER",
        value_name: "NAME|UID:GID",
        help: "User the node runs as; owns every file the agent writes on the home",
        default: Default::Unset("the owner of MPC_HOME_DIR"),
        group: Group::Home,
        commands: HOME,
    },
    GenerateStoreKey => Setting {
        name: "AGENT_GENERATE_STORE_KEY",
        value_name: "BOOL",
        help: "With no MPC_SECRET_STORE_KEY anywhere and no share on the home, generate one and store it in its Secrets Manager secret before the node uses it (never when a share exists)",
        default: Default::Value("true"),
        group: Group::Home,
        commands: HOME,
    },
    GenerateBackupKey => Setting {
        name: "AGENT_GENERATE_BACKUP_KEY",
        value_name: "BOOL",
        help: "With no MPC_BACKUP_ENCRYPTION_KEY_HEX anywhere, store the home's backup_encryption_key.hex (or 32 random bytes) in its Secrets Manager secret before the node starts, and give the node that key on every boot (the node otherwise makes a new one on every start)",
        default: Default::Value("true"),
        group: Group::Home,
        commands: HOME,
    },
    NearcoreRpcAddr => Setting {
        name: "AGENT_NEARCORE_RPC_ADDR",
        value_name: "IP:PORT",
        help: "nearcore's JSON-RPC listen address, set in config.json (rpc.addr) on every boot, e.g. 0.0.0.0:3031 for a second node on one host (upstream's [near_init] rpc_addr)",
        default: Default::Unset("nearcore's own (0.0.0.0:3030)"),
        group: Group::Home,
        commands: HOME,
    },
    NearcoreNetworkAddr => Setting {
        name: "AGENT_NEARCORE_NETWORK_ADDR",
        value_name: "IP:PORT",
        help: "nearcore's peer-to-peer listen address, set in config.json (network.addr) on every boot, e.g. 0.0.0.0:24568 for a second node on one host (upstream's [near_init] network_addr)",
        default: Default::Unset("nearcore's own (0.0.0.0:24567)"),
        group: Group::Home,
        commands: HOME,
    },
    LocalnetGenesis => Setting {
        name: "AGENT_LOCALNET_GENESIS",
        value_name: "PATH",
        help: "Genesis for the first init on mpc-localnet (put back over the one init writes)",
        default: Default::Value("/app/localnet-genesis.json"),
        group: Group::Home,
        commands: HOME,
    },
}

/// The setting called `name`, for a name from outside the code: an
/// environment variable, another agent's `/config`, a task definition.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file_keys_follow_the_name() {
        let grace = Id::StopGrace.setting();
        assert_eq!(grace.flag(), "stop-grace");
        assert_eq!(grace.file_key(), "stop_grace");
        let home = Id::MpcHomeDir.setting();
        assert_eq!(home.flag(), "mpc-home-dir");
    }

    #[test]
    fn every_id_is_one_row_and_every_row_one_id() {
        assert_eq!(Id::ALL.len(), SETTINGS.len());
        for (row, id) in Id::ALL.iter().enumerate() {
            assert!(std::ptr::eq(id.setting(), &SETTINGS[row]), "{id:?}");
        }
    }

    /// `StopGrace` sits beside `AGENT_STOP_GRACE`: a row under another
    /// setting's id would be read where that setting is meant.
    #[test]
    fn every_id_is_named_after_its_setting() {
        for id in Id::ALL {
            let mut key = String::new();
            for c in format!("{id:?}").chars() {
                if c.is_ascii_uppercase() && !key.is_empty() {
                    key.push('_');
                }
                key.push(c.to_ascii_lowercase());
            }
            assert_eq!(key, id.setting().file_key(), "{id:?}");
        }
    }

    #[test]
    fn names_flags_and_file_keys_are_unique() {
        let keys: [fn(&Setting) -> String; 3] =
            [|s| s.name.to_string(), Setting::flag, Setting::file_key];
        for key in keys {
            let mut keys: Vec<String> = SETTINGS.iter().map(key).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), SETTINGS.len());
        }
    }

    #[test]
    fn find_knows_every_setting_by_its_name_alone() {
        for id in Id::ALL {
            assert!(std::ptr::eq(find(id.name()).unwrap(), id.setting()));
        }
        assert!(find("AGENT_STOP_GRCE").is_none());
    }

    #[test]
    fn defaults_differ_between_exec_and_run_where_documented() {
        let restart = Id::Restart.setting();
        assert_eq!(restart.default_for(Command::Exec), Some("never"));
        assert_eq!(restart.default_for(Command::Run), Some("on-failure"));
        let ready = Id::ReadyUrl.setting();
        assert_eq!(ready.default_text(Command::Exec), "none");
    }

    #[test]
    fn the_url_settings_are_the_ones_that_may_carry_credentials() {
        let urls: Vec<_> = SETTINGS
            .iter()
            .filter(|s| s.is_url())
            .map(|s| s.name)
            .collect();
        assert_eq!(
            urls,
            [
                "AGENT_READY_URL",
                "AGENT_NEAR_RPC_URL",
                "AGENT_NODE_METRICS_URL"
            ]
        );
    }
}
