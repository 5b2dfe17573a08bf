//! The one way a background loop runs: a [`Repeat`] run every period,
//! jittered or not, the first run at once or after one period; a run that
//! takes longer than the period is followed by the next at once, never by a
//! burst of the runs it missed; the loop ends when a run says so or when its
//! [`Looping`] handle is dropped.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One run of a background loop; `Break` ends the loop.
pub trait Repeat: Send + 'static {
    fn once(&mut self) -> impl Future<Output = ControlFlow<()>> + Send;
}

/// When and how often a [`Repeat`] runs.
#[derive(Clone, Copy, Debug)]
pub struct Every {
    period: Duration,
    /// Each wait is the period times a factor drawn from `1 ± jitter`, so
    /// that the agents of a fleet do not all ask at the same instant.
    jitter: f64,
    at_once: bool,
}

impl Every {
    /// Every `period`, the first run after one period.
    pub fn new(period: Duration) -> Every {
        Every {
            period,
            jitter: 0.0,
            at_once: false,
        }
    }

    /// The first run at once.
    pub fn starting_now(self) -> Every {
        Every {
            at_once: true,
            ..self
        }
    }

    /// Each wait drawn from `period × (1 ± fraction)`.
    pub fn jittered(self, fraction: f64) -> Every {
        Every {
            jitter: fraction.clamp(0.0, 1.0),
            ..self
        }
    }

    fn wait(&self) -> Duration {
        if self.jitter == 0.0 {
            return self.period;
        }
        let factor = rand::thread_rng().gen_range(1.0 - self.jitter..=1.0 + self.jitter);
        self.period.mul_f64(factor)
    }

    /// Runs `task` on this schedule until it breaks or the handle is dropped.
    pub fn spawn(self, mut task: impl Repeat) -> Looping {
        Looping(tokio::spawn(async move {
            let mut due = match self.at_once {
                true => Instant::now(),
                false => Instant::now() + self.wait(),
            };
            loop {
                tokio::time::sleep_until(due).await;
                let started = Instant::now();
                if task.once().await.is_break() {
                    return;
                }
                due = (started + self.wait()).max(Instant::now());
            }
        }))
    }
}

/// A running loop: dropping it stops the loop.
pub struct Looping(JoinHandle<()>);

impl Drop for Looping {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records when each run began, relative to the start; breaks after `runs`.
    struct Recorder {
        start: Instant,
        at: Arc<Mutex<Vec<Duration>>>,
        runs: usize,
        takes: Duration,
    }

    impl Recorder {
        fn new(runs: usize, takes: Duration) -> (Recorder, Arc<Mutex<Vec<Duration>>>) {
            let at = Arc::new(Mutex::new(Vec::new()));
            let recorder = Recorder {
                start: Instant::now(),
                at: at.clone(),
                runs,
                takes,
            };
            (recorder, at)
        }
    }

    impl Repeat for Recorder {
        async fn once(&mut self) -> ControlFlow<()> {
            let done = {
                let mut at = self.at.lock().unwrap();
                at.push(self.start.elapsed());
                at.len() >= self.runs
            };
            tokio::time::sleep(self.takes).await;
            if done {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }

    fn secs(at: &Mutex<Vec<Duration>>) -> Vec<u64> {
        at.lock().unwrap().iter().map(|d| d.as_secs()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_run_comes_after_one_period_unless_asked_for_at_once() {
        let (later, at_later) = Recorder::new(3, Duration::ZERO);
        let (now, at_now) = Recorder::new(3, Duration::ZERO);
        let _a = Every::new(Duration::from_secs(10)).spawn(later);
        let _b = Every::new(Duration::from_secs(10))
            .starting_now()
            .spawn(now);
        tokio::time::sleep(Duration::from_secs(100)).await;
        // Three runs each, then the break ended the loop.
        assert_eq!(secs(&at_later), [10, 20, 30]);
        assert_eq!(secs(&at_now), [0, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_longer_than_the_period_is_followed_at_once_without_a_burst() {
        let (slow, at) = Recorder::new(4, Duration::from_secs(25));
        let _looping = Every::new(Duration::from_secs(10))
            .starting_now()
            .spawn(slow);
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert_eq!(secs(&at), [0, 25, 50, 75]);
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_waits_stay_within_the_fraction_and_vary() {
        let (task, at) = Recorder::new(50, Duration::ZERO);
        let _looping = Every::new(Duration::from_secs(100))
            .jittered(0.1)
            .spawn(task);
        tokio::time::sleep(Duration::from_secs(100 * 60)).await;
        let at = at.lock().unwrap().clone();
        assert_eq!(at.len(), 50);
        let waits: Vec<f64> = std::iter::once(at[0])
            .chain(at.windows(2).map(|w| w[1] - w[0]))
            .map(|d| d.as_secs_f64())
            .collect();
        assert!(
            waits.iter().all(|w| (90.0..=110.0).contains(w)),
            "{waits:?}"
        );
        assert!(
            waits.iter().any(|w| (w - waits[0]).abs() > 0.5),
            "{waits:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_handle_stops_the_loop() {
        let (task, at) = Recorder::new(usize::MAX, Duration::ZERO);
        let looping = Every::new(Duration::from_secs(1))
            .starting_now()
            .spawn(task);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        drop(looping);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(secs(&at), [0, 1, 2]);
    }
}
