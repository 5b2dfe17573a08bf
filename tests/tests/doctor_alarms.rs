//! `agent doctor`'s alarms group against moto's CloudWatch, through the real
//! SDK: an alarm on this node's metrics put into ALARM shows with its reason
//! and since when and fails the report, one with insufficient data warns,
//! alarms of another node or namespace are not shown; none configured is
//! said; no namespace skips the group saying why; the namespace and node come
//! through a running agent's `/config` too; a denied DescribeAlarms names the
//! IAM action and the task role.

use agent::views::{ConfigOrigin, DoctorReport};
use agent_tests::harness::doctor_report;
use agent_tests::harness::{AgentCommand, Output, WAIT};
use agent_tests::moto::Moto;
use agent_tests::node_fixture::{ACCOUNT, NodeFixture};
use agent_tests::views::Checks;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use entrypoint::check::Status;

const NAMESPACE: &str = "MpcAgent";
const PAGED: &str = "Threshold Crossed: 13 out of the last 15 datapoints were greater than or equal to the threshold (1.0)";

/// An alarm on `metric` of the node `node` in `namespace`, put into `state` for `reason`.
fn alarm(
    moto: &Moto,
    name: &str,
    namespace: &str,
    node: &str,
    metric: &str,
    state: StateValue,
    reason: &str,
) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&moto.sdk_config());
    moto.block_on(async {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(format!("{name}: read the runbook, section {metric}"))
            .namespace(namespace)
            .metric_name(metric)
            .dimensions(Dimension::builder().name("Node").value(node).build())
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(15)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .send()
            .await
            .unwrap();
        if state != StateValue::Ok {
            cloudwatch
                .set_alarm_state()
                .alarm_name(name)
                .state_value(state)
                .state_reason(reason)
                .send()
                .await
                .unwrap();
        }
    });
}

/// `agent doctor --json --check alarms` for `node`, with `extra` settings.
fn doctor(moto: &Moto, node: &NodeFixture, extra: &[(&str, &str)]) -> (DoctorReport, Output) {
    let out = AgentCommand::new(["doctor", "--json", "--check", "alarms", "--timeout", "10s"])
        .envs(node.env())
        .envs(node.secret_env())
        .envs(moto.env())
        .envs(extra.iter().copied())
        .run();
    (doctor_report(&out), out)
}

fn ids(report: &DoctorReport) -> Vec<String> {
    report.checks.iter().map(|e| e.check.id.clone()).collect()
}

