//! The vault takes a keyshare only once the node has finished writing it:
//! a file still growing waits, a moment without `<home>/key` (the node
//! removes it, then links it to the new file) is no error, and the file is
//! uploaded once, whole, when `key` links to it. A link planted under
//! `permanent_keys/` is never followed, and is named on `/status`.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use agent_tests::harness::{WAIT, store_key};
use agent_tests::standin_node::keyshare::{KeysetRequest, KeysetResult};
use agent_tests::standin_node::write_test_share;
use agent_tests::vault_fixture::{
    BUCKET, FIRST, INTERVAL, VaultFixture, after_looks, object_key_of, vaulted_file,
};
use nix::sys::signal::Signal;

/// No failure on `/status.vault`, `/health` passes.
fn quiet(agent: &agent_tests::harness::Agent) {
    let status = agent.status();
    let vault = status.vault.unwrap();
    assert!(vault.last_error.is_none(), "{:?}", vault.last_error);
    let health = agent.get("/health").health();
    assert_eq!(health.status, "pass", "{health:?}");
}

#[test]
fn a_growing_file_and_a_moment_without_key_are_no_error_and_the_file_is_vaulted_once_complete() {
    let world = VaultFixture::new().keyshare_on_home();
    let mut agent = world.run_vaulting("10m").start();
    agent.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(FIRST));
    agent.wait_until("/ready", WAIT, |r| r.status == 200);

    // The node writes epoch 2 in six pieces over 1.5 s, then links key to it.
    let second = "epoch_2_with_1_domains";
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            world
                .node
                .store_keyset(&KeysetRequest::new(2, 1).slowly(6, Duration::from_millis(300)))
        });
        let file = world.node.path("permanent_keys").join(second);
        let key = world.node.path("key");
        // Done once `key` links to it; only until then must the vault lack it.
        let linked = || {
            let inode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).ok();
            inode(&file).is_some() && inode(&file) == inode(&key)
        };
        let mut growing = 0;
        while !writer.is_finished() {
            if file.exists() && !linked() {
                growing += 1;
                quiet(&agent);
                let versions = world.versions(second);
                if !linked() {
                    assert_eq!(versions, 0, "taken while being written");
                }
            }
            std::thread::sleep(INTERVAL / 2);
        }
        assert!(
            growing >= 2,
            "the file was seen growing only {growing} times"
        );
        assert_eq!(writer.join().unwrap(), KeysetResult::Stored(second.into()));
    });
    agent.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(second));
    assert_eq!(world.versions(second), 1);
    assert_eq!(
        world.moto.object(BUCKET, &object_key_of(second)).bytes,
        world.home_bytes(second),
        "not the whole file"
    );

    // Between its two steps the node has removed key and not linked it yet.
    let key = world.node.path("key");
    std::fs::remove_file(&key).unwrap();
    let out = write_test_share(
        world.node.home(),
        &world.node.store_key,
        &["--kind", "permanent", "--epoch", "3"],
    );
    assert!(out.status.success(), "{out:?}");
    let third = "epoch_3_with_1_domains";
    after_looks(&agent, 6);
    quiet(&agent);
    assert_eq!(world.versions(third), 0, "taken before key linked it");
    std::fs::hard_link(world.node.path("permanent_keys").join(third), &key).unwrap();
    agent.wait_status(WAIT, |s| vaulted_file(s).as_deref() == Some(third));
    assert_eq!(world.versions(third), 1);
    quiet(&agent);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn a_link_under_permanent_keys_is_not_followed_and_is_named() {
    let world = VaultFixture::new().keyshare_on_home();
    // A share of another home, outside this one, linked in under a keyshare's name.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = write_test_share(elsewhere.path(), &store_key(), &["--epoch", "9"]);
    assert!(out.status.success(), "{out:?}");
    let planted = world
        .node
        .path("permanent_keys")
        .join("epoch_9_with_1_domains");
    std::os::unix::fs::symlink(
        elsewhere
            .path()
            .join("permanent_keys/epoch_9_with_1_domains"),
        &planted,
    )
    .unwrap();

    let mut agent = world.run_vaulting("10m").start();
    let status = agent.wait_status(WAIT, |s| {
        vaulted_file(s).as_deref() == Some(FIRST)
            && s.vault.as_ref().is_some_and(|v| !v.refused.is_empty())
    });
    let vault = status.vault.unwrap();
    assert_eq!(vault.refused.len(), 1, "{:?}", vault.refused);
    assert_eq!(vault.refused[0].path, planted);
    assert!(
        vault.refused[0].reason.contains("no link is followed"),
        "{}",
        vault.refused[0].reason
    );
    let logged = agent.wait_log("not read and not vaulted");
    assert_eq!(logged["path"], planted.display().to_string(), "{logged}");
    after_looks(&agent, 4);
    assert_eq!(world.versions("epoch_9_with_1_domains"), 0);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}
