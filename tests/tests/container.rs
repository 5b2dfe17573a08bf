//! The image in a real Docker engine, as ECS and SSM drive it: `docker run`
//! to healthy, `docker stop` (SIGTERM to PID 1), a node that ignores it,
//! `docker exec … agent doctor`, two containers on one volume (a rolling
//! deploy), and a restart that writes nothing new. Where no Docker engine
//! answers, each test says so and passes.

use std::time::{Duration, Instant};

use agent::views::{Phase, Reported, Status};
use agent_tests::docker::{Container, Volume, unavailable};
use agent_tests::harness::{WAIT, doctor_report, free_port, http};
use agent_tests::moto::{Moto, Value};
use agent_tests::node_fixture::{Key, NodeFixture};
use agent_tests::standin_node::{Behavior, OnStop};
use agent_tests::views::Checks;
use entrypoint::check::Status as Verdict;

/// Skips the test (saying why) where no Docker engine answers.
macro_rules! needs_docker {
    () => {
        if let Some(why) = unavailable() {
            agent_tests::skipped(why);
            return;
        }
    };
}

/// The agent's environment in a container whose home is `/data`: the node's
/// settings, its secrets, a loopback listener of its own, short health timings.
fn env(node: &NodeFixture, agent_port: u16) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = node
        .env()
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                *k,
                "MPC_HOME_DIR" | "AGENT_NODE_BIN" | "AGENT_LOCALNET_GENESIS"
            )
        })
        .collect();
    env.extend(node.secret_env());
    env.push(("MPC_HOME_DIR", "/data".into()));
    env.push(("AGENT_LISTEN", format!("127.0.0.1:{agent_port}")));
    env
}

/// Fast health checks, so the tests see `healthy` within seconds.
const HEALTH: [&str; 6] = [
    "--health-interval",
    "1s",
    "--health-retries",
    "2",
    "--health-start-period",
    "0s",
];

fn with_home(home: &str) -> Vec<String> {
    let mut args: Vec<String> = HEALTH.iter().map(|s| s.to_string()).collect();
    args.extend(["-v".into(), format!("{home}:/data")]);
    args
}

