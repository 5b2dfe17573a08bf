//! A NEAR RPC that misbehaves on purpose gets nothing from the agent but a
//! bounded refusal: a redirect is not followed (its target is never asked),
//! a 50 MB answer is not read (whether its size is said up front or not), an
//! account whose access keys never end is cut off, and what the agent says
//! about each stays short.

use agent_tests::harness::{AgentCommand, WAIT, doctor_report};
use agent_tests::near_rpc::{Fault, Key};
use agent_tests::node_fixture::{ACCOUNT, Chain, NodeFixture};
use agent_tests::views::Checks;
use entrypoint::check::{Check, Status};
use near_crypto::{ED25519PublicKey, PublicKey};
use near_primitives::views::AccessKeyPermissionView;

/// The longest `keys.rpc` cause the agent may give about one endpoint.
const MAX_CAUSE: usize = 1024;

/// `agent doctor --json`'s `keys.rpc` check for this node.
fn rpc_check(node: &NodeFixture) -> Check {
    let out = AgentCommand::new(["doctor", "--json", "--timeout", "5s", "--check", "keys"])
        .envs(node.env())
        .envs(node.secret_env())
        .run();
    let check = doctor_report(&out).check("keys.rpc").clone();
    println!("{check:#?}");
    check
}

fn with_fault(node: &NodeFixture, fault: Fault) {
    let mut scenario = node.scenario();
    scenario.fault = fault;
    node.chain.rpc.set_scenario(scenario);
}

/// The check failed for `words`, in a cause no longer than [`MAX_CAUSE`].
fn refused_briefly(check: &Check, words: &str) -> String {
    assert_eq!(check.status, Status::Fail, "{check:#?}");
    let cause = check.cause.clone();
    assert!(cause.contains(words), "{cause}");
    assert!(cause.len() <= MAX_CAUSE, "{} bytes: {cause}", cause.len());
    let written = serde_json::to_string(check).unwrap().len();
    assert!(
        written <= 4 * MAX_CAUSE,
        "the whole check is {written} bytes"
    );
    cause
}

#[test]
fn an_rpc_that_redirects_is_refused_and_its_target_never_asked() {
    let node = NodeFixture::new();
    let target = Chain::start(node.scenario());
    with_fault(&node, Fault::RedirectToPort(target.rpc.addr().port()));
    let cause = refused_briefly(&rpc_check(&node), "redirect");
    assert!(cause.contains("follows no redirect"), "{cause}");
    assert!(
        cause.contains(&format!("127.0.0.1:{}", target.rpc.addr().port())),
        "the redirect's target is named: {cause}"
    );
    assert!(!node.chain.rpc.requests().is_empty());
    assert!(
        target.rpc.requests().is_empty(),
        "the redirect's target was asked: {:?}",
        target.rpc.requests()
    );
}

#[test]
fn a_50_mb_answer_is_refused_by_its_content_length() {
    let node = NodeFixture::new();
    with_fault(&node, Fault::AnswerBytes(50_000_000));
    let cause = refused_briefly(&rpc_check(&node), "answered more than 4 MiB");
    assert!(cause.contains("Content-Length 50000000"), "{cause}");
    assert!(
        cause.contains("1 tries"),
        "a refused size is not asked again: {cause}"
    );
}

#[test]
fn a_50_mb_answer_without_a_length_is_cut_off_and_never_held() {
    let node = NodeFixture::new();
    with_fault(&node, Fault::StreamedBytes(50_000_000));
    let cause = refused_briefly(&rpc_check(&node), "answered more than 4 MiB");
    assert!(!cause.contains("Content-Length"), "{cause}");

    // The running agent: refused the same way, and its memory never held the answer.
    let agent = node.run().env("AGENT_ON_RPC_UNAVAILABLE", "hold").start();
    let status = agent.wait_status(WAIT, |s| s.find_check("keys.rpc").is_some());
    refused_briefly(status.check("keys.rpc"), "answered more than 4 MiB");
    let peak = peak_rss_kib(agent.pid().as_raw());
    println!("peak RSS of the agent: {peak} KiB");
    // Under 40 MiB of its own, plus the eight requests of one round each
    // cut at 4 MiB; one 50 MB answer held whole would take it past 83 MiB.
    assert!(
        peak < 72 * 1024,
        "the agent's peak RSS is {peak} KiB for a 50 MB answer"
    );
}

/// `VmHWM` of `/proc/PID/status`: the most resident memory the process had.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn an_account_with_more_access_keys_than_the_checks_consider_is_refused_briefly() {
    let node = NodeFixture::new();
    let mut scenario = node.scenario();
    let keys = &mut scenario
        .accounts
        .get_mut(
            &ACCOUNT
                .parse::<near_primitives::types::AccountId>()
                .unwrap(),
        )
        .unwrap()
        .keys;
    for n in 0..600u16 {
        let mut bytes = [7u8; 32];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        keys.push(Key {
            public_key: PublicKey::ED25519(ED25519PublicKey(bytes)),
            permission: AccessKeyPermissionView::FullAccess,
            nonce: 0,
        });
    }
    scenario.access_key_page_size = std::num::NonZeroU32::new(100);
    node.chain.rpc.set_scenario(scenario);
    let cause = refused_briefly(&rpc_check(&node), "more than 500 access keys");
    assert!(
        cause.contains("delete the account's unused keys"),
        "{cause}"
    );
    let pages = node
        .chain
        .rpc
        .requests()
        .iter()
        .filter(|r| r.request_type() == Some("view_access_key_list"))
        .count();
    assert!(pages <= 6, "{pages} pages asked for");
}

#[test]
fn the_redirect_target_answers_when_asked_directly() {
    // The control of the redirect test: "never asked" there means something.
    let node = NodeFixture::new();
    let target = Chain::start(node.scenario());
    let mut env = node.env();
    env.retain(|(k, _)| *k != "AGENT_NEAR_RPC_URL");
    env.push(("AGENT_NEAR_RPC_URL", target.rpc.url()));
    let out = AgentCommand::new(["doctor", "--json", "--timeout", "5s", "--check", "keys"])
        .envs(env)
        .envs(node.secret_env())
        .run();
    let report = doctor_report(&out);
    assert_eq!(report.check("keys.rpc").status, Status::Ok, "{report:#?}");
    assert!(!target.rpc.requests().is_empty());
}
