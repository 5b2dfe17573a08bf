//! The running agent, as its `/status` tells: phase, child, restarts, last
//! exit, and the reasons it has seen.

use std::time::Duration;

use entrypoint::check::Check;

use entrypoint::probe;

use crate::http::views::{Phase, Reported, Status};

pub async fn checks(base: &str, limit: Duration) -> Vec<Check> {
    let url = format!("{}/status", base.trim_end_matches('/'));
    let status: Status = match probe::get(&url, limit).await {
        Ok((200, body)) => match serde_json::from_slice(&body) {
            Ok(status) => status,
            Err(e) => {
                return vec![Check::warn(
                    "agent.status",
                    format!("{url} is not an agent's /status: {e}"),
                    "point --from at the agent's port (AGENT_LISTEN)",
                )];
            }
        },
        Ok((code, _)) => {
            return vec![Check::warn(
                "agent.status",
                format!("{url} answered {code}"),
                "point --from at the agent's port (AGENT_LISTEN)",
            )];
        }
        Err(e) => {
            return vec![Check::skipped(
                "agent.status",
                format!("no running agent answers at {url} ({e})"),
            )];
        }
    };
    judge(&url, &status)
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
    checks
}

#[cfg(test)]
mod tests {
    use entrypoint::check::Status as Verdict;

    use super::*;
    use crate::http::lifecycle::Event;
    use crate::http::state::{Judgement, State};
    use crate::http::views::Reason;
    use crate::http::views::Settings;

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
        state.child_started(7, "/app/mpc-node");
        let running = verdict(served(&state));
        assert_eq!(running.status, Verdict::Ok, "{running:?}");
        assert!(
            running.cause.contains("is running; the node (pid 7)"),
            "{}",
            running.cause
        );

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
