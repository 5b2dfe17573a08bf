//! The home stage's read-only half: where the home is (filesystem, mount,
//! space, owner, whether a write lands, the EFS behind it when it is not
//! NFS), and what the next boot will do with it (lock holder, init marker,
//! tier3 address, store key, config.json, config.yaml, secrets.json).
//! `agent doctor` shows exactly these checks; `agent run` judges the same
//! ones before and under the lock, so both always reach the same verdict.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::config_json::{NearConfigInputs, pending_config_json};
use super::config_yaml::{self, MpcConfigInputs, pending_config_yaml};
use super::filesystem::{self, Filesystem};
use super::init::{self, InitError};
use super::runner::{IoWatch, Stall};
use super::secrets_file::{self, SecretsJsonOutcome};
use super::store_key::{self, StoreKeyVerdict};
use super::{Edit, HomeError, NodeUser, lock};
use crate::check::{Check, Status};
use crate::config::settings::Id;
use crate::config::{HomeSettings, Node};
use crate::keys::ChainFacts;
use crate::node_binary::{self, Launch, NodeCommands};
use crate::secrets::{self, NodeSecrets, Secret, SecretName, SecretSettings};
use crate::stage::{Failure, Stage, StageStop, StopKind};

/// How `homes.writable` is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteTest {
    /// Write, fsync and remove a probe file (`agent run`, `agent init`).
    Probe,
    /// Ask for write permission without writing (`agent doctor`).
    Permission,
}

/// Where the home is and what the boot would run on.
pub struct HomeInputs<'a> {
    pub node: &'a Node,
    pub homes: &'a HomeSettings,
    pub secrets: &'a SecretSettings,
    /// `AGENT_EFS_FILE_SYSTEM_ID`: asked about when the home is not on NFS.
    pub efs_file_system_id: Option<&'a str>,
    /// The process environment (AWS settings, task metadata).
    pub env: &'a BTreeMap<String, String>,
    /// Where the stage marks its file work, for a watcher on another thread.
    pub io: IoWatch,
}

/// The home as found before the lock: the user the node runs as, and the
/// checks that say whether the node can keep its state there.
pub struct HomeInspection {
    pub user: NodeUser,
    /// `homes.filesystem`, `homes.free_space`, `homes.owner`, `homes.writable`,
    /// led by the EFS failures that explain a home that is not on EFS.
    pub checks: Vec<Check>,
}

/// The home stage's stop on `failure`, after the checks made so far.
pub(super) fn refused(checks: Vec<Check>, failure: Failure) -> StageStop {
    StageStop::after(Stage::Home, StopKind::Blocking, checks, failure)
}

impl HomeError {
    /// The home stage's stop on this error, after the checks made so far.
    pub fn stop(self, checks: Vec<Check>) -> StageStop {
        let kind = match self {
            HomeError::LockTimeout { .. } => StopKind::LockTimeout,
            _ => StopKind::Blocking,
        };
        StageStop::after(Stage::Home, kind, checks, self.failure())
    }
}

impl Stall {
    /// The home stage's stop on a home that does not answer.
    pub fn stop(&self, home: &Path, limit: Duration) -> StageStop {
        StageStop::after(
            Stage::Home,
            StopKind::Stalled,
            Vec::new(),
            self.failure(home, limit, Id::HomeIoTimeout.name()),
        )
    }
}

