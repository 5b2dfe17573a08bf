//! The documents `/status` and `/config` serve, as types: the server writes them and `agent doctor` reads a running agent through the same structs.

use std::path::PathBuf;
use std::time::SystemTime;

use entrypoint::check::Check;
use entrypoint::secrets::SecretReport;
use serde::{Deserialize, Serialize};

use crate::state::{ExitRecord, Phase, Reason, rfc3339};
use crate::supervisor::LogLine;

/// A name as another agent sent it: one this build knows, or one only a newer
/// agent does (kept as sent, so the reader can say it does not know it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reported<T> {
    Known(T),
    Unknown(String),
}

impl<T> From<T> for Reported<T> {
    fn from(known: T) -> Self {
        Reported::Known(known)
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Reported<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reported::Known(known) => known.fmt(f),
            Reported::Unknown(name) => f.write_str(name),
        }
    }
}

/// `/status`: the agent's whole state at one instant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub phase: Reported<Phase>,
    #[serde(with = "rfc3339")]
    pub phase_since: SystemTime,
    /// Why the agent is in this phase (restarting, holding, failed).
    pub reason: Option<Reason>,
    pub ready: Ready,
    pub agent: Agent,
    pub child: Child,
    /// Reasons seen at run time (known fatal log lines), counted.
    pub reasons: Vec<Reason>,
    /// The stages' latest checks, in pipeline order.
    pub checks: Vec<Check>,
    pub log_tail: Vec<LogLine>,
}

/// Readiness, as `/ready` answers it and `/status` repeats it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub ready: bool,
    pub detail: String,
}

/// The agent process itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Agent {
    pub version: String,
    pub pid: u32,
    pub pid1: bool,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub uptime_seconds: f64,
    pub orphans_reaped: u64,
}

/// The supervised child: what it is, whether it runs, how it last ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Child {
    pub program: Option<String>,
    /// `None` while no child runs.
    pub running: Option<RunningChild>,
    pub restarts: u64,
    pub last_exit: Option<ExitRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunningChild {
    pub pid: i32,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub uptime_seconds: f64,
}

/// `agent config --json`: every setting of `agent run` with its value and source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Always `true`: an invalid configuration is a list of problems instead.
    pub valid: bool,
    /// The command the settings were resolved for.
    pub command: String,
    /// The `--config` file, when one was named.
    pub file: Option<PathBuf>,
    pub settings: Vec<Setting>,
}

/// One setting as the agent ended up seeing it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    /// As shown: an RPC URL without its API key.
    pub value: Option<String>,
    /// `value` is not the value the agent uses (something was taken out of it).
    pub redacted: bool,
    pub source: entrypoint::config::Source,
    pub help: Option<String>,
}

/// `/config`: the settings, and the secrets the node runs with once validated
/// (sources, public keys and fingerprints; never a value).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigView {
    #[serde(flatten)]
    pub settings: Settings,
    /// `None` until the secrets stage has validated them.
    pub secrets: Option<Vec<SecretReport>>,
}

#[cfg(test)]
mod tests {
    use entrypoint::check::Check;

    use super::*;
    use crate::state::{Judgement, State};
    use crate::supervisor::Exit;

    fn settings() -> Settings {
        Settings {
            valid: true,
            command: "run".into(),
            file: None,
            settings: vec![Setting {
                name: "AGENT_STOP_GRACE".into(),
                value: Some("7s".into()),
                redacted: false,
                source: entrypoint::config::Source::Env,
                help: Some("how long".into()),
            }],
        }
    }

    fn busy_state() -> State {
        let state = State::new(Judgement::default(), settings());
        state.child_started(4242, "/app/mpc-node");
        state.child_exited(Exit::Signal(9));
        state.child_restarting();
        state.set_phase_for(
            Phase::Restarting,
            Reason::new("exit", "the node exited", Some("read its log".into())),
        );
        state.note_reason(Reason::new("AccessKeyNotFound", "no such key", None));
        state.set_checks(
            "keys",
            vec![Check::warn("keys.access_key", "not found", "add it")],
        );
        state
    }

    #[test]
    fn a_status_the_server_writes_is_the_status_doctor_reads() {
        let written = serde_json::to_value(busy_state().status(Vec::new())).unwrap();
        let read: Status = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(read.phase, Reported::Known(Phase::Restarting));
        assert_eq!(read.child.last_exit.as_ref().unwrap().exit, Exit::Signal(9));
        assert_eq!(read.reasons[0].kind, "AccessKeyNotFound");
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
    }

    #[test]
    fn every_phase_reads_back_as_itself() {
        for phase in Phase::ALL {
            let written = serde_json::to_value(Reported::Known(phase)).unwrap();
            assert_eq!(written, phase.as_str());
            let read: Reported<Phase> = serde_json::from_value(written).unwrap();
            assert_eq!(read, Reported::Known(phase));
        }
    }

    #[test]
    fn a_phase_only_a_newer_agent_knows_is_kept_as_sent() {
        let read: Reported<Phase> = serde_json::from_value("draining".into()).unwrap();
        assert_eq!(read, Reported::Unknown("draining".into()));
        assert_eq!(read.to_string(), "draining");
    }

    #[test]
    fn the_config_the_server_writes_is_the_config_doctor_reads() {
        use entrypoint::check::Status as Verdict;
        use entrypoint::secrets::{SecretName, Source};
        let state = State::new(Judgement::default(), settings());
        let before = serde_json::to_value(state.config()).unwrap();
        assert!(before["secrets"].is_null(), "{before}");
        state.set_secrets(&[SecretReport {
            name: SecretName::AccountSk,
            source: Source::SecretsManager {
                id: "mpc/account-sk".into(),
                arn: None,
                version_id: Some("v1".into()),
                version_stages: vec!["AWSCURRENT".into()],
            },
            status: Verdict::Ok,
            cause: "a valid key".into(),
            fix: None,
            public_key: Some("ed25519:6E8sCci9badyRkXb3JoRpBj5p8C6Tw41ELDZoiihKEtp".into()),
            fingerprint: None,
        }]);
        let written = serde_json::to_value(state.config()).unwrap();
        assert_eq!(
            written.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["valid", "command", "file", "settings", "secrets"]
        );
        let read: ConfigView = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(read.settings.settings[0].name, "AGENT_STOP_GRACE");
        assert_eq!(
            read.secrets.as_ref().unwrap()[0].name,
            SecretName::AccountSk
        );
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
    }
}
