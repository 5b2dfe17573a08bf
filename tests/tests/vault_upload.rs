//! A keyshare goes to the vault as the home's own bytes: SSE-KMS under the
//! operator's key, S3's SHA-256 checksum, metadata that names the node and
//! the keyset but nothing secret; the same bytes twice write nothing; other
//! bytes under the name are a conflict that names both checksums, and the
//! vault's copy stays as it was.

use agent_tests::harness::store_key;
use agent_tests::moto::{Moto, vault_target};
use agent_tests::node_fixture::{ACCOUNT, CONTRACT};
use agent_tests::standin_node::write_test_share;
use base64::Engine;
use entrypoint::homes::{Keep, KeyshareFile, look};
use entrypoint::vault::{UploadOutcome, VaultErrorKind, metadata};
use sha2::{Digest, Sha256};

const BUCKET: &str = "mpc-vault";

/// A home where the stand-in stored the keyset of `epoch` with `domains`; its newest file.
fn keyshare(home: &std::path::Path, store_key: &str, epoch: u64, domains: u64) -> KeyshareFile {
    let out = write_test_share(
        home,
        store_key,
        &[
            "--epoch",
            &epoch.to_string(),
            "--domains",
            &domains.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    look(home, Keep::Bytes).unwrap().newest().unwrap().clone()
}

fn bytes(file: &KeyshareFile) -> &[u8] {
    file.bytes.as_deref().expect("kept bytes")
}

#[test]
fn an_upload_stores_the_homes_bytes_under_sse_kms_with_its_checksum_and_metadata() {
    let moto = Moto::start();
    let (key_id, key_arn) = moto.create_kms_key(Some("alias/mpc-vault"));
    moto.create_locked_bucket(BUCKET, 30);
    let home = tempfile::tempdir().unwrap();
    let store_key = store_key();
    let file = keyshare(home.path(), &store_key, 2, 2);
    let vault = moto.vault(vault_target("s3://mpc-vault/mainnet", Some(&key_arn)));

    let upload = moto
        .block_on(vault.upload(file.name, bytes(&file)))
        .unwrap();
    let object_key = format!("mainnet/{ACCOUNT}/epoch_2_with_2_domains");
    assert_eq!(upload.outcome, UploadOutcome::Stored);
    assert_eq!(upload.key, object_key);
    assert_eq!(upload.sha256, file.sha256);
    assert!(upload.version_id.is_some());

    let stored = moto.object(BUCKET, &object_key);
    assert_eq!(stored.bytes, bytes(&file), "not the home's bytes");
    assert_eq!(stored.version_id, upload.version_id);
    assert_eq!(stored.encryption.as_deref(), Some("aws:kms"));
    assert!(
        stored
            .kms_key
            .as_deref()
            .is_some_and(|k| k.contains(&key_id)),
        "{:?}",
        stored.kms_key
    );
    let sha = Sha256::digest(bytes(&file));
    assert_eq!(
        stored.checksum_sha256.as_deref(),
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(sha)
                .as_str()
        )
    );
    let meta = |k: &str| stored.metadata.get(k).map(String::as_str);
    assert_eq!(meta(metadata::ACCOUNT), Some(ACCOUNT));
    assert_eq!(meta(metadata::CONTRACT), Some(CONTRACT));
    assert_eq!(meta(metadata::EPOCH), Some("2"));
    assert_eq!(meta(metadata::DOMAINS), Some("2"));
    assert_eq!(
        meta(metadata::AGENT_VERSION),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(meta(metadata::SHA256), Some(hex::encode(sha).as_str()));
    let all = format!("{:?}", stored.metadata);
    assert!(
        !all.to_lowercase().contains(&store_key.to_lowercase()),
        "the store key in the metadata: {all}"
    );
}

#[test]
fn the_same_bytes_uploaded_twice_are_written_once() {
    let moto = Moto::start();
    moto.create_locked_bucket(BUCKET, 1);
    let home = tempfile::tempdir().unwrap();
    let file = keyshare(home.path(), &store_key(), 1, 1);
    let vault = moto.vault(vault_target("s3://mpc-vault", None));
    let first = moto
        .block_on(vault.upload(file.name, bytes(&file)))
        .unwrap();
    assert_eq!(first.outcome, UploadOutcome::Stored);
    assert_eq!(first.key, format!("{ACCOUNT}/epoch_1_with_1_domains"));
    let versions = moto.versions(BUCKET, ACCOUNT);
    let second = moto
        .block_on(vault.upload(file.name, bytes(&file)))
        .unwrap();
    assert_eq!(second.outcome, UploadOutcome::AlreadyThere);
    assert_eq!(second.version_id, first.version_id);
    assert_eq!(second.sha256, first.sha256);
    assert_eq!(moto.versions(BUCKET, ACCOUNT), versions);
    assert_eq!(versions.len(), 1);
}

#[test]
fn other_bytes_under_the_name_are_a_conflict_naming_both_checksums_and_nothing_is_overwritten() {
    let moto = Moto::start();
    moto.create_locked_bucket(BUCKET, 1);
    let vault = moto.vault(vault_target("s3://mpc-vault", None));
    // Another home of the same account stored its own epoch 1 first.
    let other_home = tempfile::tempdir().unwrap();
    let theirs = keyshare(other_home.path(), &store_key(), 1, 1);
    moto.block_on(vault.upload(theirs.name, bytes(&theirs)))
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let home_key = store_key();
    let ours = keyshare(home.path(), &home_key, 1, 1);
    assert_ne!(ours.sha256, theirs.sha256);
    let versions = moto.versions(BUCKET, ACCOUNT);

    let err = moto
        .block_on(vault.upload(ours.name, bytes(&ours)))
        .unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Conflict, "{err:?}");
    assert!(err.cause.contains(&theirs.sha256), "{}", err.cause);
    assert!(err.cause.contains(&ours.sha256), "{}", err.cause);
    assert!(
        err.cause
            .contains(&format!("s3://mpc-vault/{ACCOUNT}/epoch_1_with_1_domains")),
        "{}",
        err.cause
    );
    assert_eq!(moto.versions(BUCKET, ACCOUNT), versions);
    let key = format!("{ACCOUNT}/epoch_1_with_1_domains");
    assert_eq!(moto.object(BUCKET, &key).bytes, bytes(&theirs));

    // An object another writer put without a checksum is hashed to be compared.
    let bare = format!("{ACCOUNT}/epoch_2_with_1_domains");
    moto.put_object(BUCKET, &bare, b"not a keyshare");
    let newer = keyshare(home.path(), &home_key, 2, 1);
    let err = moto
        .block_on(vault.upload(newer.name, bytes(&newer)))
        .unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Conflict, "{err:?}");
    let bare_sha = hex::encode(Sha256::digest(b"not a keyshare"));
    assert!(err.cause.contains(&bare_sha), "{}", err.cause);
    assert_eq!(moto.object(BUCKET, &bare).bytes, b"not a keyshare");
}
