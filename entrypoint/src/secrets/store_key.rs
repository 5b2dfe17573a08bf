//! The secret store key's life in Secrets Manager beyond a plain fetch:
//! generating it (stored before anything uses it) and reading the version
//! before the current one, for a key that no longer decrypts the shares.

use std::collections::BTreeMap;
use std::time::Duration;

use super::SecretSettings;
use super::{
    FetchError, FetchErrorKind, SecretName, SecretRef, SecretsManager, Source, unpack, validate,
};
use crate::secrets::Secret;

/// A store key and where it now lives.
pub struct StoredKey {
    pub key: Secret,
    pub source: Source,
}

/// The secret a generated store key is kept in, or why there is none.
pub fn reference(settings: &SecretSettings) -> Result<SecretRef, FetchError> {
    match super::reference_for(settings, SecretName::SecretStoreKey) {
        Some((Ok(reference), _)) => Ok(reference),
        Some((Err(rule), _)) => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: format!("the secret id for MPC_SECRET_STORE_KEY {}", rule.rule),
            fix: rule.fix,
        }),
        None => Err(FetchError {
            kind: FetchErrorKind::Other,
            cause: "no Secrets Manager secret is configured to keep a generated MPC_SECRET_STORE_KEY in".into(),
            fix: "set AGENT_SECRET_ID_MPC_SECRET_STORE_KEY (or AGENT_SECRET_ID_TEMPLATE) so the generated key is stored before first use, or provide MPC_SECRET_STORE_KEY".into(),
        }),
    }
}

/// Generates a random store key and stores it in the configured secret unless
/// the secret already holds one; returns what Secrets Manager holds then, so
/// agents racing on one secret all use the same key.
pub async fn generate(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
) -> Result<StoredKey, FetchError> {
    let reference = reference(settings)?;
    let manager = SecretsManager::connect(env, settings.timeout.min(Duration::from_secs(5))).await;
    let generated = Secret::new(hex::encode(
        zeroize::Zeroizing::new(rand::random::<[u8; 16]>()).as_slice(),
    ));
    let fetched = tokio::time::timeout(settings.timeout, manager.store_generated(&reference, &generated))
        .await
        .map_err(|_| FetchError {
            kind: FetchErrorKind::Unavailable,
            cause: format!(
                "Secrets Manager at {} did not answer within AGENT_SECRETS_TIMEOUT while storing the generated store key",
                manager.endpoint()
            ),
            fix: "check the network path to Secrets Manager, then retry".into(),
        })??;
    let (value, source) =
        unpack(fetched, &reference, SecretName::SecretStoreKey).map_err(|(_, e)| e)?;
    let key = checked(value, &source)?;
    Ok(StoredKey { key, source })
}

/// The `AWSPREVIOUS` version of the store key's secret, when it has one and it is a valid key.
pub async fn previous(
    settings: &SecretSettings,
    env: &BTreeMap<String, String>,
) -> Option<StoredKey> {
    let reference = reference(settings).ok()?;
    let manager = SecretsManager::connect(env, settings.timeout.min(Duration::from_secs(5))).await;
    let fetched = tokio::time::timeout(
        settings.timeout,
        manager.get(&reference, Some("AWSPREVIOUS")),
    )
    .await
    .ok()?
    .ok()?;
    let (value, source) = unpack(fetched, &reference, SecretName::SecretStoreKey).ok()?;
    let key = checked(value, &source).ok()?;
    Some(StoredKey { key, source })
}

fn checked(value: Secret, source: &Source) -> Result<Secret, FetchError> {
    validate::hex_key(value.expose(), 16, "secret store key (AES-128-GCM)").map_err(|rule| {
        FetchError {
            kind: FetchErrorKind::Other,
            cause: format!("MPC_SECRET_STORE_KEY from {source} {}", rule.rule),
            fix: rule.fix,
        }
    })
}
