//! The node's whole life under `agent run`: readiness from its own sync
//! (its indexer's metrics), the sync's progress on `/status` and in
//! `agent status`, a stalled indexer warned about (and, when told, restarted
//! once), mpc-node's exit 70 restarted without a crash loop, and the chain
//! watched while the node runs — a removed signer key, a low balance — never
//! restarting it.

use std::time::Duration;

use agent::views::{Exit, Phase, Reported, Status, SyncSource};
use agent_tests::harness::{Agent, AgentCommand, WAIT};
use agent_tests::node_fixture::{ACCOUNT, NodeFixture};
use agent_tests::standin_node::Indexer;
use agent_tests::views::{child_pid, reason};
use near_primitives::types::{AccountId, Balance};

const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

/// The running node's pid; panics when `/status` shows none running.
fn running_pid(agent: &Agent) -> i32 {
    agent.child_pid().expect("the node runs")
}

/// The kinds of the chain watch's current reasons.
fn watch_kinds(status: &Status) -> Vec<String> {
    status
        .watch
        .iter()
        .flat_map(|w| &w.reasons)
        .map(|r| r.kind.clone())
        .collect()
}

#[test]
fn a_node_two_hours_behind_is_alive_not_ready_and_ready_once_caught_up() {
    let node = NodeFixture::new();
    node.indexer(&Indexer::behind(100, TWO_HOURS));
    let agent = node.run().start();
    let status = agent.wait_status(WAIT, |s| {
        s.sync.as_ref().and_then(|sync| sync.height) == Some(100)
    });
    let sync = status.sync.unwrap();
    assert_eq!(sync.source, SyncSource::Indexer);
    assert!(sync.lag_seconds.unwrap() >= 7200.0, "{sync:?}");
    assert!(!sync.caught_up);
    assert_eq!(sync.job.as_deref(), Some("Running"));
    assert_eq!(agent.get("/health").status, 200, "alive while it syncs");
    let ready = agent.get("/ready");
    assert_eq!(ready.status, 503);
    assert!(
        ready.ready_view().detail.contains("behind the wall clock"),
        "{}",
        ready.body
    );
    agent.wait_log("the node's indexer is syncing");

    // `agent status --wait` waits while the node syncs.
    let base = format!("http://{}", agent.addr());
    let mut waiting = AgentCommand::new(["status", "--wait", "--every", "100ms", "--url", &base])
        .env("AGENT_LISTEN", "127.0.0.1:9")
        .start();
    waiting
        .stdout
        .wait_for(WAIT, |l| l.starts_with("sync    block 100"))
        .expect("agent status shows the sync");

    node.indexer(&Indexer::behind(9000, Duration::from_secs(1)));
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let caught_up = agent.wait_log("the node's indexer caught up");
    assert!(caught_up["took_s"].is_u64(), "{caught_up}");
    assert_eq!(
        waiting.wait_exit(WAIT),
        Some(0),
        "agent status --wait exits 0 once ready"
    );
    assert!(
        waiting
            .stdout
            .all()
            .iter()
            .any(|l| l.starts_with("ready   yes")),
        "{:#?}",
        waiting.stdout.all()
    );
}

