//! The running agent, as its `/status` tells: phase, child, restarts, last
//! exit, and the reasons it has seen.

use std::time::Duration;

use entrypoint::check::Check;

use entrypoint::probe;

pub async fn checks(base: &str, limit: Duration) -> Vec<Check> {
    let url = format!("{}/status", base.trim_end_matches('/'));
    let status: serde_json::Value = match probe::get(&url, limit).await {
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
    let phase = status["phase"].as_str().unwrap_or("?");
    let child = &status["child"];
    let mut cause = format!("the agent at {url} is {phase}");
    if let Some(pid) = child["running"]["pid"].as_i64() {
        cause.push_str(&format!(
            "; the node (pid {pid}) is up {:.0}s",
            child["running"]["uptime_seconds"].as_f64().unwrap_or(0.0)
        ));
    }
    cause.push_str(&format!(
        "; restarts {}",
        child["restarts"].as_u64().unwrap_or(0)
    ));
    if let Some(code) = child["last_exit"]["code"].as_i64() {
        cause.push_str(&format!("; last exit code {code}"));
    }
    let reason = status["reason"]["cause"].as_str();
    let fix = status["reason"]["fix"]
        .as_str()
        .unwrap_or("read /status for the reason")
        .to_string();
    let mut checks = vec![
        match phase {
            "running" | "starting" | "secrets" | "keys" | "home" | "launching" => {
                Check::ok("agent.status", cause)
            }
            "failed" => Check::fail(
                "agent.status",
                format!("{cause}: {}", reason.unwrap_or("failed")),
                fix,
            ),
            _ => Check::warn(
                "agent.status",
                format!(
                    "{cause}{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
                fix,
            ),
        }
        .with_detail(serde_json::json!({ "phase": phase, "child": child.clone() })),
    ];
    for seen in status["reasons"].as_array().into_iter().flatten() {
        checks.push(
            Check::warn(
                format!("agent.reason.{}", seen["kind"].as_str().unwrap_or("?")),
                format!(
                    "{} (seen {} time(s), last at {})",
                    seen["cause"].as_str().unwrap_or(""),
                    seen["count"].as_u64().unwrap_or(1),
                    seen["at"].as_str().unwrap_or("?")
                ),
                seen["fix"].as_str().unwrap_or("").to_string(),
            )
            .with_detail(seen.clone()),
        );
    }
    checks
}
