//! The hex keys the agent may make for the node and keep in Secrets Manager
//! (the secret store key, the backup encryption key): stored before anything
//! uses them, read back, and the store key's version before the current one,
//! for a key that no longer decrypts the shares.

use std::collections::BTreeMap;
use std::time::Duration;

use super::SecretSettings;
use super::{
    FetchError, FetchErrorKind, SecretName, SecretRef, SecretsManager, Source, unpack, validate,
};
use crate::secrets::Secret;

/// A key and where it now lives.
pub struct StoredKey {
    pub key: Secret,
    pub source: Source,
}

/// What a kept key is: its length and how it is described.
struct Kind {
    bytes: usize,
    what: &'static str,
}

fn kind(name: SecretName) -> Kind {
    match name {
        SecretName::SecretStoreKey => Kind {
            bytes: 16,
            what: "secret store key (AES-128-GCM)",
        },
        _ => Kind {
            bytes: 32,
            what: "backup encryption key",
        },
    }
}

/// The secret a generated `name` is kept in, or why there is none.
pub fn reference(settings: &SecretSettings, name: SecretName) -> Result<SecretRef, FetchError> {
    let env_name = name.env_name();
    match super::reference_for(settings, name) {
        Some(Ok(reference)) => Ok(reference),
        Some(Err(rule)) => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: format!("the secret id for {env_name} {}", rule.rule),
            fix: rule.fix,
        }),
        None => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: format!(
                "no Secrets Manager secret is configured to keep a generated {env_name} in"
            ),
            fix: format!(
                "set AGENT_SECRET_ID_{env_name} (or AGENT_SECRET_ID_TEMPLATE) so the generated key is stored before first use, or provide {env_name}"
            ),
        }),
    }
}

/// Generates a random `name` and keeps it (see [`keep`]).
pub async fn generate(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
    name: SecretName,
) -> Result<StoredKey, FetchError> {
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; kind(name).bytes]);
    rand::thread_rng().fill_bytes(&mut bytes);
    keep(
        settings,
        env,
        name,
        &Secret::new(hex::encode(bytes.as_slice())),
    )
    .await
}

/// Stores `value` as `name` in its configured secret unless the secret
/// already holds one; returns what Secrets Manager holds then, so agents
/// racing on one secret all use the same key.
pub async fn keep(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
    name: SecretName,
    value: &Secret,
) -> Result<StoredKey, FetchError> {
    let reference = reference(settings, name)?;
    let manager = SecretsManager::connect(env, settings.timeout.min(Duration::from_secs(5))).await;
    let description = format!(
        "MPC node {} ({}), kept by mpc-agent",
        kind(name).what,
        name.env_name()
    );
    let stored = manager.store_generated(&reference, value, &description);
    let fetched = tokio::time::timeout(settings.timeout, stored)
        .await
        .map_err(|_| FetchError {
            kind: FetchErrorKind::Unavailable,
            cause: format!(
                "Secrets Manager at {} did not answer within AGENT_SECRETS_TIMEOUT while storing {}",
                manager.endpoint(),
                name.env_name()
            ),
            fix: "check the network path to Secrets Manager, then retry".into(),
        })??;
    let (value, source) = unpack(fetched, &reference, name).map_err(|(_, e)| e)?;
    let key = checked(name, value, &source)?;
    Ok(StoredKey { key, source })
}

/// The `AWSPREVIOUS` version of the store key's secret, when it has one and it is a valid key.
pub async fn previous(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
) -> Option<StoredKey> {
    let name = SecretName::SecretStoreKey;
    let reference = reference(settings, name).ok()?;
    let manager = SecretsManager::connect(env, settings.timeout.min(Duration::from_secs(5))).await;
    let fetched = tokio::time::timeout(
        settings.timeout,
        manager.get(&reference, Some("AWSPREVIOUS")),
    )
    .await
    .ok()?
    .ok()?;
    let (value, source) = unpack(fetched, &reference, name).ok()?;
    let key = checked(name, value, &source).ok()?;
    Some(StoredKey { key, source })
}

fn checked(name: SecretName, value: Secret, source: &Source) -> Result<Secret, FetchError> {
    let kind = kind(name);
    validate::hex_key(value.expose(), kind.bytes, kind.what).map_err(|rule| FetchError {
        kind: FetchErrorKind::Other,
        cause: format!("{} from {source} {}", name.env_name(), rule.rule),
        fix: rule.fix,
    })
}
