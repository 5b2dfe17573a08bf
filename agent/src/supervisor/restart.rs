//! What happens after the child exits: exit, restart after a backoff, or give
//! up on a crash loop. Pure decisions, no processes. A known restartable exit
//! (mpc-node's 70) counts toward the crash loop at most once per window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use entrypoint::config::{Backoff, CrashLoop, RestartPolicy};
use rand::Rng;

use super::Exit;

#[derive(Debug, PartialEq)]
pub enum Next {
    /// Stop supervising; the agent exits with the child's code.
    Exit,
    /// Start the child again after this delay.
    RestartAfter(Duration),
    /// Too many exits within the window: fail, then exit with the child's code.
    CrashLoop { exits: usize, window: Duration },
}

pub struct RestartPlan {
    policy: RestartPolicy,
    backoff: Backoff,
    reset_after: Duration,
    crash_loop: CrashLoop,
    exits: VecDeque<Instant>,
    attempt: u32,
    restartable: Option<i32>,
    /// When a known restartable exit last counted toward the crash loop.
    restartable_counted: Option<Instant>,
}

impl RestartPlan {
    pub fn new(
        policy: RestartPolicy,
        backoff: Backoff,
        reset_after: Duration,
        crash_loop: CrashLoop,
        restartable: Option<i32>,
    ) -> Self {
        RestartPlan {
            policy,
            backoff,
            reset_after,
            crash_loop,
            exits: VecDeque::new(),
            attempt: 0,
            restartable,
            restartable_counted: None,
        }
    }

    /// Is `exit` the known restartable one?
    pub fn is_restartable(&self, exit: Exit) -> bool {
        self.restartable
            .is_some_and(|code| exit == Exit::Code(code))
    }

    /// Decides after an exit of a child that was up for `uptime`.
    pub fn after_exit(&mut self, exit: Exit, uptime: Duration, now: Instant) -> Next {
        let restart = match self.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !exit.success(),
            RestartPolicy::Always => true,
        };
        if !restart {
            return Next::Exit;
        }
        let window = self.crash_loop.window;
        let counts = if self.is_restartable(exit) {
            let counted_lately = self
                .restartable_counted
                .is_some_and(|t| now.duration_since(t) <= window);
            if !counted_lately {
                self.restartable_counted = Some(now);
            }
            !counted_lately
        } else {
            true
        };
        if counts {
            self.exits.push_back(now);
        }
        while self
            .exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.crash_loop.window)
        {
            self.exits.pop_front();
        }
        if self.exits.len() >= self.crash_loop.exits as usize {
            return Next::CrashLoop {
                exits: self.exits.len(),
                window: self.crash_loop.window,
            };
        }
        if uptime >= self.reset_after {
            self.attempt = 0;
        }
        let delay = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        Next::RestartAfter(jitter(delay))
    }

    /// `initial × 2^attempt`, at most `max`.
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.backoff
            .initial
            .saturating_mul(factor)
            .min(self.backoff.max)
    }
}

/// A delay between half and all of `delay`, so a fleet does not restart in step.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(policy: RestartPolicy) -> RestartPlan {
        RestartPlan::new(
            policy,
            Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            Duration::from_secs(60),
            CrashLoop {
                exits: 5,
                window: Duration::from_secs(300),
            },
            Some(70),
        )
    }

    fn delay_of(next: Next) -> Duration {
        match next {
            Next::RestartAfter(d) => d,
            other => panic!("expected a restart, got {other:?}"),
        }
    }

    #[test]
    fn never_exits_and_on_failure_exits_on_success() {
        let now = Instant::now();
        assert_eq!(
            plan(RestartPolicy::Never).after_exit(Exit::Code(1), Duration::ZERO, now),
            Next::Exit
        );
        assert_eq!(
            plan(RestartPolicy::OnFailure).after_exit(Exit::Code(0), Duration::ZERO, now),
            Next::Exit
        );
        assert!(matches!(
            plan(RestartPolicy::OnFailure).after_exit(Exit::Signal(9), Duration::ZERO, now),
            Next::RestartAfter(_)
        ));
        assert!(matches!(
            plan(RestartPolicy::Always).after_exit(Exit::Code(0), Duration::ZERO, now),
            Next::RestartAfter(_)
        ));
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let mut p = RestartPlan::new(
            RestartPolicy::Always,
            Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            Duration::from_secs(60),
            CrashLoop {
                exits: 100,
                window: Duration::from_secs(1),
            },
            None,
        );
        let start = Instant::now();
        let expected = [1, 2, 4, 4, 4];
        for (i, secs) in expected.iter().enumerate() {
            let at = start + Duration::from_secs(10 * i as u64);
            let d = delay_of(p.after_exit(Exit::Code(1), Duration::ZERO, at));
            let full = Duration::from_secs(*secs);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {i}: {d:?} not within {full:?}/2..={full:?}"
            );
        }
    }

    #[test]
    fn a_long_run_resets_the_backoff() {
        let mut p = plan(RestartPolicy::OnFailure);
        let start = Instant::now();
        for i in 0..3 {
            p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(100 * i),
            );
        }
        let d = delay_of(p.after_exit(
            Exit::Code(1),
            Duration::from_secs(61),
            start + Duration::from_secs(400),
        ));
        assert!(d <= Duration::from_secs(1), "{d:?}");
    }

    #[test]
    fn five_exits_within_the_window_are_a_crash_loop() {
        let mut p = plan(RestartPolicy::OnFailure);
        let start = Instant::now();
        for i in 0..4 {
            let next = p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(i),
            );
            assert!(matches!(next, Next::RestartAfter(_)));
        }
        assert_eq!(
            p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(4)
            ),
            Next::CrashLoop {
                exits: 5,
                window: Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn the_known_restartable_exit_counts_once_per_window() {
        let mut p = plan(RestartPolicy::OnFailure);
        let start = Instant::now();
        for i in 0..20 {
            let next = p.after_exit(
                Exit::Code(70),
                Duration::ZERO,
                start + Duration::from_secs(i),
            );
            assert!(matches!(next, Next::RestartAfter(_)), "exit {i}: {next:?}");
        }
        // Other exits still count, with the one exit 70 of the window.
        for i in 0..3 {
            let next = p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(30 + i),
            );
            assert!(matches!(next, Next::RestartAfter(_)), "exit {i}: {next:?}");
        }
        assert!(matches!(
            p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(40)
            ),
            Next::CrashLoop { exits: 5, .. }
        ));
    }

    #[test]
    fn exits_spread_beyond_the_window_are_not_a_crash_loop() {
        let mut p = plan(RestartPolicy::OnFailure);
        let start = Instant::now();
        for i in 0..10 {
            let next = p.after_exit(
                Exit::Code(1),
                Duration::ZERO,
                start + Duration::from_secs(100 * i),
            );
            assert!(matches!(next, Next::RestartAfter(_)), "exit {i}: {next:?}");
        }
    }
}
