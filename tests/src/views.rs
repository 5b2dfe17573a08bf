//! What a test looks for in the agent's documents, read through the agent's
//! own views (`agent::views`): a check by its id, a secret or a setting by
//! its name, a reason by its kind.

use agent::views::{DoctorReport, KeysOnChain, KeysReport, Reason, Setting, Settings, Status};
use entrypoint::check::Check;
use entrypoint::launch::LaunchSummary;
use entrypoint::secrets::SecretReport;

/// A document that carries checks.
pub trait Checks {
    /// Its checks, in its order.
    fn all_checks(&self) -> Vec<&Check>;

    /// The check `id`, when the document has it.
    fn find_check(&self, id: &str) -> Option<&Check> {
        self.all_checks().into_iter().find(|c| c.id == id)
    }

    /// The check `id`; panics naming the ids the document has.
    fn check(&self, id: &str) -> &Check {
        self.find_check(id).unwrap_or_else(|| {
            let ids: Vec<&str> = self.all_checks().iter().map(|c| c.id.as_str()).collect();
            panic!("no check {id} among {ids:?}")
        })
    }
}

/// `/status`: the stages' latest checks.
impl Checks for Status {
    fn all_checks(&self) -> Vec<&Check> {
        self.checks.iter().collect()
    }
}

impl Checks for DoctorReport {
    fn all_checks(&self) -> Vec<&Check> {
        self.checks.iter().map(|e| &e.check).collect()
    }
}

impl Checks for KeysOnChain {
    fn all_checks(&self) -> Vec<&Check> {
        self.checks.iter().collect()
    }
}

/// `agent keys --json`: the chain's checks, none when the chain was not asked.
impl Checks for KeysReport {
    fn all_checks(&self) -> Vec<&Check> {
        self.chain.iter().flat_map(|c| &c.checks).collect()
    }
}

impl Checks for [Check] {
    fn all_checks(&self) -> Vec<&Check> {
        self.iter().collect()
    }
}

/// What `launch.command`'s detail on `/status` says of the node's launch:
/// its command line, its variables' names, its user.
pub fn launch_summary(status: &Status) -> LaunchSummary {
    let check = status.check("launch.command");
    serde_json::from_value(check.detail.clone()).unwrap_or_else(|e| {
        panic!("launch.command's detail is not a launch summary ({e}): {check:?}")
    })
}

/// The report on the secret `name` (e.g. `MPC_ACCOUNT_SK`); panics naming
/// the secrets there are.
pub fn secret<'a>(secrets: &'a [SecretReport], name: &str) -> &'a SecretReport {
    secrets
        .iter()
        .find(|r| r.name.env_name() == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = secrets.iter().map(|r| r.name.env_name()).collect();
            panic!("no secret {name} among {names:?}")
        })
}

/// The setting `name` of `agent config --json` or `/config`; panics naming
/// the settings there are.
pub fn setting<'a>(settings: &'a Settings, name: &str) -> &'a Setting {
    settings
        .settings
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = settings.settings.iter().map(|s| s.name.as_str()).collect();
            panic!("no setting {name} among {names:?}")
        })
}

/// The reason of `kind` among `reasons`, when there is one.
pub fn reason<'a>(reasons: &'a [Reason], kind: &str) -> Option<&'a Reason> {
    reasons.iter().find(|r| r.kind == kind)
}

/// The pid of the child `/status` shows running, when one runs.
pub fn child_pid(status: &Status) -> Option<i32> {
    status.child.running.as_ref().map(|c| c.pid)
}