#[test]
fn an_alarm_on_this_node_in_alarm_shows_with_its_reason_and_since_when() {
    let moto = Moto::start();
    let node = NodeFixture::new();
    alarm(
        &moto,
        "node0-holding",
        NAMESPACE,
        ACCOUNT,
        "Holding",
        StateValue::Alarm,
        PAGED,
    );
    alarm(
        &moto,
        "node0-restarting",
        NAMESPACE,
        ACCOUNT,
        "NodeRestarts",
        StateValue::Ok,
        "",
    );
    alarm(
        &moto,
        "node0-vault-behind",
        NAMESPACE,
        ACCOUNT,
        "VaultBehindSeconds",
        StateValue::InsufficientData,
        "Insufficient Data: 3 datapoints were unknown.",
    );
    alarm(
        &moto,
        "node1-holding",
        NAMESPACE,
        "node1.test.near",
        "Holding",
        StateValue::Alarm,
        PAGED,
    );
    alarm(
        &moto,
        "elsewhere-holding",
        "OtherAgent",
        ACCOUNT,
        "Holding",
        StateValue::Alarm,
        PAGED,
    );

    let (report, out) = doctor(&moto, &node, &[("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE)]);
    let paged = report.check("alarms.node0-holding");
    assert_eq!(paged.status, Status::Fail, "{paged:?}");
    let cause = &paged.cause;
    assert!(cause.contains("in ALARM since 20"), "{cause}");
    assert!(
        cause.contains("(Holding)") && cause.contains(PAGED),
        "{cause}"
    );
    assert_eq!(
        paged.fix.as_deref(),
        Some("node0-holding: read the runbook, section Holding")
    );
    assert_eq!(paged.detail["state"], "ALARM");
    let since = paged.detail["since"].as_str().unwrap();
    assert!(
        since.len() >= 20 && &since[10..11] == "T" && since.ends_with('Z'),
        "since {since}: RFC 3339"
    );

    let no_data = report.check("alarms.node0-vault-behind");
    assert_eq!(no_data.status, Status::Warn, "{no_data:?}");
    assert!(
        no_data.cause.contains("insufficient data since"),
        "{no_data:?}"
    );

    let summary = report.check("alarms");
    assert_eq!(summary.status, Status::Ok, "{summary:?}");
    assert!(
        summary.cause.starts_with(&format!("3 alarm(s) read this node's metrics (namespace {NAMESPACE}, Node={ACCOUNT}): 1 in ALARM, 1 with insufficient data, 1 OK")),
        "{summary:?}"
    );
    assert_eq!(
        ids(&report),
        [
            "alarms",
            "alarms.node0-holding",
            "alarms.node0-vault-behind"
        ],
        "another node's, another namespace's and an OK alarm are not listed"
    );
    assert_eq!(out.code, 1, "an alarm that paged fails the report");

    let table = AgentCommand::new(["doctor", "--check", "alarms", "--timeout", "10s"])
        .envs(node.env())
        .envs(node.secret_env())
        .envs(moto.env())
        .env("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE)
        .run();
    println!("agent doctor --check alarms:\n{}", table.stdout);
    assert!(
        table.stdout.contains("alarms.node0-holding"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(PAGED), "{}", table.stdout);
}

#[test]
fn with_no_alarm_on_this_node_the_group_says_none_is_configured() {
    let moto = Moto::start();
    let node = NodeFixture::new();
    alarm(
        &moto,
        "node1-holding",
        NAMESPACE,
        "node1.test.near",
        "Holding",
        StateValue::Alarm,
        PAGED,
    );
    let (report, out) = doctor(&moto, &node, &[("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE)]);
    let none = report.check("alarms");
    assert_eq!(none.status, Status::Warn, "{none:?}");
    assert!(
        none.cause.starts_with(&format!(
            "no CloudWatch alarm reads this node's metrics (namespace {NAMESPACE}, Node={ACCOUNT})"
        )),
        "{none:?}"
    );
    assert!(
        none.fix
            .as_deref()
            .unwrap_or_default()
            .contains("AGENT_CLOUDWATCH_NODE"),
        "{none:?}"
    );
    assert_eq!(ids(&report), ["alarms"]);
    assert_eq!(out.code, 2);
}

#[test]
fn without_a_namespace_the_group_is_skipped_saying_why() {
    let moto = Moto::start();
    let node = NodeFixture::new();
    let (report, out) = doctor(&moto, &node, &[]);
    let skipped = report.check("alarms");
    assert_eq!(skipped.status, Status::Skipped, "{skipped:?}");
    assert!(
        skipped
            .cause
            .contains("AGENT_CLOUDWATCH_NAMESPACE is not set"),
        "{skipped:?}"
    );
    assert_eq!(out.code, 0);
}

#[test]
fn on_the_instance_the_namespace_and_node_come_from_the_running_agents_config() {
    let moto = Moto::start();
    let node = NodeFixture::new();
    alarm(
        &moto,
        "mpc-node-0-holding",
        NAMESPACE,
        "mpc-node-0",
        "Holding",
        StateValue::Alarm,
        PAGED,
    );
    let agent = node
        .run()
        .env("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE)
        .env("AGENT_CLOUDWATCH_NODE", "mpc-node-0")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let from = format!("http://{}", agent.addr());
    // The instance's environment: AWS, and nothing of the node's.
    let out = AgentCommand::new([
        "doctor",
        "--json",
        "--check",
        "alarms",
        "--timeout",
        "10s",
        "--from",
        &from,
    ])
    .envs(moto.env())
    .run();
    let report = doctor_report(&out);
    assert!(
        matches!(report.configuration, ConfigOrigin::RunningAgent { .. }),
        "{report:?}"
    );
    let paged = report.check("alarms.mpc-node-0-holding");
    assert_eq!(paged.status, Status::Fail, "{paged:?}");
}

#[test]
fn a_denied_describe_alarms_names_the_action_and_the_task_role() {
    let moto = Moto::with_iam_after(2);
    let node = NodeFixture::new();
    let (_, key_id, secret) = moto.create_user_without_permissions("doctor");
    let (report, out) = doctor(
        &moto,
        &node,
        &[
            ("AGENT_CLOUDWATCH_NAMESPACE", NAMESPACE),
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let denied = report.check("alarms");
    println!("{denied:?}");
    assert_eq!(denied.status, Status::Fail, "{denied:?}");
    let cause = &denied.cause;
    assert!(
        cause.starts_with("access denied") && cause.contains("cloudwatch:DescribeAlarms"),
        "{cause}"
    );
    let fix = denied.fix.as_deref().unwrap_or_default();
    assert!(
        fix.contains("cloudwatch:DescribeAlarms") && fix.contains("task role"),
        "{denied:?}"
    );
    assert_eq!(out.code, 1);
}
