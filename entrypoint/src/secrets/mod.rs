//! The `secrets` stage: each of the node's secrets comes from the environment
//! (ECS `secrets:` injection lands there), else Secrets Manager, else a
//! directory; every one is validated fail-closed and every problem is named at
//! once. The values live only in [`Secret`]s.

mod aws;
pub mod generated;
mod reference;
mod secret;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::check::{Check, Rule, Status};
use crate::clients::Clients;
use crate::stage::{Stage, StageResult, StageStop, Staged, StopKind};
pub use aws::{FetchError, FetchErrorKind, Fetched, SecretsManager};
pub use reference::SecretRef;
pub use secret::{NodeKey, Secret};
pub use validate::hex_key;

/// The node's secrets, by their upstream environment names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SecretName {
    #[serde(rename = "MPC_ACCOUNT_SK")]
    AccountSk,
    #[serde(rename = "MPC_P2P_PRIVATE_KEY")]
    P2pPrivateKey,
    #[serde(rename = "MPC_SECRET_STORE_KEY")]
    SecretStoreKey,
    #[serde(rename = "MPC_BACKUP_ENCRYPTION_KEY_HEX")]
    BackupEncryptionKey,
}

impl SecretName {
    pub const ALL: [SecretName; 4] = [
        SecretName::AccountSk,
        SecretName::P2pPrivateKey,
        SecretName::SecretStoreKey,
        SecretName::BackupEncryptionKey,
    ];

    pub fn env_name(self) -> &'static str {
        match self {
            SecretName::AccountSk => "MPC_ACCOUNT_SK",
            SecretName::P2pPrivateKey => "MPC_P2P_PRIVATE_KEY",
            SecretName::SecretStoreKey => "MPC_SECRET_STORE_KEY",
            SecretName::BackupEncryptionKey => "MPC_BACKUP_ENCRYPTION_KEY_HEX",
        }
    }

    /// Without it the node cannot be the registered participant, so the agent refuses.
    /// The store key may be absent: the homes stage generates one when no share exists.
    fn required(self) -> bool {
        matches!(self, SecretName::AccountSk | SecretName::P2pPrivateKey)
    }
}

/// Where a secret's value came from; never the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Env {
        variable: String,
    },
    SecretsManager {
        id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        arn: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        version_stages: Vec<String>,
    },
    File {
        path: PathBuf,
    },
    /// The configured secret does not exist. The store key is then unset (and
    /// may be generated into it); so is a backup key named by the template.
    Missing {
        id: String,
    },
    Absent,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env { variable } => write!(f, "environment variable {variable}"),
            Source::SecretsManager { id, version_id, .. } => match version_id {
                Some(v) => write!(f, "Secrets Manager secret {id} (version {v})"),
                None => write!(f, "Secrets Manager secret {id}"),
            },
            Source::File { path } => write!(f, "file {}", path.display()),
            Source::Missing { id } => write!(f, "nowhere (no Secrets Manager secret {id})"),
            Source::Absent => write!(f, "nowhere"),
        }
    }
}

/// What the stage found for one secret: where it came from and whether it is
/// good, with the public key (for keys) or a fingerprint (for the hex keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretReport {
    pub name: SecretName,
    pub source: Source,
    pub status: Status,
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl SecretReport {
    /// The report a secret's check was made from (see [`SecretReport::check`]).
    pub fn from_check(check: &Check) -> Option<SecretReport> {
        let env_name = check.id.strip_prefix("secrets.")?;
        let name = *SecretName::ALL.iter().find(|n| n.env_name() == env_name)?;
        let detail = |field: &str| check.detail.get(field).cloned();
        let text = |field: &str| detail(field).and_then(|v| v.as_str().map(str::to_string));
        Some(SecretReport {
            name,
            source: serde_json::from_value(detail("source")?).ok()?,
            status: check.status,
            cause: check.cause.clone(),
            fix: check.fix.clone(),
            public_key: text("public_key"),
            fingerprint: text("fingerprint"),
        })
    }

    pub fn check(&self) -> Check {
        let check = Check {
            id: format!("secrets.{}", self.name.env_name()),
            status: self.status,
            cause: self.cause.clone(),
            fix: self.fix.clone(),
            detail: serde_json::Value::Null,
        };
        check.with_detail(serde_json::json!({
            "source": self.source,
            "public_key": self.public_key,
            "fingerprint": self.fingerprint,
        }))
    }
}

