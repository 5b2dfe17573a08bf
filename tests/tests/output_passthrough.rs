//! The child's output reaches the agent's own unchanged and in order; the last
//! 200 lines are kept for `/status`, and known fatal lines become reasons.

use agent::views::Stream;
use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::standin_node::Behavior;
use agent_tests::views::reason;

#[test]
fn output_passes_through_unchanged_and_in_order() {
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("line {i:04}\twith tabs, ünïcödé and trailing spaces  "))
        .collect();
    let mut agent = AgentCommand::exec(&Behavior {
        stdout: lines.clone(),
        stderr: vec!["to stderr 1".into(), "to stderr 2".into()],
        exit_code: Some(0),
        ..Behavior::default()
    })
    .start();
    assert_eq!(agent.exit_code(), 0);
    let out: Vec<String> = agent
        .stdout
        .all()
        .into_iter()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(out, lines);
    assert_eq!(agent.stderr.all(), vec!["to stderr 1", "to stderr 2"]);
}

#[test]
fn the_log_tail_keeps_the_last_200_lines() {
    let agent = AgentCommand::exec(&Behavior {
        stdout: (0..500).map(|i| format!("line {i}")).collect(),
        ..Behavior::default()
    })
    .start();
    let status = agent.wait_status(WAIT, |s| {
        s.log_tail.iter().any(|l| l.line == "mpc-node: running")
    });
    let tail = status.log_tail;
    assert_eq!(tail.len(), 200);
    assert_eq!(tail.last().unwrap().line, "mpc-node: running");
    assert_eq!(tail[tail.len() - 2].line, "line 499");
    assert_eq!(tail[tail.len() - 2].stream, Stream::Stdout);
}

#[test]
fn known_fatal_lines_become_reasons_on_status() {
    let fatal = [
        "ERROR mpc_node: InvalidTxError(InvalidAccessKeyError(AccessKeyNotFound { account_id: node0.testnet, public_key: ed25519:abc }))",
        "Error: Failed to decrypt key file",
        "Error: invalid local storage aes key hex",
        "INFO mpc_node: We are not a participant in the current epoch; doing nothing until contract state change",
    ];
    let agent = AgentCommand::exec(&Behavior {
        stdout: vec![fatal[0].into(), fatal[3].into(), fatal[0].into()],
        stderr: vec![fatal[1].into(), fatal[2].into()],
        ..Behavior::default()
    })
    .start();
    let status = agent.wait_status(WAIT, |s| s.reasons.len() == 4);
    let kinds: Vec<&str> = status.reasons.iter().map(|r| r.kind.as_str()).collect();
    for kind in [
        "AccessKeyNotFound",
        "Failed to decrypt key file",
        "invalid local storage aes key hex",
        "not a participant",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let access = reason(&status.reasons, "AccessKeyNotFound").unwrap();
    assert_eq!(access.count, 2);
    // The line as the node printed it, its key redacted (reasons are served to the VPC).
    assert_eq!(
        access.line.as_deref(),
        Some(
            fatal[0]
                .replace("ed25519:abc", "ed25519:[redacted]")
                .as_str()
        )
    );
    assert!(access.fix.as_deref().unwrap().contains("MPC_ACCOUNT_SK"));
}
