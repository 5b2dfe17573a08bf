//! The agent's state: the phase, the child, the reasons and the stage checks.
//! Stages and the supervisor write it; the HTTP server only reads snapshots of
//! it, so a request never waits on the child or the network.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use entrypoint::check::{Check, Status};
use entrypoint::restore;
use entrypoint::secrets::SecretReport;

use entrypoint::stage::Stage;

use super::metrics::Metrics;
use super::off_home;
use super::views::{self, ConfigView, Exit, ExitRecord, LogLine, Reason, Settings};
use super::{Event, Phase};

/// The child as last seen.
#[derive(Clone, Debug)]
struct Child {
    pid: i32,
    started: Instant,
    started_at: SystemTime,
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

const MAX_REASONS: usize = 32;
/// Lines of the child's output kept for `/status`.
const TAIL_LINES: usize = 200;
/// The most bytes of lines one `/status` carries: the newest lines that fit.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The last lines of the child's output.
#[derive(Default)]
pub struct LogTail(Mutex<VecDeque<LogLine>>);

impl LogTail {
    /// The newest lines, oldest first, at most [`TAIL_BYTES`] of text.
    pub fn lines(&self) -> Vec<LogLine> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut budget = TAIL_BYTES;
        let mut newest: Vec<LogLine> = lines
            .iter()
            .rev()
            .take_while(|l| match budget.checked_sub(l.line.len()) {
                Some(left) => {
                    budget = left;
                    true
                }
                None => false,
            })
            .cloned()
            .collect();
        newest.reverse();
        newest
    }

    pub fn push(&self, line: LogLine) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

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
    checks: BTreeMap<Stage, Vec<Check>>,
    /// The keys match the chain (or the policy let the node start anyway).
    keys_ok: bool,
    /// Where the secrets the node runs with came from (no values), for `/config`.
    secrets: Option<Vec<SecretReport>>,
    /// The running node's indexer, as last scraped.
    sync: Option<views::Sync>,
    /// The chain's head as NEAR RPC last reported it.
    chain_head: Option<u64>,
    /// The chain watch's latest pass.
    watch: Option<views::Watch>,
    /// The vault loop's latest look at the home's keyshares.
    vault: Option<views::Vault>,
    /// The node's keyset gauges, as last scraped.
    keyset_gauges: Option<views::KeysetGauges>,
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
                sync: None,
                chain_head: None,
                watch: None,
                vault: None,
                keyset_gauges: None,
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

    /// Applies what happened to the agent: the one writer of the phase, by
    /// the table in [`super::next`]. A phase entered for a reason shows it.
    /// An event the table refuses changes nothing.
    pub fn apply(&self, event: Event) {
        let mut inner = self.lock();
        let to = match super::next(inner.phase, &event) {
            Ok(to) => to,
            Err(refused) => {
                tracing::debug!(%refused, "an event the agent's life refuses; the phase stays");
                return;
            }
        };
        if to != inner.phase {
            inner.phase = to;
            inner.phase_since = SystemTime::now();
            inner.reason = None;
            self.0.metrics.set_phase(to);
        }
        if to == Phase::Holding {
            inner.holding_since.get_or_insert_with(Instant::now);
        } else {
            inner.holding_since = None;
        }
        if let Some(reason) = event.reason() {
            inner.reason = Some(reason.clone());
        }
    }

    /// Replaces the checks of `stage`.
    pub fn set_checks(&self, stage: Stage, checks: Vec<Check>) {
        self.0
            .metrics
            .set_stage(stage, entrypoint::check::worst(&checks));
        self.lock().checks.insert(stage, checks);
    }

    /// The latest checks of `stage`.
    pub fn stage_checks(&self, stage: Stage) -> Vec<Check> {
        self.lock().checks.get(&stage).cloned().unwrap_or_default()
    }