#[test]
fn a_stalled_indexer_turns_health_to_warn_with_the_reason() {
    let node = NodeFixture::new();
    node.indexer(&Indexer::behind(4242, Duration::ZERO));
    let agent = node
        .run()
        .env("AGENT_INDEXER_STALL", "1s")
        .env("AGENT_READY_MAX_LAG", "1h")
        .start();
    // The chain's head joins the reason once NEAR RPC answered.
    let health = agent.wait_until("/health", WAIT, |r| {
        let body = r.health();
        body.status == "warn" && body.output.contains("the chain's head")
    });
    assert_eq!(health.status, 200);
    let output = health.health().output;
    assert!(output.contains("stalled at block 4242"), "{output}");
    assert!(output.contains("the chain's head is 1000"), "{output}");
    let status = agent.status();
    let stall = status.sync.as_ref().and_then(|s| s.stall.as_ref());
    assert_eq!(stall.map(|s| s.height), Some(4242), "{status:#?}");
    assert!(
        reason(&status.reasons, "indexer-stall").is_some(),
        "{status:#?}"
    );
    let metrics = agent.get("/metrics").body;
    assert_eq!(
        agent_tests::harness::metric(&metrics, "agent_node_stalls_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        agent_tests::harness::metric(&metrics, "agent_node_indexer_height"),
        Some(4242.0)
    );

    // It advances again: the warning clears.
    node.indexer(&Indexer::behind(4243, Duration::ZERO));
    agent.wait_until("/health", WAIT, |r| r.health().status == "pass");
}

#[test]
fn under_on_stall_restart_a_stall_restarts_the_node_exactly_once() {
    let node = NodeFixture::new();
    node.indexer(&Indexer::behind(77, Duration::ZERO));
    let agent = node
        .run()
        .env("AGENT_INDEXER_STALL", "1s")
        .env("AGENT_READY_MAX_LAG", "1h")
        .env("AGENT_ON_STALL", "restart")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let first = running_pid(&agent);
    agent.wait_log("restarted the node once");
    // The node comes back, still stalled: warned about, not restarted again.
    let status = agent.wait_status(WAIT, |s| {
        child_pid(s).is_some_and(|pid| pid != first)
            && s.sync
                .as_ref()
                .and_then(|sync| sync.stall.as_ref())
                .is_some_and(|stall| stall.action.contains("not again"))
    });
    assert_eq!(status.child.restarts, 1, "{status:#?}");
    assert_eq!(
        status.sync.as_ref().unwrap().stall_restarts,
        1,
        "{status:#?}"
    );
    assert_eq!(agent.get("/health").health().status, "warn");
}

#[test]
fn exit_70_is_restarted_named_and_never_a_crash_loop() {
    let node = NodeFixture::new();
    let agent = node
        .run()
        .env("AGENT_RESTART_BACKOFF", "50ms..100ms")
        .env("AGENT_CRASH_LOOP", "3/300s")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    // More exits 70 than the crash loop allows within its window.
    for exits in 1..=4 {
        let before = running_pid(&agent);
        node.exit_node(70);
        agent.wait_status(WAIT, |s| {
            child_pid(s).is_some_and(|pid| pid != before) && s.child.restarts == exits
        });
    }
    let status = agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(status.status, 200);
    let status = agent.status();
    assert_eq!(status.phase, Reported::Known(Phase::Running));
    assert_eq!(
        status.child.last_exit.as_ref().map(|e| e.exit),
        Some(Exit::Code(70))
    );
    let named = reason(&status.reasons, "restartable-exit")
        .unwrap_or_else(|| panic!("no restartable-exit reason: {status:#?}"));
    assert!(named.cause.contains("known restartable exit"), "{named:?}");
    assert_eq!(named.count, 4);
}

#[test]
fn a_signer_key_removed_on_chain_is_named_without_a_restart_and_clears_when_restored() {
    let node = NodeFixture::new();
    let agent = node.run().env("AGENT_CHAIN_WATCH", "200ms").start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let pid = running_pid(&agent);
    let healthy = node.remove_account_keys();
    let status = agent.wait_status(WAIT, |s| {
        watch_kinds(s).contains(&"watch.signer-key-gone".to_string())
    });
    let gone = &status.watch.as_ref().unwrap().reasons[0];
    assert!(gone.cause.contains(&node.account.public), "{gone:?}");
    let health = agent.get("/health");
    assert_ne!(health.health().status, "pass", "{}", health.body);
    assert_eq!(agent.get("/ready").status, 503);
    assert_eq!(running_pid(&agent), pid, "the node is not restarted");
    agent.wait_log("the chain watch found a change");
    let metrics = agent.get("/metrics").body;
    assert!(
        metrics.contains(r#"agent_chain_watch_checks{check="keys.access_key",status="fail"} 1"#),
        "{metrics}"
    );

    node.chain.rpc.set_scenario(healthy);
    agent.wait_status(WAIT, |s| watch_kinds(s).is_empty());
    assert_eq!(agent.get("/health").health().status, "pass");
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(running_pid(&agent), pid, "still the same node");
    agent.wait_log("the chain watch: healed");
}

#[test]
fn a_balance_below_the_minimum_warns_naming_the_account_and_the_amount() {
    let node = NodeFixture::new();
    let agent = node
        .run()
        .env("AGENT_CHAIN_WATCH", "200ms")
        .env("AGENT_MIN_BALANCE", "1 NEAR")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let mut poor = node.scenario();
    poor.accounts
        .get_mut(&ACCOUNT.parse::<AccountId>().unwrap())
        .unwrap()
        .amount = Some(Balance::from_millinear(500));
    node.chain.rpc.set_scenario(poor);
    let health = agent.wait_until("/health", WAIT, |r| r.health().status == "warn");
    assert_eq!(health.status, 200);
    let output = health.health().output;
    assert!(output.contains(ACCOUNT), "{output}");
    assert!(output.contains("0.5 NEAR"), "{output}");
    let status = agent.status();
    assert!(
        watch_kinds(&status).contains(&"watch.balance".to_string()),
        "{status:#?}"
    );
    let metrics = agent.get("/metrics").body;
    assert_eq!(
        agent_tests::harness::metric(&metrics, "agent_account_balance_yocto"),
        Some(5e23),
        "{metrics}"
    );
    assert_eq!(
        agent.get("/ready").status,
        200,
        "a low balance is not unready"
    );
}

#[test]
fn a_node_without_indexer_metrics_keeps_todays_readiness_with_a_note() {
    let node = NodeFixture::new();
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.wait_status(WAIT, |s| s.sync.is_some());
    let sync = status.sync.unwrap();
    assert_eq!(sync.source, SyncSource::HealthOnly, "{sync:?}");
    assert!(
        sync.note
            .as_deref()
            .unwrap()
            .contains("mpc_indexer_latest_block_height"),
        "{sync:?}"
    );
    assert_eq!(agent.get("/health").health().status, "pass");
}