/// The validated secrets: the stage's output.
#[derive(Clone, Debug)]
pub struct NodeSecrets {
    /// MPC_ACCOUNT_SK: the signer (and responder) key of MPC_ACCOUNT_ID.
    pub account: NodeKey,
    pub p2p: NodeKey,
    /// Absent when nothing holds one; the homes stage decides whether to generate it.
    pub store_key: Option<Secret>,
    pub backup_key: Option<Secret>,
    pub report: Vec<SecretReport>,
}

impl NodeSecrets {
    pub fn source(&self, name: SecretName) -> &Source {
        &self
            .report
            .iter()
            .find(|r| r.name == name)
            .expect("every secret is reported")
            .source
    }
}

/// Where the node's secrets come from (`agent run`, `keys`, `init`, `doctor`).
#[derive(Clone, Debug)]
pub struct SecretSettings {
    /// Secrets Manager ids given per secret (`AGENT_SECRET_ID_<NAME>`), by secret name.
    pub ids: BTreeMap<&'static str, String>,
    pub template: Option<String>,
    pub dir: Option<PathBuf>,
    pub timeout: Duration,
    pub jitter: Duration,
    /// The chain the node joins: a key anyone can know is refused on testnet
    /// and mainnet, a warning on mpc-localnet.
    pub chain: Chain,
}

/// Fetches and validates every secret. `env` is the process environment.
pub async fn load(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
    clients: &Clients,
) -> StageResult<NodeSecrets> {
    let plan: Vec<(SecretName, Plan)> = SecretName::ALL
        .iter()
        .map(|name| (*name, plan(*name, settings, env)))
        .collect();
    let manager = if plan
        .iter()
        .any(|(_, p)| matches!(p, Plan::SecretsManager(Ok(_))))
    {
        if !settings.jitter.is_zero() {
            let delay = rand::thread_rng().gen_range(Duration::ZERO..=settings.jitter);
            tokio::time::sleep(delay).await;
        }
        Some(
            clients
                .secrets_manager(env, settings.timeout.min(Duration::from_secs(5)))
                .await,
        )
    } else {
        None
    };
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let fetches = plan.into_iter().map(|(name, plan)| {
        let manager = manager.clone();
        async move {
            (
                name,
                obtain(name, plan, manager.as_ref(), deadline, settings.timeout).await,
            )
        }
    });
    let raw: Vec<(SecretName, Obtained)> = futures::future::join_all(fetches).await;
    judge(raw, settings.chain)
}

/// One secret's raw value (`None`: set nowhere) and where it came from, or
/// why it could not be had.
type Obtained = Result<(Option<Secret>, Source), (Source, FetchError)>;

/// How one secret will be obtained.
enum Plan {
    Env(String, Secret),
    /// An optional secret (the store key, the backup key) may simply not
    /// exist yet: the homes stage may make it.
    SecretsManager(Result<SecretRef, Rule>),
    File(PathBuf),
    Absent,
}

/// The Secrets Manager secret configured for `name`: its own id, else the template.
pub fn reference_for(
    settings: &SecretSettings,
    name: SecretName,
) -> Option<Result<SecretRef, Rule>> {
    if let Some(id) = settings.ids.get(name.env_name()) {
        return Some(SecretRef::parse(id));
    }
    let template = settings.template.as_ref()?;
    Some(SecretRef::from_template(template, name.env_name()))
}

fn plan(name: SecretName, settings: &SecretSettings, env: &BTreeMap<String, String>) -> Plan {
    if let Some(value) = env.get(name.env_name()).filter(|v| !v.is_empty()) {
        return Plan::Env(name.env_name().to_string(), Secret::new(value.as_str()));
    }
    if let Some(reference) = reference_for(settings, name) {
        return Plan::SecretsManager(reference);
    }
    match settings.dir.as_deref().and_then(|dir| dir_file(dir, name)) {
        Some(path) => Plan::File(path),
        None => Plan::Absent,
    }
}

