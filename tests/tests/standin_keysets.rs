//! The stand-in node stores keysets as mpc-node does and refuses what it
//! refuses (an older epoch, fewer domains, the same epoch without a new
//! domain, another key id for a domain of the same epoch, a file that
//! exists); a started stand-in stores the keysets a test requests and shows
//! the keyset gauges a test sets.

use std::path::Path;
use std::time::{Duration, Instant};

use agent_tests::harness::{free_port, http, standin_node_bin, store_key};
use agent_tests::standin_node::keyshare::{self, KeysetRequest, KeysetResult};
use agent_tests::standin_node::{Behavior, KEYSET_METRICS_FILE, KeysetMetrics};

fn stored(name: &str) -> KeysetResult {
    KeysetResult::Stored(name.to_string())
}

fn refused_saying(result: KeysetResult, words: &str) {
    match result {
        KeysetResult::Refused(why) => assert!(why.contains(words), "{why}"),
        other => panic!("stored: {other:?}"),
    }
}

fn linked_to(home: &Path, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let key = std::fs::metadata(home.join("key")).unwrap();
    let file = std::fs::metadata(home.join("permanent_keys").join(name)).unwrap();
    (key.dev(), key.ino()) == (file.dev(), file.ino())
}

#[test]
fn keysets_go_forward_only_as_the_node_allows() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let key = store_key();
    let store = |request: &KeysetRequest| keyshare::store(home, &key, request);

    assert_eq!(
        store(&KeysetRequest::new(3, 1)),
        stored("epoch_3_with_1_domains")
    );
    assert!(linked_to(home, "epoch_3_with_1_domains"));
    // A domain added within the epoch (vote_add_domains).
    assert_eq!(
        store(&KeysetRequest::new(3, 2)),
        stored("epoch_3_with_2_domains")
    );
    assert!(linked_to(home, "epoch_3_with_2_domains"));

    refused_saying(store(&KeysetRequest::new(2, 2)), "of older epoch 2");
    refused_saying(store(&KeysetRequest::new(4, 1)), "for fewer domains 1");
    refused_saying(
        store(&KeysetRequest::new(3, 2)),
        "same epoch but equal number of domains",
    );
    refused_saying(
        store(&KeysetRequest::new(3, 3).attempt(0, 1)),
        "different key id",
    );
    // Every refusal left the home as it was.
    assert!(linked_to(home, "epoch_3_with_2_domains"));

    // A resharing may change the attempts; the next epoch is written new.
    assert_eq!(
        store(&KeysetRequest::new(4, 2).attempt(0, 1)),
        stored("epoch_4_with_2_domains")
    );
    let mut names: Vec<String> = std::fs::read_dir(home.join("permanent_keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "epoch_3_with_1_domains",
            "epoch_3_with_2_domains",
            "epoch_4_with_2_domains"
        ]
    );
}

#[test]
fn an_existing_keyshare_file_is_never_overwritten() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    assert_eq!(
        keyshare::store(home.path(), &key, &KeysetRequest::new(1, 1)),
        stored("epoch_1_with_1_domains")
    );
    let before = std::fs::read(home.path().join("permanent_keys/epoch_1_with_1_domains")).unwrap();
    // Without `key` nothing is known to be stored, but the file is there.
    std::fs::remove_file(home.path().join("key")).unwrap();
    refused_saying(
        keyshare::store(home.path(), &key, &KeysetRequest::new(1, 1)),
        "Failed to create PermanentKeyshareData file",
    );
    let after = std::fs::read(home.path().join("permanent_keys/epoch_1_with_1_domains")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_started_node_stores_what_the_test_requests_and_shows_the_keyset_gauges() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    let web_ui: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        home.path().join("standin-behavior.json"),
        serde_json::to_string(&Behavior {
            health: Some(web_ui),
            ..Behavior::default()
        })
        .unwrap(),
    )
    .unwrap();
    /// The stand-in, killed however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _node = Running(
        std::process::Command::new(standin_node_bin())
            .arg("start")
            .env("MPC_HOME_DIR", home.path())
            .env("MPC_SECRET_STORE_KEY", &key)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let request = |request: &KeysetRequest| keyshare::request(home.path(), request);
    assert_eq!(
        request(&KeysetRequest::new(7, 2)),
        stored("epoch_7_with_2_domains")
    );
    assert!(linked_to(home.path(), "epoch_7_with_2_domains"));
    refused_saying(request(&KeysetRequest::new(6, 2)), "of older epoch 6");

    let scrape = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = http("GET", web_ui, "/metrics", Duration::from_secs(2)) {
                return answer.body;
            }
            assert!(Instant::now() < deadline, "no /metrics within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(!scrape().contains("mpc_current_epoch_id"));
    KeysetMetrics {
        current_epoch_id: Some(7),
        last_backup_served_epoch: Some(6),
        last_backup_served_timestamp_seconds: Some(1_790_000_000),
    }
    .write_to(&home.path().join(KEYSET_METRICS_FILE));
    let text = scrape();
    for line in [
        "mpc_current_epoch_id 7",
        "mpc_last_backup_served_epoch 6",
        "mpc_last_backup_served_timestamp_seconds 1790000000",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}
