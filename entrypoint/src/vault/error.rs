//! Every way a vault request fails, sorted into a kind with a cause and a
//! fix for a person, naming the bucket, the object and the IAM action.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

use super::S3;
use crate::aws_answer::{Answer, denied_principal};
use crate::check::{Check, error_chain};

/// What went wrong, by what can be done about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaultErrorKind {
    /// The credentials may not do the S3 action.
    AccessDenied,
    NoSuchBucket,
    /// No such object, or no such version of it.
    NotFound,
    /// S3 could not use the KMS key for the caller (a denied
    /// `kms:GenerateDataKey` or `kms:Decrypt`, a disabled or missing key).
    Kms,
    /// S3 did not answer: unreachable, timed out or throttled. Worth another try.
    Unreachable,
    /// The bytes S3 holds or returned are not the bytes sent.
    ChecksumMismatch,
    /// Other bytes are already stored under the keyshare's name.
    Conflict,
    Other,
}

/// Why a vault request failed. Names objects, actions and checksums, never
/// a key or a keyshare's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{cause}")]
pub struct VaultError {
    pub kind: VaultErrorKind,
    pub cause: String,
    pub fix: String,
}

impl VaultError {
    pub(crate) fn new(kind: VaultErrorKind, cause: String, fix: String) -> VaultError {
        VaultError { kind, cause, fix }
    }

    /// As a failed check named `id`.
    pub fn check(&self, id: impl Into<String>) -> Check {
        Check::fail(id, self.cause.clone(), self.fix.clone())
            .with_detail(serde_json::json!({ "kind": self.kind }))
    }
}

/// One S3 request, for its error: what it asked of which object or bucket.
pub(crate) struct Request<'a> {
    /// The S3 operation (`PutObject`).
    pub operation: &'static str,
    /// The IAM action it needs (`s3:PutObject`).
    pub action: &'static str,
    pub bucket: &'a str,
    /// The object's key, or the prefix a listing covers; `None` for the bucket itself.
    pub key: Option<&'a str>,
    /// The KMS action S3 performs for the caller, when the request moves bytes.
    pub kms_action: Option<&'static str>,
}

impl Request<'_> {
    fn subject(&self) -> String {
        match self.key {
            Some(key) => format!("s3://{}/{key}", self.bucket),
            None => format!("bucket {}", self.bucket),
        }
    }

    /// What an IAM policy grants the action on.
    fn resource(&self) -> String {
        match (self.action, self.key) {
            ("s3:ListBucket", Some(prefix)) => format!(
                "arn:aws:s3:::{} (with the condition s3:prefix = {prefix}*)",
                self.bucket
            ),
            (_, Some(key))
                if self.action.starts_with("s3:GetObject") || self.action == "s3:PutObject" =>
            {
                let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
                if folder.is_empty() {
                    format!("arn:aws:s3:::{}/*", self.bucket)
                } else {
                    format!("arn:aws:s3:::{}/{folder}/*", self.bucket)
                }
            }
            _ => format!("arn:aws:s3:::{}", self.bucket),
        }
    }
}

/// The error of `request` that S3 (or the way to it) answered with.
pub(crate) fn translate<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    request: &Request<'_>,
    s3: &S3,
    elapsed: Duration,
) -> VaultError {
    let subject = request.subject();
    let waited = format!("{:.1}s", elapsed.as_secs_f64());
    match &error {
        SdkError::ServiceError(ctx) if ctx.raw().status().is_success() => VaultError::new(
            VaultErrorKind::Other,
            format!(
                "S3 at {} answered {} on {subject} in a form the SDK cannot read: {}",
                s3.endpoint(),
                request.operation,
                error_chain(&error)
            ),
            format!(
                "check that {} is S3 or a store that answers as S3 does",
                s3.endpoint()
            ),
        ),
        SdkError::ServiceError(ctx) => {
            let answer = Answer::of(ctx);
            answered(request, s3, answer.status, &answer.code, &answer.message)
        }
        SdkError::TimeoutError(_) => unreachable(request, s3, "timed out", &waited),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            unreachable(request, s3, "timed out", &waited)
        }
        SdkError::DispatchFailure(failure) if failure.is_io() => unreachable(
            request,
            s3,
            &format!("could not be reached ({})", error_chain(&error)),
            &waited,
        ),
        _ if error_chain(&error).contains("credentials") => VaultError::new(
            VaultErrorKind::Other,
            format!(
                "no AWS credentials for {} on {subject}: {}",
                request.operation,
                error_chain(&error)
            ),
            "run with an ECS task role (taskRoleArn) or an EC2 instance profile; the SDK tried the environment, web identity, ECS container credentials, the profile files and the instance metadata (IMDSv2)".into(),
        ),
        _ if s3.region().is_none() => VaultError::new(
            VaultErrorKind::Other,
            format!("no AWS region is configured for {subject}"),
            "set AWS_REGION (ECS and EC2 set it; elsewhere set it in the environment)".into(),
        ),
        _ => VaultError::new(
            VaultErrorKind::Other,
            format!(
                "{} on {subject} failed after {waited}: {}",
                request.operation,
                error_chain(&error)
            ),
            format!("check the endpoint {} and the network path to it", s3.endpoint()),
        ),
    }
}

