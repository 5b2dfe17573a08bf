//! The files the node reads, rewritten on every boot: `config.json` patches
//! keep unknown fields and key order, `config.yaml` keeps what an operator
//! changed, the start file parses back with the tables the node requires,
//! and a second boot writes nothing at all.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_tests::harness::standin_node_bin;
use agent_tests::standin_node::{CONFIG_FILE_SWITCH, INIT_PAUSE_MS, SpawnNode};
use entrypoint::config::{Chain, StartMode};
use entrypoint::homes::config_json::{NearConfigInputs, update_config_json};
use entrypoint::homes::config_yaml::{MpcConfigInputs, update_config_yaml, upstream_default};
use entrypoint::homes::init::{InitPlan, init_home};
use entrypoint::homes::lock::{Holder, acquire};
use entrypoint::homes::secrets_file::update_secrets_json;
use entrypoint::homes::{IoWatch, NodeUser, Written};
use entrypoint::launch::start_config::{StartConfigInputs, render, write_start_config};
use entrypoint::node_binary::{Launch, launch};
use entrypoint::secrets::{NodeKey, Secret};

const STORE_KEY: &str = "00112233445566778899aabbccddeeff";
const BACKUP_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn user(home: &Path) -> NodeUser {
    NodeUser::resolve(None, home).unwrap()
}

fn near_inputs(chain: Chain) -> NearConfigInputs {
    NearConfigInputs {
        chain,
        contract_id: "v1.signer-prod.testnet".parse().unwrap(),
        tier3_public_addr: Some("203.0.113.5:24567".parse().unwrap()),
        rpc_addr: None,
        network_addr: None,
    }
}

fn mpc_inputs(account: &str) -> MpcConfigInputs {
    MpcConfigInputs {
        chain: Chain::Testnet,
        account_id: account.parse().unwrap(),
        responder_id: account.parse().unwrap(),
        contract_id: "v1.signer-prod.testnet".parse().unwrap(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn config_json_patches_keep_unknown_fields_and_key_order() {
    let home = tempfile::tempdir().unwrap();
    let original = r#"{
  "genesis_file": "genesis.json",
  "operator_note": {"keep": ["me", 1.5]},
  "store": {"path": null, "load_mem_tries_for_tracked_shards": false, "max_open_files": 10000},
  "state_sync": {"dump": {"location": "somewhere"}, "sync": {"ExternalStorage": {"num_concurrent_requests": 25}}},
  "tracked_shards_config": "NoShards",
  "network": {"addr": "0.0.0.0:24567", "experimental": {"inbound_disabled": false}},
  "archive": false
}"#;
    std::fs::write(home.path().join("config.json"), original).unwrap();
    let update = update_config_json(
        home.path(),
        &near_inputs(Chain::Testnet),
        &user(home.path()),
    )
    .unwrap();
    let Written::Replaced {
        backup: Some(backup),
    } = &update.written
    else {
        panic!("{:?}", update.written);
    };
    assert_eq!(std::fs::read_to_string(backup).unwrap(), original);

    let patched: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("config.json")).unwrap()).unwrap();
    let keys: Vec<&str> = patched
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "genesis_file",
            "operator_note",
            "store",
            "state_sync",
            "tracked_shards_config",
            "network",
            "archive"
        ]
    );
    assert_eq!(
        patched["operator_note"],
        serde_json::json!({"keep": ["me", 1.5]})
    );
    assert_eq!(
        patched["store"],
        serde_json::json!({"path": null, "load_mem_tries_for_tracked_shards": true, "max_open_files": 10000})
    );
    assert_eq!(
        patched["state_sync"],
        serde_json::json!({"dump": {"location": "somewhere"}, "sync": "Peers"})
    );
    assert_eq!(
        patched["tracked_shards_config"],
        serde_json::json!({"Accounts": ["v1.signer-prod.testnet"]})
    );
    assert_eq!(
        patched["network"]["experimental"],
        serde_json::json!({"inbound_disabled": false, "tier3_public_addr": "203.0.113.5:24567"})
    );
    let check = update.check();
    assert_eq!(check.id, "homes.config.json");
    assert!(
        check.cause.contains("tracked_shards_config"),
        "{}",
        check.cause
    );

    let again = update_config_json(
        home.path(),
        &near_inputs(Chain::Testnet),
        &user(home.path()),
    )
    .unwrap();
    assert_eq!(again.written, Written::Unchanged);
    assert!(again.edits.is_empty());
    assert_eq!(names(home.path()).len(), 2, "config.json and one backup");
}

