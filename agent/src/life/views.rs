//! What crosses the process boundary, as types: the documents `/status` and
//! `/config` serve — the server writes them and `agent doctor` reads a running
//! agent through the same structs — and those `agent doctor --json` and
//! `agent keys --json` print; and the values they carry: the phase, the
//! reasons, the child's exits and log lines.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use entrypoint::check::Check;
use entrypoint::config::Config;
use entrypoint::keys::{KeyReport, KeysVerdict};
use entrypoint::secrets::SecretReport;
use serde::{Deserialize, Serialize};

use nix::sys::signal::Signal;

pub use super::Phase;

/// Why the agent is where it is: a cause and a fix, as on a check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reason {
    /// Short stable name, e.g. `crash-loop` or `AccessKeyNotFound`.
    pub kind: String,
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// How many times it was seen.
    pub count: u64,
    /// The child's log line that revealed it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

impl Reason {
    pub fn new(kind: impl Into<String>, cause: impl Into<String>, fix: Option<String>) -> Reason {
        Reason {
            kind: kind.into(),
            cause: cause.into(),
            fix,
            at: SystemTime::now(),
            count: 1,
            line: None,
        }
    }

    /// The reason a failed check gives: its id, cause and fix.
    pub fn of(check: &Check) -> Reason {
        Reason::new(check.id.clone(), check.cause.clone(), check.fix.clone())
    }
}

/// How the child last ended, and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitRecord {
    #[serde(flatten)]
    pub exit: Exit,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub uptime_seconds: f64,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128+n for signal n.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(n) => 128 + n,
        }
    }

    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(n) => write!(f, "signal {}", signal_name(*n)),
        }
    }
}

impl Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("code", &self.code())?;
        match self {
            Exit::Code(_) => map.serialize_entry("signal", &None::<&str>)?,
            Exit::Signal(n) => map.serialize_entry("signal", &Some(signal_name(*n)))?,
        }
        map.end()
    }
}

/// Reads back what `Serialize` wrote: a signal name means death by signal `code - 128`.
impl<'de> Deserialize<'de> for Exit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Shown {
            code: i32,
            signal: Option<String>,
        }
        let shown = Shown::deserialize(d)?;
        Ok(match shown.signal {
            Some(_) => Exit::Signal(shown.code - 128),
            None => Exit::Code(shown.code),
        })
    }
}

fn signal_name(n: i32) -> String {
    Signal::try_from(n)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {n}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Which of the child's streams a line came from.
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the child's output, as the log tail keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: Stream,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub line: String,
}

/// A time on the wire: RFC 3339 with milliseconds (`#[serde(with = "rfc3339")]`).
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*at))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// A name as another agent sent it: one this build knows, or one only a newer
/// agent does (kept as sent, so the reader can say it does not know it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reported<T> {
    Known(T),
    Unknown(String),
}

impl<T> From<T> for Reported<T> {
    fn from(known: T) -> Self {
        Reported::Known(known)
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Reported<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reported::Known(known) => known.fmt(f),
            Reported::Unknown(name) => f.write_str(name),
        }
    }
}

/// `/status`: the agent's whole state at one instant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub phase: Reported<Phase>,
    #[serde(with = "rfc3339")]
    pub phase_since: SystemTime,
    /// Why the agent is in this phase (restarting, holding, failed).
    pub reason: Option<Reason>,
    pub ready: Ready,
    pub agent: Agent,
    pub child: Child,
    /// Reasons seen at run time (known fatal log lines), counted.
    pub reasons: Vec<Reason>,
    /// The stages' latest checks, in pipeline order.
    pub checks: Vec<Check>,
    /// The node's indexer, as its metrics show it; `None` before the first poll.
    pub sync: Option<Sync>,
    /// The chain watch's latest pass; `None` before the first.
    pub watch: Option<Watch>,
    /// The home's keyshares and the vault; `None` before the first look.
    #[serde(default)]
    pub vault: Option<Vault>,
    /// The node's last lines (key-like strings redacted), newest last, at
    /// most [`crate::life::state::TAIL_BYTES`] of them; empty when withheld.
    pub log_tail: Vec<LogLine>,
    /// Why `log_tail` is empty for this client (`AGENT_STATUS_LOG_TAIL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail_withheld: Option<String>,
}

