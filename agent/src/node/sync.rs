//! The node's sync judged from its indexer's readings: the lag behind the
//! wall clock and the chain's head, the pace over the last minutes, the time
//! left, whether it caught up, and whether it stalled. Pure decisions over
//! readings and instants; the poller logs and acts on what it says.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use entrypoint::config::SyncSettings;

use crate::life::views::{Stall, Sync, SyncSource};

/// What one scrape of the node's metrics gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub height: u64,
    /// Unix seconds of the latest block indexed.
    pub block_timestamp: i64,
    pub job: Option<String>,
}

/// The pace is measured over this much of the recent past.
const PACE_WINDOW: Duration = Duration::from_secs(300);

/// Something the poller tells the log (and, for a stall, may act on).
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Behind, and a progress line is due.
    Progress,
    /// Within the lag allowed, after `took` behind (zero when never behind).
    CaughtUp { took: Duration },
    /// The height has not advanced for the stall time.
    Stalled,
    /// It advances again.
    Resumed,
}

/// Follows one child's indexer.
pub struct Tracker {
    settings: SyncSettings,
    /// (when, height, block timestamp) of recent readings, oldest first.
    samples: VecDeque<(Instant, u64, i64)>,
    /// When the height last changed (or was first seen), and that height.
    advanced: Option<(Instant, SystemTime, u64)>,
    /// When the first reading behind came, and its lag in seconds.
    behind_since: Option<Instant>,
    started_lag: Option<f64>,
    caught_up: bool,
    synced_in: Option<Duration>,
    last_progress: Option<Instant>,
    stalled: bool,
}

impl Tracker {
    pub fn new(settings: SyncSettings) -> Tracker {
        Tracker {
            settings,
            samples: VecDeque::new(),
            advanced: None,
            behind_since: None,
            started_lag: None,
            caught_up: false,
            synced_in: None,
            last_progress: None,
            stalled: false,
        }
    }

    /// Forgets the previous child's indexer.
    pub fn reset(&mut self) {
        *self = Tracker::new(self.settings.clone());
    }

    /// Takes a reading made at `now` (`wall` on the wall clock), with the
    /// chain's head when known; returns the view and what happened.
    pub fn observe(
        &mut self,
        reading: &Reading,
        now: Instant,
        wall: SystemTime,
        chain_head: Option<u64>,
    ) -> (Sync, Vec<Event>) {
        let mut events = Vec::new();
        match self.advanced {
            Some((_, _, height)) if height == reading.height => {}
            _ => {
                self.advanced = Some((now, wall, reading.height));
                if self.stalled {
                    self.stalled = false;
                    events.push(Event::Resumed);
                }
            }
        }
        if self
            .samples
            .back()
            .is_none_or(|(_, h, _)| *h != reading.height)
        {
            self.samples
                .push_back((now, reading.height, reading.block_timestamp));
        }
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _, _)| now.duration_since(*t) > PACE_WINDOW)
        {
            self.samples.pop_front();
        }

        let wall_seconds = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let lag_seconds = (wall_seconds - reading.block_timestamp as f64).max(0.0);
        let within = lag_seconds <= self.settings.ready_max_lag.as_secs_f64();
        if within {
            if !self.caught_up {
                let took = self.behind_since.map(|t| now.duration_since(t));
                self.synced_in = took;
                events.push(Event::CaughtUp {
                    took: took.unwrap_or_default(),
                });
            }
            self.caught_up = true;
        } else {
            // Falling behind again after catching up starts a new sync.
            if self.caught_up || self.behind_since.is_none() {
                self.behind_since = Some(now);
                self.started_lag = Some(lag_seconds);
                self.synced_in = None;
                self.last_progress = None;
            }
            self.caught_up = false;
            let due = self
                .last_progress
                .is_none_or(|t| now.duration_since(t) >= self.settings.progress_every);
            if due {
                self.last_progress = Some(now);
                events.push(Event::Progress);
            }
        }

        let (pace, block_pace) = self.pace();
        let eta_seconds = match block_pace {
            // The lag shrinks by (block time gained per second − 1) each second.
            Some(gain) if !within && gain > 1.0 => Some(lag_seconds / (gain - 1.0)),
            _ => None,
        };
        let stall = self.stall(now, chain_head);
        if stall.is_some() && !self.stalled {
            self.stalled = true;
            events.push(Event::Stalled);
        }
        let view = Sync {
            source: SyncSource::Indexer,
            note: None,
            height: Some(reading.height),
            block_time: Some(rfc3339_of_unix(reading.block_timestamp)),
            job: reading.job.clone(),
            chain_head,
            lag_blocks: chain_head.map(|head| head.saturating_sub(reading.height)),
            lag_seconds: Some(lag_seconds),
            started_lag_seconds: self.started_lag,
            blocks_per_second: pace,
            eta_seconds,
            caught_up: within,
            synced_in_seconds: self.synced_in.map(|d| d.as_secs_f64()),
            stall,
            stall_restarts: 0,
        };
        (view, events)
    }

    /// Blocks per second, and block-time seconds gained per second, over the
    /// recent samples.
    fn pace(&self) -> (Option<f64>, Option<f64>) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (None, None);
        };
        let elapsed = last.0.duration_since(first.0).as_secs_f64();
        if elapsed < 1e-3 {
            return (None, None);
        }
        let blocks = last.1.saturating_sub(first.1) as f64 / elapsed;
        let gained = (last.2 - first.2) as f64 / elapsed;
        (Some(blocks), Some(gained))
    }

    fn stall(&self, now: Instant, chain_head: Option<u64>) -> Option<Stall> {
        let (at, wall, height) = self.advanced?;
        let still = now.duration_since(at);
        (still >= self.settings.stall).then(|| Stall {
            height,
            since: humantime::format_rfc3339_seconds(wall).to_string(),
            for_seconds: still.as_secs_f64(),
            chain_head,
            action: "warn".to_string(),
        })
    }
}

