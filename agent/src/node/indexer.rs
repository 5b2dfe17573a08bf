//! The node's indexer and keyset gauges as its Prometheus endpoint shows
//! them, in mpc-node's names (near/mpc `crates/node/src/metrics.rs`), or why
//! they cannot be read.

use std::time::{Duration, SystemTime};

use entrypoint::probe;
use prometheus_parse::{Scrape, Value};

use crate::life::views::KeysetGauges;
use crate::node::sync::Reading;

pub const HEIGHT: &str = "mpc_indexer_latest_block_height";
pub const BLOCK_TIMESTAMP: &str = "mpc_indexer_latest_block_timestamp_seconds";
pub const JOB_STATE: &str = "mpc_current_job_state";
pub const CURRENT_EPOCH: &str = "mpc_current_epoch_id";
pub const BACKUP_SERVED_EPOCH: &str = "mpc_last_backup_served_epoch";

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

/// The indexer, and the keyset gauges when the text could be read.
pub async fn scrape(url: &str, timeout: Duration) -> (Scraped, Option<KeysetGauges>) {
    let answer = probe::get(url, timeout).await;
    // A URL setting: named by scheme, host and port only.
    let url = &entrypoint::keys::shown_url(url);
    match answer {
        Ok((200, body)) => match parse(url, &String::from_utf8_lossy(&body)) {
            Ok(scrape) => (indexer(url, &scrape), Some(keysets(&scrape))),
            Err(failed) => (failed, None),
        },
        Ok((404, _)) => (
            Scraped::Absent(format!(
                "{url} answered 404: this node image serves no metrics"
            )),
            None,
        ),
        Ok((code, _)) => (Scraped::Failed(format!("{url} answered {code}")), None),
        Err(e) => (Scraped::Failed(e), None),
    }
}

fn parse(url: &str, text: &str) -> Result<Scrape, Scraped> {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| Scraped::Failed(format!("{url} is not Prometheus text: {e}")))
}

fn gauge(scrape: &Scrape, name: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find_map(|s| number(&s.value))
}

/// The indexer's gauges in a metrics text.
pub fn read(url: &str, text: &str) -> Scraped {
    match parse(url, text) {
        Ok(scrape) => indexer(url, &scrape),
        Err(failed) => failed,
    }
}

/// `mpc_current_epoch_id` and `mpc_last_backup_served_epoch`, each `None`
/// until the node sets it.
fn keysets(scrape: &Scrape) -> KeysetGauges {
    let epoch = |name| gauge(scrape, name).filter(|v| *v >= 0.0).map(|v| v as u64);
    KeysetGauges {
        current_epoch_id: epoch(CURRENT_EPOCH),
        last_backup_served_epoch: epoch(BACKUP_SERVED_EPOCH),
        scraped_at: SystemTime::now(),
    }
}

fn indexer(url: &str, scrape: &Scrape) -> Scraped {
    let gauge = |name: &str| gauge(scrape, name);
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
    fn the_keyset_gauges_are_read_with_or_without_the_indexer() {
        let text = "# TYPE mpc_current_epoch_id gauge\nmpc_current_epoch_id 7\n# TYPE mpc_last_backup_served_epoch gauge\nmpc_last_backup_served_epoch 6\n";
        let gauges = keysets(&parse(URL, text).unwrap());
        assert_eq!(gauges.current_epoch_id, Some(7));
        assert_eq!(gauges.last_backup_served_epoch, Some(6));
        let unset = keysets(&parse(URL, "mpc_standin_up 1\n").unwrap());
        assert_eq!(
            (unset.current_epoch_id, unset.last_backup_served_epoch),
            (None, None)
        );
    }

    #[test]
    fn metrics_without_the_indexer_are_absent_not_failed() {
        let text = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12\n";
        assert!(matches!(read(URL, text), Scraped::Absent(note) if note.contains(HEIGHT)));
    }
}
