//! The alarms group: the CloudWatch alarms that read this node's metrics
//! (the namespace `AGENT_CLOUDWATCH_NAMESPACE`, the dimension `Node` =
//! `AGENT_CLOUDWATCH_NODE`), whatever the metric, and the ones in `ALARM` or
//! `INSUFFICIENT_DATA` each with its reason and since when: what paged the
//! on-call, beside the checks that explain it. Read-only (DescribeAlarms).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, MetricAlarm, StateValue};
use aws_smithy_types::date_time::Format;
use entrypoint::aws_answer::{Answer, denied_principal};
use entrypoint::check::{Check, error_chain};
use entrypoint::clients::{AwsClient, Clients};
use entrypoint::config::{CloudWatchSettings, DoctorConfig};
use entrypoint::excerpt::excerpt;
use serde_json::json;

use crate::emf::NODE_DIMENSION;

const GROUP: &str = "alarms";
/// The IAM action the group needs.
const ACTION: &str = "cloudwatch:DescribeAlarms";
/// The longest reason or description shown.
const SHOWN: usize = 600;

/// The group's checks; each try of the call within `limit`.
pub async fn checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    limit: Duration,
) -> Vec<Check> {
    let Some(cloudwatch) = &config.cloudwatch else {
        return vec![Check::skipped(
            GROUP,
            "not checked: AGENT_CLOUDWATCH_NAMESPACE is not set, so the agent writes no metrics for an alarm to read",
        )];
    };
    let client = Clients::new().cloudwatch(env, limit).await;
    match on_node(&client, cloudwatch).await {
        Ok(alarms) => judged(&alarms, cloudwatch),
        Err(check) => vec![check],
    }
}

/// One alarm on this node's metrics, as CloudWatch last evaluated it.
struct Alarm {
    name: String,
    state: StateValue,
    reason: String,
    /// When it entered its state, RFC 3339.
    since: Option<String>,
    metric: String,
    description: Option<String>,
}

/// Every metric alarm of the account and region (DescribeAlarms, page after
/// page) whose metric is this node's.
async fn on_node(
    client: &AwsClient<aws_sdk_cloudwatch::Client>,
    settings: &CloudWatchSettings,
) -> Result<Vec<Alarm>, Check> {
    let mut pages = client
        .client
        .describe_alarms()
        .alarm_types(AlarmType::MetricAlarm)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| refused(client, &e))?;
        found.extend(
            page.metric_alarms()
                .iter()
                .filter_map(|alarm| on_this_node(alarm, settings)),
        );
    }
    Ok(found)
}

/// The alarm, when one of the metrics it reads is in the namespace with
/// this node's `Node` dimension (one metric, or one of a metric math's).
fn on_this_node(alarm: &MetricAlarm, settings: &CloudWatchSettings) -> Option<Alarm> {
    let node = |dimensions: &[Dimension]| {
        dimensions
            .iter()
            .any(|d| d.name() == Some(NODE_DIMENSION) && d.value() == Some(&settings.node))
    };
    let single = (alarm.namespace() == Some(&settings.namespace) && node(alarm.dimensions()))
        .then(|| alarm.metric_name().unwrap_or_default());
    let metric = single.or_else(|| {
        alarm
            .metrics()
            .iter()
            .filter_map(|query| query.metric_stat()?.metric())
            .find(|m| m.namespace() == Some(&settings.namespace) && node(m.dimensions()))
            .map(|m| m.metric_name().unwrap_or_default())
    })?;
    let since = alarm
        .state_transitioned_timestamp()
        .or(alarm.state_updated_timestamp())
        .and_then(|t| t.fmt(Format::DateTime).ok());
    Some(Alarm {
        name: alarm.alarm_name().unwrap_or_default().to_string(),
        state: alarm
            .state_value()
            .cloned()
            .unwrap_or(StateValue::InsufficientData),
        reason: alarm.state_reason().unwrap_or_default().to_string(),
        since,
        metric: metric.to_string(),
        description: alarm.alarm_description().map(str::to_string),
    })
}

