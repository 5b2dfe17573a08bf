//! The config.json edits upstream's `start-with-config-file` makes after a
//! fresh init, made by the agent's own init through `agent init`: on
//! mpc-localnet nearcore's caps on block messages are lifted once (a later
//! change by hand stays), and `AGENT_NEARCORE_RPC_ADDR` /
//! `AGENT_NEARCORE_NETWORK_ADDR` set `rpc.addr` / `network.addr` on every
//! boot, a backup kept when they change.

use agent_tests::harness::{AgentCommand, Output, file_names};
use agent_tests::node_fixture::NodeFixture;
use serde_json::Value;

fn init(node: &NodeFixture, extra: &[(&'static str, &str)]) -> Output {
    let out = AgentCommand::new(["init"])
        .envs(node.env())
        .envs(node.secret_env())
        .envs(extra.iter().map(|(k, v)| (*k, v.to_string())))
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    out
}

fn config_json(node: &NodeFixture) -> Value {
    serde_json::from_str(&std::fs::read_to_string(node.path("config.json")).unwrap()).unwrap()
}

fn block_limit(config: &Value) -> &Value {
    &config["network"]["experimental"]["network_config_overrides"]["received_messages_rate_limits"]
        ["rate_limits"]["Block"]["refill_rate"]
}

fn backups(node: &NodeFixture) -> usize {
    file_names(node.home())
        .iter()
        .filter(|name| name.starts_with("config.json.bak."))
        .count()
}

#[test]
fn a_fresh_localnet_init_lifts_the_block_message_caps_once() {
    let node = NodeFixture::new();
    init(&node, &[]);
    let mut config = config_json(&node);
    assert_eq!(block_limit(&config), 1_000_000, "{config:#}");
    for kind in ["OptimisticBlock", "BlockRequest"] {
        assert_eq!(
            config["network"]["experimental"]["network_config_overrides"]["received_messages_rate_limits"]
                ["rate_limits"][kind]["maximum_size"],
            1_000_000
        );
    }

    // An operator's own cap is not undone by the next boot.
    config["network"]["experimental"]["network_config_overrides"]["received_messages_rate_limits"]
        ["rate_limits"]["Block"]["refill_rate"] = 5.into();
    std::fs::write(node.path("config.json"), config.to_string()).unwrap();
    init(&node, &[]);
    assert_eq!(block_limit(&config_json(&node)), 5);
}

#[test]
fn configured_listen_addresses_are_set_on_every_boot_with_a_backup() {
    let node = NodeFixture::new();
    init(
        &node,
        &[
            ("AGENT_NEARCORE_RPC_ADDR", "0.0.0.0:3031"),
            ("AGENT_NEARCORE_NETWORK_ADDR", "0.0.0.0:24568"),
        ],
    );
    let config = config_json(&node);
    assert_eq!(config["rpc"]["addr"], "0.0.0.0:3031", "{config:#}");
    assert_eq!(config["network"]["addr"], "0.0.0.0:24568");
    assert_eq!(
        config["network"]["boot_nodes"], "",
        "the init's other network fields stay"
    );

    let before = backups(&node);
    init(&node, &[("AGENT_NEARCORE_NETWORK_ADDR", "0.0.0.0:24569")]);
    let config = config_json(&node);
    assert_eq!(config["network"]["addr"], "0.0.0.0:24569");
    assert_eq!(
        config["rpc"]["addr"], "0.0.0.0:3031",
        "an unset one stays as it is"
    );
    assert_eq!(
        backups(&node),
        before + 1,
        "the previous config.json is kept"
    );
}

#[test]
fn a_listen_address_that_is_not_ip_and_port_is_refused_by_name() {
    let node = NodeFixture::new();
    let out = AgentCommand::new(["init"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("AGENT_NEARCORE_RPC_ADDR", "localhost:3031")
        .run();
    assert_eq!(out.code, 78, "{out:?}");
    assert!(
        out.stderr.contains("AGENT_NEARCORE_RPC_ADDR")
            || out.stdout.contains("AGENT_NEARCORE_RPC_ADDR"),
        "{out:?}"
    );
    assert!(!node.path("config.json").exists());
}