    pub fn set_keys_ok(&self, ok: bool) {
        self.lock().keys_ok = ok;
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
        inner.sync = None;
        drop(inner);
        self.0.metrics.child_up.set(1);
        self.apply(Event::ChildStarted);
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

    /// Records the node's sync as last scraped, and its gauges.
    pub fn set_sync(&self, sync: views::Sync) {
        let metrics = &self.0.metrics;
        if let Some(height) = sync.height {
            metrics.node_indexer_height.set(height as i64);
        }
        if let Some(lag) = sync.lag_seconds {
            metrics.node_indexer_lag_seconds.set(lag);
        }
        metrics
            .node_indexer_stalled
            .set(sync.stall.is_some().into());
        self.lock().sync = Some(sync);
    }

    pub fn sync(&self) -> Option<views::Sync> {
        self.lock().sync.clone()
    }

    pub fn set_chain_head(&self, height: u64) {
        self.lock().chain_head = Some(height);
    }

    pub fn chain_head(&self) -> Option<u64> {
        self.lock().chain_head
    }

    /// Records a pass of the chain watch and its gauges.
    pub fn set_watch(&self, watch: views::Watch) {
        self.0.metrics.set_watch(&watch.checks);
        self.lock().watch = Some(watch);
    }

    /// Records the vault loop's latest look (its judgment is made again
    /// whenever it is read) and the gauge of how long the newest keyshare has
    /// lived only on the home.
    pub fn set_vault(&self, vault: views::Vault) {
        let mut inner = self.lock();
        inner.vault = Some(vault);
        let judged = Self::vault_judged(&inner, SystemTime::now());
        if let Some(judged) = judged {
            self.0
                .metrics
                .keyshare_vault_behind_seconds
                .set(judged.behind_seconds);
        }
    }

    /// The home's newest keyshare as the vault loop last saw it (`Some(None)`:
    /// none); `None` before its first look. Not judged: nothing else is read.
    pub fn newest_keyshare(&self) -> Option<Option<views::HomeKeyshare>> {
        self.lock().vault.as_ref().map(|v| v.newest.clone())
    }

    fn vault_judged(inner: &Inner, now: SystemTime) -> Option<views::Vault> {
        let mut vault = inner.vault.clone()?;
        vault.backup_service = inner.keyset_gauges.clone();
        let judged = off_home::judge(&vault, now);
        vault.behind_seconds = judged.behind.as_secs_f64();
        vault.off_home = judged.check;
        Some(vault)
    }

    /// Records the node's keyset gauges as last scraped.
    pub fn set_keyset_gauges(&self, gauges: views::KeysetGauges) {
        self.lock().keyset_gauges = Some(gauges);
    }

    /// Brings the gauges judged at the instant they are read up to date
    /// before a scrape or a metrics line: the child's uptime, `/health`, `/ready`.
    pub fn refresh_metrics(&self) {
        let health = self.health();
        let metrics = &self.0.metrics;
        let uptime = health.child_uptime.unwrap_or_default();
        metrics.child_uptime_seconds.set(uptime.as_secs_f64());
        metrics.health_status.set(health.status.severity().into());
        metrics.node_ready.set(health.ready.is_ready().into());
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
            Phase::Running => self.running_health(&inner),
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

    /// A running node's liveness: a signer key gone from the chain fails; a
    /// participant without its keyshare, a stalled indexer or another change
    /// on chain warns.
    fn running_health(&self, inner: &Inner) -> (Status, String) {
        let watch_reasons = inner.watch.as_ref().map_or(&[][..], |w| &w.reasons[..]);
        if let Some(gone) = watch_reasons.iter().find(|r| r.kind == KEY_GONE) {
            return (Status::Fail, format!("the chain watch: {}", gone.cause));
        }
        // A participant running without its keyshare: it must run to be
        // reshared in, but it cannot sign until then.
        if let Some(gap) = inner.checks.get(&Stage::Home).and_then(|checks| {
            checks
                .iter()
                .find(|c| c.id == restore::check_ids::KEYSHARE && c.status == Status::Fail)
        }) {
            return (Status::Warn, gap.cause.clone());
        }
        if let Some(stall) = inner.sync.as_ref().and_then(|s| s.stall.as_ref()) {
            return (Status::Warn, stall_text(stall));
        }
        if let Some(first) = watch_reasons.first() {
            return (Status::Warn, format!("the chain watch: {}", first.cause));
        }
        // The judgment's text is built only when it warns.
        let now = SystemTime::now();
        let gauges = inner.keyset_gauges.as_ref();
        if inner
            .vault
            .as_ref()
            .is_some_and(|vault| off_home::warns(vault, gauges, now))
            && let Some(vault) = Self::vault_judged(inner, now)
        {
            return (Status::Warn, vault.off_home.cause);
        }
        (Status::Ok, Phase::Running.as_str().to_string())
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
            Some(p) if !p.ok => Readiness::No(p.detail.clone()),
            Some(p) => self.synced(inner, &p.detail),
        }
    }

    /// Ready once the node answers: when its indexer is within
    /// `AGENT_READY_MAX_LAG` (or shows no indexer) and its signer key is on chain.
    fn synced(&self, inner: &Inner, answered: &str) -> Readiness {
        if let Some(gone) = inner
            .watch
            .as_ref()
            .and_then(|w| w.reasons.iter().find(|r| r.kind == KEY_GONE))
        {
            return Readiness::No(format!("the chain watch: {}", gone.cause));
        }
        match &inner.sync {
            Some(sync) if sync.source == views::SyncSource::Indexer && !sync.caught_up => {
                Readiness::No(format!(
                    "the node's indexer is {:.0}s behind the wall clock (at block {}), more than AGENT_READY_MAX_LAG",
                    sync.lag_seconds.unwrap_or_default(),
                    sync.height.unwrap_or_default()
                ))
            }
            Some(sync) if sync.source == views::SyncSource::Indexer => Readiness::Yes(format!(
                "{answered}; the indexer is {:.0}s behind the wall clock",
                sync.lag_seconds.unwrap_or_default()
            )),
            _ => Readiness::Yes(answered.to_string()),
        }
    }

    /// The whole snapshot, as `/status` serves it.
    pub fn status(&self, log_tail: Vec<LogLine>) -> views::Status {
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
            checks: inner.checks.values().flatten().cloned().collect(),
            sync: inner.sync.clone(),
            watch: inner.watch.clone(),
            vault: Self::vault_judged(&inner, SystemTime::now()),
            log_tail,
            log_tail_withheld: None,
        }
    }
}

