//! Secret rotation while the node runs: the secrets are fetched again every
//! `AGENT_SECRET_REFRESH` (jittered). A changed value that validates and that
//! boot's own judgment would start the node with (the shared `verify`: the
//! chain, the `secrets.json` rule, the policy) asks for one graceful restart,
//! once the secrets have been quiet for a moment; one that fails, or that the
//! node would not use, leaves the node running and becomes a reason on
//! `/status`. An unchanged value never restarts anything.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use entrypoint::check::{Check, Status};
use entrypoint::clients::Clients;
use entrypoint::config::RunConfig;
use entrypoint::secrets::{self, NodeSecrets};
use entrypoint::verify::{self, KeysInUse, VerifyInputs};
use tokio::sync::mpsc;

use crate::every::{Every, Looping, Repeat};

use crate::life::state::State;
use crate::life::views::Reason;

/// How long the secrets must stay the same before the restart (several
/// secrets are often updated one after another).
const QUIET: Duration = Duration::from_secs(2);

/// What identifies a set of values without holding them.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Identity(Vec<Option<String>>);

/// The values as fetched.
fn fetched(s: &NodeSecrets) -> Identity {
    identity(&s.account.public, &s.p2p.public, s)
}

/// What the node runs with: the keys in use, the store and backup keys.
fn in_use(keys: &KeysInUse, s: &NodeSecrets) -> Identity {
    identity(&keys.signer, &keys.p2p, s)
}

fn identity(
    signer: &near_crypto::PublicKey,
    p2p: &near_crypto::PublicKey,
    s: &NodeSecrets,
) -> Identity {
    Identity(vec![
        Some(signer.to_string()),
        Some(p2p.to_string()),
        s.store_key.as_ref().map(|k| k.fingerprint()),
        s.backup_key.as_ref().map(|k| k.fingerprint()),
    ])
}

/// The secrets and keys the node was started with.
struct Running {
    fetched: Identity,
    in_use: Identity,
}

/// Watches the secrets the node runs with; sends on `restart` once.
pub fn spawn(
    config: RunConfig,
    env: BTreeMap<String, String>,
    state: State,
    running_with: &NodeSecrets,
    keys_in_use: &KeysInUse,
    restart: mpsc::Sender<String>,
    clients: Clients,
) -> Looping {
    let running = Running {
        fetched: fetched(running_with),
        in_use: in_use(keys_in_use, running_with),
    };
    Every::new(config.lifetime.secret_refresh)
        .jittered(0.1)
        .spawn(Rotation {
            config,
            env,
            state,
            running,
            restart,
            clients,
        })
}

/// One look at the secrets every `AGENT_SECRET_REFRESH`.
struct Rotation {
    config: RunConfig,
    env: BTreeMap<String, String>,
    state: State,
    running: Running,
    restart: mpsc::Sender<String>,
    clients: Clients,
}

impl Repeat for Rotation {
    async fn once(&mut self) -> ControlFlow<()> {
        let refresh = look(
            &self.config,
            &self.env,
            &self.state,
            &self.running,
            &self.clients,
        )
        .await;
        self.state.metrics().secret_refreshed(refresh.outcome());
        tracing::debug!(outcome = refresh.outcome(), "secrets fetched again");
        let Refresh::Changed(changed) = refresh else {
            return ControlFlow::Continue(());
        };
        // Quiet period: restart only once the values stop moving.
        let mut settled = fetched(&changed);
        loop {
            tokio::time::sleep(QUIET).await;
            match secrets::load(&self.config.node.secrets, &self.env, &self.clients).await {
                Ok(again) if fetched(&again.value) == settled => break,
                Ok(again) => settled = fetched(&again.value),
                Err(_) => break,
            }
        }
        if settled == self.running.fetched {
            return ControlFlow::Continue(());
        }
        tracing::info!(
            "a rotated secret validated and matches the chain: restarting the node once"
        );
        let _ = self
            .restart
            .send("a rotated secret validated and matches the chain".into())
            .await;
        ControlFlow::Break(())
    }
}

/// What one fetch of the secrets found.
enum Refresh {
    /// The values the node runs with.
    Unchanged,
    /// A value does not validate; the node keeps running.
    Invalid,
    /// Boot would not start the node with them (the chain, the policy).
    Rejected,
    /// Changed, but the node would run with the same keys (secrets.json's).
    Unused,
    /// Changed, and boot would start the node with them.
    Changed(Box<NodeSecrets>),
}

impl Refresh {
    /// The `outcome` label of `agent_secret_refreshes_total`.
    fn outcome(&self) -> &'static str {
        match self {
            Refresh::Unchanged => "unchanged",
            Refresh::Invalid => "invalid",
            Refresh::Rejected => "rejected",
            Refresh::Unused => "unused",
            Refresh::Changed(_) => "changed",
        }
    }
}

/// Fetches the secrets and judges them against what the node runs with,
/// noting a reason when they fail or would not be used.
async fn look(
    config: &RunConfig,
    env: &BTreeMap<String, String>,
    state: &State,
    running: &Running,
    clients: &Clients,
) -> Refresh {
    let fresh = match secrets::load(&config.node.secrets, env, clients).await {
        Ok(fresh) => fresh.value,
        Err(stop) => {
            keep_running(
                state,
                stop.reason(),
                "re-fetched secrets are not valid",
                "ones",
            );
            return Refresh::Invalid;
        }
    };
    if fetched(&fresh) == running.fetched {
        return Refresh::Unchanged;
    }
    let inputs = VerifyInputs::new(&config.node, &config.homes, env, clients);
    let verified = verify::against_chain(inputs, fresh).await;
    if let Some(stop) = verified.stop()
        && !config.policy.waives(stop.kind)
    {
        keep_running(
            state,
            stop.reason(),
            "a rotated secret does not match the chain",
            "keys",
        );
        return Refresh::Rejected;
    }
    if in_use(&verified.keys_in_use, &verified.secrets) == running.in_use {
        // The node goes on with secrets.json's keys: its first warning says why.
        if let Some(effective) = verified
            .key_checks
            .iter()
            .find(|c| c.status == Status::Warn)
        {
            keep_running(
                state,
                effective,
                "a rotated secret would not be used (the node runs with the keys of secrets.json, which the chain accepts)",
                "keys",
            );
        }
        return Refresh::Unused;
    }
    Refresh::Changed(Box::new(verified.secrets))
}

/// Logs why the new secrets are not used and notes it as a reason on
/// `/status`, naming `check`.
fn keep_running(state: &State, check: &Check, problem: &str, kept: &str) {
    tracing::warn!(check = %check.id, cause = %check.cause, "{problem}; the node keeps running");
    state.note_reason(Reason::new(
        "rotation",
        format!(
            "{problem}; the node keeps running with the previous {kept}: {}",
            check.cause
        ),
        check.fix.clone(),
    ));
}
