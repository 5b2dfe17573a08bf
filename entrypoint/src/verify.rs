//! One judgment of the node's keys, shared by boot, rotation, `agent doctor`
//! and the watch while the node runs: the secrets fetched and validated, the
//! keys compared with the chain, the `secrets.json` rule, and what the policy
//! (`AGENT_ON_KEY_MISMATCH`, `AGENT_ON_RPC_UNAVAILABLE`) makes of a problem.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use near_crypto::PublicKey;

use crate::check::{Check, Status};
use crate::clients::Clients;
use crate::config::settings::Id;
use crate::config::{
    ChainRpc, HomeSettings, Node, NodeConfig, OnMismatch, OnRpcUnavailable, Policy,
    SecretsJsonPolicy,
};
use crate::homes::{runner, secrets_file};
use crate::keys::{self, ChainFacts, ChainQuery, ChainReading, KeyReport, KeysInput, KeysVerdict};
use crate::secrets::{self, NodeSecrets, SecretSettings};
use crate::stage::{Stage, StageStop, StopKind};

/// What [`verify`] reads.
#[derive(Clone, Copy)]
pub struct VerifyInputs<'a> {
    pub node: &'a Node,
    pub secrets: &'a SecretSettings,
    pub chain: &'a ChainRpc,
    pub secrets_json: SecretsJsonPolicy,
    /// The process environment (secrets given directly, AWS settings).
    pub env: &'a BTreeMap<String, String>,
    /// `AGENT_HOME_IO_TIMEOUT`: how long reading `secrets.json` may take.
    pub home_io_timeout: Duration,
    /// The process's network clients, shared by every verification.
    pub clients: &'a Clients,
}

impl<'a> VerifyInputs<'a> {
    /// What every verification reads: the node, its secrets and chain, and
    /// the home's `secrets.json` rule and I/O timeout.
    pub fn new(
        node: &'a NodeConfig,
        homes: &'a HomeSettings,
        env: &'a BTreeMap<String, String>,
        clients: &'a Clients,
    ) -> VerifyInputs<'a> {
        VerifyInputs {
            node: &node.node,
            secrets: &node.secrets,
            chain: &node.chain_rpc,
            secrets_json: homes.secrets_json,
            env,
            home_io_timeout: homes.io_timeout,
            clients,
        }
    }
}

/// Valid secrets and what the chain says of the keys the node will run with.
pub struct Verified {
    pub secrets: NodeSecrets,
    pub keys: KeyReport,
    /// `Match` when the chain accepts the keys the node will run with: the
    /// validated ones, or those of a `secrets.json` that stays.
    pub verdict: KeysVerdict,
    /// One per secret.
    pub secret_checks: Vec<Check>,
    /// One per question to the chain, then `keys.effective` when the node
    /// runs with the keys of `secrets.json`.
    pub key_checks: Vec<Check>,
    /// The signer and p2p public keys the node will run with.
    pub keys_in_use: KeysInUse,
}

/// The public keys a node runs with: the validated ones, or those of a
/// `secrets.json` that stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysInUse {
    pub signer: PublicKey,
    pub p2p: PublicKey,
    /// From `secrets.json`, not from the validated secrets.
    pub from_secrets_json: bool,
}

impl Policy {
    /// Whether the policy lets the node start despite a stop of `kind`.
    pub fn waives(&self, kind: StopKind) -> bool {
        match kind {
            StopKind::KeyMismatch => self.on_key_mismatch == OnMismatch::Warn,
            StopKind::RpcUnavailable => self.on_rpc_unavailable == OnRpcUnavailable::Skip,
            StopKind::Blocking | StopKind::LockTimeout | StopKind::Stalled => false,
        }
    }
}

impl Verified {
    /// The keys stage's stop when the chain does not accept the keys.
    pub fn stop(&self) -> Option<StageStop> {
        let kind = match self.verdict {
            KeysVerdict::Match => return None,
            KeysVerdict::Mismatch => StopKind::KeyMismatch,
            KeysVerdict::RpcUnavailable => StopKind::RpcUnavailable,
        };
        StageStop::of(Stage::Keys, kind, self.key_checks.clone())
    }

    /// Every check, secrets first.
    pub fn checks(&self) -> Vec<Check> {
        self.secret_checks
            .iter()
            .chain(&self.key_checks)
            .cloned()
            .collect()
    }
}