/// Where readiness comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncSource {
    /// The node's `/metrics` carries its indexer's height and block time.
    Indexer,
    /// It does not (an older image, or no answer): the node's `/health` alone.
    HealthOnly,
}

/// The node's sync: its indexer against the wall clock and the chain's head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sync {
    pub source: SyncSource,
    /// Why the source is `health-only`, or what the last poll could not read.
    pub note: Option<String>,
    /// `mpc_indexer_latest_block_height`.
    pub height: Option<u64>,
    /// `mpc_indexer_latest_block_timestamp_seconds`, RFC 3339.
    pub block_time: Option<String>,
    /// The `state` label of `mpc_current_job_state` that is 1.
    pub job: Option<String>,
    /// The chain's head from NEAR RPC (cached), when it answered.
    pub chain_head: Option<u64>,
    pub lag_blocks: Option<u64>,
    /// How far the indexer's latest block is behind the wall clock.
    pub lag_seconds: Option<f64>,
    /// The lag when this sync began (the first reading behind), for a
    /// fraction done.
    pub started_lag_seconds: Option<f64>,
    /// Blocks indexed per second over the last minutes.
    pub blocks_per_second: Option<f64>,
    /// When the lag shrinks at its recent pace: seconds until caught up.
    pub eta_seconds: Option<f64>,
    /// Within `AGENT_READY_MAX_LAG` of the wall clock.
    pub caught_up: bool,
    /// How long the sync took, once it caught up.
    pub synced_in_seconds: Option<f64>,
    pub stall: Option<Stall>,
    /// Restarts `AGENT_ON_STALL=restart` made.
    pub stall_restarts: u64,
}

/// An indexer whose height stopped advancing for `AGENT_INDEXER_STALL`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    pub height: u64,
    /// When it last advanced (or was first seen), RFC 3339.
    pub since: String,
    pub for_seconds: f64,
    pub chain_head: Option<u64>,
    /// What was done about it.
    pub action: String,
}

/// The chain watch's latest pass: the shared judgment's checks and the balance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Watch {
    #[serde(with = "rfc3339")]
    pub checked_at: SystemTime,
    /// Every check of the pass, in order.
    pub checks: Vec<Check>,
    /// What is wrong now (a check that warns or fails); cleared when the chain heals.
    pub reasons: Vec<Reason>,
    /// The account's available balance, yoctoNEAR as a decimal string.
    pub available_balance: Option<String>,
}

/// The home's keyshares off the home: the latest look at `permanent_keys/`,
/// what the vault holds of it, and the off-home judgment
/// ([`crate::life::off_home`]) at the instant served.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vault {
    /// `AGENT_KEYSHARE_VAULT`; `None`: no vault is configured.
    pub location: Option<String>,
    #[serde(with = "rfc3339")]
    pub looked_at: SystemTime,
    /// The home's newest keyshare; `None`: the home holds none.
    pub newest: Option<HomeKeyshare>,
    /// The newest keyshare's object, once the vault holds its bytes.
    pub vaulted: Option<VaultedObject>,
    /// How long the newest keyshare has lived only on the home (neither in
    /// the vault nor served to a backup service); 0 once off the home.
    pub behind_seconds: f64,
    /// `AGENT_KEYSHARE_VAULT_MAX_BEHIND`.
    pub max_behind_seconds: f64,
    /// The latest failure (an upload, a conflict, the look at the home), a
    /// check with its cause and fix; cleared once nothing fails or waits.
    pub last_error: Option<Check>,
    /// Names under `permanent_keys/` that were not read (a link, a
    /// directory): never followed.
    pub refused: Vec<RefusedEntry>,
    /// The node's keyset gauges, as last scraped; `None` before any.
    pub backup_service: Option<KeysetGauges>,
    /// `vault.off_home`: is the newest keyshare off the home?
    pub off_home: Check,
}

