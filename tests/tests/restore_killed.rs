//! A restore killed with -9 at 30 random points, then run again, converges
//! every time to the home a clean restore makes; and at no point of it is
//! there a `key` that does not open under the store key.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_tests::harness::walk;
use agent_tests::vault_fixture::{VaultFixture, bytes};
use entrypoint::keyshare;
use entrypoint::secrets::Secret;
use nix::sys::signal::{Signal, kill};

/// `key` is absent, or a hard link to the restored file holding `expected`,
/// which opens under `store_key`.
fn no_bad_key(home: &Path, expected: &[u8], store_key: &Secret, point: usize) {
    let key = home.join("key");
    let Ok(meta) = std::fs::symlink_metadata(&key) else {
        return;
    };
    let file = home.join("permanent_keys/epoch_2_with_2_domains");
    let sealed = std::fs::read(&key).unwrap();
    assert_eq!(sealed, expected, "point {point}: key holds other bytes");
    assert!(
        keyshare::contents(store_key, &sealed).is_ok(),
        "point {point}: a key that does not decrypt"
    );
    assert_eq!(
        meta.ino(),
        std::fs::metadata(file).unwrap().ino(),
        "point {point}"
    );
}

/// The home as a clean restore leaves it: the names below it (the agent's
/// lock and holder record aside), no temp file anywhere.
fn names(home: &Path) -> Vec<String> {
    walk(home)
        .into_iter()
        .map(|(name, ..)| name)
        .filter(|name| !name.starts_with(".agent"))
        .collect()
}

#[test]
fn a_restore_killed_at_30_random_points_converges_on_rerun() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0, 0]);
    let planted = fx.plant(2, 2, 0, &fx.node.store_key);
    let expected = bytes(&planted).to_vec();
    let store_key = Secret::new(fx.node.store_key.clone());
    let restore = |home: &Path| {
        fx.vault_command(&["restore"])
            .env("MPC_HOME_DIR", home)
            .env("AGENT_REQUIRE_PERSISTENT_HOME", "false")
    };

    // How long one restore takes, start to end: the kills fall within it.
    let reference = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let clean = restore(reference.path()).as_pid1().run();
    let took = started.elapsed();
    assert_eq!(clean.code, 0, "{clean:?}");
    let clean_names = names(reference.path());
    assert_eq!(
        clean_names,
        [
            "key",
            "permanent_keys",
            "permanent_keys/epoch_2_with_2_domains"
        ]
    );

    let mut killed_with_something_written = 0;
    for point in 0..30 {
        let home = tempfile::tempdir().unwrap();
        let agent = restore(home.path()).as_pid1().start();
        let pid = agent.pid();
        let at = Duration::from_micros(rand::random::<u64>() % took.as_micros().max(1) as u64);
        std::thread::sleep(at);
        // The whole PID namespace dies with its init, as a container does.
        let _ = kill(pid, Signal::SIGKILL);
        drop(agent);
        no_bad_key(home.path(), &expected, &store_key, point);
        if home.path().join("permanent_keys").exists() {
            killed_with_something_written += 1;
        }

        let rerun = restore(home.path()).run();
        assert_eq!(rerun.code, 0, "point {point} ({at:?}): {rerun:?}");
        assert_eq!(names(home.path()), clean_names, "point {point}");
        no_bad_key(home.path(), &expected, &store_key, point);
        assert!(home.path().join("key").exists(), "point {point}");
    }
    eprintln!(
        "{killed_with_something_written} of 30 kills fell after the restore had begun to write"
    );

    // Once restored, a restore again changes nothing and says so.
    let again = fx
        .vault_command(&["restore", "--json"])
        .env("MPC_HOME_DIR", reference.path())
        .env("AGENT_REQUIRE_PERSISTENT_HOME", "false")
        .run();
    assert_eq!(again.code, 0, "{again:?}");
    let report: agent::views::VaultReport = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        report.restored.map(|r| r.outcome),
        Some(entrypoint::homes::restore::RestoreOutcome::AlreadyThere)
    );
    assert_eq!(names(reference.path()), clean_names);
}

/// What a kill left on a home.
type Leave<'a> = dyn Fn(&Path) + 'a;

/// Every state a kill can leave on the home, made by hand (a kill at random
/// points falls in the narrow ones seldom): the rerun finishes each.
#[test]
fn every_state_a_kill_can_leave_is_finished_by_a_rerun() {
    let fx = VaultFixture::new();
    fx.keyset(2, &[0, 0]);
    let planted = fx.plant(2, 2, 0, &fx.node.store_key);
    let sealed = bytes(&planted).to_vec();
    let store_key = Secret::new(fx.node.store_key.clone());
    let file = "permanent_keys/epoch_2_with_2_domains";
    let temp = "permanent_keys/.epoch_2_with_2_domains.00c0ffee00c0ffee.agent-tmp";
    let states: [(&str, &Leave<'_>); 5] = [
        ("permanent_keys/ created, nothing in it", &|_| {}),
        ("the temp file half written", &|home| {
            std::fs::write(home.join(temp), &sealed[..sealed.len() / 2]).unwrap()
        }),
        ("the file linked to its name, its temp name left", &|home| {
            std::fs::write(home.join(temp), &sealed).unwrap();
            std::fs::hard_link(home.join(temp), home.join(file)).unwrap();
        }),
        ("the file in place, key not linked yet", &|home| {
            std::fs::write(home.join(file), &sealed).unwrap()
        }),
        ("the file and key linked, nothing synced", &|home| {
            std::fs::write(home.join(file), &sealed).unwrap();
            std::fs::hard_link(home.join(file), home.join("key")).unwrap();
        }),
    ];
    for (state, make) in states {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("permanent_keys")).unwrap();
        make(home.path());
        let rerun = fx
            .vault_command(&["restore"])
            .env("MPC_HOME_DIR", home.path())
            .run();
        assert_eq!(rerun.code, 0, "{state}: {rerun:?}");
        assert_eq!(
            names(home.path()),
            [
                "key",
                "permanent_keys",
                "permanent_keys/epoch_2_with_2_domains"
            ],
            "{state}"
        );
        no_bad_key(home.path(), &sealed, &store_key, 0);
    }
}
