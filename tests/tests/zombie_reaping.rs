//! Orphans left by the child are reaped — 1000 of them, to zero zombies — both
//! when the agent is PID 1 and when it is a child subreaper; and reaping them
//! never steals the exit status of the child itself.

use agent_tests::harness::{Agent, AgentCommand, WAIT, children_of, metric};
use agent_tests::standin_node::Behavior;
use nix::unistd::Pid;

const ORPHANS: u32 = 1000;

fn orphans() -> Behavior {
    Behavior {
        orphans: ORPHANS,
        orphan_ms: 300,
        ..Behavior::default()
    }
}

/// Waits until the agent counted every orphan reaped, then checks that no zombie is left under it.
fn all_orphans_reaped(agent: &Agent, agent_pid: Pid) {
    let metrics = agent.wait_until("/metrics", WAIT, |r| {
        metric(&r.body, "agent_orphans_reaped_total").unwrap_or(0.0) >= ORPHANS as f64
    });
    assert_eq!(
        metric(&metrics.body, "agent_orphans_reaped_total"),
        Some(ORPHANS as f64)
    );
    let zombies: Vec<_> = children_of(agent_pid)
        .into_iter()
        .filter(|(_, state)| *state == 'Z')
        .collect();
    assert!(
        zombies.is_empty(),
        "zombies left under the agent: {zombies:?}"
    );
    assert_eq!(agent.status().agent.orphans_reaped, u64::from(ORPHANS));
}

#[test]
fn a_subreaper_agent_reaps_a_thousand_orphans() {
    let agent = AgentCommand::exec(&orphans()).start();
    agent.wait_log("registered as child subreaper");
    all_orphans_reaped(&agent, agent.pid());
    assert!(!agent.status().agent.pid1);
}

#[test]
fn a_pid_1_agent_reaps_a_thousand_orphans() {
    let agent = AgentCommand::exec(&orphans()).as_pid1().start();
    agent.wait_log("running as PID 1");
    all_orphans_reaped(&agent, agent.pid());
    assert!(agent.status().agent.pid1);
}

#[test]
fn reaping_orphans_does_not_steal_the_childs_exit_status() {
    // The child exits with 42 while its thousand orphans die around it.
    let mut agent = AgentCommand::exec(&Behavior {
        exit_code: Some(42),
        after_ms: 300,
        orphan_ms: 290,
        ..orphans()
    })
    .start();
    assert_eq!(agent.exit_code(), 42);
}
