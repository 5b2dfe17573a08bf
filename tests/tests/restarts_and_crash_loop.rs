//! Restart policies, backoff, and the crash loop that turns `/health` to 503
//! and then ends the agent with the child's last code, so that the
//! orchestrator replaces the task instead of restarting it for ever.

use std::time::Duration;

use agent::views::{Exit, Phase, Reported};
use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::standin_node::Behavior;

fn crashing(code: i32) -> Behavior {
    Behavior {
        exit_code: Some(code),
        after_ms: 50,
        ..Behavior::default()
    }
}

#[test]
fn a_crash_loop_fails_health_then_exits_with_the_last_code() {
    let mut agent = AgentCommand::exec(&crashing(3))
        .env("AGENT_RESTART", "on-failure")
        .env("AGENT_RESTART_BACKOFF", "20ms..100ms")
        .env("AGENT_CRASH_LOOP", "4/60s")
        .env("AGENT_FAIL_LINGER", "3s")
        .start();
    let health = agent.wait_until("/health", WAIT, |r| r.status == 503);
    let body = health.health();
    assert_eq!(body.status, "fail");
    assert!(body.output.contains("crash loop"), "{body:?}");
    assert_eq!(
        health.header("content-type"),
        Some("application/health+json")
    );
    let status = agent.status();
    assert_eq!(status.phase, Reported::Known(Phase::Failed));
    assert_eq!(status.reason.as_ref().unwrap().kind, "crash-loop");
    assert_eq!(status.child.restarts, 3);
    assert_eq!(status.child.last_exit.as_ref().unwrap().exit, Exit::Code(3));
    assert_eq!(agent.exit_code(), 3);
    assert_eq!(agent.wait_log("crash loop")["level"], "ERROR");
}

#[test]
fn restarting_is_a_warning_on_health() {
    let agent = AgentCommand::exec(&crashing(1))
        .env("AGENT_RESTART", "on-failure")
        .env("AGENT_RESTART_BACKOFF", "1h..1h")
        .start();
    let health = agent.wait_until("/health", WAIT, |r| r.health().status == "warn");
    assert_eq!(health.status, 200);
    assert!(health.health().output.as_str().starts_with("restarting"));
    assert_eq!(agent.get("/ready").status, 503);
}

#[test]
fn on_failure_does_not_restart_a_clean_exit() {
    let mut agent = AgentCommand::exec(&crashing(0))
        .env("AGENT_RESTART", "on-failure")
        .start();
    assert_eq!(agent.exit_code(), 0);
    assert_eq!(
        agent
            .stdout
            .all()
            .iter()
            .filter(|l| *l == "mpc-node: running")
            .count(),
        1
    );
}

#[test]
fn always_restarts_a_clean_exit_too() {
    let agent = AgentCommand::exec(&crashing(0))
        .env("AGENT_RESTART", "always")
        .env("AGENT_RESTART_BACKOFF", "10ms..10ms")
        .env("AGENT_CRASH_LOOP", "1000/1s")
        .start();
    agent.wait_status(WAIT, |s| s.child.restarts >= 3);
}

#[test]
fn never_exits_with_the_child() {
    let mut agent = AgentCommand::exec(&crashing(9)).start();
    assert_eq!(agent.exit_code(), 9);
    assert!(agent.wait_exit(Duration::ZERO).is_some());
}
