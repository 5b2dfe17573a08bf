//! The metrics line of `agent run`: every `AGENT_METRICS_EMF_INTERVAL`, one
//! line of CloudWatch's Embedded Metric Format on the agent's stdout (its log
//! stream, which the awslogs driver ships), read from the registry and the
//! state `/metrics` serves, so the alarms and `/metrics` never disagree.

use std::io::Write;
use std::ops::ControlFlow;
use std::time::SystemTime;

use entrypoint::config::CloudWatchSettings;

use crate::emf::{self, Metric};
use crate::every::{Every, Looping, Repeat};
use crate::life::Phase;
use crate::life::state::State;

/// yoctoNEAR in a millionth of a NEAR, the balance's precision on the line.
const YOCTO_PER_MICRO_NEAR: f64 = 1e18;

/// Writes the line every `settings.interval`, the first at once, until dropped.
/// Not jittered: the agent-silent alarm expects one line in every minute.
pub fn spawn(settings: CloudWatchSettings, state: State) -> Looping {
    Every::new(settings.interval)
        .starting_now()
        .spawn(MetricLines {
            settings,
            state,
            counted: Counted::default(),
        })
}

struct MetricLines {
    settings: CloudWatchSettings,
    state: State,
    counted: Counted,
}

/// The counters as the previous line read them: a line carries what they
/// counted since.
#[derive(Default)]
struct Counted {
    restarts: u64,
    chain_watch_failures: u64,
}

impl Repeat for MetricLines {
    async fn once(&mut self) -> ControlFlow<()> {
        let metrics = reading(&self.state, &mut self.counted);
        let line = emf::line(
            &self.settings.namespace,
            &self.settings.node,
            &metrics,
            SystemTime::now(),
        );
        write(&line);
        ControlFlow::Continue(())
    }
}

/// Every metric of `agent run`'s line, now; a value with no reading yet is
/// NaN (left out of the line).
fn reading(state: &State, counted: &mut Counted) -> Vec<Metric> {
    state.refresh_metrics();
    let m = state.metrics();
    let restarts = m.child_restarts.get();
    let failures = m.chain_watch_failures.get();
    let since = Counted {
        restarts: restarts.saturating_sub(counted.restarts),
        chain_watch_failures: failures.saturating_sub(counted.chain_watch_failures),
    };
    *counted = Counted {
        restarts,
        chain_watch_failures: failures,
    };
    let epoch = m.keyshare_vault_epoch.get();
    vec![
        emf::AGENT_UP.at(1.0),
        emf::NODE_READY.at(m.node_ready.get() as f64),
        emf::HEALTH_STATUS.at(m.health_status.get() as f64),
        emf::HOLDING.at(flag(m.in_phase(Phase::Holding))),
        emf::NODE_RESTARTS.at(since.restarts as f64),
        emf::INDEXER_LAG_SECONDS.at(to_the_millisecond(m.node_indexer_lag_seconds.get())),
        emf::INDEXER_STALLED.at(m.node_indexer_stalled.get() as f64),
        emf::CHAIN_WATCH_FAILURES.at(since.chain_watch_failures as f64),
        emf::BALANCE_NEAR.at(near(m.account_balance_yocto.get())),
        emf::VAULT_BEHIND_SECONDS.at(to_the_millisecond(m.keyshare_vault_behind_seconds.get())),
        emf::KEYSHARE_EPOCH.at(if epoch < 0 { f64::NAN } else { epoch as f64 }),
    ]
}

/// yoctoNEAR in NEAR, to the millionth (`2.5`, not `2.5000000000000004`).
fn near(yocto: f64) -> f64 {
    (yocto / YOCTO_PER_MICRO_NEAR).round() / 1e6
}

/// Seconds to the millisecond (`3.215`, not `3.2150001525878906`).
fn to_the_millisecond(seconds: f64) -> f64 {
    (seconds * 1e3).round() / 1e3
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The line and its newline in one write under stdout's lock, the lock the
/// log lines are written under too (each in one write): never one inside
/// another. A closed stdout loses the line, nothing else.
fn write(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::Event;
    use crate::life::state::Judgement;
    use crate::life::views::{Reason, Settings};

    fn state() -> State {
        State::new(
            Judgement::default(),
            Settings {
                valid: true,
                command: "run".into(),
                file: None,
                settings: Vec::new(),
            },
        )
    }

    fn value(metrics: &[Metric], name: &str) -> f64 {
        metrics.iter().find(|m| m.name == name).unwrap().value
    }

    #[test]
    fn a_line_carries_every_metric_of_run_and_counts_only_what_is_new() {
        let state = state();
        let mut counted = Counted::default();
        let first = reading(&state, &mut counted);
        let names: Vec<&str> = first.iter().map(|m| m.name).collect();
        let written_by_run: Vec<&str> = emf::METRICS
            .iter()
            .map(|d| d.name)
            .filter(|n| *n != emf::VAULT_DRILL_FAILED.name)
            .collect();
        assert_eq!(names, written_by_run);
        for unread in [
            "IndexerLagSeconds",
            "BalanceNear",
            "VaultBehindSeconds",
            "KeyshareEpoch",
        ] {
            assert!(value(&first, unread).is_nan(), "{unread} before a reading");
        }
        assert_eq!(value(&first, "AgentUp"), 1.0);

        state.child_restarting();
        state.child_restarting();
        state.metrics().account_balance_yocto.set(2.5e24);
        state.metrics().keyshare_vault_epoch.set(0);
        let second = reading(&state, &mut counted);
        assert_eq!(value(&second, "NodeRestarts"), 2.0);
        assert_eq!(value(&second, "BalanceNear"), 2.5);
        assert_eq!(value(&second, "KeyshareEpoch"), 0.0, "epoch 0 is an epoch");
        let third = reading(&state, &mut counted);
        assert_eq!(value(&third, "NodeRestarts"), 0.0, "counted once");
    }

    #[test]
    fn a_day_of_lines_at_the_default_interval_stays_within_a_megabyte() {
        let state = state();
        let m = state.metrics();
        m.node_indexer_lag_seconds.set(86_399.123_456_789);
        m.account_balance_yocto.set(123_456.123_456_789e24);
        m.keyshare_vault_behind_seconds.set(86_399.123_456_789);
        m.keyshare_vault_epoch.set(1_000_000);
        for _ in 0..100 {
            state.child_restarting();
        }
        let metrics = reading(&state, &mut Counted::default());
        assert!(metrics.iter().all(|m| m.value.is_finite()), "every metric");
        // The longest account id NEAR allows, the default Node.
        let node = "n".repeat(64);
        let line = emf::line("MpcAgent", &node, &metrics, SystemTime::now());
        let per_day = 86_400 / 60;
        assert!(
            (line.len() + 1) * per_day <= 1_000_000,
            "{} bytes a line, {} a day: {line}",
            line.len() + 1,
            (line.len() + 1) * per_day
        );
    }

    #[test]
    fn holding_and_health_are_read_as_health_judges_them() {
        let state = state();
        let mut counted = Counted::default();
        state.apply(Event::Enter(entrypoint::stage::Stage::Secrets));
        state.apply(Event::Hold(Reason::new("keys", "the key differs", None)));
        let held = reading(&state, &mut counted);
        assert_eq!(value(&held, "Holding"), 1.0);
        // Holding past a grace of zero fails /health.
        assert_eq!(value(&held, "HealthStatus"), 2.0);
        assert_eq!(value(&held, "NodeReady"), 0.0);
    }
}
