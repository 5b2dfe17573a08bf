//! `agent vault restore` through the real binary, on moto's S3 and KMS, the
//! NEAR RPC stand-in and the stand-in node: a lost home gets the vault's
//! newest keyshare back, byte for byte, with `key` a hard link to it, and
//! the next `agent run` starts the node on it. Every refusal writes nothing
//! and names why: a home that holds a keyshare, a stale epoch (taken with
//! `--allow-stale`), another attempt, a store key that does not open it, a
//! tampered object, another agent running on the home. `agent vault verify`
//! reaches the same verdict on each, without touching the home.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use agent::views::VaultReport;
use agent_tests::harness::{Output, WAIT, file_names, store_key, walk};
use agent_tests::vault_fixture::{BUCKET, VaultFixture, bytes, sealed_share};
use agent_tests::views::Checks;
use base64::Engine;
use entrypoint::check::Status;
use entrypoint::homes::restore::RestoreOutcome;
use entrypoint::keyshare::KeyshareName;
use entrypoint::secrets::Secret;
use entrypoint::vault::metadata;
use sha2::{Digest, Sha256};

fn report(out: &Output) -> VaultReport {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not a vault report ({e}): {out:?}"))
}

/// The check `id` of a report, with its status.
fn check<'a>(report: &'a VaultReport, id: &str) -> &'a entrypoint::check::Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", report.checks))
}

/// The first failed check: what the command names as the reason.
fn failed(report: &VaultReport) -> &entrypoint::check::Check {
    report
        .checks
        .iter()
        .find(|c| c.status == Status::Fail)
        .unwrap_or_else(|| panic!("nothing failed in {:#?}", report.checks))
}

/// `restore` and `verify` both exit 1 naming check `id`, its cause holding
/// every one of `causes`, and the home still holds no keyshare; their outputs.
fn refused_by_both(fx: &VaultFixture, id: &str, causes: &[&str]) -> Vec<Output> {
    [&["restore", "--json"][..], &["verify", "--json"][..]]
        .into_iter()
        .map(|command| {
            let out = fx.vault_command(command).run();
            assert_eq!(out.code, 1, "{command:?}: {out:?}");
            let reason = failed(&report(&out)).clone();
            assert_eq!(reason.id, id, "{command:?}");
            for cause in causes {
                assert!(
                    reason.cause.contains(cause),
                    "{command:?}: {}",
                    reason.cause
                );
            }
            assert!(no_keyshare(fx.home()), "{command:?} wrote nothing");
            out
        })
        .collect()
}

/// Every name on the home, and the bytes of each file.
fn snapshot(home: &Path) -> Vec<(String, Option<Vec<u8>>, u64)> {
    walk(home)
        .into_iter()
        .map(|(name, path, meta)| {
            let bytes = (!meta.is_dir()).then(|| std::fs::read(&path).unwrap());
            (name, bytes, meta.ino())
        })
        .collect()
}

/// Neither `key` nor anything under `permanent_keys/`.
fn no_keyshare(home: &Path) -> bool {
    !home.join("key").exists()
        && std::fs::read_dir(home.join("permanent_keys")).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_lost_home_gets_the_newest_keyshare_back_and_the_node_starts_on_it() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0, 0]);
    fx.plant(1, 1, 0, &fx.node.store_key);
    let newest = fx.plant(2, 2, 0, &fx.node.store_key);

    let out = fx.vault_command(&["restore", "--json"]).run();
    assert_eq!(out.code, 0, "{out:?}");
    let report = report(&out);
    assert!(report.ok);
    let backup = report.backup.as_ref().expect("the backup");
    assert_eq!(
        backup.name, newest.name,
        "the newest by epoch, then domains"
    );
    assert_eq!(backup.url, fx.url(newest.name));
    assert_eq!(backup.sha256, newest.sha256);
    assert_eq!(backup.epoch, 2);
    let restored = report.restored.as_ref().expect("what was written");
    assert_eq!(restored.outcome, RestoreOutcome::Written);

    let file = fx.home().join("permanent_keys/epoch_2_with_2_domains");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes(&newest),
        "byte for byte"
    );
    let (file_meta, key_meta) = (
        std::fs::symlink_metadata(&file).unwrap(),
        std::fs::symlink_metadata(fx.home().join("key")).unwrap(),
    );
    assert!(key_meta.is_file(), "key is a hard link, not a symlink");
    assert_eq!(key_meta.ino(), file_meta.ino(), "key is the epoch's file");
    assert_eq!(file_meta.nlink(), 2);
    let home_meta = std::fs::metadata(fx.home()).unwrap();
    assert_eq!(
        (file_meta.uid(), file_meta.gid()),
        (home_meta.uid(), home_meta.gid()),
        "owned by the node user"
    );
    assert_eq!(
        file_names(fx.home().join("permanent_keys")),
        ["epoch_2_with_2_domains"],
        "no temp file left"
    );
    for id in [
        "restore.backup",
        "restore.download",
        "restore.store_key",
        "restore.epoch",
        "restore.attempts",
        "restore.participant",
        "restore.write",
    ] {
        assert_eq!(check(&report, id).status, Status::Ok, "{id}");
    }

    // The next boot takes the home as the node's own: the store key opens
    // its keyshare, and the node (which opens `key` on start) runs.
    let agent = fx.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    assert_eq!(status.check("homes.store_key").status, Status::Ok);
    let keyshare = status.check("homes.keyshare");
    assert_eq!(keyshare.status, Status::Ok, "{keyshare:?}");
    assert!(
        keyshare.cause.contains("epoch_2_with_2_domains"),
        "{keyshare:?}"
    );
}

