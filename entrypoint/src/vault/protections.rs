//! What keeps the vault's bucket from losing a keyshare, for `agent
//! doctor`: versioning, Object Lock with its default retention, default
//! encryption. Read-only; each read may be denied on its own.

use std::time::Instant;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{BucketVersioningStatus, ObjectLockEnabled, ServerSideEncryption};
use serde::Serialize;

use super::Vault;
use super::error::{Request, VaultError, translate};
use crate::check::Check;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Versioning {
    Enabled,
    Suspended,
    /// Never turned on.
    Off,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObjectLock {
    Off,
    /// On; `default_retention` applies to every new object version.
    On {
        default_retention: Option<Retention>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub period: RetentionPeriod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionPeriod {
    Days(i32),
    Years(i32),
}

/// The bucket's default encryption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Encryption {
    None,
    /// SSE-S3 (`AES256`): S3's own keys.
    SseS3,
    /// SSE-KMS, under `key` (the AWS-managed `aws/s3` when `None`).
    SseKms {
        key: Option<String>,
    },
    /// Dual-layer SSE-KMS.
    DsseKms {
        key: Option<String>,
    },
}

/// The bucket's protections, each as read or why it could not be.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Protections {
    pub versioning: Result<Versioning, VaultError>,
    pub object_lock: Result<ObjectLock, VaultError>,
    pub encryption: Result<Encryption, VaultError>,
}

impl Vault {
    /// Reads the bucket's Object Lock, versioning and default encryption.
    /// A bucket with Object Lock has versioning on, and S3 refuses to
    /// suspend it there: it is not asked then.
    pub async fn protections(&self) -> Protections {
        let lock_and_versioning = async {
            let object_lock = self.object_lock().await;
            let versioning = match object_lock {
                Ok(ObjectLock::On { .. }) => Ok(Versioning::Enabled),
                _ => self.versioning().await,
            };
            (object_lock, versioning)
        };
        let ((object_lock, versioning), encryption) =
            tokio::join!(lock_and_versioning, self.encryption());
        Protections {
            versioning,
            object_lock,
            encryption,
        }
    }

    fn bucket_request(&self, operation: &'static str, action: &'static str) -> Request<'_> {
        Request {
            operation,
            action,
            bucket: &self.target.location.bucket,
            key: None,
            kms_action: None,
        }
    }

    /// The answer; `None` when S3 says the configuration was never set (`never_set`).
    fn unless_never_set<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        answer: Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>,
        never_set: &str,
        request: &Request<'_>,
        started: Instant,
    ) -> Result<Option<T>, VaultError> {
        match answer {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some(never_set) => Ok(None),
            Err(e) => Err(translate(e, request, &self.s3, started.elapsed())),
        }
    }

    async fn versioning(&self) -> Result<Versioning, VaultError> {
        let request = self.bucket_request("GetBucketVersioning", "s3:GetBucketVersioning");
        let started = Instant::now();
        let out = self
            .s3
            .client
            .get_bucket_versioning()
            .bucket(&self.target.location.bucket)
            .send()
            .await
            .map_err(|e| translate(e, &request, &self.s3, started.elapsed()))?;
        Ok(match out.status() {
            Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        })
    }

    async fn object_lock(&self) -> Result<ObjectLock, VaultError> {
        let request = self.bucket_request(
            "GetObjectLockConfiguration",
            "s3:GetBucketObjectLockConfiguration",
        );
        let started = Instant::now();
        let out = self
            .s3
            .client
            .get_object_lock_configuration()
            .bucket(&self.target.location.bucket)
            .send()
            .await;
        let Some(out) = self.unless_never_set(
            out,
            "ObjectLockConfigurationNotFoundError",
            &request,
            started,
        )?
        else {
            return Ok(ObjectLock::Off);
        };
        let Some(config) = out.object_lock_configuration() else {
            return Ok(ObjectLock::Off);
        };
        if config.object_lock_enabled() != Some(&ObjectLockEnabled::Enabled) {
            return Ok(ObjectLock::Off);
        }
        let default_retention = config
            .rule()
            .and_then(|r| r.default_retention())
            .and_then(|d| {
                let period = match (d.days(), d.years()) {
                    (Some(days), _) => RetentionPeriod::Days(days),
                    (None, Some(years)) => RetentionPeriod::Years(years),
                    (None, None) => return None,
                };
                Some(Retention {
                    mode: d.mode().map_or("?".into(), |m| m.as_str().to_string()),
                    period,
                })
            });
        Ok(ObjectLock::On { default_retention })
    }

    async fn encryption(&self) -> Result<Encryption, VaultError> {
        let request = self.bucket_request("GetBucketEncryption", "s3:GetEncryptionConfiguration");
        let started = Instant::now();
        let out = self
            .s3
            .client
            .get_bucket_encryption()
            .bucket(&self.target.location.bucket)
            .send()
            .await;
        let Some(out) = self.unless_never_set(
            out,
            "ServerSideEncryptionConfigurationNotFoundError",
            &request,
            started,
        )?
        else {
            return Ok(Encryption::None);
        };
        let default = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(match default {
            None => Encryption::None,
            Some(d) => {
                let key = d.kms_master_key_id().map(str::to_string);
                match d.sse_algorithm() {
                    ServerSideEncryption::AwsKms => Encryption::SseKms { key },
                    ServerSideEncryption::AwsKmsDsse => Encryption::DsseKms { key },
                    _ => Encryption::SseS3,
                }
            }
        })
    }
}

