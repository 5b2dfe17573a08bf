//! The running agent, as its `/status` tells: phase, child, restarts, last
//! exit, the reasons it has seen, the node's sync (a stall named) and the
//! chain watch (a key gone, a low balance, each with its fix).

use std::time::Duration;

use entrypoint::check::Check;

use entrypoint::probe;

use crate::life::Phase;
use crate::life::state::stall_text;
use crate::life::views::{Reported, Status, SyncSource};

pub async fn checks(base: &str, limit: Duration) -> Vec<Check> {
    match fetch(base, limit).await {
        Ok((url, status)) => judge(&url, &status),
        Err(check) => vec![check],
    }
}

/// The running agent's `/status` at `base` and its URL, or why there is none
/// (`agent.status`).
pub async fn fetch(base: &str, limit: Duration) -> Result<(String, Status), Check> {
    let url = format!("{}/status", base.trim_end_matches('/'));
    match probe::get(&url, limit).await {
        Ok((200, body)) => match serde_json::from_slice(&body) {
            Ok(status) => Ok((url, status)),
            Err(e) => Err(Check::warn(
                "agent.status",
                format!("{url} is not an agent's /status: {e}"),
                "point --from at the agent's port (AGENT_LISTEN)",
            )),
        },
        Ok((code, _)) => Err(Check::warn(
            "agent.status",
            format!("{url} answered {code}"),
            "point --from at the agent's port (AGENT_LISTEN)",
        )),
        Err(e) => Err(Check::skipped(
            "agent.status",
            format!("no running agent answers at {url} ({e})"),
        )),
    }
}

/// The agent's phase judged, then each reason it has seen as a warning.
fn judge(url: &str, status: &Status) -> Vec<Check> {
    let child = &status.child;
    let mut cause = format!("the agent at {url} is {}", status.phase);
    if let Some(running) = &child.running {
        cause.push_str(&format!(
            "; the node (pid {}) is up {:.0}s",
            running.pid, running.uptime_seconds
        ));
    }
    cause.push_str(&format!("; restarts {}", child.restarts));
    if let Some(last) = &child.last_exit {
        cause.push_str(&format!("; last exit code {}", last.exit.code()));
    }
    let reason = status.reason.as_ref().map(|r| r.cause.as_str());
    let fix = status
        .reason
        .as_ref()
        .and_then(|r| r.fix.clone())
        .unwrap_or_else(|| "read /status for the reason".to_string());
    let with_reason = || {
        format!(
            "{cause}{}",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        )
    };
    let verdict = match &status.phase {
        Reported::Known(
            Phase::Starting
            | Phase::Secrets
            | Phase::Keys
            | Phase::Home
            | Phase::Launching
            | Phase::Running,
        ) => Check::ok("agent.status", cause.clone()),
        Reported::Known(Phase::Failed) => Check::fail(
            "agent.status",
            format!("{cause}: {}", reason.unwrap_or("failed")),
            fix,
        ),
        Reported::Known(
            Phase::WaitingForLock | Phase::Restarting | Phase::Holding | Phase::Stopping,
        ) => Check::warn("agent.status", with_reason(), fix),
        Reported::Unknown(phase) => Check::warn(
            "agent.status",
            format!(
                "{}; this doctor ({}) does not know the phase {phase} (the agent is {})",
                with_reason(),
                env!("CARGO_PKG_VERSION"),
                status.agent.version
            ),
            "judge the phase with the running agent's own doctor (docker exec <container> agent doctor), or read /status",
        ),
    };
    let mut checks = vec![verdict.with_detail(serde_json::json!({
        "phase": status.phase,
        "child": child,
    }))];
    for seen in &status.reasons {
        checks.push(
            Check::warn(
                format!("agent.reason.{}", seen.kind),
                format!(
                    "{} (seen {} time(s), last at {})",
                    seen.cause,
                    seen.count,
                    humantime::format_rfc3339_millis(seen.at)
                ),
                seen.fix.clone().unwrap_or_default(),
            )
            .with_detail(serde_json::to_value(seen).unwrap_or_default()),
        );
    }
    checks.extend(sync_check(status));
    if let Some(watch) = &status.watch {
        for reason in &watch.reasons {
            let check = if reason.kind == crate::life::state::KEY_GONE {
                Check::fail
            } else {
                Check::warn
            };
            checks.push(check(
                format!("agent.{}", reason.kind),
                format!(
                    "the chain watch at {}: {}",
                    humantime::format_rfc3339_seconds(watch.checked_at),
                    reason.cause
                ),
                reason.fix.clone().unwrap_or_default(),
            ));
        }
    }
    checks
}

