//! The AWS side, read-only: which credentials the default chain finds and
//! whose they are (STS GetCallerIdentity), the clock against AWS's (SigV4
//! fails beyond five minutes), and the home's EFS: the file system available,
//! a mount target in this availability zone, its port 2049 reachable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use aws_smithy_types::date_time::{DateTime, Format};
use entrypoint::check::{Check, error_chain};
use entrypoint::config::Config;

use crate::probe;

/// Beyond this, SigV4 requests are refused.
const SIGV4_SKEW: Duration = Duration::from_secs(300);
/// Beyond this, the clock is worth a warning.
const SKEW_WARN: Duration = Duration::from_secs(30);
const NFS_PORT: u16 = 2049;

pub async fn checks(config: &Config, env: &BTreeMap<String, String>, limit: Duration) -> Vec<Check> {
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
        Some(id) => checks.extend(efs(&sdk, id, env, limit).await),
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
    } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
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
            let check = Check::ok("aws.credentials", format!("credentials from {provider}: {arn}"));
            if arn.to_ascii_lowercase().contains("executionrole") {
                Check::warn(
                    "aws.credentials",
                    format!("credentials from {provider} belong to {arn}, which looks like the execution role"),
                    "give the task a task role (taskRoleArn) with the node's permissions; the execution role is for pulling the image and the ECS secrets",
                )
            } else {
                check
            }
        }
        Err(e) => Check::fail(
            "aws.credentials",
            format!("no usable AWS credentials (tried {provider} first): {}", error_chain(e)),
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
                Check::fail("aws.clock", format!("{cause}: AWS refuses signed requests beyond 5 minutes"), "sync the clock (chrony with the Amazon Time Sync Service, 169.254.169.123)")
            } else if skew > SKEW_WARN {
                Check::warn("aws.clock", cause, "sync the clock (chrony with the Amazon Time Sync Service)")
            } else {
                Check::ok("aws.clock", cause)
            }
            .with_detail(serde_json::json!({ "skew_seconds": skew.as_secs_f64() }))
        }
        None => Check::skipped("aws.clock", "not checked: no answer from AWS carried a date"),
    };
    vec![credentials, clock]
}

/// The file system, the mount target of this availability zone, and its port.
async fn efs(sdk: &aws_config::SdkConfig, id: &str, env: &BTreeMap<String, String>, limit: Duration) -> Vec<Check> {
    let efs = aws_sdk_efs::Client::new(sdk);
    let mut checks = Vec::new();
    match efs.describe_file_systems().file_system_id(id).send().await {
        Ok(out) => match out.file_systems().first() {
            Some(fs) if fs.life_cycle_state().as_str() == "available" => {
                checks.push(Check::ok("aws.efs", format!("file system {id} is available")))
            }
            Some(fs) => checks.push(Check::fail(
                "aws.efs",
                format!("file system {id} is {}", fs.life_cycle_state().as_str()),
                "wait until it is available, or use another file system",
            )),
            None => checks.push(Check::fail("aws.efs", format!("file system {id} does not exist"), "correct AGENT_EFS_FILE_SYSTEM_ID")),
        },
        Err(e) => {
            checks.push(Check::fail(
                "aws.efs",
                format!("cannot describe file system {id}: {}", error_chain(&e)),
                "grant elasticfilesystem:DescribeFileSystems and DescribeMountTargets to the role, or check AGENT_EFS_FILE_SYSTEM_ID",
            ));
            return checks;
        }
    }
    let targets = match efs.describe_mount_targets().file_system_id(id).send().await {
        Ok(out) => out.mount_targets().to_vec(),
        Err(e) => {
            checks.push(Check::fail(
                "aws.efs_mount_target",
                format!("cannot list the mount targets of {id}: {}", error_chain(&e)),
                "grant elasticfilesystem:DescribeMountTargets to the role",
            ));
            return checks;
        }
    };
    let zones: Vec<String> = targets.iter().filter_map(|t| t.availability_zone_name().map(str::to_string)).collect();
    let zone = availability_zone(env, limit).await;
    let target = match &zone {
        Some(zone) => targets.iter().find(|t| t.availability_zone_name() == Some(zone.as_str())),
        None => targets.first(),
    };
    let Some(target) = target else {
        checks.push(Check::fail(
            "aws.efs_mount_target",
            format!(
                "{id} has no mount target in {} (it has some in: {})",
                zone.as_deref().unwrap_or("any availability zone"),
                if zones.is_empty() { "none".to_string() } else { zones.join(", ") }
            ),
            "create a mount target in a subnet of this availability zone (aws efs create-mount-target), or run the task where one exists",
        ));
        return checks;
    };
    checks.push(match &zone {
        Some(zone) => Check::ok(
            "aws.efs_mount_target",
            format!("mount target {} in {zone}, {}", target.mount_target_id(), target.life_cycle_state().as_str()),
        ),
        None => Check::warn(
            "aws.efs_mount_target",
            format!("this availability zone is unknown (no ECS task metadata, no instance metadata); {id} has mount targets in {}", zones.join(", ")),
            "run doctor in the task (ECS_CONTAINER_METADATA_URI_V4) or on the instance (IMDSv2) to match the zone",
        ),
    });
    let groups = efs
        .describe_mount_target_security_groups()
        .mount_target_id(target.mount_target_id())
        .send()
        .await
        .map(|out| out.security_groups().to_vec())
        .unwrap_or_default();
    let Some(ip) = target.ip_address() else {
        return checks;
    };
    let started = std::time::Instant::now();
    let reached = tokio::time::timeout(limit.min(Duration::from_secs(3)), tokio::net::TcpStream::connect((ip, NFS_PORT))).await;
    let detail = serde_json::json!({ "ip": ip, "security_groups": groups });
    checks.push(
        match reached {
            Ok(Ok(_)) => Check::ok(
                "aws.efs_port",
                format!("{ip}:{NFS_PORT} answers ({} ms)", started.elapsed().as_millis()),
            ),
            Ok(Err(e)) => Check::fail(
                "aws.efs_port",
                format!("{ip}:{NFS_PORT} refuses the connection: {e}"),
                format!("the mount target's security groups ({}) must allow TCP 2049 from this task's security group", groups.join(", ")),
            ),
            Err(_) => Check::fail(
                "aws.efs_port",
                format!("{ip}:{NFS_PORT} does not answer within {}s", limit.min(Duration::from_secs(3)).as_secs()),
                format!("the mount target's security groups ({}) must allow TCP 2049 from this task's security group", groups.join(", ")),
            ),
        }
        .with_detail(detail),
    );
    checks
}

/// The availability zone: from the ECS task metadata, else from IMDSv2.
async fn availability_zone(env: &BTreeMap<String, String>, limit: Duration) -> Option<String> {
    if let Some(base) = env.get("ECS_CONTAINER_METADATA_URI_V4").filter(|v| !v.is_empty()) {
        let (status, body) = probe::get(&format!("{base}/task"), limit).await.ok()?;
        if status != 200 {
            return None;
        }
        let task: serde_json::Value = serde_json::from_slice(&body).ok()?;
        return task["AvailabilityZone"].as_str().map(str::to_string);
    }
    if env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let imds = aws_config::imds::Client::builder().build();
    let zone = tokio::time::timeout(limit, imds.get("/latest/meta-data/placement/availability-zone"))
        .await
        .ok()?
        .ok()?;
    Some(zone.as_ref().to_string())
}
