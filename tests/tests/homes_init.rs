//! The first init runs the node's own `mpc-node init` into a staging
//! directory and moves the result into place: a clean init gives a usable
//! home, an init interrupted at any point converges on the next attempt to
//! what a clean init gives, and nothing the home already has is replaced.
//!
//! What "converges" compares: the set of files (relative paths, `.agent/`
//! included) and their bytes, except `node_key.json`, which init fills with a
//! fresh random key every time: for it, the fields and their formats.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_tests::harness::standin_node_bin;
use agent_tests::standin_node::{INIT_OFFLINE, INIT_PAUSE_MS, INIT_STOP_AFTER, SpawnNode};
use entrypoint::config::Chain;
use entrypoint::homes::init::{InitAction, InitError, InitPlan, Origin, init_home, read_marker};
use entrypoint::homes::lock::{Holder, HomeLock, acquire};
use entrypoint::homes::{HomeError, IoWatch, NodeUser};
use entrypoint::node_binary::{Finished, NodeCommands, NodeExit};

const BOOT_NODES: &str = "ed25519:7PGseFbWxvYVgZ89K1uTJKYoKetWs7BJtbyXDzfbAcqX@10.0.0.1:24567";

struct Home {
    dir: tempfile::TempDir,
    /// A compact localnet genesis: init writes it back re-serialized.
    genesis: PathBuf,
}

fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("localnet-genesis.json");
    std::fs::write(
        &genesis,
        r#"{"chain_id":"mpc-localnet","genesis_height":0,"validators":[],"records":[]}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    Home { dir, genesis }
}

impl Home {
    fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn plan(&self, chain: Chain) -> InitPlan {
        InitPlan {
            node_bin: standin_node_bin(),
            chain,
            boot_nodes: Some(BOOT_NODES.to_string()),
            genesis: (chain == Chain::Localnet).then(|| self.genesis.clone()),
        }
    }

    /// Bounded, not instant: a child forked by a test running in parallel
    /// shares a just-released lock's open file until its exec.
    async fn lock(&self) -> HomeLock {
        acquire(
            &self.path(),
            Holder::this_process(),
            Some(Duration::from_secs(5)),
            &self.user(),
            &IoWatch::default(),
            |_| {},
        )
        .await
        .unwrap()
    }

    fn user(&self) -> NodeUser {
        NodeUser::resolve(None, &self.path()).unwrap()
    }
}

fn quick() -> SpawnNode {
    SpawnNode {
        env: vec![(INIT_PAUSE_MS.into(), "1".into())],
        kill_after: None,
    }
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The shape of a key file: its fields, the account, and well-formed keys.
fn key_file_shape(bytes: &[u8]) -> (Vec<String>, String) {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let public: near_crypto::PublicKey = v["public_key"].as_str().unwrap().parse().unwrap();
    let secret: near_crypto::SecretKey = v["secret_key"].as_str().unwrap().parse().unwrap();
    assert_eq!(secret.public_key(), public, "the key pair belongs together");
    let fields = v.as_object().unwrap().keys().cloned().collect();
    (fields, v["account_id"].as_str().unwrap().to_string())
}

/// Asserts that `got` is what a clean init gives (`want`): same files, same
/// bytes, except the random `node_key.json`, compared by shape.
fn assert_converged(got: &Path, want: &Path) {
    let (got, want) = (files(got), files(want));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, bytes) in &want {
        match name.as_str() {
            "node_key.json" => assert_eq!(key_file_shape(&got[name]), key_file_shape(bytes)),
            // Who holds the lock: this process, at another instant.
            ".agent/holder.json" => {}
            _ => assert_eq!(
                String::from_utf8_lossy(&got[name]),
                String::from_utf8_lossy(bytes),
                "{name} differs"
            ),
        }
    }
}

async fn clean(chain: Chain) -> Home {
    let h = home();
    let lock = h.lock().await;
    let outcome = init_home(&lock, &h.plan(chain), &h.user(), &quick())
        .await
        .unwrap();
    assert_eq!(outcome.action, InitAction::Initialized);
    h
}

