//! `/health`, `/ready`, `/status`, `/metrics` and `/config` through the phases
//! of a child's life; answers come from a snapshot, so they never wait on it.

use std::time::Duration;

use agent::views::{Phase, Reported};
use agent_tests::harness::{AgentCommand, WAIT, free_port, http, metric};
use agent_tests::standin_node::Behavior;
use agent_tests::views::setting;
use entrypoint::config::Source;

#[test]
fn a_running_child_is_live_ready_and_described() {
    let port = free_port();
    let agent = AgentCommand::exec(&Behavior {
        health: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..Behavior::default()
    })
    .env("AGENT_READY_URL", format!("http://127.0.0.1:{port}/health"))
    .env("AGENT_READY_INTERVAL", "100ms")
    .start();
    let ready = agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert!(ready.ready_view().ready, "{}", ready.body);

    let health = agent.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(
        health.header("content-type"),
        Some("application/health+json")
    );
    let h = health.health();
    assert_eq!(h.status, "pass");
    assert_eq!(h.component("agent:phase").observed_value, "running");
    assert_eq!(h.component("child:ready").observed_value, true);
    assert_eq!(
        h.component("child:uptime").observed_unit.as_deref(),
        Some("s")
    );

    let status = agent.status();
    assert_eq!(status.phase, Reported::Known(Phase::Running));
    assert!(status.child.running.as_ref().unwrap().pid > 1);
    assert_eq!(status.child.restarts, 0);
    assert!(status.ready.ready, "{:?}", status.ready);
    assert!(
        status
            .log_tail
            .iter()
            .any(|l| l.line == "mpc-node: running")
    );

    let metrics = agent.get("/metrics");
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert_eq!(metric(&metrics.body, "agent_child_up"), Some(1.0));
    assert_eq!(
        metric(&metrics.body, "agent_child_restarts_total"),
        Some(0.0)
    );
    assert!(metric(&metrics.body, "agent_child_uptime_seconds").unwrap() > 0.0);
    assert!(metrics.body.contains("agent_phase{phase=\"running\"} 1"));
    assert!(
        metrics
            .body
            .contains("agent_http_requests_total{path=\"/health\",code=\"200\"} 1")
    );
}

#[test]
fn ready_waits_for_the_childs_own_endpoint() {
    let port = free_port();
    let agent = AgentCommand::exec(&Behavior {
        health: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        health_after_ms: 1500,
        ..Behavior::default()
    })
    .env("AGENT_READY_URL", format!("http://127.0.0.1:{port}/health"))
    .env("AGENT_READY_INTERVAL", "100ms")
    .start();
    agent
        .stdout
        .wait_for(WAIT, |l| l == "mpc-node: running")
        .unwrap();
    let not_yet = agent.get("/ready");
    assert_eq!(
        not_yet.status, 503,
        "ready before the child's endpoint answered"
    );
    assert_eq!(agent.get("/health").status, 200, "alive all the same");
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
}

#[test]
fn health_answers_while_the_child_hangs() {
    // The child never answers anything: it just runs.
    let agent = AgentCommand::exec(&Behavior::default())
        .env("AGENT_READY_URL", "http://127.0.0.1:9/never")
        .start();
    let addr = agent.addr();
    for _ in 0..200 {
        let r = http("GET", addr, "/health", Duration::from_secs(1)).expect("answered within 1 s");
        assert_eq!(r.status, 200);
    }
    assert_eq!(agent.get("/ready").status, 503);
}

#[test]
fn unknown_paths_are_404_and_other_methods_405() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    let addr = agent.addr();
    let missing = http("GET", addr, "/healthz", Duration::from_secs(2)).unwrap();
    assert_eq!(missing.status, 404);
    assert!(
        missing.json()["paths"]
            .as_array()
            .unwrap()
            .contains(&"/health".into())
    );
    let post = http("POST", addr, "/health", Duration::from_secs(2)).unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[test]
fn config_shows_every_setting_with_its_source() {
    let agent = AgentCommand::exec(&Behavior::default())
        .env("AGENT_STOP_GRACE", "7s")
        .start();
    let config = agent.get("/config").config_view();
    let grace = setting(&config.settings, "AGENT_STOP_GRACE");
    assert_eq!(grace.value.as_deref(), Some("7s"));
    assert_eq!(grace.source, Source::Env);
    let restart = setting(&config.settings, "AGENT_RESTART");
    assert_eq!(restart.value.as_deref(), Some("never"));
    assert_eq!(restart.source, Source::Default);
}
