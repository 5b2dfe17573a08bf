//! What a keyshare file holds, read from files the stand-in node wrote as
//! mpc-node does: the epoch and each domain's key id, a legacy single-ECDSA
//! share named as such, and a store key that does not open it named as
//! another key, never shown.

use std::path::Path;

use agent_tests::harness::store_key;
use agent_tests::standin_node::keyshare::{self, KeysetRequest, KeysetResult};
use agent_tests::standin_node::write_test_share;
use entrypoint::keyshare::{
    ContentsError, KeyId, KeyshareContents, KeyshareFormat, OpenError, contents, open,
};
use entrypoint::secrets::Secret;

fn key_ids(epoch_id: u64, attempts: &[u64]) -> Vec<KeyId> {
    attempts
        .iter()
        .enumerate()
        .map(|(domain, attempt)| KeyId {
            epoch_id,
            domain_id: domain as u64,
            attempt_id: *attempt,
        })
        .collect()
}

fn file(home: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(home.join(rel)).unwrap()
}

#[test]
fn a_keyset_the_node_wrote_reads_as_its_epoch_and_key_ids() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    let out = write_test_share(
        home.path(),
        &key,
        &["--epoch", "5", "--domains", "3", "--attempt", "2"],
    );
    assert!(out.status.success(), "{out:?}");
    let read = contents(
        &Secret::new(&key),
        &file(home.path(), "permanent_keys/epoch_5_with_3_domains"),
    )
    .unwrap();
    assert_eq!(
        read,
        KeyshareContents {
            format: KeyshareFormat::Permanent,
            epoch_id: 5,
            key_ids: key_ids(5, &[2, 2, 2]),
        }
    );
    // `key` is a hard link to it: the same bytes, the same contents.
    assert_eq!(
        contents(&Secret::new(&key), &file(home.path(), "key")).unwrap(),
        read
    );

    // A resharing into epoch 6, where domain 1 took a second attempt.
    let reshared = KeysetRequest::new(6, 3).attempt(1, 1);
    assert_eq!(
        keyshare::store(home.path(), &key, &reshared),
        KeysetResult::Stored("epoch_6_with_3_domains".into())
    );
    let read = contents(
        &Secret::new(&key),
        &file(home.path(), "permanent_keys/epoch_6_with_3_domains"),
    )
    .unwrap();
    assert_eq!(read.epoch_id, 6);
    assert_eq!(read.key_ids, key_ids(6, &[0, 1, 0]));
}

#[test]
fn a_legacy_share_is_recognised_as_legacy() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    let out = write_test_share(home.path(), &key, &["--kind", "legacy", "--epoch", "4"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        contents(&Secret::new(&key), &file(home.path(), "key")).unwrap(),
        KeyshareContents {
            format: KeyshareFormat::Legacy,
            epoch_id: 4,
            key_ids: key_ids(4, &[0]),
        }
    );
}

#[test]
fn another_store_key_is_named_as_such_and_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    assert!(write_test_share(home.path(), &key, &[]).status.success());
    let sealed = file(home.path(), "key");
    let other = store_key();
    let err = contents(&Secret::new(&other), &sealed).unwrap_err();
    assert_eq!(err, ContentsError::Open(OpenError::AnotherKey));
    let said = err.to_string();
    assert!(said.contains("another store key"), "{said}");
    assert!(!said.contains(&other) && !said.contains(&key), "{said}");
    // The right key opens it to the node's own JSON.
    let plaintext = open(&Secret::new(&key), &sealed).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&plaintext).unwrap();
    assert_eq!(json["keyshares"][0]["key_id"]["domain_id"], 0);
    assert!(json["keyshares"][0]["data"]["Secp256k1"]["private_share"].is_string());
}

#[test]
fn a_file_cut_short_does_not_open() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    assert!(write_test_share(home.path(), &key, &[]).status.success());
    let sealed = file(home.path(), "key");
    assert_eq!(
        open(&Secret::new(&key), &sealed[..20]),
        Err(OpenError::TooShort { len: 20 })
    );
    assert_eq!(
        open(&Secret::new(&key), &sealed[..sealed.len() - 1]),
        Err(OpenError::AnotherKey)
    );
}
