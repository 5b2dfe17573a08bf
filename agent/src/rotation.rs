//! Secret rotation while the node runs: the secrets are fetched again every
//! `AGENT_SECRET_REFRESH` (jittered). A changed value that validates and that
//! the chain accepts asks for one graceful restart, once the secrets have been
//! quiet for a moment; one that fails leaves the node running and becomes a
//! reason on `/status`. An unchanged value never restarts anything.

use std::collections::BTreeMap;
use std::time::Duration;

use entrypoint::check::{Check, Status};
use entrypoint::config::Config;
use entrypoint::keys::{self, KeysVerdict};
use entrypoint::secrets::{self, NodeSecrets};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::state::{Reason, State};

/// How long the secrets must stay the same before the restart (several
/// secrets are often updated one after another).
const QUIET: Duration = Duration::from_secs(2);

/// What identifies the secrets' values without holding them.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Identity(Vec<Option<String>>);

fn identity(s: &NodeSecrets) -> Identity {
    Identity(vec![
        Some(s.account.public.to_string()),
        Some(s.p2p.public.to_string()),
        s.store_key.as_ref().map(|k| k.fingerprint()),
        s.backup_key.as_ref().map(|k| k.fingerprint()),
    ])
}

/// Watches the secrets the node runs with; sends on `restart` once.
pub fn spawn(
    config: Config,
    env: BTreeMap<String, String>,
    state: State,
    running_with: &NodeSecrets,
    restart: mpsc::Sender<String>,
) -> JoinHandle<()> {
    let current = identity(running_with);
    tokio::spawn(async move {
        let policy = config.policy.as_ref().expect("run has a policy");
        let settings = config.secrets.as_ref().expect("run reads secrets");
        loop {
            let jittered = policy
                .secret_refresh
                .mul_f64(rand::thread_rng().gen_range(0.9..=1.1));
            tokio::time::sleep(jittered).await;
            let Some(changed) = changed(&config, settings, &env, &state, &current).await else {
                continue;
            };
            // Quiet period: restart only once the values stop moving.
            let mut settled = changed;
            loop {
                tokio::time::sleep(QUIET).await;
                match secrets::load(settings, &env).await {
                    Ok(again) if identity(&again) == identity(&settled) => break,
                    Ok(again) => settled = again,
                    Err(_) => break,
                }
            }
            if identity(&settled) == current {
                continue;
            }
            tracing::info!(
                "a rotated secret validated and matches the chain: restarting the node once"
            );
            let _ = restart
                .send("a rotated secret validated and matches the chain".into())
                .await;
            return;
        }
    })
}

/// The new secrets when they differ from `current`, validate and match the
/// chain; otherwise `None`, with a reason noted when they fail.
async fn changed(
    config: &Config,
    settings: &entrypoint::config::SecretSettings,
    env: &BTreeMap<String, String>,
    state: &State,
    current: &Identity,
) -> Option<NodeSecrets> {
    let fresh = match secrets::load(settings, env).await {
        Ok(fresh) => fresh,
        Err(failure) => {
            keep_running(
                state,
                failure.checks(),
                "re-fetched secrets are not valid",
                "ones",
            );
            return None;
        }
    };
    if identity(&fresh) == *current {
        return None;
    }
    let report = keys::check(
        config
            .chain_rpc
            .as_ref()
            .expect("run reads the chain settings"),
        &crate::keys::keys_input(config, &fresh),
    )
    .await;
    if report.verdict() != KeysVerdict::Match {
        keep_running(
            state,
            report.checks(),
            "a rotated secret does not match the chain",
            "keys",
        );
        return None;
    }
    Some(fresh)
}

/// Logs why the new secrets are not used and notes it as a reason on
/// `/status`, from the first failing check.
fn keep_running(state: &State, checks: Vec<Check>, problem: &str, kept: &str) {
    let Some(first) = checks.into_iter().find(|c| c.status == Status::Fail) else {
        return;
    };
    tracing::warn!(check = %first.id, cause = %first.cause, "{problem}; the node keeps running");
    state.note_reason(Reason::new(
        "rotation",
        format!(
            "{problem}; the node keeps running with the previous {kept}: {}",
            first.cause
        ),
        first.fix,
    ));
}
