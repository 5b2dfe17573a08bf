//! Polls the child's own readiness URL in the background and records the
//! outcome in the state; `/ready` reads the record, never the URL.

use std::time::{Duration, Instant};

use crate::http::state::{Probe, State};
use entrypoint::probe;

/// Polls `url` every `interval` while a child runs.
pub fn spawn(url: String, interval: Duration, state: State) {
    let timeout = interval.min(Duration::from_secs(2));
    let shown = entrypoint::keys::shown_url(&url);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if state.child_pid().is_none() {
                continue;
            }
            let (ok, detail) = match probe::get(&url, timeout).await {
                Ok((200, _)) => (true, format!("{shown} answered 200")),
                Ok((code, _)) => (false, format!("{shown} answered {code}")),
                Err(e) => (false, e),
            };
            state.set_probe(Probe {
                ok,
                detail,
                at: Instant::now(),
            });
        }
    });
}