#[tokio::test]
async fn clean_localnet_init_puts_the_genesis_back_and_drops_the_validator_key() {
    let h = clean(Chain::Localnet).await;
    let home = files(&h.path());
    assert_eq!(
        home.keys().collect::<Vec<_>>(),
        [
            ".agent/holder.json",
            ".agent/initialized.json",
            ".agent/lock",
            "config.json",
            "genesis.json",
            "node_key.json"
        ]
    );
    assert_eq!(home["genesis.json"], std::fs::read(&h.genesis).unwrap());
    let config: serde_json::Value = serde_json::from_slice(&home["config.json"]).unwrap();
    assert_eq!(config["network"]["boot_nodes"], BOOT_NODES);
    assert_eq!(
        config["network"]["experimental"]["network_config_overrides"]["received_messages_rate_limits"]
            ["rate_limits"]["Block"]["refill_rate"],
        1_000_000,
        "the staged config.json got upstream's fresh-init edit before it moved in"
    );
    let marker = read_marker(&h.path()).unwrap().unwrap();
    assert_eq!(marker.chain, "mpc-localnet");
    assert_eq!(marker.boot_nodes.as_deref(), Some(BOOT_NODES));
    assert_eq!(marker.genesis_path.as_deref(), Some(h.genesis.as_path()));
    assert_eq!(marker.origin, Origin::Init);
}

#[tokio::test]
async fn clean_testnet_init_downloads_genesis_and_config() {
    let h = clean(Chain::Testnet).await;
    let home = files(&h.path());
    let config: serde_json::Value = serde_json::from_slice(&home["config.json"]).unwrap();
    assert!(
        config["state_sync"]["sync"]["ExternalStorage"].is_object(),
        "the downloaded config"
    );
    let genesis: serde_json::Value = serde_json::from_slice(&home["genesis.json"]).unwrap();
    assert_eq!(genesis["chain_id"], "testnet");
    assert!(!home.contains_key("validator_key.json"));
    assert_eq!(read_marker(&h.path()).unwrap().unwrap().genesis_path, None);
}

#[tokio::test]
async fn init_stopped_after_each_file_converges_to_a_clean_init() {
    let reference = clean(Chain::Localnet).await;
    // localnet init writes config.json, node_key.json, validator_key.json, genesis.json.
    for stop_after in 1..=4 {
        let h = home();
        let mut plan = h.plan(Chain::Localnet);
        plan.genesis = Some(reference.genesis.clone());
        let lock = h.lock().await;
        let crashing = SpawnNode {
            env: vec![
                (INIT_PAUSE_MS.into(), "1".into()),
                (INIT_STOP_AFTER.into(), stop_after.to_string()),
            ],
            kill_after: None,
        };
        let err = init_home(&lock, &plan, &h.user(), &crashing)
            .await
            .unwrap_err();
        let HomeError::Init(InitError::Failed { exit, .. }) = &err else {
            panic!("{err}");
        };
        assert_eq!(*exit, NodeExit::Signal(9));
        let node_files: Vec<String> = files(&h.path())
            .into_keys()
            .filter(|f| !f.starts_with(".agent/"))
            .collect();
        assert!(
            node_files.is_empty(),
            "an interrupted init leaves nothing outside .agent/: {node_files:?}"
        );
        let outcome = init_home(&lock, &plan, &h.user(), &quick()).await.unwrap();
        assert_eq!(outcome.action, InitAction::Initialized);
        assert_converged(&h.path(), &reference.path());
    }
}

