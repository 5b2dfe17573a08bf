//! The agent's state: the phase, the child, the reasons and the stage checks.
//! Stages and the supervisor write it; the HTTP server only reads snapshots of
//! it, so a request never waits on the child or the network.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use entrypoint::check::{Check, Status};
use entrypoint::secrets::SecretReport;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::supervisor::Exit;
use crate::views::{self, ConfigView, Settings};

/// Where the agent is in its life. The HTTP server renders it, never computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Starting,
    /// Fetching and validating the secrets.
    Secrets,
    /// Comparing the keys with the chain.
    Keys,
    /// Another agent holds the home's lock.
    WaitingForLock,
    /// Checking, initializing and patching the home.
    Home,
    Launching,
    Running,
    /// The child exited; it starts again after a backoff.
    Restarting,
    /// Not starting the node for a reason the operator can fix; re-checking.
    Holding,
    Stopping,
    /// Failed for good; the agent exits after the linger.
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Starting,
        Phase::Secrets,
        Phase::Keys,
        Phase::WaitingForLock,
        Phase::Home,
        Phase::Launching,
        Phase::Running,
        Phase::Restarting,
        Phase::Holding,
        Phase::Stopping,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Secrets => "secrets",
            Phase::Keys => "keys",
            Phase::WaitingForLock => "waiting-for-lock",
            Phase::Home => "home",
            Phase::Launching => "launching",
            Phase::Running => "running",
            Phase::Restarting => "restarting",
            Phase::Holding => "holding",
            Phase::Stopping => "stopping",
            Phase::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The child as last seen.
