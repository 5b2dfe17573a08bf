//! Prometheus metrics of the agent and its child, served on `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use entrypoint::stage::Stage;

use super::Phase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub path: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UploadLabels {
    /// `stored`, `already-there` or `failed`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckStatusLabels {
    check: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageStatusLabels {
    stage: &'static str,
    status: &'static str,
}

/// Handles to every metric; cheap to clone, updated by the state as it changes.
pub struct Metrics {
    registry: Registry,
    pub child_up: Gauge,
    pub child_restarts: Counter,
    pub child_last_exit_code: Gauge,
    pub child_uptime_seconds: Gauge<f64, AtomicU64>,
    pub orphans_reaped: Counter,
    pub http_requests: Family<RequestLabels, Counter>,
    pub node_indexer_height: Gauge,
    pub node_indexer_lag_seconds: Gauge<f64, AtomicU64>,
    pub node_stalls: Counter,
    /// 1 while the node's indexer is stalled.
    pub node_indexer_stalled: Gauge,
    /// 1 when `/ready` would answer 200 (brought up to date before each read).
    pub node_ready: Gauge,
    /// `/health`: 0 pass, 1 warn, 2 fail (brought up to date before each read).
    pub health_status: Gauge,
    /// Failing checks found by the chain watch, summed over its passes.
    pub chain_watch_failures: Counter,
    pub account_balance_yocto: Gauge<f64, AtomicU64>,
    /// The epoch of the home's newest keyshare in the vault.
    pub keyshare_vault_epoch: Gauge,
    /// How long the home's newest keyshare has lived only on the home
    /// (neither in the vault nor served to a backup service).
    pub keyshare_vault_behind_seconds: Gauge<f64, AtomicU64>,
    pub keyshare_vault_uploads: Family<UploadLabels, Counter>,
    chain_watch_checks: Family<CheckStatusLabels, Gauge>,
    secret_refreshes: Family<OutcomeLabels, Counter>,
    phase: Family<PhaseLabels, Gauge>,
    stage_seconds: Family<StageLabels, Gauge<f64, AtomicU64>>,
    stage_status: Family<StageStatusLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("agent");
        let m = Metrics {
            child_up: Gauge::default(),
            child_restarts: Counter::default(),
            child_last_exit_code: Gauge::default(),
            child_uptime_seconds: Gauge::default(),
            orphans_reaped: Counter::default(),
            http_requests: Family::default(),
            node_indexer_height: Gauge::default(),
            node_indexer_lag_seconds: Gauge::default(),
            node_stalls: Counter::default(),
            node_indexer_stalled: Gauge::default(),
            node_ready: Gauge::default(),
            health_status: Gauge::default(),
            chain_watch_failures: Counter::default(),
            account_balance_yocto: Gauge::default(),
            keyshare_vault_epoch: Gauge::default(),
            keyshare_vault_behind_seconds: Gauge::default(),
            keyshare_vault_uploads: Family::default(),
            chain_watch_checks: Family::default(),
            secret_refreshes: Family::default(),
            phase: Family::default(),
            stage_seconds: Family::default(),
            stage_status: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "child_up",
            "1 while the child process runs",
            m.child_up.clone(),
        );
        registry.register(
            "child_restarts",
            "Times the child was started again after an exit",
            m.child_restarts.clone(),
        );
        registry.register(
            "child_last_exit_code",
            "Exit code of the child's last exit (128+n for signal n)",
            m.child_last_exit_code.clone(),
        );
        registry.register(
            "child_uptime_seconds",
            "Seconds since the running child started, 0 when none runs",
            m.child_uptime_seconds.clone(),
        );
        registry.register(
            "orphans_reaped",
            "Orphaned processes reaped by the agent as PID 1 or subreaper",
            m.orphans_reaped.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served, by path and status code",
            m.http_requests.clone(),
        );
        registry.register(
            "node_indexer_height",
            "The node's mpc_indexer_latest_block_height, as last scraped",
            m.node_indexer_height.clone(),
        );
        registry.register(
            "node_indexer_lag_seconds",
            "How far the node's latest indexed block is behind the wall clock",
            m.node_indexer_lag_seconds.clone(),
        );
        registry.register(
            "node_stalls",
            "Times the node's indexer height stopped advancing for AGENT_INDEXER_STALL",
            m.node_stalls.clone(),
        );
        registry.register(
            "node_indexer_stalled",
            "1 while the node's indexer height has not advanced for AGENT_INDEXER_STALL",
            m.node_indexer_stalled.clone(),
        );
        registry.register(
            "node_ready",
            "1 when /ready answers 200: the node runs, answers and is synced",
            m.node_ready.clone(),
        );
        registry.register(
            "health_status",
            "The agent's /health: 0 pass, 1 warn, 2 fail",
            m.health_status.clone(),
        );
        registry.register(
            "chain_watch_failures",
            "Failing checks found by the chain watch, summed over its passes",
            m.chain_watch_failures.clone(),
        );
        registry.register(
            "account_balance_yocto",
            "The node account's available balance in yoctoNEAR, as the chain watch last read it",
            m.account_balance_yocto.clone(),
        );
        registry.register(
            "keyshare_vault_epoch",
            "The greatest epoch of the home's keyshares the agent has seen in the vault",
            m.keyshare_vault_epoch.clone(),
        );
        registry.register(
            "keyshare_vault_behind_seconds",
            "Seconds the home's newest keyshare has lived only on the home (neither in the vault nor served to the node's backup service), 0 once off the home",
            m.keyshare_vault_behind_seconds.clone(),
        );
        registry.register(
            "keyshare_vault_uploads",
            "Keyshare uploads to the vault, by result (stored, already-there, failed)",
            m.keyshare_vault_uploads.clone(),
        );
        registry.register(
            "chain_watch_checks",
            "1 for the outcome of each check of the chain watch's latest pass (ok, skipped, warn, fail)",
            m.chain_watch_checks.clone(),
        );
        registry.register(
            "secret_refreshes",
            "Times the running agent fetched the secrets again, by what it found (unchanged, invalid, rejected, unused, changed)",
            m.secret_refreshes.clone(),
        );
        registry.register("phase", "1 for the agent's current phase", m.phase.clone());
        registry.register(
            "stage_duration_seconds",
            "How long the last run of each boot stage took",
            m.stage_seconds.clone(),
        );
        registry.register(
            "stage_status",
            "1 for the outcome of the last run of each boot stage (ok, skipped, warn, fail)",
            m.stage_status.clone(),
        );
        // No reading yet: NaN (and -1 for the epoch, an integer), which the
        // metrics line leaves out, rather than a 0 that would read as a
        // balance, a lag or an epoch.
        m.node_indexer_lag_seconds.set(f64::NAN);
        m.account_balance_yocto.set(f64::NAN);
        m.keyshare_vault_behind_seconds.set(f64::NAN);
        m.keyshare_vault_epoch.set(-1);
        Metrics { registry, ..m }
    }

    pub fn set_phase(&self, current: Phase) {
        for phase in Phase::ALL {
            self.phase
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str(),
                })
                .set((phase == current).into());
        }
    }

    /// Whether the agent is in `phase`, as the `phase` gauges say.
    pub fn in_phase(&self, phase: Phase) -> bool {
        self.phase
            .get_or_create(&PhaseLabels {
                phase: phase.as_str(),
            })
            .get()
            == 1
    }

    pub fn set_stage(&self, stage: Stage, status: entrypoint::check::Status) {
        use entrypoint::check::Status;
        for s in [Status::Ok, Status::Skipped, Status::Warn, Status::Fail] {
            self.stage_status
                .get_or_create(&StageStatusLabels {
                    stage: stage.as_str(),
                    status: s.as_str(),
                })
                .set((s == status).into());
        }
    }

    /// One gauge per check and outcome, 1 for each check's current outcome;
    /// the failing ones added to `chain_watch_failures`.
    pub fn set_watch(&self, checks: &[entrypoint::check::Check]) {
        use entrypoint::check::Status;
        let failing = checks.iter().filter(|c| c.status == Status::Fail).count();
        self.chain_watch_failures.inc_by(failing as u64);
        for check in checks {
            for s in [Status::Ok, Status::Skipped, Status::Warn, Status::Fail] {
                self.chain_watch_checks
                    .get_or_create(&CheckStatusLabels {
                        check: check.id.clone(),
                        status: s.as_str(),
                    })
                    .set((s == check.status).into());
            }
        }
    }

    /// One more fetch of the secrets while the node runs, ending in `outcome`.
    pub fn secret_refreshed(&self, outcome: &'static str) {
        self.secret_refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn set_stage_duration(&self, stage: Stage, took: std::time::Duration) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                stage: stage.as_str(),
            })
            .set(took.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
