//! The home's EFS, as AWS sees it: the file system available, a mount target
//! in the task's availability zone, and that target answering on port 2049
//! (the security groups). Read-only; `agent doctor` always asks, `agent run`
//! asks when the home is not on NFS, to name why.

use std::time::Duration;

use crate::check::{Check, error_chain};

const NFS_PORT: u16 = 2049;

/// The file system, the mount target of `zone` (any, when unknown), and its port.
pub async fn checks(
    sdk: &aws_config::SdkConfig,
    id: &str,
    zone: Option<&str>,
    limit: Duration,
) -> Vec<Check> {
    let efs = aws_sdk_efs::Client::new(sdk);
    let mut checks = Vec::new();
    match efs.describe_file_systems().file_system_id(id).send().await {
        Ok(out) => match out.file_systems().first() {
            Some(fs) if fs.life_cycle_state().as_str() == "available" => checks.push(Check::ok(
                "aws.efs",
                format!("file system {id} is available"),
            )),
            Some(fs) => checks.push(Check::fail(
                "aws.efs",
                format!("file system {id} is {}", fs.life_cycle_state().as_str()),
                "wait until it is available, or use another file system",
            )),
            None => checks.push(Check::fail(
                "aws.efs",
                format!("file system {id} does not exist"),
                "correct AGENT_EFS_FILE_SYSTEM_ID",
            )),
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
    let zones: Vec<String> = targets
        .iter()
        .filter_map(|t| t.availability_zone_name().map(str::to_string))
        .collect();
    let target = match zone {
        Some(zone) => targets
            .iter()
            .find(|t| t.availability_zone_name() == Some(zone)),
        None => targets.first(),
    };
    let Some(target) = target else {
        checks.push(Check::fail(
            "aws.efs_mount_target",
            format!(
                "{id} has no mount target in {} (it has some in: {})",
                zone.unwrap_or("any availability zone"),
                if zones.is_empty() { "none".to_string() } else { zones.join(", ") }
            ),
            "create a mount target in a subnet of this availability zone (aws efs create-mount-target), or run the task where one exists",
        ));
        return checks;
    };
    checks.push(match zone {
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
    let reached = tokio::time::timeout(
        limit.min(Duration::from_secs(3)),
        tokio::net::TcpStream::connect((ip, NFS_PORT)),
    )
    .await;
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
