//! The agent exits with its child's code: the code itself, 128+n for death by
//! signal n, 127 when the command is missing and 126 when it cannot be executed.

use agent_tests::harness::{AgentCommand, agent_output};
use agent_tests::standin_node::{Behavior, OnStop};
use nix::sys::signal::Signal;

#[test]
fn the_childs_exit_code_is_the_agents() {
    for code in [0, 1, 2, 3, 42, 77, 100, 126, 127, 128, 200, 254, 255] {
        let mut agent = AgentCommand::exec(&Behavior {
            exit_code: Some(code),
            ..Behavior::default()
        })
        .start();
        assert_eq!(agent.exit_code(), code, "child exit code {code}");
    }
}

#[test]
fn a_child_killed_by_signal_n_gives_128_plus_n() {
    for signal in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGABRT,
        Signal::SIGKILL,
        Signal::SIGUSR1,
        Signal::SIGTERM,
    ] {
        let mut agent = AgentCommand::exec(&Behavior {
            die_by_signal: Some(signal as i32),
            on_stop: OnStop::Die,
            ..Behavior::default()
        })
        .start();
        assert_eq!(agent.exit_code(), 128 + signal as i32, "{signal}");
    }
}

#[test]
fn each_forwarded_signal_that_kills_the_child_gives_128_plus_n() {
    // `sleep` keeps the default action for every signal but SIGWINCH.
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        let mut agent = AgentCommand::new(["exec", "--", "sleep", "600"]).start();
        agent.wait_log("child started");
        agent.signal(signal);
        assert_eq!(agent.exit_code(), 128 + signal as i32, "{signal}");
    }
}

#[test]
fn a_missing_command_exits_127() {
    let out = agent_output(&["exec", "--", "/nonexistent/mpc-node"], &[]);
    assert_eq!(out.code, 127);
    assert!(
        out.stdout.contains("cannot start the child"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_command_that_cannot_be_executed_exits_126() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    let out = agent_output(&["exec", "--", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 126, "{}", out.stdout);
    let out = agent_output(&["exec", "--", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.code, 126, "a directory: {}", out.stdout);
}
