//! Every signal the agent handles reaches the child, whether the agent is PID 1
//! of its namespace or a subreaper: a tokio program as PID 1 would otherwise
//! drop SIGTERM on the floor, which is how the node lost its RocksDB.

use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::standin_node::Behavior;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PASSED_ON: [Signal; 5] = [
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn forwards_every_signal(agent: agent_tests::harness::Agent, agent_pid: Pid) {
    let mut agent = agent;
    agent
        .stdout
        .wait_for(WAIT, |l| l == "mpc-node: running")
        .expect("the child runs");
    for signal in PASSED_ON {
        kill(agent_pid, signal).unwrap();
        let line = format!("mpc-node: got {}", signal.as_str());
        assert!(
            agent.stdout.wait_for(WAIT, |l| l == line).is_some(),
            "{signal} did not reach the child: {:#?}",
            agent.stdout.all()
        );
    }
    kill(agent_pid, Signal::SIGTERM).unwrap();
    assert!(
        agent
            .stdout
            .wait_for(WAIT, |l| l == "mpc-node: got SIGTERM")
            .is_some()
    );
    assert_eq!(agent.exit_code(), 0, "the child exits cleanly on SIGTERM");
}

#[test]
fn signals_reach_the_child_of_a_subreaper() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    let pid = agent.pid();
    forwards_every_signal(agent, pid);
}

#[test]
fn signals_reach_the_child_when_the_agent_is_pid_1() {
    let agent = AgentCommand::exec(&Behavior::default()).as_pid1().start();
    assert_eq!(agent.wait_log("running as PID 1")["level"], "INFO");
    let agent_pid = agent.pid();
    forwards_every_signal(agent, agent_pid);
}

#[test]
fn sigint_is_forwarded_and_ends_the_child() {
    let mut agent = AgentCommand::exec(&Behavior::default()).start();
    agent
        .stdout
        .wait_for(WAIT, |l| l == "mpc-node: running")
        .expect("the child runs");
    agent.signal(Signal::SIGINT);
    assert!(
        agent
            .stdout
            .wait_for(WAIT, |l| l == "mpc-node: got SIGINT")
            .is_some()
    );
    assert_eq!(agent.exit_code(), 0);
}