/// One keyshare file of the home (its plaintext is never read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HomeKeyshare {
    /// Under `permanent_keys/`.
    pub file: String,
    pub epoch: u64,
    pub domains: u64,
    pub size: u64,
    pub sha256: String,
    /// Its modification time: since when it lives on the home.
    #[serde(with = "rfc3339")]
    pub since: SystemTime,
}

impl HomeKeyshare {
    /// `file` as a look at the home found it; a modification time in the
    /// future counts from `now`.
    pub fn of(file: &entrypoint::homes::KeyshareFile, now: SystemTime) -> HomeKeyshare {
        HomeKeyshare {
            file: file.name.to_string(),
            epoch: file.name.epoch,
            domains: file.name.domains,
            size: file.size,
            sha256: file.sha256.clone(),
            since: file.modified.min(now),
        }
    }
}

/// A keyshare's object in the vault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaultedObject {
    pub key: String,
    /// `s3://BUCKET/KEY`.
    pub url: String,
    pub version_id: Option<String>,
    /// When it was stored.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub sha256: String,
}

/// A name under `permanent_keys/` that was not read, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedEntry {
    pub path: PathBuf,
    pub reason: String,
}

/// What the node's `/metrics` says of its keysets (mpc-node's
/// `mpc_current_epoch_id`, `mpc_last_backup_served_epoch`); each `None`
/// until the node sets it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeysetGauges {
    pub current_epoch_id: Option<u64>,
    pub last_backup_served_epoch: Option<u64>,
    #[serde(with = "rfc3339")]
    pub scraped_at: SystemTime,
}

/// Readiness, as `/ready` answers it and `/status` repeats it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub ready: bool,
    pub detail: String,
}

/// The agent process itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Agent {
    pub version: String,
    pub pid: u32,
    pub pid1: bool,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub uptime_seconds: f64,
    pub orphans_reaped: u64,
}

/// The supervised child: what it is, whether it runs, how it last ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Child {
    pub program: Option<String>,
    /// `None` while no child runs.
    pub running: Option<RunningChild>,
    pub restarts: u64,
    pub last_exit: Option<ExitRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunningChild {
    pub pid: i32,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub uptime_seconds: f64,
}

/// `agent config --json`: every setting of `agent run` with its value and source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Always `true`: an invalid configuration is a list of problems instead.
    pub valid: bool,
    /// The command the settings were resolved for.
    pub command: String,
    /// The `--config` file, when one was named.
    pub file: Option<PathBuf>,
    pub settings: Vec<Setting>,
}

/// One setting as the agent ended up seeing it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    /// As shown: an RPC URL without its API key.
    pub value: Option<String>,
    /// `value` is not the value the agent uses (something was taken out of it).
    pub redacted: bool,
    pub source: entrypoint::config::Source,
    pub help: Option<String>,
}

/// `agent config --json` when the configuration is not valid: every problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigProblems {
    /// Always `false`: a valid configuration is its [`Settings`] instead.
    pub valid: bool,
    pub problems: Vec<Check>,
}

impl ConfigProblems {
    pub fn of(problems: Vec<Check>) -> ConfigProblems {
        ConfigProblems {
            valid: false,
            problems,
        }
    }
}

/// `/config`: the settings, and the secrets the node runs with once validated
/// (sources, public keys and fingerprints; never a value).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigView {
    #[serde(flatten)]
    pub settings: Settings,
    /// `None` until the secrets stage has validated them.
    pub secrets: Option<Vec<SecretReport>>,
}

/// `agent doctor --json`: every check with its group, the checks counted by
/// outcome, and where the configuration came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// [`DoctorReport::SCHEMA`]: a reader tells another shape by it.
    pub schema: String,
    pub agent_version: String,
    pub configuration: ConfigOrigin,
    /// The worst outcome among the checks.
    pub status: entrypoint::check::Status,
    pub summary: DoctorSummary,
    pub took_ms: u64,
    pub checks: Vec<DoctorEntry>,
}

impl DoctorReport {
    pub const SCHEMA: &str = "mpc-agent.doctor.v1";

