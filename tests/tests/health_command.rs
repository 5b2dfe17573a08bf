//! `agent health`, the container HEALTHCHECK: exit 0 on 200, 1 otherwise, one line of output.

use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, WAIT, agent_output};
use agent_tests::standin_node::Behavior;

#[test]
fn healthy_agent_exits_0_with_one_line() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    let addr = agent.addr();
    let out = agent_output(&["health"], &[("AGENT_LISTEN", &addr.to_string())]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(out.stdout.starts_with("healthy: "), "{}", out.stdout);
    assert!(out.stdout.contains("(pass: running)"), "{}", out.stdout);
    let ready = agent_output(
        &[
            "health",
            "--ready",
            "--url",
            &format!("http://{addr}/ready"),
        ],
        &[],
    );
    assert_eq!(ready.code, 0, "{ready:?}");
}

#[test]
fn a_wildcard_listen_address_is_asked_on_loopback() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    let port = agent.addr().port();
    let out = agent_output(&["health"], &[("AGENT_LISTEN", &format!("0.0.0.0:{port}"))]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn failed_agent_exits_1() {
    let agent = AgentCommand::exec(&Behavior {
        exit_code: Some(1),
        ..Behavior::default()
    })
    .env("AGENT_RESTART", "on-failure")
    .env("AGENT_RESTART_BACKOFF", "10ms..10ms")
    .env("AGENT_CRASH_LOOP", "2/60s")
    .env("AGENT_FAIL_LINGER", "10s")
    .start();
    agent.wait_until("/health", WAIT, |r| r.status == 503);
    let out = agent_output(
        &[
            "health",
            "--url",
            &format!("http://{}/health", agent.addr()),
        ],
        &[],
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.starts_with("unhealthy: "), "{}", out.stdout);
    assert!(out.stdout.contains("503"), "{}", out.stdout);
    assert!(out.stdout.contains("crash loop"), "{}", out.stdout);
}

#[test]
fn nothing_listening_exits_1() {
    let port = agent_tests::harness::free_port();
    let out = agent_output(
        &[
            "health",
            "--url",
            &format!("http://127.0.0.1:{port}/health"),
        ],
        &[],
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("cannot connect"), "{}", out.stdout);
}

#[test]
fn a_server_that_never_answers_is_given_up_after_the_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let out = agent_output(
        &[
            "health",
            "--timeout",
            "500ms",
            "--url",
            &format!("http://{addr}/health"),
        ],
        &[],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("did not answer within 500ms"),
        "{}",
        out.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[test]
fn an_unready_agent_fails_the_ready_check() {
    let agent = AgentCommand::exec(&Behavior::default())
        .env("AGENT_READY_URL", "http://127.0.0.1:9/none")
        .start();
    let addr = agent.addr();
    let out = agent_output(
        &["health", "--ready"],
        &[("AGENT_LISTEN", &addr.to_string())],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("503"), "{}", out.stdout);
}
