//! The agent's life as one state machine: the phase it is in ([`Phase`]),
//! what happens to it ([`Event`]), and the one table of transitions
//! ([`next`]), which refuses what cannot happen. The [`state::State`] applies
//! events and judges health and readiness from what it holds; the HTTP
//! server, the supervisor and the stages only report to it or read it.
//!
//! | from | event | to | `/health` | `/ready` |
//! |---|---|---|---|---|
//! | starting, stopping | `Enter(secrets)` | secrets | 200 pass | 503 |
//! | secrets | `Enter(keys)` | keys | 200 pass | 503 |
//! | keys, waiting-for-lock | `Enter(home)` | home | 200 pass | 503 |
//! | holding | `Enter(secrets, keys or home)` | holding: a re-check keeps the hold shown | 200 warn | 503 |
//! | home, holding | `WaitForLock` | waiting-for-lock | 200 pass | 503 |
//! | secrets, keys, waiting-for-lock, home, holding | `Hold` | holding (since the first hold) | 200 warn, 503 fail past `AGENT_HOLD_GRACE` | 503 |
//! | starting (`exec`), home, holding, restarting | `Launch` | launching | 200 pass | 503 |
//! | launching | `ChildStarted` | running | 200 pass | 200 when the node answers and the keys match |
//! | running | `Restart` | restarting | 200 warn | 503 |
//! | any but failed | `Stop` | stopping | 200 pass | 503 |
//! | any but failed | `Fail` | failed (the agent exits after `AGENT_FAIL_LINGER`) | 503 fail | 503 |
//!
//! Anything else is refused and the phase stays: a child cannot start while
//! holding, a stage cannot be entered out of turn, failed is never left.
//! Booting is starting → secrets → keys → (waiting-for-lock →) home →
//! launching → running; a problem the operator can fix holds (holding ⇄ the
//! stages, re-checked with a backoff); the supervisor's restarts go
//! running → restarting → launching → running; a rotated secret goes
//! running → stopping → the stages again; SIGTERM goes to stopping and exit.

pub mod metrics;
pub mod off_home;
pub mod state;
pub mod views;

use entrypoint::stage::Stage;
use serde::{Deserialize, Serialize};

use views::Reason;

/// Where the agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Starting,
    /// Fetching and validating the secrets.
    Secrets,
    /// Comparing the keys with the chain.
    Keys,
    /// Another agent holds the home's lock.
    WaitingForLock,
    /// Checking, initializing and patching the home.
    Home,
    Launching,
    Running,
    /// The child exited; it starts again after a backoff.
    Restarting,
    /// Not starting the node for a reason the operator can fix; re-checking.
    Holding,
    Stopping,
    /// Failed for good; the agent exits after the linger.
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Starting,
        Phase::Secrets,
        Phase::Keys,
        Phase::WaitingForLock,
        Phase::Home,
        Phase::Launching,
        Phase::Running,
        Phase::Restarting,
        Phase::Holding,
        Phase::Stopping,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Secrets => "secrets",
            Phase::Keys => "keys",
            Phase::WaitingForLock => "waiting-for-lock",
            Phase::Home => "home",
            Phase::Launching => "launching",
            Phase::Running => "running",
            Phase::Restarting => "restarting",
            Phase::Holding => "holding",
            Phase::Stopping => "stopping",
            Phase::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to the agent.
#[derive(Clone, Debug)]
pub enum Event {
    /// A boot stage that has a phase of its own (secrets, keys, home) begins.
    Enter(Stage),
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

    fn name(&self) -> String {
        match self {
            Event::Enter(stage) => format!("enter {stage}"),
            Event::WaitForLock(_) => "wait for the lock".into(),
            Event::Hold(_) => "hold".into(),
            Event::Launch => "launch".into(),
            Event::ChildStarted => "child started".into(),
            Event::Restart(_) => "restart".into(),
            Event::Stop => "stop".into(),
            Event::Fail(_) => "fail".into(),
        }
    }
}

/// An event that cannot happen in the phase the agent is in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{event} cannot happen while {phase}")]
pub struct Refused {
    pub phase: Phase,
    pub event: String,
}

