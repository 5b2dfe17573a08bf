//! Polls the child's own readiness URL in the background and, for mpc-node,
//! its indexer's and keysets' metrics; records them in the state (`/ready`,
//! `/health` and `/status.vault` read the record, never the URLs), logs the
//! sync's progress, and acts on a stall as `AGENT_ON_STALL` says.

use std::ops::ControlFlow;
use std::time::{Duration, Instant, SystemTime};

use entrypoint::clients::Clients;
use entrypoint::config::{ChainRpc, OnStall, SyncSettings};
use entrypoint::probe;
use tokio::sync::mpsc;

use crate::every::{Every, Looping, Repeat};
use crate::life::state::{Probe, State, stall_text};
use crate::life::views::{Reason, Sync, SyncSource};
use crate::node::indexer::{self, Scraped};
use crate::node::sync::{Event, Tracker};

/// What `agent run` follows beyond the readiness URL: the node's indexer.
pub struct Indexer {
    pub settings: SyncSettings,
    /// At most one stall restart within this (`AGENT_CRASH_LOOP`'s window).
    pub restart_window: Duration,
    /// Where a stall restart is asked for.
    pub restart: mpsc::Sender<String>,
}

/// How often the chain's head is asked for while the node runs.
const HEAD_EVERY: Duration = Duration::from_secs(10);

/// Polls `url` (and the indexer, when given) every `interval` while a child runs.
pub fn spawn(url: String, interval: Duration, state: State, indexer: Option<Indexer>) -> Looping {
    Every::new(interval).starting_now().spawn(Readiness {
        timeout: interval.min(Duration::from_secs(2)),
        shown: entrypoint::keys::shown_url(&url),
        url,
        state,
        follow: indexer.map(Follow::new),
        child: None,
    })
}

/// One poll of the child's readiness URL and its indexer.
struct Readiness {
    url: String,
    /// The URL as logs and `/status` show it (no credentials).
    shown: String,
    timeout: Duration,
    state: State,
    follow: Option<Follow>,
    /// The child the follower's tracker belongs to.
    child: Option<i32>,
}

impl Repeat for Readiness {
    async fn once(&mut self) -> ControlFlow<()> {
        let Some(pid) = self.state.child_pid() else {
            return ControlFlow::Continue(());
        };
        if self.child != Some(pid) {
            self.child = Some(pid);
            if let Some(follow) = self.follow.as_mut() {
                follow.tracker.reset();
            }
        }
        let scrape = async {
            match &self.follow {
                Some(f) => Some(indexer::scrape(&f.settings.metrics_url, self.timeout).await),
                None => None,
            }
        };
        let (answer, scraped) = tokio::join!(probe::get(&self.url, self.timeout), scrape);
        let shown = &self.shown;
        let (ok, detail) = match answer {
            Ok((200, _)) => (true, format!("{shown} answered 200")),
            Ok((code, _)) => (false, format!("{shown} answered {code}")),
            Err(e) => (false, e),
        };
        self.state.set_probe(Probe {
            ok,
            detail,
            at: Instant::now(),
        });
        if let (Some(follow), Some((scraped, keysets))) = (self.follow.as_mut(), scraped) {
            if let Some(keysets) = keysets {
                self.state.set_keyset_gauges(keysets);
            }
            follow.record(scraped, &self.state);
        }
        ControlFlow::Continue(())
    }
}

/// Asks NEAR RPC for the chain's head every [`HEAD_EVERY`] while a child
/// runs (looking each second whether one does), for the sync's lag in blocks.
pub fn follow_chain_head(rpc: ChainRpc, clients: Clients, state: State) -> Looping {
    Every::new(Duration::from_secs(1))
        .starting_now()
        .spawn(ChainHead {
            rpc,
            clients,
            state,
            asked: None,
        })
}

struct ChainHead {
    rpc: ChainRpc,
    clients: Clients,
    state: State,
    asked: Option<Instant>,
}

impl Repeat for ChainHead {
    async fn once(&mut self) -> ControlFlow<()> {
        let due = self.asked.is_none_or(|t| t.elapsed() >= HEAD_EVERY);
        if due && self.state.child_pid().is_some() {
            self.asked = Some(Instant::now());
            match entrypoint::keys::chain_head(&self.rpc, &self.clients).await {
                Ok(height) => self.state.set_chain_head(height),
                Err(e) => tracing::debug!(error = %e, "the chain's head is not known this time"),
            }
        }
        ControlFlow::Continue(())
    }
}