fn run(
    node: &NodeFixture,
    agent_port: u16,
    home: &str,
    extra_env: &[(&'static str, String)],
) -> Container {
    let mut e = env(node, agent_port);
    e.extend_from_slice(extra_env);
    let args = with_home(home);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Container::run(&e, &args)
}

/// The container's `/status`; `None` while nothing answers on `port`.
fn status(port: u16) -> Option<Status> {
    http(
        "GET",
        format!("127.0.0.1:{port}").parse().unwrap(),
        "/status",
        Duration::from_secs(5),
    )
    .ok()
    .map(|r| r.status_view())
}

/// Polls the container's `/status` until the agent is in `phase`.
fn wait_phase(port: u16, phase: Phase) -> Status {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(port);
        if let Some(s) = s.as_ref().filter(|s| s.phase == Reported::Known(phase)) {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the agent never reached {phase}: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_node_runs_and_docker_sees_the_container_go_healthy() {
    needs_docker!();
    let node = NodeFixture::new();
    let port = free_port();
    let c = run(&node, port, &node.home().display().to_string(), &[]);
    assert_eq!(
        c.inspect("{{.Config.Healthcheck.Test}}"),
        "[CMD /usr/local/bin/agent health]"
    );
    let first = c.health();
    assert!(first == "starting" || first == "healthy", "{first}");
    c.wait_for("{{.State.Health.Status}}", WAIT, |h| h == "healthy");
    let s = wait_phase(port, Phase::Running);
    assert!(s.agent.pid1, "the agent is the container's PID 1");
}

#[test]
fn docker_stop_reaches_the_node_through_pid_1_and_never_ends_in_137() {
    needs_docker!();
    let node = NodeFixture::new();
    let port = free_port();
    let c = run(&node, port, &node.home().display().to_string(), &[]);
    wait_phase(port, Phase::Running);
    let asked = Instant::now();
    docker_stop(&c, 10);
    let took = asked.elapsed();
    let code: i32 = c.inspect("{{.State.ExitCode}}").parse().unwrap();
    assert!(code == 0 || code == 143, "exit {code}");
    assert!(
        took < Duration::from_secs(8),
        "took {took:?}: the SIGTERM did not reach the node"
    );
    assert!(c.logs().contains("mpc-node: got SIGTERM"));
}

fn docker_stop(c: &Container, timeout: u32) {
    agent_tests::docker::docker_ok(&["stop", "-t", &timeout.to_string(), &c.name]);
}

#[test]
fn a_node_that_ignores_sigterm_is_ended_by_the_agents_grace_before_dockers() {
    needs_docker!();
    let node = NodeFixture::new();
    node.behave(&Behavior {
        on_stop: OnStop::Ignore,
        ..Behavior::default()
    });
    let port = free_port();
    let c = run(
        &node,
        port,
        &node.home().display().to_string(),
        &[("AGENT_STOP_GRACE", "2s".into())],
    );
    wait_phase(port, Phase::Running);
    let asked = Instant::now();
    docker_stop(&c, 10);
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(9),
        "took {took:?}"
    );
    assert!(
        c.logs().contains("did not exit within the stop grace"),
        "{}",
        c.logs()
    );
    assert_eq!(
        c.inspect("{{.State.ExitCode}}"),
        "137",
        "the agent's SIGKILL ended the node, not Docker's"
    );
}

#[test]
fn doctor_over_docker_exec_and_a_bad_key_turning_unhealthy() {
    needs_docker!();
    let node = NodeFixture::new();
    let moto = Moto::start();
    let wrong = Key::random();
    moto.create_secret("node0-MPC_ACCOUNT_SK", Value::Text(&wrong.secret));
    let port = free_port();
    let mut extra: Vec<(&'static str, String)> = moto.env();
    extra.push((
        "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
        "node0-MPC_ACCOUNT_SK".into(),
    ));
    extra.push(("AGENT_HOLD_GRACE", "2s".into()));
    let mut e = env(&node, port);
    e.retain(|(k, _)| *k != "MPC_ACCOUNT_SK");
    e.extend(extra);
    let args = with_home(&node.home().display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Container::run(&e, &args);
    c.wait_for("{{.State.Health.Status}}", WAIT, |h| h == "unhealthy");
    let out = c.exec(&["agent", "doctor", "--json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = doctor_report(&out);
    let access = report.check("keys.access_key");
    assert_eq!(access.status, Verdict::Fail);
    assert!(access.cause.contains(&wrong.public), "{access:#?}");
}

#[test]
fn two_containers_on_one_volume_run_one_node_and_hand_over() {
    needs_docker!();
    let node = NodeFixture::new();
    let volume = Volume::new();
    let yaml = std::fs::read_to_string(node.path("config.yaml")).unwrap();
    volume.write(&[("config.yaml", yaml.trim_end())]);
    let (a_port, b_port) = (free_port(), free_port());
    let a = run(&node, a_port, &volume.name, &[]);
    wait_phase(a_port, Phase::Running);
    let b = run(&node, b_port, &volume.name, &[]);
    let waiting = wait_phase(b_port, Phase::WaitingForLock);
    let reason = waiting.reason.expect("waiting has a reason");
    assert!(reason.cause.contains("held by"), "{reason:#?}");
    assert_eq!(
        status(a_port).map(|s| s.phase),
        Some(Reported::Known(Phase::Running)),
        "the first keeps its node"
    );
    docker_stop(&a, 10);
    wait_phase(b_port, Phase::Running);
    drop(b);
}

#[test]
fn a_restart_keeps_the_home_and_writes_nothing_new() {
    needs_docker!();
    let node = NodeFixture::new();
    let volume = Volume::new();
    let yaml = std::fs::read_to_string(node.path("config.yaml")).unwrap();
    volume.write(&[("config.yaml", yaml.trim_end())]);
    let port = free_port();
    let c = run(&node, port, &volume.name, &[]);
    wait_phase(port, Phase::Running);
    docker_stop(&c, 10);
    let before = volume.snapshot();
    assert!(
        before.contains("./secrets.json") && before.contains("./.agent/initialized.json"),
        "{before}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    agent_tests::docker::docker_ok(&["start", &c.name]);
    wait_phase(port, Phase::Running);
    docker_stop(&c, 10);
    assert_eq!(volume.snapshot(), before);
}