#[test]
fn a_home_that_holds_a_keyshare_is_refused_and_left_as_it_is() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0]);
    fx.plant(2, 1, 0, &fx.node.store_key);
    fx.node.plant_share(&fx.node.store_key);
    let before = snapshot(fx.home());

    let out = fx.vault_command(&["restore", "--json"]).run();
    assert_eq!(out.code, 1, "{out:?}");
    let refused = check(&report(&out), "restore.home").clone();
    assert_eq!(refused.status, Status::Fail);
    assert!(
        refused
            .cause
            .contains("key (a hard link to permanent_keys/epoch_1_with_1_domains)")
            && refused
                .cause
                .contains("permanent_keys/epoch_1_with_1_domains ("),
        "{}",
        refused.cause
    );
    assert!(
        refused
            .fix
            .as_deref()
            .unwrap()
            .contains("move it aside yourself"),
        "{refused:?}"
    );
    assert_eq!(snapshot(fx.home()), before, "nothing on the home changed");

    // Not even the judgment's verdict changes that; and verify, which never
    // looks at the home, passes.
    let verify = fx.vault_command(&["verify"]).run();
    assert_eq!(verify.code, 0, "{verify:?}");
    assert_eq!(snapshot(fx.home()), before);
}

#[test]
fn a_stale_epoch_is_refused_naming_both_epochs_and_taken_with_allow_stale() {
    let fx = VaultFixture::new();
    fx.keyset(3, &[0]);
    let stale = fx.plant(2, 1, 0, &fx.node.store_key);

    refused_by_both(
        &fx,
        "restore.epoch",
        &[
            "a keyshare of epoch 2 cannot rejoin a network at epoch 3",
            "reshare this node in",
        ],
    );
    let human = fx.vault_command(&["verify"]).run();
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains("the drill failed: a keyshare of epoch 2"),
        "{}",
        human.stdout
    );

    let out = fx
        .vault_command(&["restore", "--allow-stale", "--json"])
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    let report = report(&out);
    assert_eq!(check(&report, "restore.epoch").status, Status::Warn);
    assert_eq!(std::fs::read(fx.home().join("key")).unwrap(), bytes(&stale));
}

#[test]
fn a_keyshare_of_another_attempt_is_refused() {
    let fx = VaultFixture::new();
    // Domain 1's key was made again (attempt 1) after the backup's attempt 0.
    fx.keyset(2, &[0, 1]);
    fx.plant(2, 2, 0, &fx.node.store_key);
    refused_by_both(
        &fx,
        "restore.attempts",
        &[
            "domain 1: the backup's share is of attempt 0, the contract's key of attempt 1 (a superseded attempt)",
        ],
    );
}

#[test]
fn a_store_key_that_does_not_open_the_backup_is_refused_by_its_fingerprint() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0]);
    fx.plant(2, 1, 0, &store_key());
    let fingerprint = Secret::new(fx.node.store_key.clone()).fingerprint();
    let causes = ["this backup was made under another store key", &fingerprint];
    for out in refused_by_both(&fx, "restore.store_key", &causes) {
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(&fx.node.store_key), "the store key leaked");
        }
    }
}

#[test]
fn a_tampered_object_is_named_by_its_checksum_or_by_its_decryption() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0]);
    let good = fx.plant(2, 1, 0, &fx.node.store_key);
    let name = KeyshareName {
        epoch: 2,
        domains: 1,
    };
    let key = fx.object_key(name);

    // A newer version whose bytes are not the SHA-256 recorded with it.
    let mut damaged = bytes(&good).to_vec();
    damaged[20] ^= 1;
    fx.moto
        .block_on(
            fx.moto
                .s3()
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(damaged.into())
                .metadata(metadata::SHA256, &good.sha256)
                .send(),
        )
        .unwrap();
    refused_by_both(&fx, "restore.download", &[&good.sha256, "SHA-256"]);

    // A newer version, checksummed, sealed under another store key.
    let other = sealed_share(2, 1, 0, &store_key());
    let other_bytes = bytes(&other).to_vec();
    let digest = Sha256::digest(&other_bytes);
    fx.moto
        .block_on(
            fx.moto
                .s3()
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(other_bytes.into())
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
                .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(digest))
                .metadata(metadata::SHA256, hex::encode(digest))
                .send(),
        )
        .unwrap();
    refused_by_both(
        &fx,
        "restore.store_key",
        &["this backup was made under another store key"],
    );
}

#[test]
fn a_running_agent_on_the_home_refuses_the_restore_naming_it() {
    let fx = VaultFixture::new();
    // The contract has no keyset: the running agent restores nothing itself.
    fx.plant(2, 1, 0, &fx.node.store_key);
    let agent = fx.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);

    let out = fx
        .vault_command(&["restore", "--allow-stale", "--json"])
        .run();
    assert_eq!(out.code, 75, "{out:?}");
    let refused = check(&report(&out), "restore.lock").clone();
    assert_eq!(refused.status, Status::Fail);
    assert!(
        refused.cause.contains(&format!("pid {}", agent.pid())),
        "the holder is named: {}",
        refused.cause
    );
    assert!(no_keyshare(fx.home()), "nothing written");
}
