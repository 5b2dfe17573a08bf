//! `[tee] image_hash` of the start file: the container's image digest from
//! the ECS container metadata (v4) when the agent runs under ECS, else zeros
//! with a note on the launch check. `launch.image_hash` says, for `agent run`
//! and `agent doctor` alike, whether the signer contract's
//! `allowed_docker_image_hashes` holds it; `launch.allowed_hashes_file`
//! whether `/tmp`, where the node keeps that list, is writable.

use agent::views::{DoctorReport, Status};
use agent_tests::harness::{AgentCommand, JsonServer, WAIT, doctor_report, file_names};
use agent_tests::near_rpc::{AllowedMpcDockerImageHash, ContractViews, ErrorForm};
use agent_tests::node_fixture::{CONTRACT, NodeFixture};
use agent_tests::standin_node::CONFIG_FILE_SWITCH;
use agent_tests::views::{Checks, launch_summary};
use entrypoint::check::Status as Verdict;
use serde_json::json;

const DIGEST: &str = "sha256:c6d3a6b0c1e0f7b7d1b8c0a1f2e3d4c5b6a7980112233445566778899aabbccd";

/// The `image_hash` of the start file the node was given, and the launch check's cause.
fn started_with(node: &NodeFixture, metadata: Option<&JsonServer>) -> (String, String) {
    let mut command = node.run().env(CONFIG_FILE_SWITCH, "1");
    if let Some(server) = metadata {
        command = command.env("ECS_CONTAINER_METADATA_URI_V4", &server.url);
    }
    let agent = command.start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    let file = launch_summary(&status).command[2].clone();
    let start: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
    let hash = start["tee"]["image_hash"].as_str().unwrap().to_string();
    (hash, status.check("launch.command").cause.clone())
}

#[test]
fn the_image_hash_is_the_containers_digest_from_the_ecs_metadata() {
    let node = NodeFixture::new();
    let metadata = JsonServer::start(json!({
        "DockerId": "43481a6ce4842eec8fe72fc28500c6b52edcc0917f105b83379f88cac1ff3946",
        "Name": "mpc-node",
        "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mpc-node:3.14.1",
        "ImageID": DIGEST,
    }));
    let (hash, cause) = started_with(&node, Some(&metadata));
    assert_eq!(hash, DIGEST);
    assert!(cause.contains("from the ECS container metadata"), "{cause}");
}

#[test]
fn outside_ecs_the_image_hash_is_zeros_and_the_launch_check_says_why() {
    let node = NodeFixture::new();
    let (hash, cause) = started_with(&node, None);
    assert_eq!(hash, format!("sha256:{}", "0".repeat(64)));
    assert!(cause.contains("NOT in the allowed hash list"), "{cause}");
}

/// The contract's views with `allowed` as its allowed image hashes.
fn allowing(node: &NodeFixture, allowed: &[&str]) {
    let mut chain = node.scenario();
    chain.contract_views.insert(
        CONTRACT.parse().unwrap(),
        ContractViews {
            allowed_docker_image_hashes: Some(
                allowed
                    .iter()
                    .map(|digest| AllowedMpcDockerImageHash {
                        image_hash: digest.trim_start_matches("sha256:").to_string(),
                        expiry_timestamp_seconds: None,
                    })
                    .collect(),
            ),
            ..ContractViews::default()
        },
    );
    node.chain.rpc.set_scenario(chain);
}

fn metadata() -> JsonServer {
    JsonServer::start(json!({ "Name": "mpc-node", "ImageID": DIGEST }))
}

/// `agent doctor --json --check launch` for the node, as run would start it.
fn doctor(node: &NodeFixture, metadata: Option<&JsonServer>) -> (DoctorReport, i32) {
    let mut command = AgentCommand::new(["doctor", "--json", "--check", "launch"])
        .envs(node.env())
        .envs(node.secret_env())
        .env(CONFIG_FILE_SWITCH, "1");
    if let Some(server) = metadata {
        command = command.env("ECS_CONTAINER_METADATA_URI_V4", &server.url);
    }
    let out = command.run();
    (doctor_report(&out), out.code)
}

/// The `launch.*` checks of the running agent's `/status`.
fn run_checks(node: &NodeFixture, metadata: Option<&JsonServer>) -> Status {
    let mut command = node.run().env(CONFIG_FILE_SWITCH, "1");
    if let Some(server) = metadata {
        command = command.env("ECS_CONTAINER_METADATA_URI_V4", &server.url);
    }
    let agent = command.start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    agent.status()
}

