//! A home whose filesystem stops answering (an EFS gone away under an NFS hard
//! mount, where a stat or a read waits forever): the home stage runs on its
//! own thread, so `/health` keeps answering and SIGTERM keeps working while it
//! is stuck, and past `AGENT_HOME_IO_TIMEOUT` the boot fails by name. The
//! stand-in for the stall is a FUSE mount whose server never answers
//! (`agent_tests::stall`): the agent's first call into the home, a stat of
//! `MPC_HOME_DIR`, waits in the kernel as it would on a hung NFS server.
//! `agent doctor` reads the home on a thread of its own too, within its
//! `--timeout`.

use std::time::Duration;

use agent::views::{DoctorReport, Phase};
use agent_tests::harness::{Agent, AgentCommand};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::stall::StalledMount;
use agent_tests::views::Checks;
use entrypoint::check::Status;
use nix::sys::signal::Signal;

/// Asks `/health` `n` times, each on a fresh connection; returns the statuses.
fn probes(agent: &Agent, n: usize) -> Vec<u16> {
    (0..n).map(|_| agent.get("/health").status).collect()
}

#[test]
fn a_home_that_never_answers_fails_by_name_while_health_answers_and_sigterm_ends_the_agent() {
    let Some(stalled) = StalledMount::new() else {
        return;
    };
    let node = NodeFixture::new();
    let mut agent = node
        .run()
        .env("MPC_HOME_DIR", &stalled.at)
        .env("AGENT_HOME_IO_TIMEOUT", "2s")
        .env("AGENT_FAIL_LINGER", "10m")
        .start();
    let home = stalled.at.display().to_string();

    // Stuck in the home stage: the agent still answers, 200 while within the timeout.
    agent.wait_phase(Duration::from_secs(20), Phase::Home);
    let early = probes(&agent, 3);
    assert!(
        early.iter().all(|s| *s == 200 || *s == 503),
        "/health answered {early:?} while the home stage was stuck"
    );

    let status = agent.wait_phase(Duration::from_secs(20), Phase::Failed);
    let reason = status.reason.as_ref().expect("a failure has a reason");
    assert_eq!(reason.kind, "homes.stalled", "{status:#?}");
    let cause = &reason.cause;
    assert!(cause.contains(&home), "{cause}");
    assert!(cause.contains("has not answered for"), "{cause}");
    assert!(cause.contains("inspecting it"), "{cause}");
    assert!(cause.contains("AGENT_HOME_IO_TIMEOUT 2s"), "{cause}");
    let fix = reason.fix.as_deref().unwrap();
    assert!(
        fix.contains("2049") && fix.contains("mount target"),
        "{fix}"
    );

    let late = probes(&agent, 5);
    assert_eq!(late, [503; 5], "/health after the stall was named");
    let health = agent.get("/health").health();
    assert_eq!(health.status, "fail", "{health:#?}");
    assert!(
        health.output.contains("has not answered for"),
        "{health:#?}"
    );

    // The stuck thread cannot be cancelled, yet SIGTERM ends the agent, with the
    // stall's code (74, EX_IOERR) since the boot had failed.
    agent.signal(Signal::SIGTERM);
    let code = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(74), "stdout: {:#?}", agent.stdout.all());
    drop(stalled);
}

#[test]
fn sigterm_while_the_home_is_stuck_stops_the_agent_before_the_timeout() {
    let Some(stalled) = StalledMount::new() else {
        return;
    };
    let node = NodeFixture::new();
    let mut agent = node
        .run()
        .env("MPC_HOME_DIR", &stalled.at)
        .env("AGENT_HOME_IO_TIMEOUT", "10m")
        .start();
    agent.wait_phase(Duration::from_secs(20), Phase::Home);
    assert_eq!(probes(&agent, 5), [200; 5]);
    agent.signal(Signal::SIGTERM);
    let code = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(143), "stdout: {:#?}", agent.stdout.all());
    drop(stalled);
}

#[test]
fn doctor_names_a_home_that_never_answers_instead_of_hanging() {
    let Some(stalled) = StalledMount::new() else {
        return;
    };
    let node = NodeFixture::new();
    let mut doctor = AgentCommand::new(["doctor", "--json", "--timeout", "2s"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("MPC_HOME_DIR", &stalled.at)
        .start();
    let code = doctor.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "stdout: {:#?}", doctor.stdout.all());
    let report: DoctorReport = serde_json::from_str(&doctor.stdout.all().join("\n")).unwrap();
    let check = report.check("homes.stalled");
    assert_eq!(check.status, Status::Fail, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains(&stalled.at.display().to_string()) && cause.contains("doctor --timeout 2s"),
        "{cause}"
    );
    drop(stalled);
}