/// An error S3 answered with `status`, `code` and `message` (any may be
/// empty: a HEAD's answer has no body).
pub(crate) fn answered(
    request: &Request<'_>,
    s3: &S3,
    status: u16,
    code: &str,
    message: &str,
) -> VaultError {
    let subject = request.subject();
    let bucket = request.bucket;
    let said = if message.is_empty() {
        format!("HTTP {status} {code}").trim_end().to_string()
    } else {
        message.to_string()
    };
    let kms_in_message = ["kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"]
        .into_iter()
        .find(|a| message.contains(a));
    if code.starts_with("KMS") || kms_in_message.is_some() {
        let action = kms_in_message
            .or(request.kms_action)
            .unwrap_or("kms:GenerateDataKey");
        let key = message
            .split_whitespace()
            .find(|w| w.starts_with("arn:aws:kms:"))
            .map(|k| format!(" {}", k.trim_end_matches([',', '.', ';'])))
            .unwrap_or_default();
        return VaultError::new(
            VaultErrorKind::Kms,
            format!(
                "S3 could not use the KMS key{key} for {} on {subject}: {action} was refused ({said})",
                request.operation
            ),
            format!(
                "grant {action} on the vault's KMS key to the task role (taskRoleArn), not the execution role, in the role's policy and the key policy; S3 calls KMS as the caller. A disabled or deleted key must be enabled or replaced"
            ),
        );
    }
    match code {
        "NoSuchBucket" => {
            return VaultError::new(
                VaultErrorKind::NoSuchBucket,
                format!(
                    "bucket {bucket} does not exist at {} (region {}), asked by {} on {subject}",
                    s3.endpoint(),
                    s3.region().unwrap_or("?"),
                    request.operation
                ),
                format!(
                    "create the vault's bucket {bucket} (Object Lock on, versioning on, SSE-KMS), or correct AGENT_KEYSHARE_VAULT or AWS_REGION"
                ),
            );
        }
        "NoSuchKey" | "NoSuchVersion" | "NotFound" => {
            return VaultError::new(
                VaultErrorKind::NotFound,
                format!("{subject} is not in the vault ({said})"),
                "list the vault's keyshares (agent vault list) and name one of them".into(),
            );
        }
        "PreconditionFailed" | "ConditionalRequestConflict" => {
            return VaultError::new(
                VaultErrorKind::Conflict,
                format!(
                    "{subject} was written by someone else during {} ({said})",
                    request.operation
                ),
                "look at the object's versions; the agent never overwrites a keyshare in the vault"
                    .into(),
            );
        }
        "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
            return unreachable(request, s3, &format!("answered {said}"), "its retries");
        }
        _ => {}
    }
    if status == 404 && code.is_empty() {
        return VaultError::new(
            VaultErrorKind::NotFound,
            format!("{subject} is not in the vault (HTTP 404)"),
            "list the vault's keyshares (agent vault list) and name one of them".into(),
        );
    }
    if status == 403
        || matches!(
            code,
            "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" | "Forbidden"
        )
    {
        return access_denied(request, &said);
    }
    if status >= 500 {
        return unreachable(request, s3, &format!("answered {said}"), "its retries");
    }
    VaultError::new(
        VaultErrorKind::Other,
        format!(
            "S3 refused {} on {subject}: HTTP {status} {} {said}",
            request.operation,
            if code.is_empty() {
                "(no error code)"
            } else {
                code
            }
        ),
        format!(
            "check the endpoint {} and the vault's bucket {bucket}",
            s3.endpoint()
        ),
    )
}

fn access_denied(request: &Request<'_>, said: &str) -> VaultError {
    let action = request.action;
    let (principal, execution_role) = denied_principal(said);
    // S3 answers 403, not 404, for a missing object to whom may not list the bucket.
    let missing = if request.operation == "HeadObject" || request.operation == "GetObject" {
        "; without s3:ListBucket S3 also answers 403 for an object that does not exist"
    } else {
        ""
    };
    VaultError::new(
        VaultErrorKind::AccessDenied,
        format!(
            "access denied{principal}: {action} on {}{execution_role} ({said}){missing}",
            request.subject()
        ),
        format!(
            "grant {action} on {} to the task role (taskRoleArn), not the execution role; the vault's role may write and read its prefix, never delete",
            request.resource()
        ),
    )
}

