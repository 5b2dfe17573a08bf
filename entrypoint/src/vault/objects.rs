//! The vault's objects: one keyshare uploaded (never over other bytes),
//! the account's keyshares listed, one downloaded with its checksum checked.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::{Request, VaultError, VaultErrorKind, translate};
use super::{Vault, rfc3339};
use crate::homes::AGENT_VERSION;
use crate::homes::beneath::READ_LIMIT;
use crate::keyshare::KeyshareName;

/// The object metadata each keyshare carries (`x-amz-meta-*`).
pub mod metadata {
    pub const ACCOUNT: &str = "account";
    pub const CONTRACT: &str = "contract";
    pub const EPOCH: &str = "epoch";
    pub const DOMAINS: &str = "domains";
    pub const AGENT_VERSION: &str = "agent-version";
    /// The SHA-256 of the object's bytes in hex, beside S3's own checksum.
    pub const SHA256: &str = "sha256";
}

/// How S3 says an object is encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectEncryption {
    /// `aws:kms`, `aws:kms:dsse`, `AES256`.
    pub algorithm: String,
    /// The KMS key, for SSE-KMS.
    pub kms_key: Option<String>,
}

/// One keyshare in the vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VaultObject {
    pub name: KeyshareName,
    pub key: String,
    pub size: u64,
    /// SHA-256 of its bytes in hex: S3's checksum, else the metadata's;
    /// `None` when the object carries neither.
    pub sha256: Option<String>,
    pub version_id: Option<String>,
    #[serde(serialize_with = "rfc3339_option")]
    pub last_modified: Option<SystemTime>,
    pub encryption: Option<ObjectEncryption>,
    pub metadata: HashMap<String, String>,
}

