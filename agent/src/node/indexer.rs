//! The node's indexer as its Prometheus endpoint shows it, in mpc-node's names
//! (near/mpc `crates/node/src/metrics.rs`), or why it cannot be read.

use std::time::Duration;

use entrypoint::probe;
use prometheus_parse::{Scrape, Value};

use crate::node::sync::Reading;

pub const HEIGHT: &str = "mpc_indexer_latest_block_height";
pub const BLOCK_TIMESTAMP: &str = "mpc_indexer_latest_block_timestamp_seconds";
pub const JOB_STATE: &str = "mpc_current_job_state";

/// What one scrape gave.
#[derive(Debug, PartialEq)]
pub enum Scraped {
    Reading(Reading),
    /// The endpoint answered without the indexer's gauges (an image from
    /// before them, or no `/metrics` at all): readiness falls back to the
    /// node's `/health`.
    Absent(String),
    /// The endpoint did not answer: nothing is known this time.
    Failed(String),
}

pub async fn scrape(url: &str, timeout: Duration) -> Scraped {
    match probe::get(url, timeout).await {
        Ok((200, body)) => read(url, &String::from_utf8_lossy(&body)),
        Ok((404, _)) => Scraped::Absent(format!(
            "{url} answered 404: this node image serves no metrics"
        )),
        Ok((code, _)) => Scraped::Failed(format!("{url} answered {code}")),
        Err(e) => Scraped::Failed(e),
    }
}

/// The indexer's gauges in a metrics text.
pub fn read(url: &str, text: &str) -> Scraped {
    let scrape = match Scrape::parse(text.lines().map(|l| Ok(l.to_string()))) {
        Ok(scrape) => scrape,
        Err(e) => return Scraped::Failed(format!("{url} is not Prometheus text: {e}")),
    };
    let gauge = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .find_map(|s| number(&s.value))
    };
    let (Some(height), Some(timestamp)) = (gauge(HEIGHT), gauge(BLOCK_TIMESTAMP)) else {
        return Scraped::Absent(format!(
            "{url} has no {HEIGHT} or {BLOCK_TIMESTAMP} (an image from before them): readiness is the node's /health alone"
        ));
    };
    let job = scrape
        .samples
        .iter()
        .filter(|s| s.metric == JOB_STATE && number(&s.value).is_some_and(|v| v >= 1.0))
        .find_map(|s| s.labels.get("state").map(str::to_string));
    Scraped::Reading(Reading {
        height: height.max(0.0) as u64,
        block_timestamp: timestamp as i64,
        job,
    })
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Gauge(v) | Value::Untyped(v) | Value::Counter(v) if v.is_finite() => Some(*v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:8080/metrics";

    #[test]
    fn the_nodes_gauges_are_read_by_their_names() {
        let text = "# HELP mpc_indexer_latest_block_height Latest block height processed by the near indexer\n\
            # TYPE mpc_indexer_latest_block_height gauge\n\
            mpc_indexer_latest_block_height 193456789\n\
            # HELP mpc_indexer_latest_block_timestamp_seconds Unix time of the latest block processed by the near indexer\n\
            # TYPE mpc_indexer_latest_block_timestamp_seconds gauge\n\
            mpc_indexer_latest_block_timestamp_seconds 1764547200\n\
            # HELP mpc_current_job_state Current state of the top-level MPC job\n\
            # TYPE mpc_current_job_state gauge\n\
            mpc_current_job_state{state=\"Initializing\"} 0\n\
            mpc_current_job_state{state=\"Running\"} 1\n";
        assert_eq!(
            read(URL, text),
            Scraped::Reading(Reading {
                height: 193_456_789,
                block_timestamp: 1_764_547_200,
                job: Some("Running".into()),
            })
        );
    }

    #[test]
    fn metrics_without_the_indexer_are_absent_not_failed() {
        let text = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12\n";
        assert!(matches!(read(URL, text), Scraped::Absent(note) if note.contains(HEIGHT)));
    }
}
