//! Where this task runs: its availability zone, from the ECS task metadata
//! (`ECS_CONTAINER_METADATA_URI_V4`) or else the instance metadata (IMDSv2);
//! and the image this container runs, from the ECS container metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::probe;

/// The availability zone: from the ECS task metadata, else from IMDSv2.
pub async fn availability_zone(env: &BTreeMap<String, String>, limit: Duration) -> Option<String> {
    if let Some(base) = env
        .get("ECS_CONTAINER_METADATA_URI_V4")
        .filter(|v| !v.is_empty())
    {
        let (status, body) = probe::get(&format!("{base}/task"), limit).await.ok()?;
        if status != 200 {
            return None;
        }
        let task: serde_json::Value = serde_json::from_slice(&body).ok()?;
        return task["AvailabilityZone"].as_str().map(str::to_string);
    }
    if env
        .get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let imds = aws_config::imds::Client::builder().build();
    let zone = tokio::time::timeout(
        limit,
        imds.get("/latest/meta-data/placement/availability-zone"),
    )
    .await
    .ok()?
    .ok()?;
    Some(zone.as_ref().to_string())
}

/// This container's image digest (`sha256:` and 64 hex digits): `ImageID`
/// of the ECS container metadata (`${ECS_CONTAINER_METADATA_URI_V4}` itself
/// describes the container asking); `None` outside ECS or on any failure.
pub async fn image_digest(env: &BTreeMap<String, String>, limit: Duration) -> Option<String> {
    let base = env
        .get("ECS_CONTAINER_METADATA_URI_V4")
        .filter(|v| !v.is_empty())?;
    let (status, body) = probe::get(base, limit).await.ok()?;
    if status != 200 {
        return None;
    }
    let container: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let digest = container["ImageID"].as_str()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}