#[test]
fn a_digest_the_contract_allows_is_ok_for_run_and_doctor() {
    let node = NodeFixture::new();
    let other = format!("sha256:{}", "ab".repeat(32));
    allowing(&node, &[&other, DIGEST]);
    let metadata = metadata();
    let (report, code) = doctor(&node, Some(&metadata));
    let by_doctor = report.check("launch.image_hash");
    assert_eq!(by_doctor.status, Verdict::Ok, "{by_doctor:?}");
    assert!(by_doctor.cause.contains(DIGEST), "{by_doctor:?}");
    assert_eq!(
        report.check("launch.allowed_hashes_file").status,
        Verdict::Ok
    );
    assert_eq!(code, 0, "{report:#?}");
    let status = run_checks(&node, Some(&metadata));
    assert_eq!(status.check("launch.image_hash").status, Verdict::Ok);
    assert_eq!(
        status.check("launch.allowed_hashes_file").status,
        Verdict::Ok
    );
}

#[test]
fn a_digest_the_contract_does_not_allow_warns_naming_it_and_the_vote() {
    let node = NodeFixture::new();
    allowing(&node, &[&format!("sha256:{}", "ab".repeat(32))]);
    let metadata = metadata();
    let (report, code) = doctor(&node, Some(&metadata));
    let check = report.check("launch.image_hash");
    assert_eq!(check.status, Verdict::Warn, "{check:?}");
    assert!(check.cause.contains(DIGEST), "{check:?}");
    let fix = check.fix.as_deref().unwrap();
    assert!(
        fix.contains("vote_code_hash") && fix.contains(DIGEST.trim_start_matches("sha256:")),
        "{fix}"
    );
    assert_eq!(code, 2, "warnings only");
    let status = run_checks(&node, Some(&metadata));
    let by_run = status.check("launch.image_hash");
    assert_eq!(
        by_run.status,
        Verdict::Warn,
        "the node starts all the same: {by_run:?}"
    );
    assert_eq!(by_run.cause, check.cause);
}

#[test]
fn without_a_digest_or_the_view_the_image_hash_is_skipped_saying_why() {
    let node = NodeFixture::new();
    allowing(&node, &[DIGEST]);
    let (report, _) = doctor(&node, None);
    let check = report.check("launch.image_hash");
    assert_eq!(check.status, Verdict::Skipped, "{check:?}");
    assert!(
        check.cause.contains("ECS_CONTAINER_METADATA_URI_V4"),
        "{check:?}"
    );

    // A contract before the view, whatever form the RPC answers "no such
    // method" in.
    for errors in ErrorForm::ALL {
        let older = NodeFixture::new();
        let mut chain = older.scenario();
        chain.errors = errors;
        older.chain.rpc.set_scenario(chain);
        let (report, _) = doctor(&older, Some(&metadata()));
        let check = report.check("launch.image_hash");
        assert_eq!(check.status, Verdict::Skipped, "{errors:?}: {check:?}");
        assert!(
            check.cause.contains("no allowed_docker_image_hashes view"),
            "{errors:?}: {check:?}"
        );
    }
}

#[test]
fn a_read_only_tmp_fails_the_allowed_hashes_file_check_and_a_writable_one_keeps_nothing() {
    let node = NodeFixture::new();
    let probes = || {
        file_names("/tmp")
            .iter()
            .filter(|name| name.starts_with(".agent-write-probe."))
            .count()
    };
    let before = probes();
    let (report, _) = doctor(&node, None);
    assert_eq!(
        report.check("launch.allowed_hashes_file").status,
        Verdict::Ok
    );
    assert_eq!(probes(), before, "the probe leaves no file in /tmp");

    let Some(command) = AgentCommand::new(["doctor", "--json", "--check", "launch"])
        .envs(node.env())
        .envs(node.secret_env())
        .with_read_only_tmp()
    else {
        return;
    };
    let out = command.run();
    let report = doctor_report(&out);
    let check = report.check("launch.allowed_hashes_file");
    assert_eq!(check.status, Verdict::Fail, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains("/tmp") && cause.contains("allowed_image_hashes.json"),
        "{cause}"
    );
    assert_eq!(out.code, 1);
}
