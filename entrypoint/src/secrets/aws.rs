//! AWS Secrets Manager through the SDK's default credential chain (environment,
//! ECS task role, IMDSv2, profiles): GetSecretValue with the SDK's retries, and
//! every failure translated into what to do about it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::{Secret, SecretRef};
use crate::aws_answer::{Answer, denied_principal};
use crate::check::error_chain;
use crate::clients::AwsClient;

/// The process's Secrets Manager client ([`crate::clients`]).
pub type SecretsManager = AwsClient<Client>;

/// One secret as Secrets Manager returned it.
pub struct Fetched {
    pub value: Secret,
    pub arn: Option<String>,
    pub version_id: Option<String>,
    pub version_stages: Vec<String>,
}

/// Why a secret could not be fetched: a cause and a fix for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub cause: String,
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    NotFound,
    AccessDenied,
    /// Not reachable, timed out or throttled: worth another try later.
    Unavailable,
    Other,
}

impl SecretsManager {
    /// A client of its own, for a command that asks Secrets Manager once.
    pub async fn connect(
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> SecretsManager {
        AwsClient::secrets_manager(&crate::clients::load_aws().await, env, attempt_timeout)
    }

    /// GetSecretValue for `reference`; `stage` overrides its version stage.
    pub async fn get(
        &self,
        reference: &SecretRef,
        stage: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        if self.region.is_none() {
            return Err(FetchError {
                kind: FetchErrorKind::Other,
                cause: "no AWS region is configured".into(),
                fix: "set AWS_REGION (ECS and EC2 set it; elsewhere set it in the environment)"
                    .into(),
            });
        }
        let started = Instant::now();
        let output = self
            .client
            .get_secret_value()
            .secret_id(&reference.secret_id)
            .set_version_stage(
                stage
                    .map(str::to_string)
                    .or_else(|| reference.version_stage.clone()),
            )
            .set_version_id(reference.version_id.clone())
            .send()
            .await
            .map_err(|e| self.translate(e, reference, started.elapsed()))?;
        let value = match (output.secret_string(), output.secret_binary()) {
            (Some(s), _) => Secret::new(s),
            (None, Some(blob)) => match std::str::from_utf8(blob.as_ref()) {
                Ok(s) => Secret::new(s),
                Err(_) => {
                    return Err(FetchError {
                        kind: FetchErrorKind::Other,
                        cause: format!("secret {} is binary and not UTF-8 text", reference.secret_id),
                        fix: "store the key as text (SecretString), or as UTF-8 bytes in SecretBinary".into(),
                    });
                }
            },
            (None, None) => {
                return Err(FetchError {
                    kind: FetchErrorKind::Other,
                    cause: format!(
                        "secret {} has no value in this version",
                        reference.secret_id
                    ),
                    fix: "put a value into the secret (aws secretsmanager put-secret-value)".into(),
                });
            }
        };
        Ok(Fetched {
            value,
            arn: output.arn().map(str::to_string),
            version_id: output.version_id().map(str::to_string),
            version_stages: output.version_stages().to_vec(),
        })
    }

    /// Stores `generated` as `reference`'s secret unless the secret already
    /// holds a value, then reads it back: the caller uses what Secrets Manager
    /// holds, never its own value, so agents racing to generate converge on one.
    /// The client request token is derived from the secret id, which makes a
    /// retried or repeated request idempotent.
    pub async fn store_generated(
        &self,
        reference: &SecretRef,
        generated: &Secret,
        description: &str,
    ) -> Result<Fetched, FetchError> {
        let started = Instant::now();
        let token = client_request_token(&reference.secret_id);
        let value = match &reference.json_key {
            Some(key) => Secret::new(serde_json::json!({ key: generated.expose() }).to_string()),
            None => generated.clone(),
        };
        if reference.secret_id.starts_with("arn:") {
            // An ARN names a secret that exists; it only lacks a value.
            return self.put_if_empty(reference, &value, &token).await;
        }
        let created = self
            .client
            .create_secret()
            .name(&reference.secret_id)
            .description(description)
            .secret_string(value.expose())
            .client_request_token(&token)
            .send()
            .await;
        match created {
            Ok(_) => self.get(reference, None).await,
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("ResourceExistsException") =>
            {
                self.put_if_empty(reference, &value, &token).await
            }
            Err(e) => Err(self.translate(e, reference, started.elapsed())),
        }
    }

    /// Reads the secret; one without a value gets `value` first.
    async fn put_if_empty(
        &self,
        reference: &SecretRef,
        value: &Secret,
        token: &str,
    ) -> Result<Fetched, FetchError> {
        match self.get(reference, None).await {
            Err(e) if e.kind == FetchErrorKind::NotFound => {
                let started = Instant::now();
                self.client
                    .put_secret_value()
                    .secret_id(&reference.secret_id)
                    .secret_string(value.expose())
                    .client_request_token(token)
                    .send()
                    .await
                    .map_err(|e| self.translate(e, reference, started.elapsed()))?;
                self.get(reference, None).await
            }
            other => other,
        }
    }

    fn translate<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        error: SdkError<E, aws_smithy_runtime_api::http::Response>,
        reference: &SecretRef,
        elapsed: Duration,
    ) -> FetchError {
        let id = &reference.secret_id;
        let region = self.region.as_deref().unwrap_or("?");
        let waited = format!("{:.1}s", elapsed.as_secs_f64());
        match &error {
            SdkError::ServiceError(ctx) => {
                let Answer {
                    status,
                    code,
                    message,
                } = Answer::of(ctx);
                match code.as_str() {
                    "ResourceNotFoundException" => FetchError {
                        kind: FetchErrorKind::NotFound,
                        cause: format!("secret {id} was not found in region {region}"),
                        fix: format!(
                            "create it, or correct the secret id or AWS_REGION (searched {region} at {})",
                            self.endpoint
                        ),
                    },
                    "DecryptionFailure" => FetchError {
                        kind: FetchErrorKind::Other,
                        cause: format!("Secrets Manager cannot decrypt {id} with its KMS key: {message}"),
                        fix: "grant kms:Decrypt on the secret's KMS key to the task role (taskRoleArn), or re-encrypt the secret with a key the role may use".into(),
                    },
                    "AccessDeniedException" | "AccessDenied" => access_denied(id, &message),
                    _ if status == 403 => {
                        access_denied(id, &message)
                    }
                    "ThrottlingException" => FetchError {
                        kind: FetchErrorKind::Unavailable,
                        cause: format!("Secrets Manager throttled the requests for {id} through every retry ({waited})"),
                        fix: "raise AGENT_SECRETS_JITTER so a fleet does not fetch at once, or ask AWS for a higher GetSecretValue rate".into(),
                    },
                    "InvalidRequestException" => FetchError {
                        kind: FetchErrorKind::Other,
                        cause: format!("Secrets Manager refused {id}: {message}"),
                        fix: "a secret scheduled for deletion must be restored first (aws secretsmanager restore-secret)".into(),
                    },
                    _ => FetchError {
                        kind: FetchErrorKind::Other,
                        cause: format!(
                            "Secrets Manager answered HTTP {status} {} for {id}: {message}",
                            if code.is_empty() { "(no error code)" } else { &code }
                        ),
                        fix: format!("check the endpoint {} and the secret id", self.endpoint),
                    },
                }
            }
            SdkError::TimeoutError(_) => self.unreachable(id, "timed out", &waited),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => self.unreachable(id, "timed out", &waited),
            SdkError::DispatchFailure(failure) if failure.is_io() => {
                self.unreachable(id, &format!("could not connect ({})", error_chain(&error)), &waited)
            }
            _ if error_chain(&error).contains("credentials") => FetchError {
                kind: FetchErrorKind::Other,
                cause: format!("no AWS credentials to fetch {id}: {}", error_chain(&error)),
                fix: "run with an ECS task role (taskRoleArn) or an EC2 instance profile; the SDK tried the environment (AWS_ACCESS_KEY_ID), web identity, ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), the profile files and the instance metadata (IMDSv2)".into(),
            },
            _ => FetchError {
                kind: FetchErrorKind::Other,
                cause: format!("fetching {id} failed after {waited}: {}", error_chain(&error)),
                fix: format!("check the endpoint {} and the network path to it", self.endpoint),
            },
        }
    }

