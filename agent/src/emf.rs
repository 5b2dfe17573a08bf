//! CloudWatch's Embedded Metric Format: one JSON log line that CloudWatch
//! Logs turns into metrics with no agent or API call — the awslogs driver
//! already ships the agent's stdout. The line carries `_aws` (the time in
//! milliseconds and one directive: the namespace, the dimension set `[Node]`,
//! each metric's name and unit) and, as root members, the `Node` dimension's
//! value and every metric's value, a number.

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

/// The most metrics one directive may name (the format's limit).
pub const MAX_METRICS: usize = 100;
/// The dimension every metric of the agent carries.
pub const NODE_DIMENSION: &str = "Node";

/// A metric's unit, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    None,
    Count,
    Seconds,
}

/// One metric of a line: its name, unit and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
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
        .map(|m| serde_json::json!({ "Name": m.name, "Unit": m.unit }))
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
        root.insert(metric.name.into(), Value::from(metric.value));
    }
    Value::Object(root).to_string()
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
                Metric {
                    name: "AgentUp",
                    unit: Unit::Count,
                    value: 1.0,
                },
                Metric {
                    name: "IndexerLagSeconds",
                    unit: Unit::Seconds,
                    value: 2.5,
                },
                Metric {
                    name: "BalanceNear",
                    unit: Unit::None,
                    value: f64::NAN,
                },
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
            serde_json::json!([
                {"Name": "AgentUp", "Unit": "Count"},
                {"Name": "IndexerLagSeconds", "Unit": "Seconds"},
            ]),
            "a value not known yet is left out"
        );
        assert_eq!(value["Node"], "node0.near");
        assert_eq!(value["AgentUp"], 1.0);
        assert_eq!(value["IndexerLagSeconds"], 2.5);
        assert!(value.get("BalanceNear").is_none());
    }
}