/// The kind of the watch's reason for a signer key no longer on the chain.
pub const KEY_GONE: &str = "watch.signer-key-gone";

/// `indexer stalled at block 100 since 2026-…Z (600s); the chain's head is 900`.
pub fn stall_text(stall: &views::Stall) -> String {
    let head = stall
        .chain_head
        .map(|h| format!("; the chain's head is {h}"))
        .unwrap_or_default();
    format!(
        "the node's indexer stalled at block {} since {} ({:.0}s){head}",
        stall.height, stall.since, stall.for_seconds
    )
}

/// Liveness at one instant.
#[derive(PartialEq)]
pub struct Health {
    pub status: Status,
    pub output: String,
    pub phase: Phase,
    pub child_uptime: Option<Duration>,
    pub restarts: u64,
    pub ready: Readiness,
}

#[derive(PartialEq)]
pub enum Readiness {
    Yes(String),
    No(String),
}

impl Health {
    /// Whether `/health` says the same of both: everything but the child's
    /// uptime, which moves on its own.
    pub fn same_answer(&self, other: &Health) -> bool {
        self.status == other.status
            && self.output == other.output
            && self.phase == other.phase
            && self.child_uptime.is_some() == other.child_uptime.is_some()
            && self.restarts == other.restarts
            && self.ready == other.ready
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::views::Stream;

    #[test]
    fn the_tail_serves_the_newest_lines_that_fit_its_byte_budget() {
        let tail = LogTail::default();
        for n in 0..TAIL_LINES {
            tail.push(LogLine {
                stream: Stream::Stdout,
                at: SystemTime::now(),
                line: format!("{n:04}{}", "x".repeat(1020)),
            });
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_BYTES / 1024);
        assert!(lines.last().unwrap().line.starts_with("0199"));
        assert!(lines[0].line.starts_with("0136"));
    }
}