    fn unreachable(&self, id: &str, what: &str, waited: &str) -> FetchError {
        FetchError {
            kind: FetchErrorKind::Unavailable,
            cause: format!("Secrets Manager at {} {what} after {waited}, fetching {id}", self.endpoint),
            fix: "check the network path: VPC endpoint or NAT for secretsmanager, security groups allowing HTTPS out, AWS_ENDPOINT_URL if set".into(),
        }
    }
}

/// The same token for the same secret id, from any agent: 64 hex characters.
fn client_request_token(secret_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"mpc-agent generated store key v1\0");
    hasher.update(secret_id.as_bytes());
    hex::encode(hasher.finalize())
}

fn access_denied(id: &str, message: &str) -> FetchError {
    let action = [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
    ]
    .into_iter()
    .find(|a| message.contains(a))
    .unwrap_or("secretsmanager:GetSecretValue");
    let (principal, execution_role) = denied_principal(message);
    FetchError {
        kind: FetchErrorKind::AccessDenied,
        cause: format!("access denied{principal}: {action} on {id}{execution_role} ({message})"),
        fix: format!(
            "grant {action} on {id} to the task role (taskRoleArn), not the execution role"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action_the_principal_and_the_task_role() {
        let e = access_denied(
            "mpc-node-0-MPC_ACCOUNT_SK",
            "User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/abc is not authorized to perform: secretsmanager:GetSecretValue",
        );
        assert!(
            e.cause
                .contains("for arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/abc"),
            "{}",
            e.cause
        );
        assert!(e.cause.contains("looks like the execution role"));
        assert!(e.fix.contains("secretsmanager:GetSecretValue"));
        assert!(
            e.fix
                .contains("task role (taskRoleArn), not the execution role")
        );
        let kms = access_denied("s", "not authorized to perform kms:Decrypt on key");
        assert!(kms.fix.starts_with("grant kms:Decrypt"));
    }
}