#[derive(Clone, Debug)]
struct Child {
    pid: i32,
    started: Instant,
    started_at: SystemTime,
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

/// The outcome of the last readiness poll of the child.
#[derive(Clone, Debug)]
pub struct Probe {
    pub ok: bool,
    pub detail: String,
    pub at: Instant,
}

/// Settings the state needs to judge health and readiness.
#[derive(Clone, Debug, Default)]
pub struct Judgement {
    /// A readiness URL is configured: ready needs a recent good probe.
    pub probe_required: bool,
    /// A probe older than this no longer counts.
    pub probe_max_age: Duration,
    /// How long holding is a warning before it is a failure (`agent run`).
    pub hold_grace: Duration,
}

/// The stages whose checks `/status` shows, in pipeline order.
pub const STAGES: [&str; 5] = ["config", "secrets", "keys", "home", "launch"];

const MAX_REASONS: usize = 32;

struct Inner {
    phase: Phase,
    phase_since: SystemTime,
    reason: Option<Reason>,
    child: Option<Child>,
    program: Option<String>,
    restarts: u64,
    last_exit: Option<ExitRecord>,
    reasons: VecDeque<Reason>,
    probe: Option<Probe>,
    /// When the current hold began (kept across re-checks).
    holding_since: Option<Instant>,
    /// Each stage's latest checks.
    checks: BTreeMap<&'static str, Vec<Check>>,
    /// The keys match the chain (or the policy let the node start anyway).
    keys_ok: bool,
    /// Where the secrets the node runs with came from (no values), for `/config`.
    secrets: Option<Vec<SecretReport>>,
}

/// Shared handle to the agent's state.
#[derive(Clone)]
pub struct State(Arc<Shared>);

struct Shared {
    inner: Mutex<Inner>,
    started: Instant,
    started_at: SystemTime,
    pid1: bool,
    judgement: Judgement,
    metrics: Metrics,
    settings: Settings,
}

impl State {
    /// `settings` are what `/config` serves: the effective settings and their sources.
    pub fn new(judgement: Judgement, settings: Settings) -> State {
        let now = SystemTime::now();
        let metrics = Metrics::new();
        metrics.set_phase(Phase::Starting);
        State(Arc::new(Shared {
            inner: Mutex::new(Inner {
                phase: Phase::Starting,
                phase_since: now,
                reason: None,
                child: None,
                program: None,
                restarts: 0,
                last_exit: None,
                reasons: VecDeque::new(),
                probe: None,
                holding_since: None,
                checks: BTreeMap::new(),
                keys_ok: true,
                secrets: None,
            }),
            started: Instant::now(),
            started_at: now,
            pid1: std::process::id() == 1,
            judgement,
            metrics,
            settings,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// What `/config` serves: the effective settings and, once validated, the
    /// secrets' sources with their public keys and fingerprints.
    pub fn config(&self) -> ConfigView {
        ConfigView {
            settings: self.0.settings.clone(),
            secrets: self.lock().secrets.clone(),
        }
    }

    /// Records the secrets the node runs with (reports only: no values).
    pub fn set_secrets(&self, report: &[SecretReport]) {
        self.lock().secrets = Some(report.to_vec());
    }

    pub fn phase_name(&self) -> &'static str {
        self.lock().phase.as_str()
    }

    pub fn set_phase(&self, phase: Phase) {
        let mut inner = self.lock();
        if inner.phase != phase {
            inner.phase = phase;
            inner.phase_since = SystemTime::now();
            if !matches!(phase, Phase::Restarting | Phase::Failed | Phase::Holding) {
                inner.reason = None;
            }
            if phase != Phase::Holding {
                inner.holding_since = None;
            }
            self.0.metrics.set_phase(phase);
        }
    }

    /// Enters a boot stage. While holding, the stages are only re-checks: the
    /// hold (and the time it began) stays what `/health` and `/status` show.
    pub fn enter_stage(&self, phase: Phase) {
        if self.lock().phase != Phase::Holding {
            self.set_phase(phase);
        }
    }

    /// Holds for `reason`; a hold that goes on keeps the time it began.
    pub fn hold(&self, reason: Reason) {
        self.set_phase_for(Phase::Holding, reason);
        let mut inner = self.lock();
        inner.holding_since.get_or_insert_with(Instant::now);
    }

    /// Replaces the checks of `stage` (one of [`STAGES`]).
    pub fn set_checks(&self, stage: &'static str, checks: Vec<Check>) {
        debug_assert!(STAGES.contains(&stage), "{stage} is not a stage");
        self.0
            .metrics
            .set_stage(stage, entrypoint::check::worst(&checks));
        self.lock().checks.insert(stage, checks);
    }

    pub fn set_keys_ok(&self, ok: bool) {
        self.lock().keys_ok = ok;
    }

    /// Enters `phase` for `reason` (restarting, failed).
    pub fn set_phase_for(&self, phase: Phase, reason: Reason) {
        self.set_phase(phase);
        self.lock().reason = Some(reason);
    }

    pub fn child_started(&self, pid: i32, program: &str) {
        let mut inner = self.lock();
        inner.child = Some(Child {
            pid,
            started: Instant::now(),
            started_at: SystemTime::now(),
        });
        inner.program = Some(program.to_string());
        inner.probe = None;
        drop(inner);
        self.0.metrics.child_up.set(1);
        self.set_phase(Phase::Running);
    }

    /// Records the child's exit; returns how long it was up.
    pub fn child_exited(&self, exit: Exit) -> Duration {
        let mut inner = self.lock();
        let uptime = inner
            .child
            .take()
            .map(|c| c.started.elapsed())
            .unwrap_or_default();
        inner.last_exit = Some(ExitRecord {
            exit,
            at: SystemTime::now(),
            uptime_seconds: uptime.as_secs_f64(),
        });
        inner.probe = None;
        self.0.metrics.child_up.set(0);
        self.0.metrics.child_last_exit_code.set(exit.code().into());
        uptime
    }

    pub fn child_restarting(&self) {
        self.lock().restarts += 1;
        self.0.metrics.child_restarts.inc();
    }

    /// Notes a reason seen at run time (e.g. a known fatal log line); repeated kinds are counted.
    pub fn note_reason(&self, reason: Reason) {
        let mut inner = self.lock();
        if let Some(seen) = inner.reasons.iter_mut().find(|r| r.kind == reason.kind) {
            seen.count += 1;
            seen.at = reason.at;
            seen.line = reason.line;
            return;
        }
        if inner.reasons.len() == MAX_REASONS {
            inner.reasons.pop_front();
        }
        inner.reasons.push_back(reason);
    }

    pub fn set_probe(&self, probe: Probe) {
        self.lock().probe = Some(probe);
    }

    /// Brings the child's uptime gauge up to date before a scrape.
    pub fn refresh_uptime_metric(&self) {
        let uptime = self
            .lock()
            .child
            .as_ref()
            .map(|c| c.started.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        self.0.metrics.child_uptime_seconds.set(uptime);
    }

    pub fn child_pid(&self) -> Option<i32> {
        self.lock().child.as_ref().map(|c| c.pid)
    }

    /// Liveness, as `/health` reports it.
    pub fn health(&self) -> Health {
        let inner = self.lock();
        let (status, output) = match inner.phase {
            Phase::Failed => (
                Status::Fail,
                inner
                    .reason
                    .as_ref()
                    .map(|r| format!("failed: {}", r.cause))
                    .unwrap_or_else(|| "failed".into()),
            ),
            Phase::Holding => {
                let cause = inner
                    .reason
                    .as_ref()
                    .map(|r| r.cause.clone())
                    .unwrap_or_default();
                let held = inner.holding_since.map(|t| t.elapsed()).unwrap_or_default();
                if held > self.0.judgement.hold_grace {
                    (
                        Status::Fail,
                        format!(
                            "holding for {}s, past the hold grace: {cause}",
                            held.as_secs()
                        ),
                    )
                } else {
                    (Status::Warn, format!("holding: {cause}"))
                }
            }
            Phase::Restarting => (
                Status::Warn,
                inner
                    .reason
                    .as_ref()
                    .map(|r| format!("restarting: {}", r.cause))
                    .unwrap_or_else(|| "restarting".into()),
            ),
            phase => (Status::Ok, phase.as_str().to_string()),
        };
        Health {
            status,
            output,
            phase: inner.phase,
            child_uptime: inner.child.as_ref().map(|c| c.started.elapsed()),
            restarts: inner.restarts,
            ready: self.ready_locked(&inner),
        }
    }

    /// Readiness: the child runs, no stop is under way, and its own check (if any) answered lately.
    pub fn ready(&self) -> Readiness {
        let inner = self.lock();
        self.ready_locked(&inner)
    }

    fn ready_locked(&self, inner: &Inner) -> Readiness {
        if inner.phase != Phase::Running || inner.child.is_none() {
            return Readiness::No(format!("phase is {}", inner.phase.as_str()));
        }
        if !inner.keys_ok {
            return Readiness::No("the keys do not match the chain (see checks on /status)".into());
        }
        if !self.0.judgement.probe_required {
            return Readiness::Yes("child is running".into());
        }
        match &inner.probe {
            None => Readiness::No("the child's readiness URL has not answered yet".into()),
            Some(p) if p.at.elapsed() > self.0.judgement.probe_max_age => Readiness::No(format!(
                "the child's readiness URL last answered {}s ago",
                p.at.elapsed().as_secs()
            )),
            Some(p) if p.ok => Readiness::Yes(p.detail.clone()),
            Some(p) => Readiness::No(p.detail.clone()),
        }
    }

    /// The whole snapshot, as `/status` serves it.
    pub fn status(&self, log_tail: Vec<crate::supervisor::LogLine>) -> views::Status {
        let inner = self.lock();
        views::Status {
            phase: inner.phase.into(),
            phase_since: inner.phase_since,
            reason: inner.reason.clone(),
            ready: self.ready_locked(&inner).view(),
            agent: views::Agent {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                pid1: self.0.pid1,
                started_at: self.0.started_at,
                uptime_seconds: self.0.started.elapsed().as_secs_f64(),
                orphans_reaped: self.0.metrics.orphans_reaped.get(),
            },
            child: views::Child {
                program: inner.program.clone(),
                running: inner.child.as_ref().map(|c| views::RunningChild {
                    pid: c.pid,
                    started_at: c.started_at,
                    uptime_seconds: c.started.elapsed().as_secs_f64(),
                }),
                restarts: inner.restarts,
                last_exit: inner.last_exit.clone(),
            },
            reasons: inner.reasons.iter().cloned().collect(),
            checks: STAGES
                .iter()
                .filter_map(|stage| inner.checks.get(stage))
                .flatten()
                .cloned()
                .collect(),
            log_tail,
        }
    }
}

/// Liveness at one instant.
pub struct Health {
    pub status: Status,
    pub output: String,
    pub phase: Phase,
    pub child_uptime: Option<Duration>,
    pub restarts: u64,
    pub ready: Readiness,
}

pub enum Readiness {
    Yes(String),
    No(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Yes(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Readiness::Yes(d) | Readiness::No(d) => d,
        }
    }

    /// As `/ready` answers and `/status` repeats it.
    pub fn view(&self) -> views::Ready {
        views::Ready {
            ready: self.is_ready(),
            detail: self.detail().to_string(),
        }
    }
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
}