/// The phase `event` leads to from `phase`, by the table above.
pub fn next(phase: Phase, event: &Event) -> Result<Phase, Refused> {
    use Phase::*;
    let to = match (phase, event) {
        (Failed, _) => None,
        (_, Event::Fail(_)) => Some(Failed),
        (_, Event::Stop) => Some(Stopping),
        (Holding, Event::Enter(Stage::Secrets | Stage::Keys | Stage::Home)) => Some(Holding),
        (Starting | Stopping, Event::Enter(Stage::Secrets)) => Some(Secrets),
        (Secrets, Event::Enter(Stage::Keys)) => Some(Keys),
        (Keys | WaitingForLock, Event::Enter(Stage::Home)) => Some(Home),
        (Home | Holding, Event::WaitForLock(_)) => Some(WaitingForLock),
        (Secrets | Keys | WaitingForLock | Home | Holding, Event::Hold(_)) => Some(Holding),
        (Starting | Home | Holding | Restarting, Event::Launch) => Some(Launching),
        (Launching, Event::ChildStarted) => Some(Running),
        (Running, Event::Restart(_)) => Some(Restarting),
        _ => None,
    };
    to.ok_or_else(|| Refused {
        phase,
        event: event.name(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> Reason {
        Reason::new("test", "a cause", None)
    }

    fn walk(from: Phase, events: Vec<Event>) -> Phase {
        events.into_iter().fold(from, |phase, event| {
            next(phase, &event).unwrap_or_else(|refused| panic!("{refused}"))
        })
    }

    #[test]
    fn a_boot_goes_through_the_stages_to_running_and_restarts() {
        let mut phase = Phase::Starting;
        for (event, expected) in [
            (Event::Enter(Stage::Secrets), Phase::Secrets),
            (Event::Enter(Stage::Keys), Phase::Keys),
            (Event::Enter(Stage::Home), Phase::Home),
            (Event::WaitForLock(reason()), Phase::WaitingForLock),
            (Event::Enter(Stage::Home), Phase::Home),
            (Event::Launch, Phase::Launching),
            (Event::ChildStarted, Phase::Running),
            (Event::Restart(reason()), Phase::Restarting),
            (Event::Launch, Phase::Launching),
            (Event::ChildStarted, Phase::Running),
            (Event::Stop, Phase::Stopping),
        ] {
            phase = next(phase, &event).unwrap();
            assert_eq!(phase, expected, "after {event:?}");
        }
    }

    #[test]
    fn re_checks_while_holding_keep_the_hold_until_the_node_launches() {
        let holding = walk(
            Phase::Starting,
            vec![Event::Enter(Stage::Secrets), Event::Hold(reason())],
        );
        assert_eq!(holding, Phase::Holding);
        for stage in [Stage::Secrets, Stage::Keys, Stage::Home] {
            assert_eq!(next(holding, &Event::Enter(stage)), Ok(Phase::Holding));
        }
        assert_eq!(next(holding, &Event::Hold(reason())), Ok(Phase::Holding));
        assert_eq!(next(holding, &Event::Launch), Ok(Phase::Launching));
    }

    #[test]
    fn a_rotation_stops_the_node_and_boots_it_again() {
        let stopping = walk(
            Phase::Starting,
            vec![Event::Launch, Event::ChildStarted, Event::Stop],
        );
        assert_eq!(stopping, Phase::Stopping);
        assert_eq!(
            next(stopping, &Event::Enter(Stage::Secrets)),
            Ok(Phase::Secrets)
        );
    }

    #[test]
    fn a_child_cannot_start_while_holding() {
        let refused = next(Phase::Holding, &Event::ChildStarted).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "child started cannot happen while holding"
        );
        for phase in [
            Phase::Starting,
            Phase::Secrets,
            Phase::Home,
            Phase::Running,
            Phase::Stopping,
        ] {
            assert!(next(phase, &Event::ChildStarted).is_err(), "{phase}");
        }
    }

    #[test]
    fn a_stage_cannot_be_entered_out_of_turn() {
        assert!(next(Phase::Starting, &Event::Enter(Stage::Keys)).is_err());
        assert!(next(Phase::Starting, &Event::Enter(Stage::Home)).is_err());
        assert!(next(Phase::Secrets, &Event::Enter(Stage::Home)).is_err());
        assert!(next(Phase::Keys, &Event::Enter(Stage::Secrets)).is_err());
        assert!(next(Phase::Home, &Event::Enter(Stage::Home)).is_err());
        assert!(next(Phase::Running, &Event::Enter(Stage::Secrets)).is_err());
    }

    #[test]
    fn the_stages_without_a_phase_cannot_be_entered() {
        for phase in Phase::ALL {
            assert!(
                next(phase, &Event::Enter(Stage::Config)).is_err(),
                "{phase}"
            );
            assert!(
                next(phase, &Event::Enter(Stage::Launch)).is_err(),
                "{phase}"
            );
        }
    }

    #[test]
    fn a_running_node_is_not_held_and_a_launch_is_not_repeated() {
        assert!(next(Phase::Running, &Event::Hold(reason())).is_err());
        assert!(next(Phase::Launching, &Event::Launch).is_err());
        assert!(next(Phase::Running, &Event::Launch).is_err());
        assert!(next(Phase::Stopping, &Event::Hold(reason())).is_err());
    }

    #[test]
    fn only_a_running_child_restarts() {
        for phase in [
            Phase::Starting,
            Phase::Holding,
            Phase::Launching,
            Phase::Restarting,
        ] {
            assert!(next(phase, &Event::Restart(reason())).is_err(), "{phase}");
        }
    }

    #[test]
    fn failed_is_not_left() {
        for event in [
            Event::Enter(Stage::Secrets),
            Event::Hold(reason()),
            Event::Launch,
            Event::ChildStarted,
            Event::Restart(reason()),
            Event::Stop,
            Event::Fail(reason()),
        ] {
            assert!(next(Phase::Failed, &event).is_err(), "{event:?}");
        }
        assert_eq!(
            next(Phase::Stopping, &Event::Fail(reason())),
            Ok(Phase::Failed)
        );
    }
}
