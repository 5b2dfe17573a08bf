//! When the child exits, whatever is left of its process group is terminated:
//! SIGTERM first, SIGKILL after the grace. Nothing of the child outlives the agent.

use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, WAIT, group_members};
use agent_tests::standin_node::Behavior;
use nix::unistd::Pid;

#[test]
fn the_childs_leftover_group_is_terminated_when_it_exits() {
    let mut agent = AgentCommand::exec(&Behavior {
        group_children: 3,
        exit_code: Some(0),
        after_ms: 200,
        ..Behavior::default()
    })
    .start();
    let started = agent.wait_log("child started");
    let pgid = Pid::from_raw(started["pid"].as_i64().unwrap() as i32);
    assert_eq!(agent.exit_code(), 0);
    agent.wait_log("terminating what is left of the child's process group");
    let deadline = Instant::now() + WAIT;
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "group {pgid} still has {:?}",
            group_members(pgid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_child_runs_in_its_own_process_group() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    let started = agent.wait_log("child started");
    let pid = Pid::from_raw(started["pid"].as_i64().unwrap() as i32);
    assert_eq!(nix::unistd::getpgid(Some(pid)).unwrap(), pid);
    assert_ne!(nix::unistd::getpgid(Some(agent.pid())).unwrap(), pid);
}
