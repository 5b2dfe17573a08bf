//! The agent's life as one state machine: what happens to it ([`Event`]) and
//! the phase it leads to ([`next`]), in one table. The state applies events;
//! nothing else writes the phase.
//!
//! | from | event | to | `/health` | `/ready` |
//! |---|---|---|---|---|
//! | any but failed | `Enter(stage)` | the stage (secrets, keys, home); holding stays holding | 200 pass | 503 |
//! | any but failed | `WaitForLock` | waiting-for-lock | 200 pass | 503 |
//! | any but failed | `Hold` | holding (since the first hold) | 200 warn, 503 fail past `AGENT_HOLD_GRACE` | 503 |
//! | any but failed | `Launch` | launching | 200 pass | 503 |
//! | any but failed | `ChildStarted` | running | 200 pass | 200 when the node answers and the keys match |
//! | any but failed | `Restart` | restarting | 200 warn | 503 |
//! | any but failed | `Stop` | stopping | 200 pass | 503 |
//! | any | `Fail` | failed (the agent exits after `AGENT_FAIL_LINGER`) | 503 fail | 503 |
//!
//! Booting is `starting` → secrets → keys → (waiting-for-lock →) home →
//! launching → running; a problem the operator can fix holds (holding ⇄ the
//! stages, re-checked with a backoff); the supervisor's restarts go
//! running → restarting → launching → running; a rotated secret goes
//! running → stopping → the stages again; SIGTERM goes to stopping and exit.

use crate::http::views::{Phase, Reason};

/// What happens to the agent.
#[derive(Clone, Debug)]
pub enum Event {
    /// A boot stage begins.
    Enter(Phase),
    /// Another agent holds the home's lock.
    WaitForLock(Reason),
    /// The node is not started for a reason the operator can fix.
    Hold(Reason),
    Launch,
    ChildStarted,
    /// The child exited and starts again after a backoff.
    Restart(Reason),
    Stop,
    /// Failed for good.
    Fail(Reason),
}

impl Event {
    /// The reason the event brings, if any.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Event::WaitForLock(r) | Event::Hold(r) | Event::Restart(r) | Event::Fail(r) => Some(r),
            Event::Enter(_) | Event::Launch | Event::ChildStarted | Event::Stop => None,
        }
    }
}

/// The phase `event` leads to from `phase`.
pub fn next(phase: Phase, event: &Event) -> Phase {
    match (phase, event) {
        (_, Event::Fail(_)) => Phase::Failed,
        (Phase::Failed, _) => Phase::Failed,
        (_, Event::Stop) => Phase::Stopping,
        // While holding, the stages are only re-checks: the hold stays what is shown.
        (Phase::Holding, Event::Enter(_)) => Phase::Holding,
        (_, Event::Enter(stage)) => *stage,
        (_, Event::WaitForLock(_)) => Phase::WaitingForLock,
        (_, Event::Hold(_)) => Phase::Holding,
        (_, Event::Launch) => Phase::Launching,
        (_, Event::ChildStarted) => Phase::Running,
        (_, Event::Restart(_)) => Phase::Restarting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> Reason {
        Reason::new("test", "a cause", None)
    }

    #[test]
    fn a_boot_goes_through_the_stages_to_running() {
        let mut phase = Phase::Starting;
        for (event, expected) in [
            (Event::Enter(Phase::Secrets), Phase::Secrets),
            (Event::Enter(Phase::Keys), Phase::Keys),
            (Event::WaitForLock(reason()), Phase::WaitingForLock),
            (Event::Enter(Phase::Home), Phase::Home),
            (Event::Launch, Phase::Launching),
            (Event::ChildStarted, Phase::Running),
            (Event::Restart(reason()), Phase::Restarting),
            (Event::Launch, Phase::Launching),
            (Event::ChildStarted, Phase::Running),
            (Event::Stop, Phase::Stopping),
        ] {
            phase = next(phase, &event);
            assert_eq!(phase, expected, "after {event:?}");
        }
    }

    #[test]
    fn re_checks_while_holding_keep_the_hold_until_the_node_launches() {
        let holding = next(Phase::Keys, &Event::Hold(reason()));
        assert_eq!(holding, Phase::Holding);
        for stage in [Phase::Secrets, Phase::Keys, Phase::Home] {
            assert_eq!(next(holding, &Event::Enter(stage)), Phase::Holding);
        }
        assert_eq!(next(holding, &Event::Launch), Phase::Launching);
    }

    #[test]
    fn a_rotation_stops_the_node_and_boots_it_again() {
        let stopping = next(Phase::Running, &Event::Stop);
        assert_eq!(stopping, Phase::Stopping);
        assert_eq!(
            next(stopping, &Event::Enter(Phase::Secrets)),
            Phase::Secrets
        );
    }

    #[test]
    fn failed_is_not_left() {
        for event in [
            Event::Enter(Phase::Secrets),
            Event::Hold(reason()),
            Event::Launch,
            Event::ChildStarted,
            Event::Restart(reason()),
            Event::Stop,
        ] {
            assert_eq!(next(Phase::Failed, &event), Phase::Failed, "{event:?}");
        }
        assert_eq!(next(Phase::Stopping, &Event::Fail(reason())), Phase::Failed);
    }
}