/// A summary of the alarms on the node, and a check for each one not OK.
fn judged(alarms: &[Alarm], settings: &CloudWatchSettings) -> Vec<Check> {
    let (namespace, node) = (&settings.namespace, &settings.node);
    if alarms.is_empty() {
        return vec![Check::warn(
            GROUP,
            format!(
                "no CloudWatch alarm reads this node's metrics (namespace {namespace}, {NODE_DIMENSION}={node}): nothing pages anyone about it"
            ),
            "deploy the alarms of docker/cloudformation.yaml (their Node is the stack's NodeName, which it sets as AGENT_CLOUDWATCH_NODE), or set AGENT_CLOUDWATCH_NODE to the Node the alarms name",
        )];
    }
    let firing = alarms
        .iter()
        .filter(|a| a.state == StateValue::Alarm)
        .count();
    let no_data = alarms
        .iter()
        .filter(|a| a.state == StateValue::InsufficientData)
        .count();
    let names: Vec<&str> = alarms.iter().map(|a| a.name.as_str()).collect();
    let summary = Check::ok(
        GROUP,
        format!(
            "{} alarm(s) read this node's metrics (namespace {namespace}, {NODE_DIMENSION}={node}): {firing} in ALARM, {no_data} with insufficient data, {} OK",
            alarms.len(),
            alarms.len() - firing - no_data
        ),
    )
    .with_detail(json!({ "alarms": names }));
    let mut checks = vec![summary];
    checks.extend(alarms.iter().filter_map(not_ok));
    checks
}

/// An alarm in `ALARM` (a failure: it paged) or `INSUFFICIENT_DATA` (a
/// warning: it cannot page), with its reason and since when.
fn not_ok(alarm: &Alarm) -> Option<Check> {
    let id = format!("{GROUP}.{}", alarm.name);
    let since = alarm.since.as_deref().unwrap_or("an unknown time");
    let reason = excerpt(&alarm.reason, SHOWN);
    let metric = &alarm.metric;
    let detail = json!({
        "alarm": alarm.name,
        "state": alarm.state.as_str(),
        "since": alarm.since,
        "metric": metric,
        "reason": reason,
    });
    let check = match alarm.state {
        StateValue::Alarm => Check::fail(
            id,
            format!(
                "{} is in ALARM since {since} ({metric}): {reason}",
                alarm.name
            ),
            match &alarm.description {
                Some(description) => excerpt(description, SHOWN),
                None => format!(
                    "read the alarm {} in the CloudWatch console: what it watches and what to do",
                    alarm.name
                ),
            },
        ),
        StateValue::InsufficientData => Check::warn(
            id,
            format!(
                "{} has had insufficient data since {since} ({metric}): it cannot page; {reason}",
                alarm.name
            ),
            format!(
                "a new alarm waits for its first periods; otherwise no line with {metric} reached CloudWatch: is the agent running, with AGENT_CLOUDWATCH_NAMESPACE set, and does it have a reading of {metric} (a vault for the vault's metrics, a running node for the indexer's)?"
            ),
        ),
        _ => return None,
    };
    Some(check.with_detail(detail))
}

/// Why DescribeAlarms was refused, as a failed check: a denial names the
/// IAM action and the task role.
fn refused<E: ProvideErrorMetadata + std::error::Error + 'static>(
    client: &AwsClient<aws_sdk_cloudwatch::Client>,
    error: &SdkError<E>,
) -> Check {
    if let SdkError::ServiceError(ctx) = error
        && let Answer {
            status,
            code,
            message,
        } = Answer::of(ctx)
        && (status == 403 || code.starts_with("AccessDenied"))
    {
        let (principal, execution_role) = denied_principal(&message);
        return Check::fail(
            GROUP,
            format!(
                "access denied{principal}: {ACTION} on the alarms of {}{execution_role} ({message})",
                client.region().unwrap_or("the region")
            ),
            format!(
                "grant {ACTION} on arn:aws:cloudwatch:REGION:ACCOUNT:alarm:* to the task role (taskRoleArn), not the execution role (docker/cloudformation.yaml does)"
            ),
        );
    }
    Check::fail(
        GROUP,
        format!(
            "CloudWatch at {} did not list the alarms: {}",
            client.endpoint(),
            error_chain(error)
        ),
        "check the network path to CloudWatch (a VPC endpoint for monitoring, or NAT), the region (AWS_REGION) and AWS_ENDPOINT_URL if set",
    )
}
