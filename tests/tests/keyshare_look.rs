//! A look at the home's keyshares: each file the node wrote, hashed as it
//! is on disk; a link or anything but a regular file under permanent_keys/
//! refused by its name and never followed; a file still being written not
//! taken until two looks agree; a moment without `key` no error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_tests::harness::{standin_node_bin, store_key};
use agent_tests::standin_node::write_test_share;
use entrypoint::homes::HomeError;
use entrypoint::homes::beneath::Refusal;
use entrypoint::homes::{Keep, KeyLink, Look, look};
use entrypoint::keyshare::KeyshareName;
use sha2::{Digest, Sha256};

fn name(epoch: u64, domains: u64) -> KeyshareName {
    KeyshareName { epoch, domains }
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn each_keyshare_is_read_as_on_disk_and_the_key_link_is_named() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    for epoch in ["1", "2"] {
        let out = write_test_share(home.path(), &key, &["--epoch", epoch, "--domains", "2"]);
        assert!(out.status.success(), "{out:?}");
    }
    let seen = look(home.path(), Keep::Bytes).unwrap();
    assert_eq!(
        seen.files.iter().map(|f| f.name).collect::<Vec<_>>(),
        [name(1, 2), name(2, 2)]
    );
    let newest = seen.newest().unwrap();
    let on_disk = home.path().join("permanent_keys/epoch_2_with_2_domains");
    assert_eq!(newest.sha256, sha256_of(&on_disk));
    assert_eq!(newest.size, std::fs::metadata(&on_disk).unwrap().len());
    assert_eq!(
        newest.bytes.as_deref().map(Vec::as_slice),
        Some(std::fs::read(&on_disk).unwrap().as_slice())
    );
    assert_eq!(
        newest.modified,
        std::fs::metadata(&on_disk).unwrap().modified().unwrap()
    );
    assert_eq!(seen.key, KeyLink::Linked(name(2, 2)));
    assert!(seen.refused.is_empty() && seen.ignored.is_empty());
    // Digests only: the same files, no bytes kept.
    let digests = look(home.path(), Keep::Digests).unwrap();
    assert_eq!(digests.newest().unwrap().sha256, newest.sha256);
    assert!(digests.files.iter().all(|f| f.bytes.is_none()));
}

#[test]
fn a_moment_without_key_is_no_error_and_a_home_without_keyshares_is_empty() {
    let home = tempfile::tempdir().unwrap();
    let empty = look(home.path(), Keep::Digests).unwrap();
    assert!(empty.files.is_empty());
    assert_eq!(empty.key, KeyLink::Absent);
    let key = store_key();
    assert!(
        write_test_share(home.path(), &key, &["--epoch", "3"])
            .status
            .success()
    );
    // The node removes `key` before it links it to the new file.
    std::fs::remove_file(home.path().join("key")).unwrap();
    let between = look(home.path(), Keep::Digests).unwrap();
    assert_eq!(between.key, KeyLink::Absent);
    assert_eq!(between.newest().unwrap().name, name(3, 1));
    // A legacy home's `key` is a file of its own.
    let legacy = tempfile::tempdir().unwrap();
    assert!(
        write_test_share(legacy.path(), &key, &["--kind", "legacy"])
            .status
            .success()
    );
    let seen = look(legacy.path(), Keep::Digests).unwrap();
    assert_eq!(seen.key, KeyLink::Other);
    assert!(seen.files.is_empty());
}

#[test]
fn a_link_planted_under_permanent_keys_is_refused_by_name_and_not_followed() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let key = store_key();
    assert!(
        write_test_share(home.path(), &key, &["--epoch", "1"])
            .status
            .success()
    );
    assert!(
        write_test_share(elsewhere.path(), &key, &["--epoch", "9"])
            .status
            .success()
    );
    let target = elsewhere
        .path()
        .join("permanent_keys/epoch_9_with_1_domains");
    let keys = home.path().join("permanent_keys");
    std::os::unix::fs::symlink(&target, keys.join("epoch_9_with_1_domains")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", keys.join("passwd")).unwrap();
    std::fs::create_dir(keys.join("epoch_10_with_1_domains")).unwrap();
    std::fs::write(keys.join("notes.txt"), b"operator's notes").unwrap();

    let seen = look(home.path(), Keep::Bytes).unwrap();
    assert_eq!(
        seen.files.iter().map(|f| f.name).collect::<Vec<_>>(),
        [name(1, 1)]
    );
    let refused: Vec<_> = seen.refused.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        refused,
        [
            keys.join("epoch_10_with_1_domains"),
            keys.join("epoch_9_with_1_domains"),
            keys.join("passwd"),
        ]
    );
    assert!(
        seen.refused[1].reason.starts_with("a symbolic link"),
        "{:?}",
        seen.refused[1]
    );
    assert!(
        seen.refused[0].reason.starts_with("a directory"),
        "{:?}",
        seen.refused[0]
    );
    assert_eq!(seen.ignored, [keys.join("notes.txt")]);
    let outside = sha256_of(&target);
    assert!(seen.files.iter().all(|f| f.sha256 != outside));
    assert_eq!(seen.newest().unwrap().name, name(1, 1));
}

