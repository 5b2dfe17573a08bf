//! The metrics line's cost: the bytes of log one node writes a day at the
//! default interval (CloudWatch Logs bills ingestion by the byte; the goal
//! is at most 1 MB a day), printed first, and the time to render one line
//! with every metric of `agent run` present, measured by criterion.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use agent::emf::{self, Metric};
use criterion::{Criterion, criterion_group, criterion_main};

/// `AGENT_METRICS_EMF_INTERVAL`'s default.
const INTERVAL: Duration = Duration::from_secs(60);
/// What CloudWatch Logs adds to each event for billing.
const EVENT_OVERHEAD: usize = 26;
const NAMESPACE: &str = "MpcAgent";
/// A mainnet-length account id, the dimension's default.
const NODE: &str = "mpc-node-operator-01.near";

/// Every metric of `agent run`'s line with a reading, each value as long as
/// the line writes it (seconds to the millisecond, NEAR to the millionth).
fn every_metric() -> Vec<Metric> {
    emf::METRICS
        .iter()
        .filter(|m| m.name != emf::VAULT_DRILL_FAILED.name)
        .map(|m| {
            m.at(match m.name {
                "IndexerLagSeconds" => 12.345,
                "BalanceNear" => 123.456789,
                "VaultBehindSeconds" => 1799.999,
                "KeyshareEpoch" => 12.0,
                "NodeRestarts" | "ChainWatchFailures" => 3.0,
                _ => 1.0,
            })
        })
        .collect()
}

fn render(c: &mut Criterion) {
    let metrics = every_metric();
    let line = emf::line(NAMESPACE, NODE, &metrics, SystemTime::now());
    let written = line.len() + 1;
    let per_day = (86_400 / INTERVAL.as_secs()) as usize;
    println!(
        "one line, every metric of agent run present ({} metrics), node {NODE}:",
        metrics.len()
    );
    println!("{line}");
    println!(
        "{written} bytes with its newline; {per_day} lines a day at {}s: {} bytes ({:.3} MB) a day, {:.3} MB as CloudWatch Logs counts it ({EVENT_OVERHEAD} bytes more per event)",
        INTERVAL.as_secs(),
        written * per_day,
        (written * per_day) as f64 / 1e6,
        ((written + EVENT_OVERHEAD) * per_day) as f64 / 1e6,
    );
    c.bench_function("render one metrics line", |b| {
        b.iter(|| {
            emf::line(
                black_box(NAMESPACE),
                black_box(NODE),
                black_box(&metrics),
                black_box(SystemTime::now()),
            )
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