/// Looks at the home before the lock. `Err` when there is no usable home
/// (missing, unknown node user) or when a check fails: a home the node cannot
/// keep its shares on blocks whatever the key policy says.
pub async fn inspect(
    inputs: &HomeInputs<'_>,
    write: WriteTest,
) -> Result<HomeInspection, StageStop> {
    let home = inputs.node.home_dir.as_path();
    inputs.io.start(format!(
        "inspecting it (owner, filesystem, mount, free space{})",
        if write == WriteTest::Probe {
            ", a test write"
        } else {
            ""
        }
    ));
    let user =
        NodeUser::resolve(inputs.homes.node_user.as_ref(), home).map_err(|e| e.stop(Vec::new()))?;
    let fs = filesystem::inspect(home).map_err(|e| e.stop(Vec::new()))?;
    let fs_checks = fs.checks(inputs.homes, &user);
    let mut checks = Vec::new();
    if fs_checks
        .iter()
        .any(|c| c.id == "homes.filesystem" && c.status == Status::Fail)
    {
        // The EFS side says why the home is not on EFS: it leads the reasons.
        checks.extend(inputs.io.aside(efs_failures(inputs)).await);
    }
    checks.extend(fs_checks);
    checks.push(match write {
        WriteTest::Probe => fs.probe_writable(),
        WriteTest::Permission => writable_by_permission(&fs),
    });
    if let Some(stop) = StageStop::of(Stage::Home, StopKind::Blocking, checks.clone()) {
        return Err(stop);
    }
    Ok(HomeInspection { user, checks })
}

/// What is wrong with the home's EFS, if anything: no mount target in this
/// zone, port 2049 closed.
async fn efs_failures(inputs: &HomeInputs<'_>) -> Vec<Check> {
    let Some(id) = inputs.efs_file_system_id else {
        return Vec::new();
    };
    let limit = Duration::from_secs(5);
    let zone = crate::placement::availability_zone(inputs.env, limit).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    tokio::time::timeout(
        limit * 2,
        super::efs::checks(&sdk, id, zone.as_deref(), limit),
    )
    .await
    .unwrap_or_default()
    .into_iter()
    .filter(|c| c.status == Status::Fail)
    .collect()
}

/// `homes.writable` without writing: the mount, the permission, and room
/// for the probe `agent run` writes.
fn writable_by_permission(fs: &Filesystem) -> Check {
    let home = fs.home.as_path();
    if fs.read_only {
        // The same verdict, cause and fix as the probe's.
        return fs.probe_writable();
    }
    if fs.free_bytes < filesystem::PROBE_BYTES as u64 {
        return Check::fail(
            "homes.writable",
            format!(
                "a write to {} would fail: No space left on device ({} bytes free)",
                home.display(),
                fs.free_bytes
            ),
            "free space on the volume or grow it",
        );
    }
    match nix::unistd::access(home, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => Check::ok(
            "homes.writable",
            format!("{} is writable (checked without writing)", home.display()),
        ),
        Err(e) => Check::fail(
            "homes.writable",
            format!("{} is not writable: {e}", home.display()),
            "mount the volume read-write (no readOnly in the task definition's mountPoints)",
        ),
    }
}

impl HomeInspection {
    /// What the next boot would do with the home, without the lock and
    /// without writing: the checks `agent doctor` adds to [`Self::checks`].
    /// `secrets` and `chain` are the validated secrets and the chain's
    /// answers, when there are any.
    /// `commands` asks the node's binary what it offers (`--help`), where a
    /// verdict depends on it.
    pub async fn survey(
        &self,
        inputs: &HomeInputs<'_>,
        secrets: Option<&NodeSecrets>,
        chain: Option<&ChainFacts>,
        commands: &impl NodeCommands,
    ) -> Vec<Check> {
        let node = inputs.node;
        let home = node.home_dir.as_path();
        let mut checks = vec![lock_holder(home), init_marker(home, node)];
        checks.extend(tier3(inputs, commands).await);
        checks.push(drift(
            "homes.config.json",
            pending_config_json(home, &NearConfigInputs::new(node, inputs.homes)),
        ));
        checks.push(drift(
            "homes.config.yaml",
            pending_config_yaml(home, &MpcConfigInputs::new(node)),
        ));
        if let Ok(Some(config)) = config_yaml::current(home) {
            checks.extend(enum_forms(&config, inputs, commands).await);
        }
        if let Some(secrets) = secrets {
            checks.push(match plan_secrets_json(inputs, secrets, chain) {
                Ok(plan) => plan.check(),
                Err(e) => e.check(),
            });
            checks.push(plan_store_key(inputs, secrets).await.check);
            checks.push(super::backup_key::plan(inputs, secrets).check);
        }
        checks
    }
}

