//! The AWS side, read-only: which credentials the default chain finds and
//! whose they are (STS GetCallerIdentity), the clock against AWS's (SigV4
//! fails beyond five minutes), and the home's EFS (see `entrypoint::homes::efs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use aws_smithy_types::date_time::{DateTime, Format};
use entrypoint::check::{Check, error_chain};
use entrypoint::config::DoctorConfig;
use entrypoint::homes::efs;

use entrypoint::placement;

/// Beyond this, SigV4 requests are refused.
const SIGV4_SKEW: Duration = Duration::from_secs(300);
/// Beyond this, the clock is worth a warning.
const SKEW_WARN: Duration = Duration::from_secs(30);

pub async fn checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    limit: Duration,
) -> Vec<Check> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(limit)
                .build(),
        )
        .load()
        .await;
    let mut checks = identity(&sdk, env).await;
    match &config.efs_file_system_id {
        Some(id) => {
            let zone = placement::availability_zone(env, limit).await;
            checks.extend(efs::checks(&sdk, id, zone.as_deref(), limit).await)
        }
        None => checks.push(Check::skipped(
            "aws.efs",
            "not checked: set AGENT_EFS_FILE_SYSTEM_ID to the home's file system",
        )),
    }
    checks
}

/// The provider the default chain uses first, by what the environment offers.
fn provider(env: &BTreeMap<String, String>) -> &'static str {
    let set = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        "environment variables (AWS_ACCESS_KEY_ID)"
    } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
    } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        "ECS container credentials (the task role)"
    } else if set("AWS_PROFILE") {
        "a profile (AWS_PROFILE)"
    } else {
        "the profile files or the instance profile (IMDSv2)"
    }
}

/// Captures the `Date` header of the response, to compare clocks.
#[derive(Debug, Default, Clone)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(date.to_string());
        }
        Ok(())
    }
}

/// `aws.credentials` and `aws.clock`, from one GetCallerIdentity.
async fn identity(sdk: &aws_config::SdkConfig, env: &BTreeMap<String, String>) -> Vec<Check> {
    let date = ServerDate::default();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(sdk)
            .interceptor(date.clone())
            .build(),
    );
    let provider = provider(env);
    let caller = sts.get_caller_identity().send().await;
    let credentials = match &caller {
        Ok(out) => {
            let arn = out.arn().unwrap_or("?");
            let check = Check::ok(
                "aws.credentials",
                format!("credentials from {provider}: {arn}"),
            );
            if arn.to_ascii_lowercase().contains("executionrole") {
                Check::warn(
                    "aws.credentials",
                    format!(
                        "credentials from {provider} belong to {arn}, which looks like the execution role"
                    ),
                    "give the task a task role (taskRoleArn) with the node's permissions; the execution role is for pulling the image and the ECS secrets",
                )
            } else {
                check
            }
        }
        Err(e) => Check::fail(
            "aws.credentials",
            format!(
                "no usable AWS credentials (tried {provider} first): {}",
                error_chain(e)
            ),
            "run with an ECS task role (taskRoleArn) or an EC2 instance profile; the agent uses the SDK's default chain",
        ),
    };
    let now = SystemTime::now();
    let served = date.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let clock = match served.and_then(|d| DateTime::from_str(&d, Format::HttpDate).ok()) {
        Some(theirs) => {
            let ours = DateTime::from(now);
            let skew = Duration::from_secs_f64((ours.as_secs_f64() - theirs.as_secs_f64()).abs());
            let cause = format!("this clock is {:.0}s off AWS's", skew.as_secs_f64());
            if skew > SIGV4_SKEW {
                Check::fail(
                    "aws.clock",
                    format!("{cause}: AWS refuses signed requests beyond 5 minutes"),
                    "sync the clock (chrony with the Amazon Time Sync Service, 169.254.169.123)",
                )
            } else if skew > SKEW_WARN {
                Check::warn(
                    "aws.clock",
                    cause,
                    "sync the clock (chrony with the Amazon Time Sync Service)",
                )
            } else {
                Check::ok("aws.clock", cause)
            }
            .with_detail(serde_json::json!({ "skew_seconds": skew.as_secs_f64() }))
        }
        None => Check::skipped(
            "aws.clock",
            "not checked: no answer from AWS carried a date",
        ),
    };
    vec![credentials, clock]
}