impl Protections {
    /// `vault.versioning`, `vault.object_lock`, `vault.encryption`.
    /// `kms_key` is the key the agent names on each upload, if any.
    pub fn checks(&self, bucket: &str, kms_key: Option<&str>) -> Vec<Check> {
        let unread = |id: &str, e: &VaultError| Check::warn(id, e.cause.clone(), e.fix.clone());
        let versioning = match &self.versioning {
            Ok(Versioning::Enabled) => Check::ok(
                "vault.versioning",
                format!("bucket {bucket} keeps every version"),
            ),
            Ok(state) => Check::warn(
                "vault.versioning",
                format!(
                    "versioning of bucket {bucket} is {}: a PutObject or DeleteObject by anyone allowed loses a keyshare",
                    if *state == Versioning::Off {
                        "off"
                    } else {
                        "suspended"
                    }
                ),
                format!(
                    "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
                ),
            ),
            Err(e) => unread("vault.versioning", e),
        };
        let object_lock = match &self.object_lock {
            Ok(ObjectLock::On {
                default_retention: Some(r),
            }) => Check::ok(
                "vault.object_lock",
                format!(
                    "Object Lock on bucket {bucket}: every new version is kept {} in {} mode",
                    match r.period {
                        RetentionPeriod::Days(d) => format!("{d} days"),
                        RetentionPeriod::Years(y) => format!("{y} years"),
                    },
                    r.mode
                ),
            ),
            Ok(ObjectLock::On {
                default_retention: None,
            }) => Check::warn(
                "vault.object_lock",
                format!(
                    "Object Lock is on for bucket {bucket} but no default retention protects a new version"
                ),
                format!(
                    "set one: aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration 'ObjectLockEnabled=Enabled,Rule={{DefaultRetention={{Mode=GOVERNANCE,Days=365}}}}'"
                ),
            ),
            Ok(ObjectLock::Off) => Check::warn(
                "vault.object_lock",
                format!(
                    "bucket {bucket} has no Object Lock: whoever may delete there (a compromised role, a mistake) can remove a keyshare"
                ),
                format!(
                    "turn Object Lock on with a default retention (aws s3api put-object-lock-configuration --bucket {bucket} …), or use a bucket created with it"
                ),
            ),
            Err(e) => unread("vault.object_lock", e),
        };
        let encryption = match (&self.encryption, kms_key) {
            (_, Some(key)) => Check::ok(
                "vault.encryption",
                format!("every upload names SSE-KMS under {key}"),
            ),
            (Ok(Encryption::SseKms { key } | Encryption::DsseKms { key }), None) => Check::ok(
                "vault.encryption",
                format!(
                    "bucket {bucket} encrypts with SSE-KMS under {}",
                    key.as_deref().unwrap_or("the AWS-managed key aws/s3")
                ),
            ),
            (Ok(other), None) => Check::warn(
                "vault.encryption",
                format!(
                    "bucket {bucket} encrypts by default with {}, not a KMS key of the operator's",
                    if *other == Encryption::SseS3 {
                        "SSE-S3"
                    } else {
                        "nothing"
                    }
                ),
                format!(
                    "set the bucket's default encryption to SSE-KMS under the vault's key (aws s3api put-bucket-encryption --bucket {bucket} …), or name the key for the agent's uploads"
                ),
            ),
            (Err(e), None) => unread("vault.encryption", e),
        };
        vec![versioning, object_lock, encryption]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    fn protections(versioning: Versioning, encryption: Encryption) -> Protections {
        Protections {
            versioning: Ok(versioning),
            object_lock: Ok(ObjectLock::On {
                default_retention: Some(Retention {
                    mode: "COMPLIANCE".into(),
                    period: RetentionPeriod::Years(2),
                }),
            }),
            encryption: Ok(encryption),
        }
    }

    #[test]
    fn versioning_not_on_and_encryption_without_kms_are_warnings() {
        for state in [Versioning::Off, Versioning::Suspended] {
            let checks = protections(state, Encryption::SseS3).checks("b", None);
            assert_eq!(checks[0].status, Status::Warn, "{checks:?}");
            assert_eq!(checks[1].status, Status::Ok, "{checks:?}");
            assert!(checks[1].cause.contains("2 years in COMPLIANCE mode"));
            assert_eq!(checks[2].status, Status::Warn, "{checks:?}");
            assert!(checks[2].cause.contains("SSE-S3"), "{checks:?}");
        }
        let kms = protections(Versioning::Enabled, Encryption::SseKms { key: None });
        let checks = kms.checks("b", None);
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
        assert!(checks[2].cause.contains("aws/s3"), "{checks:?}");
    }

    #[test]
    fn a_protection_that_could_not_be_read_is_a_warning_with_its_cause() {
        let denied = VaultError::new(
            crate::vault::VaultErrorKind::AccessDenied,
            "access denied: s3:GetBucketObjectLockConfiguration on bucket b".into(),
            "grant it".into(),
        );
        let mut unread = protections(Versioning::Enabled, Encryption::None);
        unread.object_lock = Err(denied);
        let check = &unread.checks("b", None)[1];
        assert_eq!(check.status, Status::Warn);
        assert!(check.cause.contains("s3:GetBucketObjectLockConfiguration"));
    }
}