fn rfc3339_of_unix(seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrypoint::config::OnStall;

    fn settings() -> SyncSettings {
        SyncSettings {
            metrics_url: "http://127.0.0.1:8080/metrics".into(),
            ready_max_lag: Duration::from_secs(60),
            progress_every: Duration::from_secs(60),
            stall: Duration::from_secs(600),
            on_stall: OnStall::Warn,
        }
    }

    /// A reading `behind` seconds behind `wall`.
    fn reading(height: u64, wall: SystemTime, behind: u64) -> Reading {
        let now = wall.duration_since(UNIX_EPOCH).unwrap().as_secs();
        Reading {
            height,
            block_timestamp: (now - behind) as i64,
            job: None,
        }
    }

    #[test]
    fn a_node_two_hours_behind_is_not_caught_up_and_says_how_far() {
        let mut t = Tracker::new(settings());
        let (now, wall) = (Instant::now(), SystemTime::now());
        let (view, events) = t.observe(&reading(100, wall, 7200), now, wall, Some(7300));
        assert!(!view.caught_up);
        assert_eq!(view.lag_blocks, Some(7200));
        assert!(view.lag_seconds.unwrap() >= 7200.0);
        assert_eq!(events, [Event::Progress]);
    }

    #[test]
    fn pace_and_eta_come_from_the_recent_readings() {
        let mut t = Tracker::new(settings());
        let (now, wall) = (
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_764_547_200),
        );
        t.observe(&reading(100, wall, 7200), now, wall, None);
        // 100 s later: 1000 blocks, block time 1000 s further, 7200 - 900 behind.
        let (now, wall) = (
            now + Duration::from_secs(100),
            wall + Duration::from_secs(100),
        );
        let (view, events) = t.observe(&reading(1100, wall, 6300), now, wall, None);
        assert_eq!(view.blocks_per_second, Some(10.0));
        // The lag shrinks 9 s a second.
        assert_eq!(view.eta_seconds, Some(700.0));
        assert_eq!(events, [Event::Progress], "a progress line a minute");
    }

    #[test]
    fn catching_up_is_told_once_with_how_long_it_took() {
        let mut t = Tracker::new(settings());
        let (now, wall) = (Instant::now(), SystemTime::now());
        t.observe(&reading(100, wall, 7200), now, wall, None);
        let later = now + Duration::from_secs(30);
        let (view, events) = t.observe(&reading(9000, wall, 5), later, wall, None);
        assert!(view.caught_up);
        assert_eq!(
            events,
            [Event::CaughtUp {
                took: Duration::from_secs(30)
            }]
        );
        assert_eq!(view.synced_in_seconds, Some(30.0));
        let (_, events) = t.observe(&reading(9001, wall, 5), later, wall, None);
        assert!(events.is_empty());
    }

    #[test]
    fn a_height_that_stops_is_a_stall_until_it_moves() {
        let mut t = Tracker::new(settings());
        let (now, wall) = (Instant::now(), SystemTime::now());
        t.observe(&reading(100, wall, 0), now, wall, None);
        let (view, _) = t.observe(
            &reading(100, wall, 0),
            now + Duration::from_secs(599),
            wall,
            None,
        );
        assert_eq!(view.stall, None);
        let (view, events) = t.observe(
            &reading(100, wall, 0),
            now + Duration::from_secs(600),
            wall,
            Some(900),
        );
        assert_eq!(events, [Event::Stalled]);
        let stall = view.stall.unwrap();
        assert_eq!((stall.height, stall.chain_head), (100, Some(900)));
        let (_, events) = t.observe(
            &reading(100, wall, 0),
            now + Duration::from_secs(700),
            wall,
            None,
        );
        assert!(events.is_empty(), "told once");
        let (view, events) = t.observe(
            &reading(101, wall, 0),
            now + Duration::from_secs(701),
            wall,
            None,
        );
        assert_eq!(events, [Event::Resumed]);
        assert_eq!(view.stall, None);
    }
}