#[test]
fn permanent_keys_itself_as_a_link_is_refused_by_name() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(
        write_test_share(elsewhere.path(), &store_key(), &[])
            .status
            .success()
    );
    std::os::unix::fs::symlink(
        elsewhere.path().join("permanent_keys"),
        home.path().join("permanent_keys"),
    )
    .unwrap();
    match look(home.path(), Keep::Digests) {
        Err(HomeError::Refused(Refusal::Symlink { path })) => {
            assert_eq!(path, home.path().join("permanent_keys"))
        }
        other => panic!("{other:?}"),
    }
}

/// Looks every 10 ms until `until` holds of a look, at most 20 s.
fn look_until(home: &Path, until: impl Fn(&Look) -> bool) -> Look {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = look(home, Keep::Digests).unwrap();
        if until(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no such look within 20 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_growing_file_is_not_taken_until_two_looks_agree() {
    let home = tempfile::tempdir().unwrap();
    let key = store_key();
    let file = name(1, 3);
    // Five pieces, 400 ms apart.
    let mut writer = Command::new(standin_node_bin())
        .args(["write-test-share", "--home"])
        .arg(home.path())
        .args([
            "--store-key",
            &key,
            "--domains",
            "3",
            "--pieces",
            "5",
            "--pause-ms",
            "400",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let size = |l: &Look| l.file(file).map(|f| f.size);
    let first = look_until(home.path(), |l| size(l).is_some_and(|s| s > 0));
    let second = look_until(home.path(), |l| size(l) != size(&first));
    assert!(
        second.settled(&first).is_empty(),
        "taken while growing: {second:?}"
    );
    assert!(writer.wait().unwrap().success());
    let done = look(home.path(), Keep::Digests).unwrap();
    assert!(
        size(&first) < size(&done),
        "the first look saw the whole file"
    );
    assert!(done.settled(&first).is_empty(), "{done:?}");
    // Before the last piece the node had not linked `key`.
    assert_eq!(first.key, KeyLink::Absent);
    let again = look(home.path(), Keep::Digests).unwrap();
    let settled = again.settled(&done);
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].name, file);
    let on_disk = home.path().join("permanent_keys/epoch_1_with_3_domains");
    assert_eq!(settled[0].sha256, sha256_of(&on_disk));
    assert_eq!(again.key, KeyLink::Linked(file));
}

#[test]
fn a_look_again_sees_bytes_rewritten_under_the_same_size_and_modification_time() {
    use entrypoint::homes::look_again;
    use std::io::{Seek, Write};
    let home = tempfile::tempdir().unwrap();
    let out = write_test_share(home.path(), &store_key(), &["--epoch", "4"]);
    assert!(out.status.success(), "{out:?}");
    let path = home.path().join("permanent_keys/epoch_4_with_1_domains");
    // Left alone for a minute before the first look: its digest is kept.
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let first = look(home.path(), Keep::Digests).unwrap();
    let again = look_again(home.path(), &first).unwrap();
    assert_eq!(again.newest().unwrap().sha256, sha256_of(&path));
    assert!(again.files.iter().all(|f| f.bytes.is_none()));

    // The same length, one byte flipped, the modification time set back.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff;
    let mut file = std::fs::File::options().write(true).open(&path).unwrap();
    file.rewind().unwrap();
    file.write_all(&bytes).unwrap();
    file.set_modified(long_ago).unwrap();
    drop(file);
    let after = look_again(home.path(), &again).unwrap();
    let newest = after.newest().unwrap();
    assert_eq!(newest.sha256, sha256_of(&path));
    assert_ne!(newest.sha256, first.newest().unwrap().sha256);
    assert_eq!(newest.modified, long_ago);
    // A file new since the look before is read.
    let out = write_test_share(
        home.path(),
        &store_key(),
        &["--kind", "permanent", "--epoch", "5"],
    );
    assert!(out.status.success(), "{out:?}");
    let newer = look_again(home.path(), &after).unwrap();
    assert_eq!(newer.newest().unwrap().name, name(5, 1));
}
