//! The backup encryption key kept across starts. Given none, the node makes a
//! new one into `$MPC_HOME_DIR/backup_encryption_key.hex` on every start, and
//! a backup service holding shares encrypted under the previous one cannot
//! hand them back. So, with no key configured and `AGENT_GENERATE_BACKUP_KEY`,
//! the agent keeps one in the key's Secrets Manager secret before the node
//! starts — the home's file's key when there is one, else a fresh one — and
//! gives the node that key on every boot.

use std::path::Path;

use super::{HomeError, HomeInputs, beneath};
use crate::check::Check;
use crate::secrets::{self, NodeSecrets, Secret, SecretName};

/// The node's own backup key file, in the home.
pub const FILE: &str = "backup_encryption_key.hex";

const ID: &str = "homes.backup_key";

/// What the boot does about the backup key.
pub(super) enum BackupKeyChoice {
    /// The configured key.
    Use(Secret),
    /// Store `adopted` (the home's file's key), or a fresh key when `None`,
    /// in the key's secret, then give the node what the secret holds.
    Keep {
        adopted: Option<Secret>,
    },
    /// No secret to keep a key in: the home's file's key, kept nowhere else.
    HomeOnly(Secret),
    /// The node makes its own on this start.
    LeaveToNode,
    Refuse,
}

pub(super) struct BackupKeyPlan {
    pub choice: BackupKeyChoice,
    /// `homes.backup_key` as the plan stands (before a key is stored).
    pub check: Check,
}

/// The backup key policy. Reads only.
pub(super) fn plan(inputs: &HomeInputs<'_>, secrets: &NodeSecrets) -> BackupKeyPlan {
    let name = SecretName::BackupEncryptionKey;
    if let Some(key) = &secrets.backup_key {
        return BackupKeyPlan {
            check: Check::ok(
                ID,
                format!(
                    "the node gets MPC_BACKUP_ENCRYPTION_KEY_HEX (sha256:{}…) from {} on every start",
                    key.fingerprint(),
                    secrets.source(name)
                ),
            ),
            choice: BackupKeyChoice::Use(key.clone()),
        };
    }
    if !inputs.homes.generate_backup_key {
        return BackupKeyPlan {
            choice: BackupKeyChoice::LeaveToNode,
            check: Check::warn(
                ID,
                "MPC_BACKUP_ENCRYPTION_KEY_HEX is set nowhere and AGENT_GENERATE_BACKUP_KEY is false: the node makes a new backup key on every start, so a backup taken under an earlier one cannot be put back",
                "set MPC_BACKUP_ENCRYPTION_KEY_HEX (64 hex characters, e.g. openssl rand -hex 32), or allow the agent to keep one (AGENT_GENERATE_BACKUP_KEY=true)",
            ),
        };
    }
    let home = inputs.node.home_dir.as_path();
    let file = home.join(FILE);
    let adopted = match home_key(home) {
        Ok(found) => found,
        Err(e) => {
            return BackupKeyPlan {
                choice: BackupKeyChoice::Refuse,
                check: e.check(),
            };
        }
    };
    let mut not_a_key = String::new();
    let adopted = match adopted {
        Some(Ok(key)) => Some(key),
        Some(Err(rule)) => {
            not_a_key = format!(" ({} {rule}; it is not adopted)", file.display());
            None
        }
        None => None,
    };
    let reference = secrets::generated::reference(inputs.secrets, name);
    match (reference, adopted) {
        (Ok(_), adopted) => BackupKeyPlan {
            check: Check::ok(
                ID,
                match &adopted {
                    Some(key) => format!(
                        "no backup key is configured: the boot keeps the key of {} (sha256:{}…) in Secrets Manager and gives it to the node",
                        file.display(),
                        key.fingerprint()
                    ),
                    None => format!(
                        "no backup key is configured: the boot generates one, keeps it in Secrets Manager and gives it to the node{not_a_key}"
                    ),
                },
            ),
            choice: BackupKeyChoice::Keep { adopted },
        },
        (Err(e), Some(key)) => BackupKeyPlan {
            check: Check::warn(
                ID,
                format!(
                    "the node gets the key of {} (sha256:{}…), kept nowhere but on this home: {}",
                    file.display(),
                    key.fingerprint(),
                    e.cause
                ),
                e.fix,
            ),
            choice: BackupKeyChoice::HomeOnly(key),
        },
        (Err(e), None) => BackupKeyPlan {
            check: Check::warn(
                ID,
                format!(
                    "the node makes its own backup key on this start{not_a_key}, kept nowhere but on this home: {}",
                    e.cause
                ),
                e.fix,
            ),
            choice: BackupKeyChoice::LeaveToNode,
        },
    }
}

impl BackupKeyPlan {
    /// Whether the plan stores a key in Secrets Manager (generated, or adopted from the home).
    pub(super) fn keeps(&self) -> bool {
        matches!(self.choice, BackupKeyChoice::Keep { .. })
    }
}

/// The key the node is started with, and `homes.backup_key`; `Err` is the failed check.
pub(super) async fn apply(
    plan: BackupKeyPlan,
    inputs: &HomeInputs<'_>,
) -> Result<(Option<Secret>, Check), Check> {
    let name = SecretName::BackupEncryptionKey;
    let (key, check) = match plan.choice {
        BackupKeyChoice::Use(key) | BackupKeyChoice::HomeOnly(key) => (Some(key), plan.check),
        BackupKeyChoice::LeaveToNode => (None, plan.check),
        BackupKeyChoice::Refuse => return Err(plan.check),
        BackupKeyChoice::Keep { adopted } => {
            let stored = match &adopted {
                Some(key) => {
                    let keep = secrets::generated::keep(inputs.secrets, inputs.env, name, key);
                    inputs.io.aside(keep).await
                }
                None => {
                    let generate = secrets::generated::generate(inputs.secrets, inputs.env, name);
                    inputs.io.aside(generate).await
                }
            };
            let stored = stored.map_err(|e| {
                Check::fail(ID, format!("cannot keep a backup key: {}", e.cause), e.fix)
            })?;
            let what = match adopted {
                Some(_) => format!("adopted the key of {FILE}"),
                None => "generated one".to_string(),
            };
            let check = Check::ok(
                ID,
                format!(
                    "no backup key was configured: {what} (sha256:{}…) and stored it in {} before the node started",
                    stored.key.fingerprint(),
                    stored.source
                ),
            );
            tracing::info!(fingerprint = %stored.key.fingerprint(), source = %stored.source, "the node's backup encryption key");
            (Some(stored.key), check)
        }
    };
    Ok((key, check))
}

/// The key in the home's [`FILE`]: `None` when there is none (or no home
/// yet), the rule it breaks when it is not one.
fn home_key(home: &Path) -> Result<Option<Result<Secret, String>>, HomeError> {
    let bytes = match beneath::read_file(home, Path::new(FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(HomeError::io("read", &home.join(FILE))(e)),
    };
    Ok(bytes.map(|bytes| {
        let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        secrets::hex_key(&text, 32, "backup encryption key").map_err(|rule| rule.rule)
    }))
}