/// The raw value of one secret (JSON field selected), or why there is none.
async fn obtain(
    name: SecretName,
    plan: Plan,
    manager: Option<&SecretsManager>,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Obtained {
    match plan {
        Plan::Env(variable, value) => Ok((Some(value), Source::Env { variable })),
        Plan::Absent => Ok((None, Source::Absent)),
        Plan::File(path) => {
            let source = Source::File { path: path.clone() };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    source.clone(),
                    FetchError {
                        kind: FetchErrorKind::Other,
                        cause: format!("cannot read {}: {e}", path.display()),
                        fix: "make the file readable by the agent, or remove it".into(),
                    },
                )
            })?;
            let value =
                select_field(Secret::new(text), None, name).map_err(|e| (source.clone(), e))?;
            Ok((Some(value), source))
        }
        Plan::SecretsManager(Err(rule)) => Err((
            Source::Absent,
            FetchError {
                kind: FetchErrorKind::Other,
                cause: format!("the secret id for {} {}", name.env_name(), rule.rule),
                fix: rule.fix,
            },
        )),
        Plan::SecretsManager(Ok(reference)) => {
            let manager =
                manager.expect("a client exists whenever a secret comes from Secrets Manager");
            let pending = Source::SecretsManager {
                id: reference.describe(),
                arn: None,
                version_id: None,
                version_stages: Vec::new(),
            };
            let fetched = match tokio::time::timeout_at(deadline, manager.get(&reference, None))
                .await
            {
                Ok(Err(e)) if e.kind == FetchErrorKind::NotFound && !name.required() => {
                    return Ok((
                        None,
                        Source::Missing {
                            id: reference.secret_id,
                        },
                    ));
                }
                Ok(result) => result.map_err(|e| (pending.clone(), e))?,
                Err(_) => {
                    return Err((
                        pending,
                        FetchError {
                            kind: FetchErrorKind::Unavailable,
                            cause: format!(
                                "Secrets Manager at {} did not answer within AGENT_SECRETS_TIMEOUT ({}s) for {}",
                                manager.endpoint(),
                                timeout.as_secs_f64(),
                                reference.secret_id
                            ),
                            fix: "check the network path to Secrets Manager (VPC endpoint or NAT, security groups), or raise AGENT_SECRETS_TIMEOUT".into(),
                        },
                    ));
                }
            };
            let (value, source) = unpack(fetched, &reference, name)?;
            Ok((Some(value), source))
        }
    }
}

/// A fetched secret's value (its JSON field selected) and where it came from.
fn unpack(
    fetched: Fetched,
    reference: &SecretRef,
    name: SecretName,
) -> Result<(Secret, Source), (Source, FetchError)> {
    let source = Source::SecretsManager {
        id: reference.describe(),
        arn: fetched.arn,
        version_id: fetched.version_id,
        version_stages: fetched.version_stages,
    };
    match select_field(fetched.value, reference.json_key.as_deref(), name) {
        Ok(value) => Ok((value, source)),
        Err(e) => Err((source, e)),
    }
}

/// A plain value is the secret; a JSON object holds it under `json_key`, else
/// under the secret's name (upper or lower case).
pub fn select_field(
    raw: Secret,
    json_key: Option<&str>,
    name: SecretName,
) -> Result<Secret, FetchError> {
    if !raw.expose().trim_start().starts_with('{') {
        if let Some(key) = json_key {
            return Err(FetchError {
                kind: FetchErrorKind::Other,
                cause: format!("the secret is plain text, but JSON key {key:?} was asked for"),
                fix: "drop the JSON key from the secret id, or store the secret as a JSON object"
                    .into(),
            });
        }
        return Ok(raw);
    }
    let mut object: serde_json::Map<String, serde_json::Value> =
        match serde_json::from_str(raw.expose()) {
            Ok(serde_json::Value::Object(o)) => o,
            // Not JSON after all (or not an object): the text is the secret.
            Ok(mut other) => {
                wipe(&mut other);
                return Ok(raw);
            }
            Err(_) => return Ok(raw),
        };
    let lower = name.env_name().to_ascii_lowercase();
    let wanted: Vec<&str> = match json_key {
        Some(key) => vec![key],
        None => vec![name.env_name(), lower.as_str()],
    };
    let found = wanted
        .iter()
        .find(|k| object.contains_key(**k))
        .map(|k| k.to_string());
    let fields: Vec<String> = object.keys().cloned().collect();
    let selected = match found.as_deref().and_then(|k| object.get_mut(k)) {
        // Moved out, not copied: the only copy left is the `Secret`.
        Some(serde_json::Value::String(s)) => Ok(Secret::new(std::mem::take(s))),
        Some(_) => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: format!(
                "JSON field {:?} of the secret is not a string",
                found.as_deref().unwrap_or_default()
            ),
            fix: "store the key as a JSON string".into(),
        }),
        None => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: format!(
                "the secret is a JSON object without the field {} (its fields: {})",
                wanted.join(" or "),
                fields.join(", ")
            ),
            fix: "name the field in the secret id (…:json-key::) or rename the field".into(),
        }),
    };
    for value in object.values_mut() {
        wipe(value);
    }
    selected
}

