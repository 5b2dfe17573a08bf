//! The one result every stage returns: its typed output and its checks
//! ([`Staged`]), or a [`StageStop`] that carries the checks and names the one
//! that failed. A stop is only ever made from a failed check, so the reason
//! `agent run` holds or exits on is a failure by construction, never a check
//! that passed beside it.

use serde::{Deserialize, Serialize};

use crate::check::{Check, Status};

/// The boot stages, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Config,
    Secrets,
    Keys,
    Home,
    Launch,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::Secrets => "secrets",
            Stage::Keys => "keys",
            Stage::Home => "home",
            Stage::Launch => "launch",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage that went through: its output and every check it made.
#[derive(Debug)]
pub struct Staged<T> {
    pub value: T,
    pub checks: Vec<Check>,
}

impl<T> Staged<T> {
    pub fn new(value: T, checks: Vec<Check>) -> Staged<T> {
        Staged { value, checks }
    }
}

/// What a stage's result is: its output, or the stop.
pub type StageResult<T> = Result<Staged<T>, StageStop>;

/// A check that failed: what a stop is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure(Check);

impl Failure {
    /// The check a stage refuses on, as a failure: a stage that stops on a
    /// check fails on it, whatever status it was written with.
    pub fn refusal(check: Check) -> Failure {
        Failure(Check {
            status: Status::Fail,
            ..check
        })
    }

    pub fn check(&self) -> &Check {
        &self.0
    }
}

impl From<Failure> for Check {
    fn from(failure: Failure) -> Check {
        failure.0
    }
}

impl Check {
    /// The check as a [`Failure`] when it failed; itself otherwise.
    pub fn into_failure(self) -> Result<Failure, Check> {
        match self.status {
            Status::Fail => Ok(Failure(self)),
            _ => Err(self),
        }
    }
}

/// How a stop may be let through, or what it leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The node cannot start this way whatever the policy says (an invalid
    /// secret, a store key that does not decrypt the shares, a home that
    /// cannot keep them).
    Blocking,
    /// The chain does not accept the keys; `AGENT_ON_KEY_MISMATCH=warn` lets the node start.
    KeyMismatch,
    /// No NEAR RPC answered; `AGENT_ON_RPC_UNAVAILABLE=skip` lets the node start.
    RpcUnavailable,
    /// Another agent kept the home's lock past `AGENT_LOCK_WAIT`.
    LockTimeout,
    /// The home's filesystem did not answer within `AGENT_HOME_IO_TIMEOUT`.
    Stalled,
}

/// Why the stages stop short of the node: which stage, what kind of stop,
/// every check the stage made and the failed one that names the reason.
#[derive(Clone, Debug)]
pub struct StageStop {
    pub stage: Stage,
    pub kind: StopKind,
    reason: Failure,
    checks: Vec<Check>,
}

impl StageStop {
    /// A stop on the first failed check of `checks`; `None` when none failed.
    pub fn of(stage: Stage, kind: StopKind, checks: Vec<Check>) -> Option<StageStop> {
        let reason = checks.iter().find_map(|c| c.clone().into_failure().ok())?;
        Some(StageStop {
            stage,
            kind,
            reason,
            checks,
        })
    }

    /// A stop on `failure`, after the checks the stage made before it.
    pub fn after(
        stage: Stage,
        kind: StopKind,
        mut checks: Vec<Check>,
        failure: Failure,
    ) -> StageStop {
        checks.push(failure.check().clone());
        StageStop {
            stage,
            kind,
            reason: failure,
            checks,
        }
    }

    /// The failed check that names why.
    pub fn reason(&self) -> &Check {
        self.reason.check()
    }

    /// Every failed check of the stage, the reason first among them.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// Every check the stage made, in its order.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    pub fn into_checks(self) -> Vec<Check> {
        self.checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_first_failed_check_not_the_first_check() {
        let checks = vec![
            Check::ok("secrets.MPC_ACCOUNT_SK", "valid: public key ed25519:…"),
            Check::warn("secrets.MPC_BACKUP_ENCRYPTION_KEY_HEX", "not set", "set it"),
            Check::fail(
                "secrets.MPC_P2P_PRIVATE_KEY",
                "a placeholder",
                "put the key",
            ),
            Check::fail(
                "secrets.MPC_SECRET_STORE_KEY",
                "known value",
                "generate one",
            ),
        ];
        let stop = StageStop::of(Stage::Secrets, StopKind::Blocking, checks).unwrap();
        assert_eq!(stop.reason().id, "secrets.MPC_P2P_PRIVATE_KEY");
        let failed: Vec<&str> = stop.failed().map(|c| c.id.as_str()).collect();
        assert_eq!(
            failed,
            [
                "secrets.MPC_P2P_PRIVATE_KEY",
                "secrets.MPC_SECRET_STORE_KEY"
            ]
        );
        assert_eq!(stop.checks().len(), 4, "every check is kept");
    }

    #[test]
    fn checks_without_a_failure_make_no_stop() {
        let checks = vec![Check::ok("a", "fine"), Check::warn("b", "low", "raise it")];
        assert!(StageStop::of(Stage::Home, StopKind::Blocking, checks).is_none());
    }

    #[test]
    fn a_stop_after_a_failure_keeps_the_checks_before_it() {
        let stop = StageStop::after(
            Stage::Home,
            StopKind::LockTimeout,
            vec![Check::ok("homes.filesystem", "nfs4")],
            Failure::refusal(Check::fail(
                "homes.lock",
                "held by another agent",
                "stop it",
            )),
        );
        assert_eq!(stop.reason().id, "homes.lock");
        assert_eq!(stop.reason().status, Status::Fail);
        assert_eq!(stop.checks().len(), 2);
    }

    #[test]
    fn only_a_failed_check_becomes_a_failure() {
        assert!(Check::ok("a", "fine").into_failure().is_err());
        assert!(Check::warn("a", "meh", "fix").into_failure().is_err());
        assert!(Check::fail("a", "broken", "fix").into_failure().is_ok());
    }
}
