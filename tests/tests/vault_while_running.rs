//! `agent run` with a vault: the home's keyshare goes to S3 at the first
//! boot, and each keyset the node stores while it runs within the interval
//! and one upload, as the home's own bytes under SSE-KMS with S3's SHA-256
//! checksum; a restart uploads nothing twice; other bytes already under a
//! keyshare's name are a failed check naming both checksums, and the
//! vault's copy stays as it was.

use std::time::{Duration, Instant};

use agent_tests::harness::{WAIT, metric};
use agent_tests::standin_node::keyshare::{KeysetRequest, KeysetResult};
use agent_tests::vault_fixture::{
    BUCKET, FIRST, INTERVAL, VaultFixture, after_looks, object_key_of, vaulted_file,
};
use base64::Engine;
use entrypoint::check::Status;
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};

/// The object holds the home's bytes, under SSE-KMS with the world's key,
/// with S3's SHA-256 checksum of them.
fn assert_vaulted_as_on_the_home(world: &VaultFixture, file: &str) {
    let home = world.home_bytes(file);
    let stored = world.moto.object(BUCKET, &object_key_of(file));
    assert_eq!(stored.bytes, home, "{file}: not the home's bytes");
    assert_eq!(stored.encryption.as_deref(), Some("aws:kms"), "{file}");
    assert!(
        stored
            .kms_key
            .as_deref()
            .is_some_and(|k| k == "alias/mpc-vault" || k.contains(&world.kms_key_id)),
        "{file}: {:?}",
        stored.kms_key
    );
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&home));
    assert_eq!(stored.checksum_sha256.as_deref(), Some(checksum.as_str()));
}

#[test]
fn a_first_boot_vaults_the_homes_keyshare_and_a_new_epoch_within_the_interval() {
    let world = VaultFixture::new().keyshare_on_home();
    let mut agent = world.run_vaulting("10m").start();
    let status = agent.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(FIRST));
    let vault = status.vault.unwrap();
    assert_eq!(vault.location.as_deref(), Some("s3://mpc-vault/mainnet"));
    assert_eq!(vault.off_home.status, Status::Ok, "{:?}", vault.off_home);
    assert_eq!(vault.behind_seconds, 0.0);
    assert!(vault.last_error.is_none(), "{:?}", vault.last_error);
    assert_vaulted_as_on_the_home(&world, FIRST);
    let logged = agent.wait_log("keyshare in the vault");
    assert_eq!(logged["result"], "stored", "{logged}");

    // A resharing while the node runs.
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let written = Instant::now();
    assert_eq!(
        world.node.store_keyset(&KeysetRequest::new(2, 1)),
        KeysetResult::Stored("epoch_2_with_1_domains".into())
    );
    agent.wait_status(WAIT, |s| {
        vaulted_file(s).as_deref() == Some("epoch_2_with_1_domains")
    });
    let took = written.elapsed();
    // The interval, one upload to loopback and one poll of /status, with
    // room for a loaded machine (the benchmark measures it).
    assert!(
        took < INTERVAL + Duration::from_secs(5),
        "vaulted {took:?} after the node wrote it"
    );
    assert_vaulted_as_on_the_home(&world, "epoch_2_with_1_domains");
    let metrics = agent.get("/metrics").body;
    assert_eq!(
        metric(
            &metrics,
            "agent_keyshare_vault_uploads_total{result=\"stored\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "agent_keyshare_vault_epoch"), Some(2.0));
    assert_eq!(
        metric(&metrics, "agent_keyshare_vault_behind_seconds"),
        Some(0.0)
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn a_restart_uploads_nothing_twice() {
    let world = VaultFixture::new().keyshare_on_home();
    let mut first = world.run_vaulting("10m").start();
    first.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(FIRST));
    first.signal(Signal::SIGTERM);
    assert_eq!(first.exit_code(), 0);
    let versions = world.moto.versions(BUCKET, "mainnet/");

    let mut second = world.run_vaulting("10m").start();
    let status = second.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(FIRST));
    assert!(status.vault.unwrap().last_error.is_none());
    let metrics = second.get("/metrics").body;
    assert_eq!(
        metric(
            &metrics,
            "agent_keyshare_vault_uploads_total{result=\"already-there\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "agent_keyshare_vault_uploads_total{result=\"stored\"}"
        ),
        None,
        "{metrics}"
    );
    // Steady: looks go on, nothing more is asked of S3.
    after_looks(&second, 8);
    let metrics = second.get("/metrics").body;
    assert_eq!(
        metric(
            &metrics,
            "agent_keyshare_vault_uploads_total{result=\"already-there\"}"
        ),
        Some(1.0)
    );
    assert_eq!(world.moto.versions(BUCKET, "mainnet/"), versions);
    second.signal(Signal::SIGTERM);
    assert_eq!(second.exit_code(), 0);
}

#[test]
fn other_bytes_under_the_name_fail_and_nothing_is_overwritten() {
    let world = VaultFixture::new().keyshare_on_home();
    let key = object_key_of(FIRST);
    world
        .moto
        .put_object(BUCKET, &key, b"another home's keyshare");
    let theirs = hex::encode(Sha256::digest(b"another home's keyshare"));
    let ours = hex::encode(Sha256::digest(world.home_bytes(FIRST)));
    let versions = world.moto.versions(BUCKET, "mainnet/");

    let mut agent = world.run_vaulting("10m").start();
    let status = agent.wait_status(WAIT, |s| {
        s.vault.as_ref().is_some_and(|v| v.last_error.is_some())
    });
    let vault = status.vault.unwrap();
    let failed = vault.last_error.unwrap();
    assert_eq!(failed.id, "vault.upload");
    assert_eq!(failed.status, Status::Fail);
    assert!(failed.cause.contains(&theirs), "{}", failed.cause);
    assert!(failed.cause.contains(&ours), "{}", failed.cause);
    assert!(failed.cause.contains(&key), "{}", failed.cause);
    assert!(vault.vaulted.is_none());
    // Tried again later, never over the vault's copy; the node runs on.
    after_looks(&agent, 8);
    assert_eq!(world.moto.versions(BUCKET, "mainnet/"), versions);
    assert_eq!(
        world.moto.object(BUCKET, &key).bytes,
        b"another home's keyshare"
    );
    let status = agent.status();
    assert!(status.child.running.is_some(), "{:?}", status.child);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}