#[test]
fn config_yaml_starts_as_upstream_s_and_keeps_what_the_operator_changed() {
    let home = tempfile::tempdir().unwrap();
    let first = update_config_yaml(
        home.path(),
        &mpc_inputs("node0.testnet"),
        &user(home.path()),
    )
    .unwrap();
    assert_eq!(first.update.written, Written::Created);
    assert_eq!(first.config, upstream_default(&mpc_inputs("node0.testnet")));

    let path = home.path().join("config.yaml");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("cores: 12", "cores: 4")
        .replace("finality: optimistic", "finality: final")
        + "foreign_chains:\n  solana:\n    timeout_sec: 30\n";
    std::fs::write(&path, &edited).unwrap();
    let untouched = update_config_yaml(
        home.path(),
        &mpc_inputs("node0.testnet"),
        &user(home.path()),
    )
    .unwrap();
    assert_eq!(untouched.update.written, Written::Unchanged);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);

    let moved = update_config_yaml(
        home.path(),
        &mpc_inputs("node1.testnet"),
        &user(home.path()),
    )
    .unwrap();
    let edits: Vec<&str> = moved.update.edits.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(edits, ["my_near_account_id", "near_responder_account_id"]);
    let Written::Replaced {
        backup: Some(backup),
    } = &moved.update.written
    else {
        panic!("{:?}", moved.update.written);
    };
    assert_eq!(std::fs::read_to_string(backup).unwrap(), edited);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        edited.replace("node0.testnet", "node1.testnet"),
        "only the accounts changed, order and operator edits kept"
    );
}

