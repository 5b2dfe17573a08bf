//! The home stage's writing half, under the lock: the store key chosen (or
//! generated and stored before first use), the first init, the every-boot
//! patches of config.json and config.yaml, and secrets.json by its rule.
//! Its output, [`NodeHome`], is what the launch plan is made from.

use super::config_json::{self, NearConfigInputs};
use super::config_yaml::{self, MpcConfig, MpcConfigInputs};
use super::init::{self, InitPlan};
use super::inspect::{
    HomeInputs, HomeInspection, StoreKeyChoice, enum_forms, plan_secrets_json, plan_store_key,
    refused, tier3,
};
use super::{HomeLock, NodeUser};
use super::{backup_key, secrets_file};
use crate::check::Check;
use crate::keys::ChainFacts;
use crate::node_binary::NodeCommands;
use crate::secrets::{self, NodeSecrets, Secret};
use crate::stage::{Failure, Stage, StageResult, StageStop, Staged, StopKind};

/// A home ready for the node: initialized, patched, with its secrets.json,
/// and the store key the node will be started with.
pub struct NodeHome {
    pub user: NodeUser,
    pub store_key: Secret,
    /// The backup key the node is started with; `None`: the node makes its own.
    pub backup_key: Option<Secret>,
    /// config.yaml as the node will read it (the start file's `[node]`).
    pub config: MpcConfig,
    /// The keys this stage generated or adopted and stored in Secrets
    /// Manager itself, so that a fetch from now on returns them.
    pub stored: Vec<secrets::SecretName>,
}

impl NodeHome {
    /// `fetched` (what boot read from Secrets Manager) as Secrets Manager
    /// holds it now that the stage is done: with the keys of
    /// [`NodeHome::stored`]. A watch for rotated secrets compares against
    /// this, so that a key the agent stored itself is not taken for a rotation.
    pub fn stored_into(&self, mut fetched: NodeSecrets) -> NodeSecrets {
        for name in &self.stored {
            match name {
                secrets::SecretName::SecretStoreKey => {
                    fetched.store_key = Some(self.store_key.clone())
                }
                secrets::SecretName::BackupEncryptionKey => {
                    fetched.backup_key = self.backup_key.clone()
                }
                _ => {}
            }
        }
        fetched
    }
}

/// Makes the home ready for the node, under `lock`. `chain` is the keys
/// stage's answers (`None` when the chain could not be asked). The checks
/// are the stage's, the inspection's first.
pub async fn prepare(
    inspection: HomeInspection,
    lock: &HomeLock,
    inputs: &HomeInputs<'_>,
    secrets: &NodeSecrets,
    chain: Option<&ChainFacts>,
    commands: &impl NodeCommands,
) -> StageResult<NodeHome> {
    let HomeInspection { user, mut checks } = inspection;
    let node = inputs.node;
    let home = node.home_dir.as_path();
    checks.push(Check::ok(
        "homes.lock",
        format!(
            "this agent holds the home's lock ({}); another agent on this home waits",
            lock.holder()
        ),
    ));
    inputs
        .io
        .start("checking the store key against the shares (key, permanent_keys/, temporary_keys/)");
    let mut stored = Vec::new();
    let store_key = match store_key(inputs, secrets).await {
        Ok((key, check, generated)) => {
            checks.push(check);
            if generated {
                stored.push(secrets::SecretName::SecretStoreKey);
            }
            key
        }
        Err(check) => return Err(refused(checks, Failure::refusal(check))),
    };
    inputs
        .io
        .start("reading the node's backup key file (backup_encryption_key.hex)");
    let backup_plan = backup_key::plan(inputs, secrets);
    let keeps = backup_plan.keeps();
    let backup_key = match backup_key::apply(backup_plan, inputs).await {
        Ok((key, check)) => {
            checks.push(check);
            if keeps {
                stored.push(secrets::SecretName::BackupEncryptionKey);
            }
            key
        }
        Err(check) => return Err(refused(checks, Failure::refusal(check))),
    };
    if let Some(check) = tier3(inputs, commands).await {
        match check.into_failure() {
            Ok(failure) => return Err(refused(checks, failure)),
            Err(check) => checks.push(check),
        }
    }
    inputs.io.start(
        "initializing (the init marker, the staging directory under .agent/, moving its result into place)",
    );
    let init = init::init_home(lock, &InitPlan::new(node, inputs.homes), &user, commands)
        .await
        .map_err(|e| e.stop(checks.clone()))?;
    checks.push(init.check());
    inputs.io.start("updating config.json");
    let json =
        config_json::update_config_json(home, &NearConfigInputs::new(node, inputs.homes), &user)
            .map_err(|e| e.stop(checks.clone()))?;
    checks.push(json.check());
    inputs.io.start("updating config.yaml");
    let config = config_yaml::update_config_yaml(home, &MpcConfigInputs::new(node), &user)
        .map_err(|e| e.stop(checks.clone()))?;
    checks.push(config.update.check());
    checks.extend(enum_forms(&config.config, inputs, commands).await);
    inputs.io.start("reading and writing secrets.json");
    let secrets_json = plan_secrets_json(inputs, secrets, chain)
        .and_then(|plan| secrets_file::apply(plan, &secrets.p2p, &secrets.account, &user))
        .map_err(|e| e.stop(checks.clone()))?;
    checks.push(secrets_json.check());
    inputs.io.stop();
    if let Some(stop) = StageStop::of(Stage::Home, StopKind::Blocking, checks.clone()) {
        return Err(stop);
    }
    let home = NodeHome {
        user,
        store_key,
        backup_key,
        config,
        stored,
    };
    Ok(Staged::new(home, checks))
}

/// The store key the node will use, with `homes.store_key`; `Err` is the failed check.
async fn store_key(
    inputs: &HomeInputs<'_>,
    secrets: &NodeSecrets,
) -> Result<(Secret, Check, bool), Check> {
    let plan = plan_store_key(inputs, secrets).await;
    match plan.choice {
        StoreKeyChoice::Use(key) => {
            let source = secrets.source(secrets::SecretName::SecretStoreKey);
            tracing::info!(fingerprint = %key.fingerprint(), %source, generated = false, "the node's secret store key");
            Ok((key, plan.check, false))
        }
        StoreKeyChoice::Refuse => Err(plan.check),
        StoreKeyChoice::Generate => {
            let generated = inputs
                .io
                .aside(secrets::generated::generate(
                    inputs.secrets,
                    inputs.env,
                    secrets::SecretName::SecretStoreKey,
                ))
                .await;
            match generated {
                Ok(stored) => {
                    tracing::info!(fingerprint = %stored.key.fingerprint(), source = %stored.source, generated = true, "the node's secret store key");
                    let check = Check::ok(
                        plan.check.id,
                        format!(
                            "no store key existed and the home holds no share: generated one (sha256:{}…) and stored it in {} before first use",
                            stored.key.fingerprint(),
                            stored.source
                        ),
                    );
                    Ok((stored.key, check, true))
                }
                Err(e) => Err(Check::fail(
                    plan.check.id,
                    format!("cannot keep a generated store key: {}", e.cause),
                    e.fix,
                )),
            }
        }
    }
}