    /// The report on `checks`, made from `configuration` in `took`.
    pub fn new(configuration: ConfigOrigin, checks: Vec<DoctorEntry>, took: Duration) -> Self {
        DoctorReport {
            schema: Self::SCHEMA.to_string(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            configuration,
            status: entrypoint::check::worst(checks.iter().map(|e| &e.check)),
            summary: DoctorSummary::of(&checks),
            took_ms: took.as_millis() as u64,
            checks,
        }
    }
}

/// Where `agent doctor` took the configuration from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum ConfigOrigin {
    /// The container's environment (`docker exec … agent doctor`).
    Environment,
    /// The running agent's `/config` (on the instance, over SSM).
    RunningAgent {
        url: String,
        /// Settings of `/config` left out, each with why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ignored: Vec<String>,
    },
}

/// How many of the doctor's checks ended in each outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorSummary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skipped: usize,
}

impl DoctorSummary {
    fn of(entries: &[DoctorEntry]) -> DoctorSummary {
        use entrypoint::check::Status;
        let count = |s: Status| entries.iter().filter(|e| e.check.status == s).count();
        DoctorSummary {
            ok: count(Status::Ok),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            skipped: count(Status::Skipped),
        }
    }
}

/// One of the doctor's checks and the group it belongs to (`config`,
/// `secrets`, `keys`, `home`, `launch`, `aws`, `agent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoctorEntry {
    pub group: String,
    #[serde(flatten)]
    pub check: Check,
}

/// `agent keys --json`: each secret as validated, and the chain's side when
/// it was asked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeysReport {
    /// The secrets are valid and the chain, when asked, accepts the keys.
    pub valid: bool,
    pub secrets: Vec<SecretReport>,
    /// `None` with `--offline`, or when the secrets are not valid.
    pub chain: Option<KeysOnChain>,
}

/// The chain's side of `agent keys --json`: the judgment, its checks, and
/// the findings they judge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeysOnChain {
    pub verdict: KeysVerdict,
    pub checks: Vec<Check>,
    pub report: KeyReport,
}

impl KeysOnChain {
    pub fn of(report: KeyReport) -> KeysOnChain {
        KeysOnChain {
            verdict: report.verdict(),
            checks: report.checks(),
            report,
        }
    }
}

impl Settings {
    /// The effective configuration, as `agent config --json` prints it and `/config` serves it.
    pub fn of(config: &Config) -> Settings {
        let settings = config
            .effective
            .iter()
            .map(|e| {
                let setting = e.id.setting();
                // A URL may carry a provider's API key: scheme, host and port only.
                let shown = match &e.value {
                    Some(urls) if setting.is_url() => Some(
                        urls.split(',')
                            .map(|u| entrypoint::keys::shown_url(u.trim()))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    _ => e.value.clone(),
                };
                Setting {
                    name: setting.name.to_string(),
                    redacted: shown != e.value,
                    value: shown,
                    source: e.source.clone(),
                    help: Some(setting.help.to_string()),
                }
            })
            .collect();
        Settings {
            valid: true,
            command: config.command.name().to_string(),
            file: config.file.clone(),
            settings,
        }
    }
}

/// `agent vault restore --json` and `agent vault verify --json`: the
/// backup judged, what the restore did on the home, and every check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VaultReport {
    /// `restore` or `verify`.
    pub command: String,
    /// The keyshare is on the home (restore); the drill passed (verify).
    pub ok: bool,
    /// The code the command exits with.
    pub exit_code: i32,
    /// The backup the judgment took; `None` when it took none.
    pub backup: Option<BackupView>,
    /// What the restore wrote; `None` for verify, or when nothing was written.
    pub restored: Option<entrypoint::homes::restore::Restored>,
    /// The secrets, the judgment's, and for restore the home's, in order.
    pub checks: Vec<Check>,
}

/// A backup in the vault, as the judgment took it (no byte of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupView {
    pub name: entrypoint::keyshare::KeyshareName,
    /// `s3://BUCKET/KEY`.
    pub url: String,
    pub version_id: Option<String>,
    pub size: u64,
    pub sha256: String,
    /// The epoch and key ids its plaintext holds.
    pub epoch: u64,
    pub key_ids: Vec<entrypoint::keyshare::KeyId>,
}

