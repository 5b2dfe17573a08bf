//! `agent run` from boot to a running, ready node and back down: the stages in
//! order on `/status`, the node started with what it needs and nothing else,
//! SIGTERM at any phase.

use std::time::Duration;

use agent::views::{Phase, Reported};
use agent_tests::harness::{WAIT, metric, walk};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::views::{Checks, launch_summary, setting};
use entrypoint::check::Status;
use nix::sys::signal::Signal;

#[test]
fn a_node_whose_keys_match_starts_and_becomes_ready() {
    let node = NodeFixture::new();
    let mut agent = node.run().start();
    let ready = agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert!(ready.ready_view().ready, "{}", ready.body);
    let status = agent.status();
    assert_eq!(status.phase, Reported::Known(Phase::Running));
    for id in [
        "secrets.MPC_ACCOUNT_SK",
        "keys.access_key",
        "keys.participant",
        "homes.lock",
        "homes.init",
        "homes.secrets.json",
        "launch.command",
    ] {
        let check = status.check(id);
        assert!(
            matches!(check.status, Status::Ok | Status::Warn),
            "{check:?}"
        );
    }
    let launch = launch_summary(&status);
    let env: Vec<&str> = launch.env.iter().map(String::as_str).collect();
    assert!(env.contains(&"MPC_SECRET_STORE_KEY"), "{env:?}");
    assert!(
        !env.contains(&"MPC_ACCOUNT_SK") && !env.contains(&"MPC_P2P_PRIVATE_KEY"),
        "{env:?}"
    );
    let secrets_json = node.secrets_json();
    assert_eq!(secrets_json["near_signer_key"], node.account.secret);
    assert_eq!(secrets_json["p2p_private_key"], node.p2p.secret);
    let metrics = agent.get("/metrics").body;
    assert!(
        metric(&metrics, "agent_stage_duration_seconds{stage=\"keys\"}").is_some(),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_stage_status{stage=\"home\",status="),
        "{metrics}"
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn sigterm_while_holding_stops_at_once() {
    let node = NodeFixture::new();
    node.chain_knows(
        &agent_tests::node_fixture::Key::random().public,
        &node.p2p.public,
    );
    let mut agent = node.run().start();
    agent.wait_phase(WAIT, Phase::Holding);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
}

#[test]
fn the_second_boot_writes_nothing() {
    let node = NodeFixture::new();
    let mut first = node.run().start();
    first.wait_until("/ready", WAIT, |r| r.status == 200);
    first.signal(Signal::SIGTERM);
    assert_eq!(first.exit_code(), 0);
    let before = snapshot(node.home());
    std::thread::sleep(Duration::from_millis(1100));
    let mut second = node.run().start();
    second.wait_until("/ready", WAIT, |r| r.status == 200);
    second.signal(Signal::SIGTERM);
    assert_eq!(second.exit_code(), 0);
    assert_eq!(snapshot(node.home()), before);
}

/// Every file of the home with its size and modification time, the agent's
/// holder record aside (rewritten by every boot).
fn snapshot(home: &std::path::Path) -> Vec<(String, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    walk(home)
        .into_iter()
        .filter(|(name, _, meta)| !meta.is_dir() && name != ".agent/holder.json")
        .map(|(name, _, meta)| {
            let mtime = meta.mtime_nsec() + meta.mtime() * 1_000_000_000;
            (name, meta.size(), mtime)
        })
        .collect()
}

#[test]
fn config_never_shows_an_rpc_urls_api_key() {
    let node = NodeFixture::new();
    let with_key = format!("{}/?apikey=provider-key-1234567890", node.chain.rpc.url());
    let agent = node.run().env("AGENT_NEAR_RPC_URL", &with_key).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let config = agent.get("/config").config_view();
    let rpc = setting(&config.settings, "AGENT_NEAR_RPC_URL");
    assert!(rpc.redacted, "{rpc:?}");
    assert!(
        !rpc.value.as_deref().unwrap().contains("provider-key"),
        "{rpc:?}"
    );
    let status = agent.get("/status").body;
    assert!(!status.contains("provider-key"), "{status}");
}

#[test]
fn an_image_with_start_with_config_file_gets_its_toml_off_the_home() {
    use std::os::unix::fs::PermissionsExt;
    let node = NodeFixture::new();
    let newer_image = node.standin_with(&[("MPC_NODE_STANDIN_CONFIG_FILE", "1")]);
    let mut agent = node.run().env("AGENT_NODE_BIN", &newer_image).start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let launch = launch_summary(&agent.status());
    let command = launch.command.clone();
    assert_eq!(command[1], "start-with-config-file", "{command:?}");
    let file = std::path::Path::new(&command[2]);
    assert!(
        !file.starts_with(node.home()),
        "the store key stays off the home: {}",
        file.display()
    );
    assert_eq!(
        std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let env: Vec<&str> = launch.env.iter().map(String::as_str).collect();
    assert!(
        !env.contains(&"MPC_SECRET_STORE_KEY"),
        "the key is in the file, not the environment: {env:?}"
    );

    // The file, which holds the store and backup keys, is gone once the agent stops.
    agent.signal(Signal::SIGTERM);
    agent.exit_code();
    assert!(!file.exists(), "{} outlived the agent", file.display());

    // The next boot writes it again under the same name: one file per home, not one per boot.
    let again = node.run().env("AGENT_NODE_BIN", &newer_image).start();
    again.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(launch_summary(&again.status()).command[2], command[2]);
    assert!(file.exists());
}

/// `--help` says the node's filter is `info` when `RUST_LOG` is unset: that is
/// what the node gets, through its environment or the start file.
#[test]
fn the_node_gets_the_log_filter_help_promises() {
    let node = NodeFixture::new();
    let newer_image = node.standin_with(&[("MPC_NODE_STANDIN_CONFIG_FILE", "1")]);
    for (bin, rust_log, filter) in [
        (None, None, "info"),
        (None, Some("mpc_node=debug"), "mpc_node=debug"),
        (Some(&newer_image), None, "info"),
        (Some(&newer_image), Some("warn"), "warn"),
    ] {
        let mut command = node.run().env_remove("RUST_LOG");
        if let Some(bin) = bin {
            command = command.env("AGENT_NODE_BIN", bin);
        }
        if let Some(rust_log) = rust_log {
            command = command.env("RUST_LOG", rust_log);
        }
        let agent = command.start();
        let line = agent.stdout.wait_for(WAIT, |l| {
            l.starts_with("mpc-node: log filter") || l.starts_with("mpc-node: no log filter")
        });
        assert_eq!(
            line.as_deref(),
            Some(format!("mpc-node: log filter {filter}").as_str()),
            "RUST_LOG {rust_log:?}, config file {}",
            bin.is_some()
        );
    }
}