#[tokio::test]
async fn init_killed_at_a_random_instant_converges_to_a_clean_init() {
    let reference = clean(Chain::Testnet).await;
    for kill_ms in [5, 45, 90, 130] {
        let h = home();
        let lock = h.lock().await;
        let slow = SpawnNode {
            env: vec![(INIT_PAUSE_MS.into(), "40".into())],
            kill_after: Some(Duration::from_millis(kill_ms)),
        };
        // Killed mid-way or finished in time: either way the next attempt converges.
        let _ = init_home(&lock, &h.plan(Chain::Testnet), &h.user(), &slow).await;
        init_home(&lock, &h.plan(Chain::Testnet), &h.user(), &quick())
            .await
            .unwrap();
        assert_converged(&h.path(), &reference.path());
    }
}

#[tokio::test]
async fn an_interrupted_move_is_finished_with_the_staged_files_not_a_new_init() {
    let h = home();
    let lock = h.lock().await;
    // The state a crash leaves after staging completed and config.json was linked.
    let staging = h.path().join(".agent/init-staging");
    let staged = staging.join("home");
    let plan = h.plan(Chain::Testnet);
    let done = quick()
        .run(&plan.node_bin, &plan.args(&staged))
        .await
        .unwrap();
    assert_eq!(done.exit, NodeExit::Code(0));
    std::fs::write(
        staging.join("staged.json"),
        serde_json::to_vec(&serde_json::json!({
            "agent_version": entrypoint::homes::AGENT_VERSION,
            "chain": "testnet",
            "boot_nodes": BOOT_NODES,
            "genesis_path": null,
            "origin": "init"
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::hard_link(staged.join("config.json"), h.path().join("config.json")).unwrap();
    let staged_key = std::fs::read(staged.join("node_key.json")).unwrap();

    let outcome = init_home(&lock, &plan, &h.user(), &Forbidden)
        .await
        .unwrap();
    assert_eq!(outcome.action, InitAction::Resumed);
    assert_eq!(
        outcome.moved,
        ["config.json", "genesis.json", "node_key.json"]
    );
    assert!(outcome.kept.is_empty());
    assert_eq!(
        std::fs::read(h.path().join("node_key.json")).unwrap(),
        staged_key
    );
    assert!(!staging.exists(), "the staging directory is gone once done");
}

/// A node that must not be run.
struct Forbidden;

impl NodeCommands for Forbidden {
    async fn run(&self, program: &Path, args: &[OsString]) -> std::io::Result<Finished> {
        panic!("ran {} {args:?}", program.display())
    }
}

#[tokio::test]
async fn a_second_boot_finds_the_marker_and_touches_nothing() {
    let h = home();
    let lock = h.lock().await;
    let plan = h.plan(Chain::Localnet);
    init_home(&lock, &plan, &h.user(), &quick()).await.unwrap();
    let before = snapshot(&h.path());
    let again = init_home(&lock, &plan, &h.user(), &Forbidden)
        .await
        .unwrap();
    assert_eq!(again.action, InitAction::AlreadyInitialized);
    assert_eq!(snapshot(&h.path()), before);
}

/// Every file with its inode, size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    files(dir)
        .into_keys()
        .map(|rel| {
            let m = std::fs::metadata(dir.join(&rel)).unwrap();
            (rel, (m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

#[tokio::test]
async fn a_home_start_sh_initialized_is_adopted_without_running_init() {
    let h = home();
    let plan = h.plan(Chain::Testnet);
    let done = quick()
        .run(&plan.node_bin, &plan.args(&h.path()))
        .await
        .unwrap();
    assert_eq!(done.exit, NodeExit::Code(0));
    let before = files(&h.path());
    let lock = h.lock().await;
    let outcome = init_home(&lock, &plan, &h.user(), &Forbidden)
        .await
        .unwrap();
    assert_eq!(outcome.action, InitAction::Adopted);
    assert_eq!(outcome.marker.origin, Origin::Existing);
    let after = files(&h.path());
    for (name, bytes) in &before {
        assert_eq!(&after[name], bytes, "{name} untouched");
    }
}

#[tokio::test]
async fn a_home_with_config_json_but_no_genesis_is_completed_keeping_config_json() {
    let h = home();
    let plan = h.plan(Chain::Testnet);
    // nearcore's init, killed after config.json: rerunning it in place cannot recover.
    let crashed = SpawnNode {
        env: vec![
            (INIT_PAUSE_MS.into(), "1".into()),
            (INIT_STOP_AFTER.into(), "1".into()),
        ],
        kill_after: None,
    };
    crashed
        .run(&plan.node_bin, &plan.args(&h.path()))
        .await
        .unwrap();
    let in_place = quick()
        .run(&plan.node_bin, &plan.args(&h.path()))
        .await
        .unwrap();
    assert_eq!(in_place.exit, NodeExit::Code(1));
    assert!(
        in_place.output.contains("Failed to read genesis config"),
        "{}",
        in_place.output
    );
    let config = std::fs::read(h.path().join("config.json")).unwrap();

    let lock = h.lock().await;
    let outcome = init_home(&lock, &plan, &h.user(), &quick()).await.unwrap();
    assert_eq!(outcome.action, InitAction::Initialized);
    assert_eq!(outcome.kept, ["config.json"]);
    assert_eq!(outcome.moved, ["genesis.json", "node_key.json"]);
    assert_eq!(std::fs::read(h.path().join("config.json")).unwrap(), config);
}

#[tokio::test]
async fn a_broken_config_json_is_refused_and_left_as_it_is() {
    let h = home();
    std::fs::write(h.path().join("config.json"), b"{\"genesis_file\": \"gen").unwrap();
    let lock = h.lock().await;
    let err = init_home(&lock, &h.plan(Chain::Testnet), &h.user(), &Forbidden)
        .await
        .unwrap_err();
    let check = err.check();
    assert_eq!(check.id, "homes.config.json");
    assert!(check.fix.unwrap().contains("config.json.broken"));
    assert_eq!(
        std::fs::read(h.path().join("config.json")).unwrap(),
        b"{\"genesis_file\": \"gen"
    );
}

#[tokio::test]
async fn a_home_initialized_for_another_chain_is_refused() {
    let h = clean(Chain::Localnet).await;
    let lock = h.lock().await;
    let err = init_home(&lock, &h.plan(Chain::Mainnet), &h.user(), &Forbidden)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HomeError::Init(InitError::OtherChain { initialized, configured })
            if initialized == "mpc-localnet" && configured == "mainnet"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_init_is_reported_with_its_output_and_leaves_the_home_alone() {
    let h = home();
    let lock = h.lock().await;
    let mut plan = h.plan(Chain::Localnet);
    plan.genesis = Some(h.dir.path().join("missing-genesis.json"));
    let err = init_home(&lock, &plan, &h.user(), &Forbidden)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HomeError::Init(InitError::GenesisMissing { .. })),
        "{err}"
    );

    let mut plan = h.plan(Chain::Testnet);
    plan.node_bin = h.dir.path().join("no-such-mpc-node");
    let err = init_home(&lock, &plan, &h.user(), &quick())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HomeError::Init(InitError::Spawn { .. })),
        "{err}"
    );
    assert!(err.check().fix.unwrap().contains("AGENT_NODE_BIN"));

    // A task without outbound HTTPS: the download fails.
    let offline = SpawnNode {
        env: vec![(INIT_OFFLINE.into(), "1".into())],
        kill_after: None,
    };
    let err = init_home(&lock, &h.plan(Chain::Testnet), &h.user(), &offline)
        .await
        .unwrap_err();
    let HomeError::Init(InitError::Failed { exit, .. }) = &err else {
        panic!("{err}");
    };
    assert_eq!(*exit, NodeExit::Code(1));
    let check = err.check();
    assert_eq!(check.id, "homes.init");
    assert!(
        check.cause.contains("Failed to download the genesis"),
        "{}",
        check.cause
    );
    assert!(check.fix.unwrap().contains("outbound HTTPS"));
    assert!(
        files(&h.path()).keys().all(|f| f.starts_with(".agent/")),
        "nothing of the node's was written"
    );
}
