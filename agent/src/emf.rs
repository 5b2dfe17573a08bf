//! CloudWatch's Embedded Metric Format: one JSON log line that CloudWatch
//! Logs turns into metrics with no agent or API call — the awslogs driver
//! already ships the agent's stdout. The line carries `_aws` (the time in
//! milliseconds and one directive: the namespace, the dimension set `[Node]`,
//! each metric's name) and, as root members, the `Node` dimension's
//! value and every metric's value, a number. [`METRICS`] names every metric
//! the agent writes: the only names the stack's alarms and dashboard may read.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The most metrics one directive may name (the format's limit).
pub const MAX_METRICS: usize = 100;
/// The dimension every metric of the agent carries.
pub const NODE_DIMENSION: &str = "Node";

/// A metric the agent writes, by its name. None names a unit: a name says
/// it (`…Seconds`), and a unit would cost 14 to 16 bytes a metric on every
/// line, a node's day of lines past 1 MB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Definition {
    pub name: &'static str,
}

impl Definition {
    const fn new(name: &'static str) -> Definition {
        Definition { name }
    }

    /// This metric at `value` (not finite: no reading, left out of the line).
    pub fn at(self, value: f64) -> Metric {
        Metric {
            name: self.name,
            value,
        }
    }
}

/// 1 on every line of `agent run`: the heartbeat whose absence pages.
pub const AGENT_UP: Definition = Definition::new("AgentUp");
/// 1 when `/ready` would answer 200.
pub const NODE_READY: Definition = Definition::new("NodeReady");
/// `/health`: 0 pass, 1 warn, 2 fail.
pub const HEALTH_STATUS: Definition = Definition::new("HealthStatus");
/// 1 while the agent holds the node back.
pub const HOLDING: Definition = Definition::new("Holding");
/// Node restarts since the previous line.
pub const NODE_RESTARTS: Definition = Definition::new("NodeRestarts");
/// How far the node's indexer is behind the wall clock.
pub const INDEXER_LAG_SECONDS: Definition = Definition::new("IndexerLagSeconds");
/// 1 while the node's indexer is stalled.
pub const INDEXER_STALLED: Definition = Definition::new("IndexerStalled");
/// Failing checks the chain watch found since the previous line.
pub const CHAIN_WATCH_FAILURES: Definition = Definition::new("ChainWatchFailures");
/// The account's available balance, in NEAR.
pub const BALANCE_NEAR: Definition = Definition::new("BalanceNear");
/// How long the home's newest keyshare has not been in the vault.
pub const VAULT_BEHIND_SECONDS: Definition = Definition::new("VaultBehindSeconds");
/// The epoch of the home's newest keyshare.
pub const KEYSHARE_EPOCH: Definition = Definition::new("KeyshareEpoch");
/// `agent vault verify`'s verdict: 0 passed, 1 failed.
pub const VAULT_DRILL_FAILED: Definition = Definition::new("VaultDrillFailed");

/// Every metric the agent writes: `agent run`'s line and `agent vault verify`'s.
pub const METRICS: [Definition; 12] = [
    AGENT_UP,
    NODE_READY,
    HEALTH_STATUS,
    HOLDING,
    NODE_RESTARTS,
    INDEXER_LAG_SECONDS,
    INDEXER_STALLED,
    CHAIN_WATCH_FAILURES,
    BALANCE_NEAR,
    VAULT_BEHIND_SECONDS,
    KEYSHARE_EPOCH,
    VAULT_DRILL_FAILED,
];

/// One metric of a line: its name and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
}

/// The line for `metrics` of the node named `node` in `namespace`, at `at`.
/// A value that is not finite (no reading yet) is left out of the line.
pub fn line(namespace: &str, node: &str, metrics: &[Metric], at: SystemTime) -> String {
    let metrics: Vec<&Metric> = metrics
        .iter()
        .filter(|m| m.value.is_finite())
        .take(MAX_METRICS)
        .collect();
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| serde_json::json!({ "Name": m.name }))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[NODE_DIMENSION]],
                "Metrics": definitions,
            }],
        }),
    );
    root.insert(NODE_DIMENSION.into(), Value::from(node));
    for metric in metrics {
        root.insert(metric.name.into(), number(metric.value));
    }
    Value::Object(root).to_string()
}

/// A whole value as an integer (`1`, not `1.0`): the line is billed by the byte.
fn number(value: f64) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if value.fract() == 0.0 && value.abs() < EXACT {
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_line_carries_its_directive_and_every_value_as_a_root_member() {
        let at = UNIX_EPOCH + Duration::from_millis(1_765_000_000_123);
        let text = line(
            "MpcAgent",
            "node0.near",
            &[
                AGENT_UP.at(1.0),
                INDEXER_LAG_SECONDS.at(2.5),
                BALANCE_NEAR.at(f64::NAN),
            ],
            at,
        );
        assert!(!text.contains('\n'), "one line");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["_aws"]["Timestamp"], 1_765_000_000_123u64);
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "MpcAgent");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Node"]]));
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "AgentUp"}, {"Name": "IndexerLagSeconds"}]),
            "a value not known yet is left out"
        );
        assert_eq!(value["Node"], "node0.near");
        assert_eq!(value["AgentUp"], 1.0);
        assert_eq!(value["IndexerLagSeconds"], 2.5);
        assert!(value.get("BalanceNear").is_none());
    }

    #[test]
    fn the_fraction_of_a_whole_number_is_left_out() {
        let text = line(
            "MpcAgent",
            "node0.near",
            &[
                HOLDING.at(0.0),
                NODE_RESTARTS.at(3.0),
                BALANCE_NEAR.at(0.25),
            ],
            UNIX_EPOCH,
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([
                {"Name": "Holding"},
                {"Name": "NodeRestarts"},
                {"Name": "BalanceNear"},
            ])
        );
        assert!(
            text.contains(r#""Holding":0,"NodeRestarts":3,"BalanceNear":0.25"#),
            "{text}"
        );
    }

    #[test]
    fn every_name_is_within_the_formats_limits_and_written_once() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert!(names.len() <= MAX_METRICS);
        for name in &names {
            assert!(!name.is_empty() && name.len() <= 255, "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
            assert_ne!(*name, NODE_DIMENSION);
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a name twice");
    }
}