/// The node's sync as the agent last scraped it: stalled, behind, caught
/// up, or not measurable.
fn sync_check(status: &Status) -> Option<Check> {
    const ID: &str = "agent.sync";
    let sync = status.sync.as_ref()?;
    let detail = serde_json::to_value(sync).unwrap_or_default();
    let check = if let Some(stall) = &sync.stall {
        Check::warn(
            ID,
            format!("{}; {}", stall_text(stall), stall.action),
            "read the node's log for its indexer; AGENT_ON_STALL=restart restarts it once per crash-loop window; a node wedged after epoch sync may need indexer.wipe_near_data_token bumped in config.yaml",
        )
    } else if sync.source == SyncSource::HealthOnly {
        Check::warn(
            ID,
            format!(
                "the node's sync cannot be measured: {}",
                sync.note.as_deref().unwrap_or("no indexer metrics")
            ),
            "run an mpc-node image that exports mpc_indexer_latest_block_height, or point AGENT_NODE_METRICS_URL at the node's /metrics",
        )
    } else if sync.caught_up {
        Check::ok(
            ID,
            format!(
                "the node's indexer is at block {} and caught up ({:.0}s behind the wall clock)",
                sync.height.unwrap_or_default(),
                sync.lag_seconds.unwrap_or_default()
            ),
        )
    } else {
        Check::warn(
            ID,
            format!(
                "the node's indexer is syncing: block {}, {:.0}s behind{}",
                sync.height.unwrap_or_default(),
                sync.lag_seconds.unwrap_or_default(),
                sync.eta_seconds
                    .map(|e| format!(", about {e:.0}s to go"))
                    .unwrap_or_default()
            ),
            "wait: a first sync takes hours; `agent status` shows its progress",
        )
    };
    Some(check.with_detail(detail))
}

#[cfg(test)]
mod tests {
    use entrypoint::check::Status as Verdict;

    use super::*;
    use crate::life::Event;
    use crate::life::state::{Judgement, State};
    use crate::life::views::Reason;
    use crate::life::views::Settings;
    use entrypoint::stage::Stage;

    const URL: &str = "http://127.0.0.1:8090/status";

    fn state() -> State {
        let settings = Settings {
            valid: true,
            command: "run".into(),
            file: None,
            settings: Vec::new(),
        };
        State::new(Judgement::default(), settings)
    }

    /// What doctor reads from the agent: the server's JSON, parsed.
    fn served(state: &State) -> serde_json::Value {
        serde_json::to_value(state.status(Vec::new())).unwrap()
    }

    fn verdict(status: serde_json::Value) -> Check {
        let status: Status = serde_json::from_value(status).unwrap();
        judge(URL, &status).remove(0)
    }

