//! The metrics line `agent run` writes on its log for CloudWatch
//! (`AGENT_CLOUDWATCH_NAMESPACE`), read from the agent's real output by the
//! Embedded Metric Format's rules: valid, one per interval, never mixed with
//! a log line, the names `agent::emf::METRICS` lists with their units, the
//! values `/metrics` shows, counts counted once; none without a namespace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent::emf::{METRICS, NODE_DIMENSION};
use agent_tests::harness::{Agent, WAIT, metric};
use agent_tests::node_fixture::{ACCOUNT, NodeFixture};
use agent_tests::standin_node::Indexer;
use nix::sys::signal::Signal;

const NAMESPACE: &str = "MpcAgent";
const INTERVAL: Duration = Duration::from_millis(200);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The value `/metrics` shows for `name`.
fn scraped(agent: &Agent, name: &str) -> f64 {
    let body = agent.get("/metrics").body;
    metric(&body, name).unwrap_or_else(|| panic!("no {name} on /metrics: {body}"))
}

fn run_with_lines(node: &NodeFixture) -> agent_tests::harness::AgentCommand {
    node.run()
        .env("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE)
        .env("AGENT_METRICS_EMF_INTERVAL", "200ms")
        .env("AGENT_CHAIN_WATCH", "200ms")
}

#[test]
fn every_metrics_line_of_a_running_node_is_valid_embedded_metric_format_with_the_values_of_metrics()
{
    let node = NodeFixture::new();
    node.indexer(&Indexer::behind(100, Duration::from_secs(3)));
    let started = now_ms();
    // Debug lines from every task at once, to be written beside the metrics lines.
    let mut agent = run_with_lines(&node).env("RUST_LOG", "debug").start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let line = agent.wait_metric_line(|l| {
        l.values.get("NodeReady") == Some(&1.0)
            && ["BalanceNear", "IndexerLagSeconds", "VaultBehindSeconds"]
                .iter()
                .all(|name| l.values.contains_key(*name))
    });
    println!("a metrics line:\n{line:#?}");

    // The values /metrics shows, from the one registry.
    let yocto = scraped(&agent, "agent_account_balance_yocto");
    assert_eq!(
        line.values["BalanceNear"],
        (yocto / 1e18).round() / 1e6,
        "{line:?}"
    );
    assert_eq!(scraped(&agent, "agent_node_ready"), 1.0);
    assert_eq!(line.values["HealthStatus"], 0.0, "{line:?}");
    assert_eq!(scraped(&agent, "agent_health_status"), 0.0);
    assert_eq!(line.values["Holding"], 0.0, "{line:?}");
    assert_eq!(line.values["IndexerStalled"], 0.0, "{line:?}");
    assert_eq!(scraped(&agent, "agent_node_indexer_stalled"), 0.0);
    let lag = line.values["IndexerLagSeconds"];
    let lag_scraped = scraped(&agent, "agent_node_indexer_lag_seconds");
    assert!(
        (3.0..30.0).contains(&lag) && (lag - lag_scraped).abs() < 5.0,
        "{lag} on the line, {lag_scraped} on /metrics"
    );
    // No vault and no keyshare here: nothing lives only on the home, and
    // the vault holds no epoch, so that metric is left out.
    assert_eq!(line.values["VaultBehindSeconds"], 0.0, "{line:?}");
    assert!(!line.values.contains_key("KeyshareEpoch"), "{line:?}");

    agent.wait_metric_lines(5);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    let ended = now_ms();

    // Each line whole on a line of its own: nothing before or after it.
    let stdout = agent.stdout.all();
    for text in stdout.iter().filter(|l| l.contains("\"_aws\"")) {
        assert!(
            text.starts_with("{\"_aws\":"),
            "mixed with another line: {text}"
        );
    }
    let lines = agent.metric_lines();
    let logged = agent.logs().len();
    assert!(logged > 20, "only {logged} log lines to be mixed with");
    let span = Duration::from_millis(ended - started);
    let most = (span.as_millis() / INTERVAL.as_millis()) as usize + 2;
    assert!(
        lines.len() >= 5 && lines.len() <= most,
        "{} lines in {span:?} at one per {INTERVAL:?}",
        lines.len()
    );
    let mut previous = started;
    for line in &lines {
        assert!(
            line.timestamp_ms >= previous && line.timestamp_ms <= ended,
            "_aws.Timestamp {} is not milliseconds of this run ({started}..{ended})",
            line.timestamp_ms
        );
        previous = line.timestamp_ms;
        assert_eq!(line.directives.len(), 1);
        let directive = &line.directives[0];
        assert_eq!(directive.namespace, NAMESPACE);
        assert_eq!(directive.dimension_sets, [[NODE_DIMENSION]]);
        assert_eq!(
            line.dimensions[NODE_DIMENSION], ACCOUNT,
            "Node is MPC_ACCOUNT_ID"
        );
        for (name, unit) in &directive.metrics {
            assert!(
                METRICS.iter().any(|d| d.name == name),
                "{name} is not in agent::emf::METRICS"
            );
            assert_eq!(unit.as_deref(), None, "{name} names no unit");
        }
        assert_eq!(line.values["AgentUp"], 1.0, "the heartbeat on every line");
        assert!(line.bytes < 1024, "{} bytes", line.bytes);
    }
}

#[test]
fn restarts_and_failing_chain_watch_checks_are_each_counted_on_one_line() {
    let node = NodeFixture::new();
    let mut agent = run_with_lines(&node).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    for restarts in 1..=2 {
        node.exit_node(70);
        agent.wait_status(WAIT, |s| s.child.restarts == restarts);
    }
    let healthy = node.remove_account_keys();
    agent.wait_until("/metrics", WAIT, |r| {
        metric(&r.body, "agent_chain_watch_failures_total").is_some_and(|n| n >= 3.0)
    });
    node.chain.rpc.set_scenario(healthy);
    agent.wait_status(WAIT, |s| {
        s.watch
            .as_ref()
            .is_some_and(|watch| watch.reasons.is_empty())
    });
    // Healed: the counters stay; two lines more carry whatever they counted last.
    let failures = scraped(&agent, "agent_chain_watch_failures_total");
    let restarts = agent.status().child.restarts as f64;
    let seen = agent.metric_lines().len();
    agent.wait_metric_lines(seen + 2);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);

    let lines = agent.metric_lines();
    let sum = |name: &str| lines.iter().map(|l| l.values[name]).sum::<f64>();
    assert_eq!(restarts, 2.0);
    assert_eq!(sum("NodeRestarts"), restarts, "each restart on one line");
    assert!(failures >= 3.0);
    assert_eq!(
        sum("ChainWatchFailures"),
        failures,
        "each failing check on one line"
    );
    assert!(
        lines.iter().any(|l| l.values["ChainWatchFailures"] >= 1.0)
            && lines.last().unwrap().values["ChainWatchFailures"] == 0.0,
        "counted while it failed, none once healed"
    );
}

#[test]
fn a_held_node_is_holding_and_not_ready_on_the_lines() {
    let node = NodeFixture::new();
    let (_, other) = agent_tests::harness::keypair();
    node.chain_knows(&other, &node.p2p.public);
    let agent = run_with_lines(&node).start();
    let line = agent.wait_metric_line(|l| l.values.get("Holding") == Some(&1.0));
    assert_eq!(line.values["NodeReady"], 0.0, "{line:?}");
    assert_eq!(
        line.values["HealthStatus"], 1.0,
        "a hold within its grace warns: {line:?}"
    );
    assert_eq!(scraped(&agent, "agent_phase{phase=\"holding\"}"), 1.0);
}

#[test]
fn without_a_namespace_the_log_carries_no_metrics_line() {
    let node = NodeFixture::new();
    let mut agent = node
        .run()
        .env("AGENT_METRICS_EMF_INTERVAL", "100ms")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    std::thread::sleep(Duration::from_millis(500));
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    let stdout = agent.stdout.all();
    assert!(!stdout.is_empty());
    assert!(
        !stdout.iter().any(|l| l.contains("\"_aws\"")),
        "{stdout:#?}"
    );
}
