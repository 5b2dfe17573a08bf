//! A vault request that fails says why, by kind, naming the bucket, the
//! object and the IAM action, with a fix for a person: a missing bucket, a
//! PutObject the credentials may not do (the task role named, not the
//! execution role), an S3 that does not answer.

use std::time::Duration;

use agent_tests::harness::{NOBODY, store_key};
use agent_tests::moto::{Moto, vault_target};
use agent_tests::node_fixture::ACCOUNT;
use agent_tests::standin_node::write_test_share;
use entrypoint::homes::{Keep, KeyshareFile, look};
use entrypoint::vault::{S3, Vault, VaultErrorKind};
use serde_json::json;

fn keyshare() -> (tempfile::TempDir, KeyshareFile) {
    let home = tempfile::tempdir().unwrap();
    let out = write_test_share(home.path(), &store_key(), &["--epoch", "1"]);
    assert!(out.status.success(), "{out:?}");
    let file = look(home.path(), Keep::Bytes)
        .unwrap()
        .newest()
        .unwrap()
        .clone();
    (home, file)
}

#[test]
fn a_missing_bucket_is_named_with_how_to_make_it() {
    let moto = Moto::start();
    let (_home, file) = keyshare();
    let vault = moto.vault(vault_target("s3://no-such-vault/mainnet", None));
    let err = moto
        .block_on(vault.upload(file.name, file.bytes.as_deref().unwrap()))
        .unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::NoSuchBucket, "{err:?}");
    assert!(
        err.cause.starts_with("bucket no-such-vault does not exist"),
        "{}",
        err.cause
    );
    assert!(err.cause.contains("PutObject"), "{}", err.cause);
    assert!(
        err.fix
            .starts_with("create the vault's bucket no-such-vault"),
        "{}",
        err.fix
    );
    let listed = moto.block_on(vault.list()).unwrap_err();
    assert_eq!(listed.kind, VaultErrorKind::NoSuchBucket, "{listed:?}");
}

#[test]
fn a_denied_put_names_the_bucket_the_object_the_action_and_the_task_role() {
    // Unchecked: the bucket and its lock (2), the user, its policy and its key (3).
    let moto = Moto::with_iam_after(5);
    moto.create_locked_bucket("mpc-vault", 1);
    let (user_arn, key_id, secret_key) = moto.create_user_with_policy(
        "node0-task",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::mpc-vault", "arn:aws:s3:::mpc-vault/*"],
            }],
        }),
    );
    let sdk = moto.sdk_config_as(&key_id, &secret_key);
    let vault = Vault::new(
        moto.vault_s3(&sdk),
        vault_target("s3://mpc-vault/mainnet", None),
    );
    let (_home, file) = keyshare();
    let err = moto
        .block_on(vault.upload(file.name, file.bytes.as_deref().unwrap()))
        .unwrap_err();
    assert_eq!(
        err.kind,
        VaultErrorKind::AccessDenied,
        "{err:?} ({user_arn})"
    );
    let object = format!("s3://mpc-vault/mainnet/{ACCOUNT}/epoch_1_with_1_domains");
    assert!(
        err.cause
            .starts_with(&format!("access denied: s3:PutObject on {object}")),
        "{}",
        err.cause
    );
    assert_eq!(
        err.fix,
        format!(
            "grant s3:PutObject on arn:aws:s3:::mpc-vault/mainnet/{ACCOUNT}/* to the task role (taskRoleArn), not the execution role; the vault's role may write and read its prefix, never delete"
        )
    );
    // Reading is allowed: the listing works and is empty.
    let listing = moto.block_on(vault.list()).unwrap();
    assert!(listing.keyshares.is_empty());
}

#[test]
fn an_s3_that_does_not_answer_is_worth_another_try() {
    let moto = Moto::start();
    let closed = format!("http://{NOBODY}");
    let env = [("AWS_ENDPOINT_URL".to_string(), closed.clone())].into();
    let sdk = moto.sdk_config().to_builder().endpoint_url(&closed).build();
    let vault = Vault::new(
        S3::s3(&sdk, &env, Duration::from_secs(2)),
        vault_target("s3://mpc-vault", None),
    );
    let (_home, file) = keyshare();
    let err = moto
        .block_on(vault.upload(file.name, file.bytes.as_deref().unwrap()))
        .unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Unreachable, "{err:?}");
    assert!(
        err.cause.starts_with(&format!("S3 at {closed} ")),
        "{}",
        err.cause
    );
    assert!(err.cause.contains("HeadObject"), "{}", err.cause);
}