/// `homes.tier3` off mpc-localnet: nearcore's `tier3_public_addr` is the
/// address peers reach it on to serve state parts; without it a node behind
/// NAT (any ECS task) advertises an address nobody reaches and peer state
/// sync stalls silently. Like upstream, a fresh init for an image with
/// `start-with-config-file` is refused without it; otherwise a warning. The
/// image is asked (`--help`, through `commands`) only when that decides it.
pub(super) async fn tier3(inputs: &HomeInputs<'_>, commands: &impl NodeCommands) -> Option<Check> {
    let node = inputs.node;
    if node.chain == crate::config::Chain::Localnet {
        return None;
    }
    const ID: &str = "homes.tier3";
    if let Some(addr) = node.tier3_public_addr {
        return Some(Check::ok(
            ID,
            format!("MPC_TIER3_PUBLIC_ADDR={addr}: peers reach nearcore there for state sync"),
        ));
    }
    let cause = "MPC_TIER3_PUBLIC_ADDR is not set: nearcore advertises the address it sees itself on, which peers behind NAT (an ECS task, a private subnet) cannot reach, so state sync from peers (state_sync.sync = \"Peers\") stalls without an error";
    let fix = "set MPC_TIER3_PUBLIC_ADDR to the public IP:port peers reach nearcore's 24567 on (an Elastic IP or the NLB address)";
    let fresh = std::fs::symlink_metadata(node.home_dir.join("config.json")).is_err();
    if !fresh
        || node_binary::kind(inputs.homes.start_mode, &node.bin, commands).await
            != Launch::StartWithConfigFile
    {
        return Some(Check::warn(ID, cause, fix));
    }
    Some(Check::fail(
        ID,
        format!(
            "{cause}; the node's start-with-config-file refuses a fresh {} init without it",
            node.chain.as_str()
        ),
        fix,
    ))
}