impl BackupView {
    pub fn of(backup: &entrypoint::restore::Backup) -> BackupView {
        BackupView {
            name: backup.name,
            url: backup.url.clone(),
            version_id: backup.object.version_id.clone(),
            size: backup.bytes.len() as u64,
            sha256: backup.sha256.clone(),
            epoch: backup.contents.epoch_id,
            key_ids: backup.contents.key_ids.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use entrypoint::check::Check;

    use super::*;
    use crate::life::Event;
    use crate::life::state::{Judgement, State};

    fn settings() -> Settings {
        Settings {
            valid: true,
            command: "run".into(),
            file: None,
            settings: vec![Setting {
                name: "AGENT_STOP_GRACE".into(),
                value: Some("7s".into()),
                redacted: false,
                source: entrypoint::config::Source::Env,
                help: Some("how long".into()),
            }],
        }
    }

    fn busy_state() -> State {
        let state = State::new(Judgement::default(), settings());
        state.apply(Event::Launch);
        state.child_started(4242, "/app/mpc-node");
        state.child_exited(Exit::Signal(9));
        state.child_restarting();
        state.apply(Event::Restart(Reason::new(
            "exit",
            "the node exited",
            Some("read its log".into()),
        )));
        state.note_reason(Reason::new("AccessKeyNotFound", "no such key", None));
        state.set_checks(
            entrypoint::stage::Stage::Keys,
            vec![Check::warn("keys.access_key", "not found", "add it")],
        );
        state
    }

    #[test]
    fn a_status_the_server_writes_is_the_status_doctor_reads() {
        let written = serde_json::to_value(busy_state().status(Vec::new())).unwrap();
        let read: Status = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(read.phase, Reported::Known(Phase::Restarting));
        assert_eq!(read.child.last_exit.as_ref().unwrap().exit, Exit::Signal(9));
        assert_eq!(read.reasons[0].kind, "AccessKeyNotFound");
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
    }

    #[test]
    fn every_phase_reads_back_as_itself() {
        for phase in Phase::ALL {
            let written = serde_json::to_value(Reported::Known(phase)).unwrap();
            assert_eq!(written, phase.as_str());
            let read: Reported<Phase> = serde_json::from_value(written).unwrap();
            assert_eq!(read, Reported::Known(phase));
        }
    }

    #[test]
    fn a_phase_only_a_newer_agent_knows_is_kept_as_sent() {
        let read: Reported<Phase> = serde_json::from_value("draining".into()).unwrap();
        assert_eq!(read, Reported::Unknown("draining".into()));
        assert_eq!(read.to_string(), "draining");
    }

    #[test]
    fn the_config_the_server_writes_is_the_config_doctor_reads() {
        use entrypoint::check::Status as Verdict;
        use entrypoint::secrets::{SecretName, Source};
        let state = State::new(Judgement::default(), settings());
        let before = serde_json::to_value(state.config()).unwrap();
        assert!(before["secrets"].is_null(), "{before}");
        state.set_secrets(&[SecretReport {
            name: SecretName::AccountSk,
            source: Source::SecretsManager {
                id: "mpc/account-sk".into(),
                arn: None,
                version_id: Some("v1".into()),
                version_stages: vec!["AWSCURRENT".into()],
            },
            status: Verdict::Ok,
            cause: "a valid key".into(),
            fix: None,
            public_key: Some("ed25519:6E8sCci9badyRkXb3JoRpBj5p8C6Tw41ELDZoiihKEtp".into()),
            fingerprint: None,
        }]);
        let written = serde_json::to_value(state.config()).unwrap();
        assert_eq!(
            written.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["valid", "command", "file", "settings", "secrets"]
        );
        let read: ConfigView = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(read.settings.settings[0].name, "AGENT_STOP_GRACE");
        assert_eq!(
            read.secrets.as_ref().unwrap()[0].name,
            SecretName::AccountSk
        );
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
    }

    #[test]
    fn a_doctor_report_is_written_as_before_and_reads_back_as_itself() {
        use entrypoint::check::Status as Verdict;
        let checks = vec![
            DoctorEntry {
                group: "config".into(),
                check: Check::ok("config", "the configuration is valid (40 settings)"),
            },
            DoctorEntry {
                group: "keys".into(),
                check: Check::fail("keys.access_key", "not on the account", "add it")
                    .with_detail(serde_json::json!({ "account_id": "node0.near" })),
            },
            DoctorEntry {
                group: "home".into(),
                check: Check::skipped("home", "not checked"),
            },
        ];
        let report = DoctorReport::new(
            ConfigOrigin::RunningAgent {
                url: "http://127.0.0.1:8090".into(),
                ignored: vec!["AWS_ENDPOINT_URL (not a setting this doctor knows)".into()],
            },
            checks,
            Duration::from_millis(1234),
        );
        assert_eq!(report.status, Verdict::Fail);
        let written = serde_json::to_string_pretty(&report).unwrap();
        let expected = r#"{
  "schema": "mpc-agent.doctor.v1",
  "agent_version": "VERSION",
  "configuration": {
    "from": "running_agent",
    "url": "http://127.0.0.1:8090",
    "ignored": [
      "AWS_ENDPOINT_URL (not a setting this doctor knows)"
    ]
  },
  "status": "fail",
  "summary": {
    "ok": 1,
    "warn": 0,
    "fail": 1,
    "skipped": 1
  },
  "took_ms": 1234,
  "checks": [
    {
      "group": "config",
      "id": "config",
      "status": "ok",
      "cause": "the configuration is valid (40 settings)"
    },
    {
      "group": "keys",
      "id": "keys.access_key",
      "status": "fail",
      "cause": "not on the account",
      "fix": "add it",
      "detail": {
        "account_id": "node0.near"
      }
    },
    {
      "group": "home",
      "id": "home",
      "status": "skipped",
      "cause": "not checked"
    }
  ]
}"#
        .replace("VERSION", env!("CARGO_PKG_VERSION"));
        assert_eq!(written, expected);
        let read: DoctorReport = serde_json::from_str(&written).unwrap();
        assert_eq!(read, report);

        let local = DoctorReport::new(ConfigOrigin::Environment, Vec::new(), Duration::ZERO);
        let written = serde_json::to_value(&local).unwrap();
        assert_eq!(
            written["configuration"],
            serde_json::json!({ "from": "environment" })
        );
        assert_eq!(written["status"], "ok");
        let read: DoctorReport = serde_json::from_value(written).unwrap();
        assert_eq!(read, local);
    }

    /// A report with every kind of finding: a failed and an answering
    /// endpoint, both kinds of access key, a resharing contract, a
    /// migration under way, the TEE views read, missing and unreadable.
    fn busy_key_report() -> KeyReport {
        use entrypoint::keys::*;
        use near_primitives::types::Balance;
        use near_primitives::views::AccessKeyPermissionView;
        let key = |seed: &str| {
            near_crypto::SecretKey::from_seed(near_crypto::KeyType::ED25519, seed).public_key()
        };
        let participant = |account: &str, id: u32| Participant {
            account_id: account.parse().unwrap(),
            id,
            url: format!("https://{account}:3000"),
            tls_public_key: key(account),
        };
        let set = |members: Vec<Participant>| ParticipantSet {
            threshold: 2,
            participants: members,
        };
        KeyReport {
            node: KeysInput {
                chain: entrypoint::config::Chain::Testnet,
                account_id: "node0.testnet".parse().unwrap(),
                contract_id: "v1.signer-prod.testnet".parse().unwrap(),
                signer_public_key: key("signer"),
                p2p_public_key: key("node0.testnet"),
                signer_key_source: "environment variable MPC_ACCOUNT_SK".into(),
                p2p_key_source: "Secrets Manager secret node0-MPC_P2P_PRIVATE_KEY (version v1)"
                    .into(),
            },
            endpoints: vec![
                EndpointOutcome {
                    url: "http://127.0.0.1:9".into(),
                    elapsed_ms: 3,
                    result: EndpointResult::Failed(EndpointFailure {
                        request: "status".into(),
                        kind: FailureKind::Refused,
                        detail: "connection refused".into(),
                        attempts: 3,
                    }),
                },
                EndpointOutcome {
                    url: "https://rpc.other.example".into(),
                    elapsed_ms: 40,
                    result: EndpointResult::OtherChain {
                        chain_id: "mainnet".into(),
                    },
                },
                EndpointOutcome {
                    url: "https://rpc.testnet.example".into(),
                    elapsed_ms: 25,
                    result: EndpointResult::Answered,
                },
            ],
            on_chain: Some(OnChain {
                rpc_url: "https://rpc.testnet.example".into(),
                latency_ms: 12,
                chain_id: "testnet".into(),
                latest_block_height: 1000,
                latest_block_time: "2025-06-01T12:00:00Z".into(),
                syncing: false,
                account_exists: true,
                account: Some(AccountBalance {
                    amount: Balance::from_near(5),
                    locked: Balance::ZERO,
                    storage_usage: 182,
                }),
                access_keys: vec![
                    AccessKey {
                        public_key: (&key("signer")).into(),
                        permission: AccessKeyPermissionView::FullAccess,
                    },
                    AccessKey {
                        public_key: (&key("responder")).into(),
                        permission: AccessKeyPermissionView::FunctionCall {
                            allowance: Some(Balance::from_millinear(250)),
                            receiver_id: "v1.signer-prod.testnet".into(),
                            method_names: vec!["respond".into()],
                        },
                    },
                ],
                contract: ContractFinding::State {
                    state: ContractState::Resharing {
                        current: set(vec![participant("node0.testnet", 0)]),
                        next: set(vec![
                            participant("node0.testnet", 0),
                            participant("node1.testnet", 1),
                        ]),
                        keyset: None,
                    },
                },
                standing: Some(Standing::Member {
                    entry: participant("node0.testnet", 0),
                }),
                migration: MigrationFinding::Read {
                    backup_service_key: Some(key("backup")),
                    destination: Some(Box::new(Destination {
                        signer_account_pk: key("signer2"),
                        url: "https://node0-new:3000".into(),
                        tls_public_key: key("p2p2"),
                    })),
                },
                tee: TeeViews {
                    allowed_image_hashes: ViewFinding::Read(vec![AllowedImageHash {
                        image_hash: "ab".repeat(32),
                        expiry_timestamp_seconds: None,
                    }]),
                    attestation_grants: ViewFinding::NoView,
                    tee_accounts: ViewFinding::Unreadable {
                        error: "not the signer contract's shape".into(),
                    },
                },
            }),
        }
    }

    #[test]
    fn a_keys_report_is_written_as_before_and_reads_back_as_itself() {
        use entrypoint::check::Status as Verdict;
        use entrypoint::secrets::{SecretName, Source};
        let chain = busy_key_report();
        let secrets = vec![SecretReport {
            name: SecretName::AccountSk,
            source: Source::Env {
                variable: "MPC_ACCOUNT_SK".into(),
            },
            status: Verdict::Ok,
            cause: "a valid key".into(),
            fix: None,
            public_key: Some(chain.node.signer_public_key.to_string()),
            fingerprint: None,
        }];
        // What `agent keys --json` printed before the report was a type.
        let before = serde_json::json!({
            "valid": false,
            "secrets": secrets,
            "chain": Some(serde_json::json!({
                "verdict": chain.verdict(),
                "checks": chain.checks(),
                "report": chain,
            })),
        });
        let report = KeysReport {
            valid: false,
            secrets,
            chain: Some(KeysOnChain::of(chain)),
        };
        let written = serde_json::to_string_pretty(&report).unwrap();
        assert_eq!(written, serde_json::to_string_pretty(&before).unwrap());
        let read: KeysReport = serde_json::from_str(&written).unwrap();
        assert_eq!(serde_json::to_string_pretty(&read).unwrap(), written);
        let offline = KeysReport {
            chain: None,
            ..read
        };
        let written = serde_json::to_value(&offline).unwrap();
        assert!(written["chain"].is_null(), "{written}");
        let read: KeysReport = serde_json::from_value(written).unwrap();
        assert!(read.chain.is_none());
    }
}