fn help(config_file: bool) -> String {
    let mut command = Command::new(standin_node_bin());
    command.arg("--help").env_clear();
    if config_file {
        command.env(CONFIG_FILE_SWITCH, "1");
    }
    let out = command.output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_start_mode_follows_what_the_image_s_binary_offers() {
    assert_eq!(
        launch(StartMode::Auto, Some(&help(true))),
        Launch::StartWithConfigFile
    );
    assert_eq!(launch(StartMode::Auto, Some(&help(false))), Launch::Start);
    assert_eq!(launch(StartMode::Legacy, Some(&help(true))), Launch::Start);
    assert_eq!(
        launch(StartMode::ConfigFile, None),
        Launch::StartWithConfigFile
    );
}

#[test]
fn the_start_file_parses_back_with_every_required_table_and_the_node_accepts_it() {
    let home = tempfile::tempdir().unwrap();
    let yaml = update_config_yaml(
        home.path(),
        &mpc_inputs("node0.testnet"),
        &user(home.path()),
    )
    .unwrap();
    let (store_key, backup_key) = (Secret::new(STORE_KEY), Secret::new(BACKUP_KEY));
    let rendered = render(&StartConfigInputs {
        home: home.path(),
        store_key: &store_key,
        backup_key: Some(&backup_key),
        chain: Chain::Testnet,
        boot_nodes: Some("ed25519:7PGseFbWxvYVgZ89K1uTJKYoKetWs7BJtbyXDzfbAcqX@10.0.0.1:24567"),
        genesis_path: None,
        tier3_public_addr: Some("203.0.113.5:24567".parse().unwrap()),
        log_format: Some("json"),
        log_filter: Some("info"),
        node: &yaml.config,
        image_hash: None,
    })
    .unwrap();
    assert!(!format!("{rendered:?}").contains(STORE_KEY));

    let parsed: toml::Table = rendered.expose().parse().unwrap();
    assert_eq!(parsed["home_dir"].as_str(), home.path().to_str());
    assert_eq!(
        parsed["secrets"]["secret_store_key_hex"].as_str(),
        Some(STORE_KEY)
    );
    assert_eq!(
        parsed["secrets"]["backup_encryption_key_hex"].as_str(),
        Some(BACKUP_KEY)
    );
    assert_eq!(parsed["tee"]["authority"]["type"].as_str(), Some("local"));
    assert_eq!(
        parsed["tee"]["image_hash"].as_str(),
        Some("sha256:0000000000000000000000000000000000000000000000000000000000000000")
    );
    assert!(parsed["tee"]["latest_allowed_hash_file_path"].is_str());
    assert_eq!(parsed["log"]["format"].as_str(), Some("json"));
    assert_eq!(parsed["log"]["filter"].as_str(), Some("info"));
    let init = &parsed["near_init"];
    assert_eq!(init["chain_id"].as_str(), Some("testnet"));
    assert_eq!(init["download_genesis"].as_bool(), Some(true));
    assert_eq!(init["download_config"].as_str(), Some("rpc"));
    assert_eq!(
        init["tier3_public_addr"].as_str(),
        Some("203.0.113.5:24567")
    );
    assert!(init.get("genesis_path").is_none());
    let node = &parsed["node"];
    assert_eq!(node["my_near_account_id"].as_str(), Some("node0.testnet"));
    assert_eq!(
        node["indexer"]["mpc_contract_id"].as_str(),
        Some("v1.signer-prod.testnet")
    );
    assert_eq!(node["indexer"]["port_override"].as_integer(), Some(80));
    assert_eq!(node["triple"]["timeout_sec"].as_integer(), Some(120));

    let path = home.path().join("start.toml");
    let written = write_start_config(&path, &rendered, &user(home.path())).unwrap();
    assert_eq!(written, Written::Created);
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        write_start_config(&path, &rendered, &user(home.path())).unwrap(),
        Written::Unchanged
    );

    std::fs::write(
        home.path().join("standin-behavior.json"),
        r#"{"exit_code": 0}"#,
    )
    .unwrap();
    let out = Command::new(standin_node_bin())
        .arg("start-with-config-file")
        .arg(&path)
        .env_clear()
        .env(CONFIG_FILE_SWITCH, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file with its inode, size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64, i64, i64)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, u64, i64, i64)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.is_dir() {
                walk(&path, out);
            }
            out.insert(path, (m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn node_key() -> NodeKey {
    let secret = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
    NodeKey {
        secret: Secret::new(secret.to_string()),
        public: secret.public_key(),
    }
}

/// Everything a boot does to the home after the lock: init, then the files.
async fn boot(home: &Path, p2p: &NodeKey, signer: &NodeKey) -> Vec<Written> {
    let user = user(home);
    let lock = acquire(
        home,
        Holder::this_process(),
        None,
        &user,
        &IoWatch::default(),
        |_| {},
    )
    .await
    .unwrap();
    let plan = InitPlan {
        node_bin: standin_node_bin(),
        chain: Chain::Testnet,
        boot_nodes: None,
        genesis: None,
    };
    let node = SpawnNode {
        env: vec![(INIT_PAUSE_MS.into(), "1".into())],
        kill_after: None,
    };
    init_home(&lock, &plan, &user, &node).await.unwrap();
    vec![
        update_config_json(home, &near_inputs(Chain::Testnet), &user)
            .unwrap()
            .written,
        update_config_yaml(home, &mpc_inputs("node0.testnet"), &user)
            .unwrap()
            .update
            .written,
        update_secrets_json(
            home,
            p2p,
            signer,
            entrypoint::config::SecretsJsonPolicy::Reconcile,
            None,
            &user,
        )
        .unwrap()
        .written,
    ]
}

#[tokio::test]
async fn a_second_boot_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, signer) = (node_key(), node_key());
    let first = boot(home.path(), &p2p, &signer).await;
    assert!(matches!(first[0], Written::Replaced { .. }), "{first:?}");
    assert_eq!(first[1..], [Written::Created, Written::Created]);
    // The lock's holder is rewritten on every boot (it names this boot's
    // agent), which also touches its directory, `.agent/`.
    let holder = [
        home.path().join(".agent/holder.json"),
        home.path().join(".agent"),
    ];
    let mut before = snapshot(home.path());
    before.retain(|p, _| !holder.contains(p));

    // A later second: anything stamped with the time would now differ.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = boot(home.path(), &p2p, &signer).await;
    assert_eq!(
        second,
        [Written::Unchanged, Written::Unchanged, Written::Unchanged]
    );
    let mut after = snapshot(home.path());
    after.retain(|p, _| !holder.contains(p));
    assert_eq!(
        after, before,
        "same files, same inodes, same mtimes: no write, no .bak"
    );
}
