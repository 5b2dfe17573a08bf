//! SIGTERM to the agent: `/ready` fails at once, the pre-stop delay passes,
//! the signal reaches the child, and a child that ignores it is SIGKILLed
//! after the grace — the agent's own log says so.

use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, WAIT, free_port, http};
use agent_tests::standin_node::{Behavior, OnStop};
use nix::sys::signal::Signal;

fn running(agent: &agent_tests::harness::Agent) {
    agent
        .stdout
        .wait_for(WAIT, |l| l == "mpc-node: running")
        .expect("the child runs");
}

#[test]
fn sigterm_reaches_the_child_and_its_clean_exit_is_the_agents() {
    let mut agent = AgentCommand::exec(&Behavior::default()).start();
    running(&agent);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    agent.wait_log("child stopped");
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace() {
    let mut agent = AgentCommand::exec(&Behavior {
        on_stop: OnStop::Ignore,
        ..Behavior::default()
    })
    .env("AGENT_STOP_GRACE", "1s")
    .start();
    running(&agent);
    let asked = Instant::now();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 128 + Signal::SIGKILL as i32);
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "killed before the grace ended"
    );
    let line = agent.wait_log("did not exit within the stop grace");
    assert_eq!(line["level"], "WARN");
    assert!(
        agent
            .stdout
            .all()
            .iter()
            .any(|l| l == "mpc-node: got SIGTERM")
    );
}

#[test]
fn ready_fails_at_once_and_the_child_gets_the_signal_after_the_prestop_delay() {
    let port = free_port();
    let mut agent = AgentCommand::exec(&Behavior {
        health: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..Behavior::default()
    })
    .env("AGENT_READY_URL", format!("http://127.0.0.1:{port}/health"))
    .env("AGENT_READY_INTERVAL", "100ms")
    .env("AGENT_PRESTOP_DELAY", "3s")
    .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let asked = Instant::now();
    agent.signal(Signal::SIGTERM);
    let ready = agent.wait_until("/ready", Duration::from_secs(2), |r| r.status == 503);
    assert!(!ready.ready_view().ready, "{}", ready.body);
    assert!(
        !agent
            .stdout
            .all()
            .iter()
            .any(|l| l == "mpc-node: got SIGTERM"),
        "the child got SIGTERM before the pre-stop delay ended"
    );
    let health = agent.get("/health");
    assert_eq!(health.status, 200, "still alive while stopping");
    assert_eq!(health.health().output, "stopping");
    assert_eq!(agent.exit_code(), 0);
    assert!(asked.elapsed() >= Duration::from_secs(3));
}

#[test]
fn a_second_sigterm_cuts_the_prestop_delay_short() {
    let mut agent = AgentCommand::exec(&Behavior::default())
        .env("AGENT_PRESTOP_DELAY", "1h")
        .start();
    running(&agent);
    agent.signal(Signal::SIGTERM);
    agent.wait_until("/ready", Duration::from_secs(2), |r| r.status == 503);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn sigterm_while_waiting_to_restart_exits_143() {
    let mut agent = AgentCommand::exec(&Behavior {
        exit_code: Some(1),
        ..Behavior::default()
    })
    .env("AGENT_RESTART", "on-failure")
    .env("AGENT_RESTART_BACKOFF", "1h..1h")
    .start();
    agent.wait_until("/health", WAIT, |r| r.health().status == "warn");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
}

#[test]
fn health_keeps_answering_while_the_child_stops() {
    let agent = AgentCommand::exec(&Behavior {
        on_stop: OnStop::Ignore,
        ..Behavior::default()
    })
    .env("AGENT_STOP_GRACE", "3s")
    .start();
    running(&agent);
    let addr = agent.addr();
    agent.signal(Signal::SIGTERM);
    agent.wait_log("stopping the child");
    for _ in 0..20 {
        let r = http("GET", addr, "/health", Duration::from_secs(1))
            .expect("/health answers during the grace");
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
}