    #[test]
    fn a_running_agent_is_fine_a_holding_one_warns_a_failed_one_fails() {
        let state = state();
        state.apply(Event::Launch);
        state.child_started(7, "/app/mpc-node");
        let running = verdict(served(&state));
        assert_eq!(running.status, Verdict::Ok, "{running:?}");
        assert!(
            running.cause.contains("is running; the node (pid 7)"),
            "{}",
            running.cause
        );

        // A rotation boots it again, and the keys stage holds.
        state.apply(Event::Stop);
        state.apply(Event::Enter(Stage::Secrets));
        state.apply(Event::Hold(Reason::new(
            "keys",
            "the signer key is not on the account",
            Some("add it".into()),
        )));
        let holding = verdict(served(&state));
        assert_eq!(holding.status, Verdict::Warn);
        assert!(
            holding
                .cause
                .ends_with(": the signer key is not on the account"),
            "{}",
            holding.cause
        );
        assert_eq!(holding.fix.as_deref(), Some("add it"));

        state.apply(Event::Fail(Reason::new("crash-loop", "crash loop", None)));
        let failed = verdict(served(&state));
        assert_eq!(failed.status, Verdict::Fail);
        assert!(failed.cause.ends_with(": crash loop"), "{}", failed.cause);
    }

    #[test]
    fn a_stall_a_key_gone_and_a_low_balance_are_named_with_their_fixes() {
        use crate::life::views::{Stall, Sync, SyncSource, Watch};
        let state = state();
        state.apply(Event::Launch);
        state.child_started(7, "/app/mpc-node");
        state.set_sync(Sync {
            source: SyncSource::Indexer,
            note: None,
            height: Some(4242),
            block_time: None,
            job: Some("Running".into()),
            chain_head: Some(5000),
            lag_blocks: Some(758),
            lag_seconds: Some(3.0),
            started_lag_seconds: None,
            blocks_per_second: None,
            eta_seconds: None,
            caught_up: true,
            synced_in_seconds: None,
            stall: Some(Stall {
                height: 4242,
                since: "2026-12-01T00:00:00Z".into(),
                for_seconds: 700.0,
                chain_head: Some(5000),
                action: "warn (AGENT_ON_STALL=warn)".into(),
            }),
            stall_restarts: 0,
        });
        state.set_watch(Watch {
            checked_at: std::time::SystemTime::now(),
            checks: Vec::new(),
            reasons: vec![
                Reason::new(
                    crate::life::state::KEY_GONE,
                    "the signer key ed25519:abc is not an access key of node0.near",
                    Some("add it back".into()),
                ),
                Reason::new(
                    "watch.balance",
                    "account node0.near has 0.5 NEAR available",
                    Some("send NEAR to node0.near".into()),
                ),
            ],
            available_balance: Some("500000000000000000000000".into()),
        });
        let status: Status = serde_json::from_value(served(&state)).unwrap();
        let checks = judge(URL, &status);
        let find = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("no {id} in {checks:?}"))
        };
        let stall = find("agent.sync");
        assert_eq!(stall.status, Verdict::Warn);
        assert!(
            stall.cause.contains("stalled at block 4242"),
            "{}",
            stall.cause
        );
        assert!(stall.fix.as_deref().unwrap().contains("AGENT_ON_STALL"));
        let gone = find("agent.watch.signer-key-gone");
        assert_eq!(gone.status, Verdict::Fail);
        assert_eq!(gone.fix.as_deref(), Some("add it back"));
        let balance = find("agent.watch.balance");
        assert_eq!(balance.status, Verdict::Warn);
        assert!(balance.cause.contains("0.5 NEAR"), "{}", balance.cause);
    }

    #[test]
    fn a_phase_only_a_newer_agent_knows_is_named_as_unknown_not_a_panic() {
        let mut status = served(&state());
        status["phase"] = "draining".into();
        status["agent"]["version"] = "99.0.0".into();
        let check = verdict(status);
        assert_eq!(check.status, Verdict::Warn);
        assert!(check.cause.contains("is draining"), "{}", check.cause);
        assert!(
            check.cause.contains("does not know the phase draining"),
            "{}",
            check.cause
        );
        assert!(check.cause.contains("99.0.0"), "{}", check.cause);
        assert_eq!(check.detail["phase"], "draining");
    }
}
