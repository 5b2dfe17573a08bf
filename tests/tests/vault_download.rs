//! The vault's keyshares of the account are listed with their checksums and
//! versions, and one comes back with its bytes checked: a version whose
//! bytes do not match its recorded SHA-256, or that has none, is refused.

use agent_tests::harness::store_key;
use agent_tests::moto::{Moto, vault_target};
use agent_tests::node_fixture::ACCOUNT;
use agent_tests::standin_node::write_test_share;
use entrypoint::homes::{Keep, look};
use entrypoint::keyshare::KeyshareName;
use entrypoint::vault::{VaultErrorKind, metadata};

const BUCKET: &str = "mpc-vault";

#[test]
fn the_accounts_keyshares_are_listed_and_downloaded_checked() {
    let moto = Moto::start();
    moto.create_locked_bucket(BUCKET, 1);
    let vault = moto.vault(vault_target("s3://mpc-vault/mainnet", None));
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    for epoch in ["1", "2"] {
        assert!(
            write_test_share(home.path(), &key, &["--epoch", epoch])
                .status
                .success()
        );
    }
    let seen = look(home.path(), Keep::Bytes).unwrap();
    for file in &seen.files {
        moto.block_on(vault.upload(file.name, file.bytes.as_deref().unwrap()))
            .unwrap();
    }
    // Another account's keyshare and a stray object in this one's folder.
    moto.put_object(
        BUCKET,
        "mainnet/node1.test.near/epoch_1_with_1_domains",
        b"x",
    );
    let stray = format!("mainnet/{ACCOUNT}/notes.txt");
    moto.put_object(BUCKET, &stray, b"notes");

    let listing = moto.block_on(vault.list()).unwrap();
    assert_eq!(listing.others, [stray]);
    assert_eq!(listing.keyshares.len(), 2);
    for (object, file) in listing.keyshares.iter().zip(&seen.files) {
        assert_eq!(object.name, file.name);
        assert_eq!(object.sha256.as_deref(), Some(file.sha256.as_str()));
        assert_eq!(object.size, file.size);
        assert!(object.version_id.is_some());
        assert!(object.last_modified.is_some());
    }

    let newest = seen.newest().unwrap();
    let download = moto.block_on(vault.download(newest.name, None)).unwrap();
    assert_eq!(download.bytes.as_slice(), newest.bytes.as_deref().unwrap());
    assert_eq!(download.object.version_id, listing.keyshares[1].version_id);
}

#[test]
fn bytes_that_do_not_match_their_checksum_are_refused_and_an_earlier_version_is_had() {
    let moto = Moto::start();
    moto.create_locked_bucket(BUCKET, 1);
    let vault = moto.vault(vault_target("s3://mpc-vault", None));
    let home = tempfile::tempdir().unwrap();
    assert!(
        write_test_share(home.path(), &store_key(), &[])
            .status
            .success()
    );
    let file = look(home.path(), Keep::Bytes)
        .unwrap()
        .newest()
        .unwrap()
        .clone();
    let name = KeyshareName {
        epoch: 1,
        domains: 1,
    };
    let first = moto
        .block_on(vault.upload(name, file.bytes.as_deref().unwrap()))
        .unwrap();

    // A later version with a recorded SHA-256 its bytes do not have.
    let key = format!("{ACCOUNT}/epoch_1_with_1_domains");
    moto.block_on(
        moto.s3()
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(b"damaged".to_vec().into())
            .metadata(metadata::SHA256, &file.sha256)
            .send(),
    )
    .unwrap();
    let err = moto.block_on(vault.download(name, None)).unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::ChecksumMismatch, "{err:?}");
    assert!(err.cause.contains(&file.sha256), "{}", err.cause);

    // And one with no SHA-256 at all.
    moto.put_object(BUCKET, &key, b"unknown");
    let err = moto.block_on(vault.download(name, None)).unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::ChecksumMismatch, "{err:?}");
    assert!(err.cause.contains("carries no SHA-256"), "{}", err.cause);

    let earlier = moto
        .block_on(vault.download(name, first.version_id.as_deref()))
        .unwrap();
    assert_eq!(earlier.bytes.as_slice(), file.bytes.as_deref().unwrap());
    assert_eq!(earlier.object.version_id, first.version_id);
}
