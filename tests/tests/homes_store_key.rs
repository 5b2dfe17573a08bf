//! The secret store key against the shares on the home (invariant 2): only
//! files count as shares, the right key decrypts the share the node loads,
//! a wrong key is refused with the file named, and a key never shows.

use std::path::{Path, PathBuf};
use std::process::Command;

use agent_tests::harness::standin_node_bin;
use entrypoint::check::Status;
use entrypoint::homes::store_key::{ShareKind, StoreKeyVerdict, shares, verify_store_key};
use entrypoint::secrets::Secret;

const KEY: &str = "00112233445566778899aabbccddeeff";
const OTHER_KEY: &str = "ffeeddccbbaa99887766554433221100";

/// Plants a share the way the node writes one.
fn plant(home: &Path, kind: &str, epoch: u64) {
    let status = Command::new(standin_node_bin())
        .args(["write-test-share", "--home"])
        .arg(home)
        .args([
            "--store-key",
            KEY,
            "--kind",
            kind,
            "--epoch",
            &epoch.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn kinds(home: &Path) -> Vec<(ShareKind, PathBuf)> {
    shares(home)
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.path.strip_prefix(home).unwrap().to_path_buf()))
        .collect()
}

#[test]
fn empty_directories_and_started_markers_are_not_shares() {
    let home = tempfile::tempdir().unwrap();
    for dir in ["permanent_keys", "temporary_keys", "assets"] {
        std::fs::create_dir(home.path().join(dir)).unwrap();
    }
    std::fs::write(home.path().join("temporary_keys/started_1_0_0"), b"").unwrap();
    std::fs::write(home.path().join("key"), b"").unwrap();
    assert!(shares(home.path()).unwrap().is_empty());
    let verdict = verify_store_key(home.path(), &Secret::new(KEY)).unwrap();
    assert_eq!(verdict, StoreKeyVerdict::NoShares);
    assert_eq!(verdict.check().status, Status::Ok);
}

#[test]
fn every_kind_of_share_is_found() {
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "key", 2);
    plant(home.path(), "temporary", 3);
    std::fs::create_dir(home.path().join("assets")).unwrap();
    std::fs::write(home.path().join("assets/000004.sst"), b"rocksdb").unwrap();
    assert_eq!(
        kinds(home.path()),
        [
            (ShareKind::Key, PathBuf::from("key")),
            (
                ShareKind::Permanent,
                PathBuf::from("permanent_keys/epoch_2_with_1_domains")
            ),
            (
                ShareKind::Temporary,
                PathBuf::from("temporary_keys/keyshare_3_0_0")
            ),
            (ShareKind::Assets, PathBuf::from("assets")),
        ]
    );
}

#[test]
fn the_right_key_decrypts_the_share_the_node_loads() {
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "key", 1);
    let verdict = verify_store_key(home.path(), &Secret::new(KEY)).unwrap();
    assert_eq!(
        verdict,
        StoreKeyVerdict::Decrypts {
            file: home.path().join("key"),
            fingerprint: Secret::new(KEY).fingerprint()
        }
    );
    assert_eq!(verdict.check().status, Status::Ok);
    // Upper-case hex is the same key to the node.
    assert!(matches!(
        verify_store_key(home.path(), &Secret::new(KEY.to_uppercase())).unwrap(),
        StoreKeyVerdict::Decrypts { .. }
    ));
}

#[test]
fn a_store_key_that_cannot_decrypt_the_share_is_refused_with_the_file_named() {
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "key", 1);
    let verdict = verify_store_key(home.path(), &Secret::new(OTHER_KEY)).unwrap();
    let StoreKeyVerdict::DoesNotDecrypt { file, .. } = &verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(file, &home.path().join("key"));
    let check = verdict.check();
    assert_eq!(check.status, Status::Fail);
    assert!(
        check
            .cause
            .contains(&home.path().join("key").display().to_string())
    );
    assert!(check.cause.contains("Failed to decrypt key file"));
    let shown = serde_json::to_string(&check).unwrap() + &format!("{verdict:?}");
    assert!(
        !shown.contains(OTHER_KEY) && !shown.contains(KEY),
        "{shown}"
    );
}

#[test]
fn without_the_key_link_a_permanent_then_a_temporary_share_is_tried() {
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "temporary", 4);
    let verdict = verify_store_key(home.path(), &Secret::new(OTHER_KEY)).unwrap();
    assert!(
        matches!(&verdict, StoreKeyVerdict::DoesNotDecrypt { file, .. } if file.ends_with("temporary_keys/keyshare_4_0_0")),
        "{verdict:?}"
    );
    plant(home.path(), "permanent", 5);
    let verdict = verify_store_key(home.path(), &Secret::new(KEY)).unwrap();
    assert!(
        matches!(&verdict, StoreKeyVerdict::Decrypts { file, .. } if file.ends_with("permanent_keys/epoch_5_with_1_domains")),
        "{verdict:?}"
    );
}

#[test]
fn encrypted_state_with_no_key_file_cannot_be_verified_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("assets")).unwrap();
    std::fs::write(home.path().join("assets/CURRENT"), b"MANIFEST-000001\n").unwrap();
    let verdict = verify_store_key(home.path(), &Secret::new(KEY)).unwrap();
    assert!(
        matches!(verdict, StoreKeyVerdict::Unverifiable { .. }),
        "{verdict:?}"
    );
    assert_eq!(verdict.check().status, Status::Warn);
}

#[test]
fn a_malformed_key_is_refused_before_any_share_is_read() {
    let home = tempfile::tempdir().unwrap();
    plant(home.path(), "key", 1);
    let verdict = verify_store_key(home.path(), &Secret::new("PLACEHOLDER")).unwrap();
    assert!(
        matches!(verdict, StoreKeyVerdict::Malformed { .. }),
        "{verdict:?}"
    );
    let check = verdict.check();
    assert_eq!(check.status, Status::Fail);
    assert!(!check.cause.contains("PLACEHOLDER"), "{}", check.cause);
}