/// Zeroes every string in a parsed secret (other fields may be secrets too).
fn wipe(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Validates every obtained value and cross-checks them.
fn judge(raw: Vec<(SecretName, Obtained)>, chain: Chain) -> StageResult<NodeSecrets> {
    let mut report = Vec::new();
    let mut keys: BTreeMap<SecretName, NodeKey> = BTreeMap::new();
    let mut hex: BTreeMap<SecretName, Secret> = BTreeMap::new();
    for (name, obtained) in raw {
        let entry =
            |source: Source, status: Status, cause: String, fix: Option<String>| SecretReport {
                name,
                source,
                status,
                cause,
                fix,
                public_key: None,
                fingerprint: None,
            };
        let (value, source) = match obtained {
            Err((source, e)) => {
                report.push(entry(source, Status::Fail, e.cause, Some(e.fix)));
                continue;
            }
            Ok((None, source)) if name.required() => {
                report.push(entry(
                    source,
                    Status::Fail,
                    format!("{} is not set anywhere", name.env_name()),
                    Some(format!(
                        "set AGENT_SECRET_ID_{0} (or AGENT_SECRET_ID_TEMPLATE) to its Secrets Manager secret, or inject {0} through the task definition's secrets",
                        name.env_name()
                    )),
                ));
                continue;
            }
            Ok((None, source)) => {
                let cause = match name {
                    SecretName::SecretStoreKey => {
                        "not set: one is generated at first boot if the home holds no share"
                    }
                    _ => {
                        "not set: one is generated (or the home's backup_encryption_key.hex adopted) and kept if AGENT_GENERATE_BACKUP_KEY allows"
                    }
                };
                report.push(entry(source, Status::Skipped, cause.into(), None));
                continue;
            }
            Ok((Some(value), source)) => (value, source),
        };
        let prefix = format!("{} from {source}", name.env_name());
        if let Some(what) = validate::placeholder(value.expose()) {
            report.push(entry(
                source,
                Status::Fail,
                format!("{prefix} {what}"),
                Some(format!("put the real {} into its source", name.env_name())),
            ));
            continue;
        }
        let mut known = None;
        let checked = match name {
            SecretName::AccountSk | SecretName::P2pPrivateKey => {
                validate::ed25519_key(value.expose()).map(|key| {
                    let public = key.public.to_string();
                    known = validate::publicly_known_ed25519(&key);
                    keys.insert(name, key);
                    (Some(public), None)
                })
            }
            SecretName::SecretStoreKey | SecretName::BackupEncryptionKey => {
                let (bytes, what) = match name {
                    SecretName::SecretStoreKey => (16, "secret store key (AES-128-GCM)"),
                    _ => (32, "backup encryption key"),
                };
                validate::hex_key(value.expose(), bytes, what).map(|key| {
                    let fingerprint = key.fingerprint();
                    known = validate::publicly_known_hex(&key);
                    hex.insert(name, key);
                    (None, Some(fingerprint))
                })
            }
        };
        match checked.map(|shown| (shown, known)) {
            Ok(((public_key, fingerprint), Some(why))) => {
                let status = match chain {
                    Chain::Localnet => Status::Warn,
                    Chain::Testnet | Chain::Mainnet => Status::Fail,
                };
                let fix = match name {
                    SecretName::AccountSk | SecretName::P2pPrivateKey => format!(
                        "generate a fresh key (near generate-key) and put it into {source}; off mpc-localnet a key anyone can derive is refused"
                    ),
                    _ => format!(
                        "generate a fresh key (openssl rand -hex {}) and put it into {source}; off mpc-localnet a key anyone can know is refused",
                        if name == SecretName::SecretStoreKey {
                            16
                        } else {
                            32
                        }
                    ),
                };
                let (public_key, fingerprint) = match status {
                    Status::Fail => (None, None),
                    _ => (public_key, fingerprint),
                };
                report.push(SecretReport {
                    public_key,
                    fingerprint,
                    ..entry(
                        source,
                        status,
                        format!("{prefix} {why} (MPC_ENV={})", chain.as_str()),
                        Some(fix),
                    )
                })
            }
            Ok(((public_key, fingerprint), None)) => {
                let shown = match (&public_key, &fingerprint) {
                    (Some(pk), _) => format!("public key {pk}"),
                    (_, Some(f)) => format!("fingerprint sha256:{f}…"),
                    _ => unreachable!("every valid secret shows a public key or a fingerprint"),
                };
                report.push(SecretReport {
                    public_key,
                    fingerprint,
                    ..entry(
                        source,
                        Status::Ok,
                        format!("{prefix} is valid: {shown}"),
                        None,
                    )
                })
            }
            Err(rule) => report.push(entry(
                source,
                Status::Fail,
                format!("{prefix} {}", rule.rule),
                Some(rule.fix),
            )),
        }
    }
    cross_check(&mut report, &keys, &hex);
    let checks: Vec<Check> = report.iter().map(SecretReport::check).collect();
    if let Some(stop) = StageStop::of(Stage::Secrets, StopKind::Blocking, checks.clone()) {
        return Err(stop);
    }
    let secrets = NodeSecrets {
        account: keys
            .remove(&SecretName::AccountSk)
            .expect("required and valid"),
        p2p: keys
            .remove(&SecretName::P2pPrivateKey)
            .expect("required and valid"),
        store_key: hex.remove(&SecretName::SecretStoreKey),
        backup_key: hex.remove(&SecretName::BackupEncryptionKey),
        report,
    };
    Ok(Staged::new(secrets, checks))
}

/// Two different secrets must never hold the same value.
fn cross_check(
    report: &mut [SecretReport],
    keys: &BTreeMap<SecretName, NodeKey>,
    hex: &BTreeMap<SecretName, Secret>,
) {
    if let (Some(account), Some(p2p)) = (
        keys.get(&SecretName::AccountSk),
        keys.get(&SecretName::P2pPrivateKey),
    ) && account.public == p2p.public
    {
        fail(
            report,
            SecretName::P2pPrivateKey,
            "holds the same key as MPC_ACCOUNT_SK: the account key reused as the p2p key".into(),
            "generate a separate ed25519 key for MPC_P2P_PRIVATE_KEY (the contract knows it as the node's tls_public_key)".into(),
        );
    }
    if let (Some(store), Some(backup)) = (
        hex.get(&SecretName::SecretStoreKey),
        hex.get(&SecretName::BackupEncryptionKey),
    ) && backup.expose().starts_with(store.expose())
    {
        fail(
            report,
            SecretName::BackupEncryptionKey,
            "repeats MPC_SECRET_STORE_KEY".into(),
            "generate an independent backup key (openssl rand -hex 32)".into(),
        );
    }
}

fn fail(report: &mut [SecretReport], name: SecretName, cause: String, fix: String) {
    if let Some(r) = report.iter_mut().find(|r| r.name == name) {
        r.status = Status::Fail;
        r.cause = format!("{} from {} {cause}", name.env_name(), r.source);
        r.fix = Some(fix);
        r.public_key = None;
        r.fingerprint = None;
    }
}

/// The file of `name` in a secrets directory (`MPC_ACCOUNT_SK` or `mpc_account_sk`), if there.
fn dir_file(dir: &Path, name: SecretName) -> Option<PathBuf> {
    [
        name.env_name().to_string(),
        name.env_name().to_ascii_lowercase(),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_from_its_check() {
        let report = SecretReport {
            name: SecretName::P2pPrivateKey,
            source: Source::Env {
                variable: "MPC_P2P_PRIVATE_KEY".into(),
            },
            status: Status::Fail,
            cause: "MPC_P2P_PRIVATE_KEY is a placeholder".into(),
            fix: Some("put the node's p2p key there".into()),
            public_key: None,
            fingerprint: Some("sha256:12ab".into()),
        };
        assert_eq!(SecretReport::from_check(&report.check()), Some(report));
        assert_eq!(
            SecretReport::from_check(&Check::ok("keys.rpc", "answered")),
            None
        );
    }
}
