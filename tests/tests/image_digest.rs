//! `[tee] image_hash` of the start file: the container's image digest from
//! the ECS container metadata (v4) when the agent runs under ECS, else zeros
//! with a note on the launch check.

use agent_tests::harness::{JsonServer, WAIT};
use agent_tests::json;
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::CONFIG_FILE_SWITCH;
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
    let status = agent.get("/status").json();
    let launch = json::check(&status, "launch.command").clone();
    let file = launch["detail"]["command"][2].as_str().unwrap().to_string();
    let start: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
    let hash = start["tee"]["image_hash"].as_str().unwrap().to_string();
    (hash, launch["cause"].as_str().unwrap().to_string())
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
