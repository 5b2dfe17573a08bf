//! The boot of `agent run` and `agent init`: the stages ([`super::stages`])
//! run until the node can start, and the policy for what stops them — hold
//! and re-check with a backoff, or exit with a code. The home's lock, once a
//! pass takes it, belongs to the pipeline: it is kept across holds and boots
//! for as long as the pipeline boots the node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use entrypoint::clients::Clients;
use entrypoint::config::{
    Backoff, HomeSettings, NodeConfig, OnMismatch, Policy, RestorePolicy, VaultSettings,
};
use entrypoint::homes::HomeLock;
use entrypoint::launch::LaunchPlan;
use entrypoint::secrets::NodeSecrets;
use entrypoint::stage::StopKind;
use entrypoint::verify::KeysInUse;

use crate::exit;
use crate::life::Event;
use crate::life::state::State;
use crate::life::views::Reason;
use crate::supervisor::Reaper;

/// Which command runs the stages: `run` holds and re-checks with a backoff,
/// `init` never holds.
#[derive(Clone, Copy)]
pub enum Mode {
    Run { hold_retry: Backoff },
    Init,
}

/// What the stages read, and where they report.
pub struct Boot<'a> {
    pub node: &'a NodeConfig,
    pub homes: &'a HomeSettings,
    pub policy: &'a Policy,
    /// `AGENT_EFS_FILE_SYSTEM_ID` (`agent run`): asked about a home that is not on EFS.
    pub efs_file_system_id: Option<&'a str>,
    pub env: &'a BTreeMap<String, String>,
    pub clients: &'a Clients,
    pub state: State,
    pub reaper: Reaper,
    /// The keyshare vault a home without its keyshare is restored from
    /// (`AGENT_KEYSHARE_VAULT`), and whether it is (`AGENT_KEYSHARE_RESTORE`).
    pub vault: Option<&'a VaultSettings>,
    pub restore: RestorePolicy,
}

/// Boots the node, again each time it is asked to.
pub struct Pipeline<'a> {
    pub(super) boot: Boot<'a>,
    mode: Mode,
    /// The home's lock, from the first pass that takes it.
    pub(super) lock: Option<Arc<HomeLock>>,
}

/// Everything the node is started with.
pub struct Ready {
    pub secrets: NodeSecrets,
    /// The public keys the node runs with (secrets.json's when it stays).
    pub keys_in_use: KeysInUse,
    pub plan: LaunchPlan,
}

/// After a stop: hold and re-check, or exit with a code.
enum Next {
    Hold(Backoff),
    Exit(i32),
}

impl<'a> Pipeline<'a> {
    pub fn new(boot: Boot<'a>, mode: Mode) -> Pipeline<'a> {
        Pipeline {
            boot,
            mode,
            lock: None,
        }
    }

    /// Runs the stages until the node can start. `Err` is the code the agent
    /// exits with. Holding (in `run`) runs them again with a backoff; the
    /// reason shown is always the check that failed.
    pub async fn prepare(&mut self) -> Result<Ready, i32> {
        let mut delay: Option<Duration> = None;
        loop {
            let stop = match self.attempt().await {
                Ok(ready) => return Ok(ready),
                Err(stop) => stop,
            };
            let reason = Reason::of(stop.reason());
            let fix = reason.fix.as_deref().unwrap_or("");
            let hold_retry = match self.next(stop.kind) {
                Next::Hold(retry) => retry,
                Next::Exit(code) => {
                    tracing::error!(stage = %stop.stage, check = %reason.kind, cause = %reason.cause, fix, exit_code = code, "not starting the node");
                    self.boot.state.apply(Event::Fail(reason));
                    return Err(code);
                }
            };
            let wait = delay.map_or(hold_retry.initial, |d| (d * 2).min(hold_retry.max));
            tracing::warn!(
                stage = %stop.stage,
                check = %reason.kind,
                cause = %reason.cause,
                fix,
                retry_in_s = wait.as_secs_f64(),
                "holding: the node is not started until this is fixed"
            );
            self.boot.state.apply(Event::Hold(reason));
            tokio::time::sleep(wait).await;
            delay = Some(wait);
        }
    }

    /// What a stop the policy does not waive leads to.
    fn next(&self, kind: StopKind) -> Next {
        match (kind, self.mode) {
            (StopKind::LockTimeout, _) => Next::Exit(exit::TEMPFAIL),
            (StopKind::Stalled, _) => Next::Exit(exit::IOERR),
            (StopKind::RpcUnavailable, Mode::Init) => Next::Exit(exit::UNAVAILABLE),
            (_, Mode::Init) => Next::Exit(exit::CONFIG),
            (StopKind::RpcUnavailable, Mode::Run { hold_retry }) => Next::Hold(hold_retry),
            (_, Mode::Run { .. }) if self.boot.policy.on_key_mismatch == OnMismatch::Exit => {
                Next::Exit(exit::CONFIG)
            }
            (_, Mode::Run { hold_retry }) => Next::Hold(hold_retry),
        }
    }
}