/// The indexer followed across children.
struct Follow {
    settings: SyncSettings,
    tracker: Tracker,
    restart_window: Duration,
    restart: mpsc::Sender<String>,
    last_stall_restart: Option<Instant>,
    stall_restarts: u64,
    /// What was done about the current stall.
    stall_action: String,
}

impl Follow {
    fn new(indexer: Indexer) -> Follow {
        Follow {
            tracker: Tracker::new(indexer.settings.clone()),
            settings: indexer.settings,
            restart_window: indexer.restart_window,
            restart: indexer.restart,
            last_stall_restart: None,
            stall_restarts: 0,
            stall_action: String::new(),
        }
    }

    fn record(&mut self, scraped: Scraped, state: &State) {
        let reading = match scraped {
            Scraped::Reading(reading) => reading,
            Scraped::Absent(note) => return state.set_sync(health_only(note)),
            Scraped::Failed(note) => {
                let view = match state.sync() {
                    Some(last) if last.source == SyncSource::Indexer => Sync {
                        note: Some(format!("the last scrape failed: {note}")),
                        ..last
                    },
                    _ => health_only(format!(
                        "{note}; readiness is the node's /health alone until its metrics answer"
                    )),
                };
                return state.set_sync(view);
            }
        };
        let now = Instant::now();
        let (mut view, events) =
            self.tracker
                .observe(&reading, now, SystemTime::now(), state.chain_head());
        for event in events {
            match event {
                Event::Progress => tracing::info!(
                    height = reading.height,
                    chain_head = view.chain_head,
                    lag_blocks = view.lag_blocks,
                    lag_s = view.lag_seconds.map(|s| s.round()),
                    blocks_per_s = view.blocks_per_second.map(|p| (p * 10.0).round() / 10.0),
                    eta_s = view.eta_seconds.map(|s| s.round()),
                    "the node's indexer is syncing"
                ),
                Event::CaughtUp { took } => tracing::info!(
                    height = reading.height,
                    lag_s = view.lag_seconds.map(|s| s.round()),
                    took_s = took.as_secs(),
                    "the node's indexer caught up"
                ),
                Event::Stalled => self.stalled(&view, state, now),
                Event::Resumed => {
                    tracing::info!(height = reading.height, "the node's indexer advances again");
                    self.stall_action.clear();
                }
            }
        }
        view.stall_restarts = self.stall_restarts;
        if let Some(stall) = view.stall.as_mut() {
            stall.action = self.stall_action.clone();
        }
        state.set_sync(view);
    }

    /// A stall began: counted, logged, and under `restart` one graceful
    /// restart through the stages per window.
    fn stalled(&mut self, view: &Sync, state: &State, now: Instant) {
        state.metrics().node_stalls.inc();
        let stall = view.stall.as_ref().expect("a stall has its view");
        let text = stall_text(stall);
        self.stall_action = match self.settings.on_stall {
            OnStall::Warn => "warn (AGENT_ON_STALL=warn)".to_string(),
            OnStall::Restart => match self.last_stall_restart {
                Some(last) if now.duration_since(last) < self.restart_window => format!(
                    "warn: the node was restarted for a stall {:.0}s ago, within the crash-loop window; not again",
                    now.duration_since(last).as_secs_f64()
                ),
                _ => {
                    self.last_stall_restart = Some(now);
                    self.stall_restarts += 1;
                    state.child_restarting();
                    let _ = self.restart.try_send(text.clone());
                    "restarted the node once (AGENT_ON_STALL=restart)".to_string()
                }
            },
        };
        tracing::warn!(
            height = stall.height,
            since = %stall.since,
            chain_head = stall.chain_head,
            "{text}: {}",
            self.stall_action
        );
        state.note_reason(Reason::new(
            "indexer-stall",
            format!("{text}: {}", self.stall_action),
            Some("read the node's log for the indexer; AGENT_ON_STALL=restart restarts it once per crash-loop window; a node wedged after epoch sync may need indexer.wipe_near_data_token bumped in config.yaml".into()),
        ));
    }
}

fn health_only(note: String) -> Sync {
    Sync {
        source: SyncSource::HealthOnly,
        note: Some(note),
        height: None,
        block_time: None,
        job: None,
        chain_head: None,
        lag_blocks: None,
        lag_seconds: None,
        started_lag_seconds: None,
        blocks_per_second: None,
        eta_seconds: None,
        caught_up: false,
        synced_in_seconds: None,
        stall: None,
        stall_restarts: 0,
    }
}