/// `homes.config.yaml.enums`, when config.yaml writes an enum field of
/// upstream's `ConfigFile` in the map form (`{Block: {height: N}}`), which
/// mpc-node's YAML parser refuses. `mpc-node start` reads config.yaml, so it
/// would exit on it: a failure. `start-with-config-file` reads the start
/// file, where the map form means what the tag means: the node starts, with
/// a warning, since a legacy start would refuse the file. The agent never
/// rewrites the operator's value. The image is asked (`--help`, through
/// `commands`) only when such a field is there.
pub(super) async fn enum_forms(
    config: &serde_yaml::Value,
    inputs: &HomeInputs<'_>,
    commands: &impl NodeCommands,
) -> Option<Check> {
    const ID: &str = "homes.config.yaml.enums";
    let found = config_yaml::map_forms(config);
    if found.is_empty() {
        return None;
    }
    let written = found
        .iter()
        .map(|f| format!("{} as {}", f.field, f.written))
        .collect::<Vec<_>>()
        .join(", ");
    let cause = format!(
        "config.yaml writes {written}: the map form, which mpc-node's YAML parser refuses (it reads an enum's variant as a YAML tag, `!Block {{height: N}}`, or a bare name, `Latest`); the agent leaves config.yaml as it is"
    );
    let fix = found
        .iter()
        .map(|f| match &f.tag_form {
            Some(tag_form) => format!("write `{tag_form}` for {} in config.yaml", f.field),
            None => format!(
                "write {} in config.yaml as one variant: a YAML tag with its data (`!Block {{height: N}}`) or a bare name (`Latest`)",
                f.field
            ),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = serde_json::json!({
        "fields": found.iter().map(|f| &f.field).collect::<Vec<_>>(),
    });
    let readable = found.iter().all(|f| f.tag_form.is_some());
    let launch = node_binary::kind(inputs.homes.start_mode, &inputs.node.bin, commands).await;
    if readable && launch == Launch::StartWithConfigFile {
        return Some(
            Check::warn(
                ID,
                format!(
                    "{cause}; start-with-config-file reads it from the start file, where it means the same, so the node starts, but `mpc-node start` (an image without start-with-config-file, or AGENT_START_MODE=legacy) would refuse config.yaml"
                ),
                fix,
            )
            .with_detail(detail),
        );
    }
    Some(
        Check::fail(
            ID,
            format!("{cause}; the node would refuse it and exit at start"),
            fix,
        )
        .with_detail(detail),
    )
}

/// `homes.lock`: who holds the lock, read without taking it.
fn lock_holder(home: &Path) -> Check {
    match (lock::is_held(home), lock::read_holder(home)) {
        (Ok(true), Ok(holder)) => Check::ok(
            "homes.lock",
            format!(
                "held by {}",
                holder.map_or_else(
                    || "an agent that left no holder record".to_string(),
                    |h| h.to_string()
                )
            ),
        ),
        (Ok(false), _) => Check::ok("homes.lock", "free: no agent runs a node on this home"),
        (Err(e), _) | (_, Err(e)) => e.check(),
    }
}

/// `homes.init`: the marker the first init leaves, against `MPC_ENV`.
fn init_marker(home: &Path, node: &Node) -> Check {
    match init::read_marker(home) {
        Ok(Some(marker)) if marker.chain == node.chain.as_str() => Check::ok(
            "homes.init",
            format!(
                "initialized for {} by agent {}",
                marker.chain, marker.agent_version
            ),
        ),
        Ok(Some(marker)) => HomeError::Init(InitError::OtherChain {
            initialized: marker.chain,
            configured: node.chain.as_str().to_string(),
        })
        .check(),
        Ok(None) => Check::ok(
            "homes.init",
            "not initialized yet: the first boot runs mpc-node init",
        ),
        Err(e) => e.check(),
    }
}

/// What the next boot would change in a file the node reads.
fn drift(id: &str, pending: Result<Option<Vec<Edit>>, HomeError>) -> Check {
    match pending {
        Ok(None) => Check::ok(id, "not there yet: the boot writes it"),
        Ok(Some(edits)) if edits.is_empty() => Check::ok(id, "as the agent writes it"),
        // The agent's own settings, set again on every boot: what run does, not a problem.
        Ok(Some(edits)) => Check::ok(
            id,
            format!(
                "the next boot sets {} again (a backup is kept); values changed by hand there do not last",
                edits.iter().map(|e| e.path.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_detail(serde_json::to_value(&edits).unwrap_or_default()),
        Err(e) => e.check(),
    }
}

/// What the boot does with `secrets.json` (the rule of `AGENT_SECRETS_JSON`).
pub(super) fn plan_secrets_json(
    inputs: &HomeInputs<'_>,
    secrets: &NodeSecrets,
    chain: Option<&ChainFacts>,
) -> Result<SecretsJsonOutcome, HomeError> {
    secrets_file::plan_secrets_json(
        &inputs.node.home_dir,
        &secrets.p2p,
        &secrets.account,
        inputs.homes.secrets_json,
        chain,
    )
}

/// Which store key the node will use.
pub(super) enum StoreKeyChoice {
    /// The configured key: it fits the shares.
    Use(Secret),
    /// No key anywhere and no share: generate one, store it, then use it.
    Generate,
    /// The node cannot start with any key the agent may give it.
    Refuse,
}

pub(super) struct StoreKeyPlan {
    pub choice: StoreKeyChoice,
    /// `homes.store_key` as the plan stands (before a generation).
    pub check: Check,
}

/// The store key policy: the configured key if it decrypts the shares (else
/// refused, naming the previous Secrets Manager version when that one does);
/// with no key, a generation when the home holds no share and
/// `AGENT_GENERATE_STORE_KEY` allows it. Reads only.
pub(super) async fn plan_store_key(inputs: &HomeInputs<'_>, secrets: &NodeSecrets) -> StoreKeyPlan {
    let home = inputs.node.home_dir.as_path();
    let refuse = |check| StoreKeyPlan {
        choice: StoreKeyChoice::Refuse,
        check,
    };
    if let Some(key) = &secrets.store_key {
        let verdict = match store_key::verify_store_key(home, key) {
            Ok(v) => v,
            Err(e) => return refuse(e.check()),
        };
        return match verdict {
            StoreKeyVerdict::DoesNotDecrypt { ref file, .. } => {
                refuse(does_not_decrypt(inputs, secrets, &verdict, file).await)
            }
            StoreKeyVerdict::Malformed { .. } => refuse(verdict.check()),
            _ => StoreKeyPlan {
                choice: StoreKeyChoice::Use(key.clone()),
                check: verdict.check(),
            },
        };
    }
    let id = "homes.store_key";
    match store_key::shares(home) {
        Err(e) => return refuse(e.check()),
        Ok(shares) if !shares.is_empty() => {
            let listed: Vec<String> = shares
                .iter()
                .map(|s| s.path.display().to_string())
                .collect();
            return refuse(Check::fail(
                id,
                format!(
                    "MPC_SECRET_STORE_KEY is set nowhere, but the home holds shares encrypted with one ({}); a new key would make them unreadable",
                    listed.join(", ")
                ),
                "restore the store key these shares were written with into its secret (Secrets Manager keeps earlier versions) or MPC_SECRET_STORE_KEY",
            ));
        }
        Ok(_) => {}
    }
    if !inputs.homes.generate_store_key {
        return refuse(Check::fail(
            id,
            "MPC_SECRET_STORE_KEY is set nowhere and AGENT_GENERATE_STORE_KEY is false",
            "provide MPC_SECRET_STORE_KEY (32 hex characters), or allow the agent to generate one on a home without shares",
        ));
    }
    if let Err(e) = secrets::generated::reference(inputs.secrets, SecretName::SecretStoreKey) {
        return refuse(Check::fail(
            id,
            format!("cannot keep a generated store key: {}", e.cause),
            e.fix,
        ));
    }
    StoreKeyPlan {
        choice: StoreKeyChoice::Generate,
        check: Check::ok(
            id,
            "no store key is set and the home holds no share: the boot generates one and stores it in Secrets Manager before first use",
        ),
    }
}

/// `homes.store_key` for a key that does not decrypt the shares, naming the
/// previous Secrets Manager version when that one does.
async fn does_not_decrypt(
    inputs: &HomeInputs<'_>,
    secrets: &NodeSecrets,
    verdict: &StoreKeyVerdict,
    file: &Path,
) -> Check {
    let check = verdict.check();
    let from_manager = matches!(
        secrets.source(SecretName::SecretStoreKey),
        secrets::Source::SecretsManager { .. }
    );
    if !from_manager {
        return check;
    }
    let home = inputs.node.home_dir.as_path();
    let previous = inputs
        .io
        .aside(secrets::generated::previous(inputs.secrets, inputs.env))
        .await;
    let Some(previous) = previous.filter(|p| {
        matches!(
            store_key::verify_store_key(home, &p.key),
            Ok(StoreKeyVerdict::Decrypts { .. })
        )
    }) else {
        return check;
    };
    let version = match &previous.source {
        secrets::Source::SecretsManager { version_id, .. } => {
            version_id.clone().unwrap_or_default()
        }
        _ => String::new(),
    };
    Check::fail(
        check.id.clone(),
        format!("{}; the previous version ({}) decrypts it", check.cause, previous.source),
        format!(
            "make that version current again: aws secretsmanager update-secret-version-stage --secret-id <id> --version-stage AWSCURRENT --move-to-version-id {version} (the shares in {} were written with it)",
            file.display()
        ),
    )
    .with_detail(check.detail.clone())
}
