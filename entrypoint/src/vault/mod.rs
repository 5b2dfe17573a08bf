//! The keyshare vault: an S3 bucket (SSE-KMS, Object Lock) holding each
//! keyshare the node commits to its home, as the node's own sealed bytes,
//! under `PREFIX/<MPC_ACCOUNT_ID>/<file name>`. Uploads never overwrite,
//! downloads are checked against their SHA-256, and nothing here deletes
//! or decrypts.

mod error;
mod objects;
mod protections;
mod s3;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use error::{VaultError, VaultErrorKind};
pub use objects::{
    Download, ObjectEncryption, Upload, UploadOutcome, VaultListing, VaultObject, metadata,
};
pub use protections::{
    Encryption, ObjectLock, Protections, Retention, RetentionPeriod, Versioning,
};
pub use s3::S3;

use crate::clients::Clients;
use crate::config::{Node, VaultSettings};
use crate::keyshare::{KeyshareName, VaultLocation};

/// How long one S3 request of the vault may take, each try (the SDK tries
/// up to five times).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whose keyshares go where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultTarget {
    pub location: VaultLocation,
    /// `MPC_ACCOUNT_ID`: the folder of this node's keyshares.
    pub account: String,
    /// `MPC_CONTRACT_ID`, recorded with each keyshare.
    pub contract: String,
    /// The KMS key (id, ARN or `alias/…`) named on each upload; `None`
    /// leaves it to the bucket's default encryption.
    pub kms_key: Option<String>,
}

impl VaultTarget {
    /// The vault `settings` names, for `node`'s account.
    pub fn of(settings: &VaultSettings, node: &Node) -> VaultTarget {
        VaultTarget {
            location: settings.location.clone(),
            account: node.account_id.to_string(),
            contract: node.contract_id.to_string(),
            kms_key: settings.kms_key.clone(),
        }
    }
}

/// One account's keyshares in one vault.
#[derive(Clone, Debug)]
pub struct Vault {
    s3: S3,
    target: VaultTarget,
}

impl Vault {
    pub fn new(s3: S3, target: VaultTarget) -> Vault {
        Vault { s3, target }
    }

    /// The vault `settings` names, for `node`'s account, on the process's
    /// one S3 client.
    pub async fn open(
        clients: &Clients,
        env: &BTreeMap<String, String>,
        settings: &VaultSettings,
        node: &Node,
    ) -> Vault {
        let s3 = clients.s3(env, ATTEMPT_TIMEOUT).await;
        Vault::new(s3, VaultTarget::of(settings, node))
    }

    pub fn target(&self) -> &VaultTarget {
        &self.target
    }

    /// Where the keyshare `name` of this account is stored.
    pub fn object_key(&self, name: KeyshareName) -> String {
        self.target.location.object_key(&self.target.account, name)
    }
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}