/// A finished step of [`verify`], for a caller that shows progress.
pub enum Step<'a> {
    Secrets { checks: &'a [Check], took: Duration },
    Keys { checks: &'a [Check], took: Duration },
}

/// Fetches and validates the secrets while the chain is read (one network
/// round: nothing asked of the chain depends on the secrets), then judges
/// their keys against it; `on_step` hears of each step as it ends. `Err` is
/// the secrets stage's stop, when a secret is missing or invalid: nothing to
/// compare, and the chain's reading is dropped unfinished.
pub async fn verify(
    inputs: VerifyInputs<'_>,
    mut on_step: impl FnMut(Step),
) -> Result<Verified, StageStop> {
    let loading = async {
        let started = Instant::now();
        let loaded = secrets::load(inputs.secrets, inputs.env, inputs.clients).await;
        let checks = match &loaded {
            Ok(staged) => staged.checks.as_slice(),
            Err(stop) => stop.checks(),
        };
        on_step(Step::Secrets {
            checks,
            took: started.elapsed(),
        });
        loaded.map(|staged| staged.value)
    };
    let reading =
        async { Ok(keys::read(inputs.chain, &ChainQuery::of(inputs.node), inputs.clients).await) };
    let (secrets, reading) = tokio::try_join!(loading, reading)?;
    let took = reading.took;
    let verified = judge_reading(inputs, secrets, reading).await;
    on_step(Step::Keys {
        checks: &verified.key_checks,
        took,
    });
    Ok(verified)
}

/// Judges validated secrets against the chain (the second half of
/// [`verify`], for a caller that already holds them).
pub async fn against_chain(inputs: VerifyInputs<'_>, secrets: NodeSecrets) -> Verified {
    let reading = keys::read(inputs.chain, &ChainQuery::of(inputs.node), inputs.clients).await;
    judge_reading(inputs, secrets, reading).await
}

/// The keys of `secrets` judged against what the chain answered.
async fn judge_reading(
    inputs: VerifyInputs<'_>,
    secrets: NodeSecrets,
    reading: ChainReading,
) -> Verified {
    let keys = KeyReport::new(KeysInput::new(inputs.node, &secrets), reading);
    let file = match keys.chain_facts() {
        Some(facts) if keys.verdict() == KeysVerdict::Mismatch => {
            file_keys(inputs, &secrets, facts).await
        }
        _ => Ok(None),
    };
    judge(secrets, keys, file)
}

/// The keys of a `secrets.json` that stays under the policy and that the
/// chain accepts, read off this thread: a home that does not answer is a
/// stall, not a frozen agent.
async fn file_keys(
    inputs: VerifyInputs<'_>,
    secrets: &NodeSecrets,
    facts: ChainFacts,
) -> Result<Option<(PublicKey, PublicKey)>, Check> {
    let home = inputs.node.home_dir.clone();
    let (p2p, account) = (secrets.p2p.clone(), secrets.account.clone());
    let policy = inputs.secrets_json;
    runner::off_thread(inputs.home_io_timeout, "reading secrets.json", move || {
        secrets_file::kept_keys(&home, &p2p, &account, policy, Some(&facts))
            .ok()
            .flatten()
            .filter(|(signer, p2p)| facts.accepts(signer, p2p).accepted())
    })
    .await
    .map_err(|stall| {
        stall.check(
            &inputs.node.home_dir,
            inputs.home_io_timeout,
            Id::HomeIoTimeout.name(),
        )
    })
}

/// The `secrets.json` rule on a key report: when the validated keys are not
/// the chain's but a `secrets.json` that stays (under `policy`) holds keys the
/// chain accepts, the node runs with those; the failed key checks become
/// warnings and `keys.effective` says why.
fn judge(
    secrets: NodeSecrets,
    keys: KeyReport,
    file: Result<Option<(PublicKey, PublicKey)>, Check>,
) -> Verified {
    let secret_checks = secrets.report.iter().map(|r| r.check()).collect();
    let mut key_checks = keys.checks();
    let mut verdict = keys.verdict();
    let mut keys_in_use = KeysInUse {
        signer: secrets.account.public.clone(),
        p2p: secrets.p2p.public.clone(),
        from_secrets_json: false,
    };
    let kept = match file {
        Ok(kept) => kept,
        Err(stalled) => {
            key_checks.push(stalled);
            None
        }
    };
    if let Some((signer, p2p)) = kept {
        keys_in_use = KeysInUse {
            signer,
            p2p,
            from_secrets_json: true,
        };
        for check in key_checks.iter_mut().filter(|c| c.status == Status::Fail) {
            check.status = Status::Warn;
            check.cause.push_str(
                " (the node runs with the keys of secrets.json, which the chain accepts)",
            );
        }
        key_checks.push(Check::warn(
            "keys.effective",
            "the node runs with the keys in secrets.json, which the chain accepts; the validated secrets are not the chain's",
            "put the keys of secrets.json into Secrets Manager (or fix the secrets), so that both agree",
        ));
        verdict = KeysVerdict::Match;
    }
    Verified {
        secrets,
        keys,
        verdict,
        secret_checks,
        key_checks,
        keys_in_use,
    }
}