fn unreachable(request: &Request<'_>, s3: &S3, what: &str, waited: &str) -> VaultError {
    VaultError::new(
        VaultErrorKind::Unreachable,
        format!(
            "S3 at {} {what} after {waited}, for {} on {}",
            s3.endpoint(),
            request.operation,
            request.subject()
        ),
        "check the network path: a VPC gateway endpoint or NAT for S3, security groups allowing HTTPS out, AWS_ENDPOINT_URL if set; the next try may succeed".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> S3 {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        S3::s3(&sdk, &Default::default(), Duration::from_secs(1))
    }

    const PUT: Request<'static> = Request {
        operation: "PutObject",
        action: "s3:PutObject",
        bucket: "vault-bucket",
        key: Some("mainnet/node0.near/epoch_3_with_1_domains"),
        kms_action: Some("kms:GenerateDataKey"),
    };

    #[test]
    fn a_denied_put_names_the_principal_the_object_and_the_task_role() {
        let e = answered(
            &PUT,
            &s3(),
            403,
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/mpc-execution-role/abc is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::vault-bucket/mainnet/node0.near/epoch_3_with_1_domains\"",
        );
        assert_eq!(e.kind, VaultErrorKind::AccessDenied);
        assert!(e.cause.starts_with("access denied for arn:aws:sts::123456789012:assumed-role/mpc-execution-role/abc: s3:PutObject on s3://vault-bucket/mainnet/node0.near/epoch_3_with_1_domains — the principal looks like the execution role"), "{}", e.cause);
        assert!(e.fix.starts_with("grant s3:PutObject on arn:aws:s3:::vault-bucket/mainnet/node0.near/* to the task role (taskRoleArn), not the execution role"), "{}", e.fix);
    }

    #[test]
    fn a_kms_denial_through_s3_is_told_from_an_s3_denial() {
        let e = answered(
            &PUT,
            &s3(),
            403,
            "AccessDenied",
            "User: arn:aws:sts::1:assumed-role/task/x is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:eu-west-1:1:key/abcd because no identity-based policy allows the kms:GenerateDataKey action",
        );
        assert_eq!(e.kind, VaultErrorKind::Kms);
        assert!(
            e.cause.contains("KMS key arn:aws:kms:eu-west-1:1:key/abcd"),
            "{}",
            e.cause
        );
        assert!(
            e.cause.contains("kms:GenerateDataKey was refused"),
            "{}",
            e.cause
        );
        assert!(
            e.fix
                .starts_with("grant kms:GenerateDataKey on the vault's KMS key to the task role"),
            "{}",
            e.fix
        );
        let disabled = answered(&PUT, &s3(), 400, "KMS.DisabledException", "key is disabled");
        assert_eq!(disabled.kind, VaultErrorKind::Kms);
    }

    #[test]
    fn a_bare_403_and_a_missing_bucket_and_a_busy_s3() {
        let head = Request {
            operation: "HeadObject",
            action: "s3:GetObject",
            ..PUT
        };
        let e = answered(&head, &s3(), 403, "", "");
        assert_eq!(e.kind, VaultErrorKind::AccessDenied);
        assert!(e.cause.contains("without s3:ListBucket"), "{}", e.cause);
        let e = answered(
            &PUT,
            &s3(),
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
        );
        assert_eq!(e.kind, VaultErrorKind::NoSuchBucket);
        assert!(
            e.cause.starts_with("bucket vault-bucket does not exist"),
            "{}",
            e.cause
        );
        assert_eq!(
            answered(&PUT, &s3(), 503, "SlowDown", "").kind,
            VaultErrorKind::Unreachable
        );
        assert_eq!(
            answered(&head, &s3(), 404, "", "").kind,
            VaultErrorKind::NotFound
        );
        let list = Request {
            operation: "ListObjectsV2",
            action: "s3:ListBucket",
            key: Some("mainnet/node0.near/"),
            kms_action: None,
            ..PUT
        };
        let e = answered(&list, &s3(), 403, "AccessDenied", "Access Denied");
        assert!(e.fix.starts_with("grant s3:ListBucket on arn:aws:s3:::vault-bucket (with the condition s3:prefix = mainnet/node0.near/*)"), "{}", e.fix);
    }
}