/// The account's keyshares in the vault, oldest first, and any other object
/// under its prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VaultListing {
    pub keyshares: Vec<VaultObject>,
    pub others: Vec<String>,
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UploadOutcome {
    Stored,
    /// The same bytes were already there: nothing was written.
    AlreadyThere,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upload {
    pub outcome: UploadOutcome,
    pub key: String,
    pub version_id: Option<String>,
    /// When it was stored (for `AlreadyThere`, the object's last modification).
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    pub sha256: String,
    pub encryption: Option<ObjectEncryption>,
}

/// A keyshare's bytes from the vault, checked against its SHA-256.
pub struct Download {
    pub object: VaultObject,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("object", &self.object)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A [`VaultObject`] from a HeadObject or a GetObject answer (their fields
/// have the same names).
macro_rules! described {
    ($name:expr, $key:expr, $answer:expr) => {{
        let answer = &$answer;
        VaultObject {
            name: $name,
            key: $key,
            size: answer.content_length().unwrap_or_default().max(0) as u64,
            sha256: recorded_sha256(answer.checksum_sha256(), answer.metadata()),
            version_id: answer.version_id().map(str::to_string),
            last_modified: answer
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok()),
            encryption: encryption(answer.server_side_encryption(), answer.ssekms_key_id()),
            metadata: answer.metadata().cloned().unwrap_or_default(),
        }
    }};
}

impl Vault {
    /// Uploads `bytes` (a keyshare file exactly as on disk) as `name`.
    /// An object already under that name with the same SHA-256 is left as
    /// it is; one with other bytes is a [`VaultErrorKind::Conflict`] and is
    /// never overwritten.
    pub async fn upload(&self, name: KeyshareName, bytes: &[u8]) -> Result<Upload, VaultError> {
        let key = self.object_key(name);
        let digest = Sha256::digest(bytes);
        let sha256 = hex::encode(digest);
        if let Some(existing) = self.head(name).await? {
            return self.same_or_conflict(existing, &sha256).await;
        }
        let target = &self.target;
        let mut put = self
            .s3
            .client
            .put_object()
            .bucket(&target.location.bucket)
            .key(&key)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/octet-stream")
            // Honoured by S3 and by moto 5.2.5: a name taken since the HEAD
            // above answers 412 instead of being overwritten.
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(BASE64.encode(digest))
            .metadata(metadata::ACCOUNT, &target.account)
            .metadata(metadata::CONTRACT, &target.contract)
            .metadata(metadata::EPOCH, name.epoch.to_string())
            .metadata(metadata::DOMAINS, name.domains.to_string())
            .metadata(metadata::AGENT_VERSION, AGENT_VERSION)
            .metadata(metadata::SHA256, &sha256);
        if let Some(kms_key) = &target.kms_key {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms_key);
        }
        let started = Instant::now();
        let request = self.request("PutObject", "s3:PutObject", &key);
        let stored = match put.send().await {
            Ok(stored) => stored,
            Err(e) => {
                let e = translate(e, &request, &self.s3, started.elapsed());
                if e.kind != VaultErrorKind::Conflict {
                    return Err(e);
                }
                // Written by someone else between the HEAD and the PUT.
                let existing = self.head(name).await?.ok_or(e)?;
                return self.same_or_conflict(existing, &sha256).await;
            }
        };
        let confirmed = stored.checksum_sha256().and_then(sha256_of_checksum);
        if confirmed.as_deref() != Some(sha256.as_str()) {
            return Err(VaultError::new(
                VaultErrorKind::ChecksumMismatch,
                format!(
                    "S3 stored {} (version {}) with SHA-256 {}, the agent sent {sha256}",
                    self.target.location.url_of(&key),
                    stored.version_id().unwrap_or("none"),
                    confirmed.as_deref().unwrap_or("(none confirmed)")
                ),
                "the upload is not counted; compare the object with the home's file, and check what sits between the agent and S3 (a proxy rewriting bodies)".into(),
            ));
        }
        Ok(Upload {
            outcome: UploadOutcome::Stored,
            key,
            version_id: stored.version_id().map(str::to_string),
            at: SystemTime::now(),
            sha256,
            encryption: encryption(stored.server_side_encryption(), stored.ssekms_key_id()),
        })
    }

    async fn same_or_conflict(
        &self,
        existing: VaultObject,
        sha256: &str,
    ) -> Result<Upload, VaultError> {
        let theirs = match &existing.sha256 {
            Some(theirs) => theirs.clone(),
            // Stored without a SHA-256 (not by the agent): hash its bytes.
            None => hex::encode(Sha256::digest(
                self.fetch(existing.name, existing.version_id.as_deref())
                    .await?
                    .1
                    .as_slice(),
            )),
        };
        if theirs != sha256 {
            return Err(VaultError::new(
                VaultErrorKind::Conflict,
                format!(
                    "{} already holds other bytes (SHA-256 {theirs}, version {}) than the home's {} (SHA-256 {sha256}); the vault's copy is kept, never overwritten",
                    self.target.location.url_of(&existing.key),
                    existing.version_id.as_deref().unwrap_or("none"),
                    existing.name
                ),
                format!(
                    "find out which is the keyshare the network holds: the same epoch and domains with other bytes means two homes wrote this account's keyset (another node on {}, or a home restored from elsewhere); keep both until you know",
                    self.target.account
                ),
            ));
        }
        Ok(Upload {
            outcome: UploadOutcome::AlreadyThere,
            key: existing.key,
            version_id: existing.version_id,
            at: existing.last_modified.unwrap_or_else(SystemTime::now),
            sha256: theirs,
            encryption: existing.encryption,
        })
    }

    /// The account's keyshares in the vault, each with its checksum and
    /// version (a HEAD each: a listing carries neither).
    pub async fn list(&self) -> Result<VaultListing, VaultError> {
        let (names, others) = self.names().await?;
        let heads = futures::stream::iter(names)
            .map(|name| self.head(name))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
        let mut keyshares = Vec::new();
        for head in heads {
            // Gone since the listing: not in the vault.
            if let Some(object) = head? {
                keyshares.push(object);
            }
        }
        keyshares.sort_by_key(|o| o.name);
        Ok(VaultListing { keyshares, others })
    }

    /// The names of the account's keyshares in the vault, oldest first, and
    /// the keys of any other object under its prefix: one listing, no HEAD
    /// (a restore downloads the one it chooses, its checksum with it).
    pub async fn names(&self) -> Result<(Vec<KeyshareName>, Vec<String>), VaultError> {
        let prefix = self.target.location.account_prefix(&self.target.account);
        let request = self.request("ListObjectsV2", "s3:ListBucket", &prefix);
        let mut names = Vec::new();
        let mut others = Vec::new();
        let mut token: Option<String> = None;
        // A page holds 1000 keys; an account has one object per keyset.
        for _ in 0..100 {
            let started = Instant::now();
            let page = self
                .s3
                .client
                .list_objects_v2()
                .bucket(&self.target.location.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| translate(e, &request, &self.s3, started.elapsed()))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                match key.strip_prefix(&prefix).and_then(KeyshareName::parse) {
                    Some(name) => names.push(name),
                    None => others.push(key.to_string()),
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        names.sort();
        Ok((names, others))
    }

    /// The keyshare `name` (its current version, or `version`), its bytes
    /// checked against the SHA-256 recorded with it.
    pub async fn download(
        &self,
        name: KeyshareName,
        version: Option<&str>,
    ) -> Result<Download, VaultError> {
        let (object, bytes) = self.fetch(name, version).await?;
        let url = self.target.location.url_of(&object.key);
        let Some(expected) = object.sha256.clone() else {
            return Err(VaultError::new(
                VaultErrorKind::ChecksumMismatch,
                format!(
                    "{url} carries no SHA-256 (neither S3's checksum nor the agent's metadata): its bytes cannot be checked"
                ),
                "use a version the agent uploaded (agent vault list shows each with its SHA-256)"
                    .into(),
            ));
        };
        let actual = hex::encode(Sha256::digest(bytes.as_slice()));
        if actual != expected {
            return Err(VaultError::new(
                VaultErrorKind::ChecksumMismatch,
                format!(
                    "{url} (version {}) returned bytes with SHA-256 {actual}, recorded with SHA-256 {expected}",
                    object.version_id.as_deref().unwrap_or("none")
                ),
                "try again; if it persists, the stored object is damaged: use another version"
                    .into(),
            ));
        }
        Ok(Download { object, bytes })
    }

    /// GetObject, its size bounded.
    async fn fetch(
        &self,
        name: KeyshareName,
        version: Option<&str>,
    ) -> Result<(VaultObject, Zeroizing<Vec<u8>>), VaultError> {
        let key = self.object_key(name);
        let action = if version.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let request = Request {
            kms_action: Some("kms:Decrypt"),
            ..self.request("GetObject", action, &key)
        };
        let started = Instant::now();
        let got = self
            .s3
            .client
            .get_object()
            .bucket(&self.target.location.bucket)
            .key(&key)
            .set_version_id(version.map(str::to_string))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| translate(e, &request, &self.s3, started.elapsed()))?;
        let url = self.target.location.url_of(&key);
        let object = described!(name, key.clone(), got);
        let size = object.size;
        if size > READ_LIMIT {
            return Err(VaultError::new(
                VaultErrorKind::Other,
                format!(
                    "{url} is {size} bytes, more than the {READ_LIMIT} bytes a keyshare can be"
                ),
                "it is not a keyshare the agent uploaded; use another version".into(),
            ));
        }
        // The SDK checks S3's checksum as the body arrives.
        let body = got.body.collect().await.map_err(|e| {
            let chain = crate::check::error_chain(&e);
            let kind = if chain.to_ascii_lowercase().contains("checksum") {
                VaultErrorKind::ChecksumMismatch
            } else {
                VaultErrorKind::Unreachable
            };
            VaultError::new(
                kind,
                format!("reading {url} failed: {chain}"),
                "try again; if the checksum keeps failing, use another version".into(),
            )
        })?;
        Ok((object, Zeroizing::new(body.to_vec())))
    }

    /// HeadObject: `None` when there is no such object.
    async fn head(&self, name: KeyshareName) -> Result<Option<VaultObject>, VaultError> {
        let key = self.object_key(name);
        let request = self.request("HeadObject", "s3:GetObject", &key);
        let started = Instant::now();
        let head = self
            .s3
            .client
            .head_object()
            .bucket(&self.target.location.bucket)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                let e = translate(e, &request, &self.s3, started.elapsed());
                // A HEAD's 404 has no body: no such key, or no such bucket.
                return match e.kind {
                    VaultErrorKind::NotFound => Ok(None),
                    _ => Err(e),
                };
            }
        };
        Ok(Some(described!(name, key, head)))
    }

    pub(crate) fn request<'a>(
        &'a self,
        operation: &'static str,
        action: &'static str,
        key: &'a str,
    ) -> Request<'a> {
        Request {
            operation,
            action,
            bucket: &self.target.location.bucket,
            key: Some(key),
            kms_action: (operation == "PutObject").then_some("kms:GenerateDataKey"),
        }
    }
}

/// The SHA-256 in hex of a full-object `x-amz-checksum-sha256` (base64); a
/// multipart upload's composite checksum (`…-N`) is not one.
fn sha256_of_checksum(checksum: &str) -> Option<String> {
    let bytes = BASE64.decode(checksum).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

fn recorded_sha256(
    checksum: Option<&str>,
    metadata: Option<&HashMap<String, String>>,
) -> Option<String> {
    checksum.and_then(sha256_of_checksum).or_else(|| {
        metadata?
            .get(metadata::SHA256)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|h| h.to_ascii_lowercase())
    })
}

fn encryption(
    algorithm: Option<&ServerSideEncryption>,
    kms_key: Option<&str>,
) -> Option<ObjectEncryption> {
    algorithm.map(|a| ObjectEncryption {
        algorithm: a.as_str().to_string(),
        kms_key: kms_key.map(str::to_string),
    })
}

fn rfc3339_option<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}
