//! The home is judged by the filesystem it really is on: a home in memory
//! (tmpfs) or in a container's own layer (overlay) is refused unless
//! persistence is switched off, a read-only or full home fails with its cause,
//! and the mount table line is shown. Mounts need root; without it the tests
//! that need one say so and pass.

use std::path::{Path, PathBuf};

use agent_tests::mounts::Mounted;
use entrypoint::check::Status;
use entrypoint::config::{HomeSettings, SecretsJsonPolicy, StartMode};
use entrypoint::homes::filesystem::{FsKind, inspect};
use entrypoint::homes::{HomeError, NodeUser};

fn settings(require_persistent: bool, min_free: u64) -> HomeSettings {
    HomeSettings {
        require_persistent,
        min_free,
        lock_wait: None,
        io_timeout: std::time::Duration::from_secs(60),
        start_mode: StartMode::Auto,
        secrets_json: SecretsJsonPolicy::Reconcile,
        node_user: None,
        localnet_genesis: PathBuf::from("/app/localnet-genesis.json"),
        generate_store_key: false,
        generate_backup_key: false,
        nearcore_rpc_addr: None,
        nearcore_network_addr: None,
    }
}

fn root(home: &Path) -> NodeUser {
    NodeUser::resolve(None, home).unwrap()
}

#[test]
fn a_home_on_tmpfs_is_refused_with_its_mount_shown() {
    let Some(tmpfs) = Mounted::tmpfs("4m") else {
        return;
    };
    let fs = inspect(&tmpfs.at).unwrap();
    assert_eq!(fs.fs_type.kind, FsKind::Memory);
    let checks = fs.checks(&settings(true, 1024), &root(&tmpfs.at));
    let persistence = &checks[0];
    assert_eq!(persistence.id, "homes.filesystem");
    assert_eq!(persistence.status, Status::Fail);
    assert!(persistence.cause.contains("tmpfs"), "{}", persistence.cause);
    assert!(persistence.fix.as_deref().unwrap().starts_with(
        "mount an EFS volume at MPC_HOME_DIR (task definition volumes + mountPoints)"
    ));
    let line = persistence.detail["mount"].as_str().unwrap();
    assert!(line.contains(" - tmpfs tmpfs "), "{line}");
    assert!(
        line.contains(&tmpfs.at.to_string_lossy().into_owned()),
        "{line}"
    );
}

#[test]
fn a_home_on_tmpfs_is_allowed_when_persistence_is_not_required() {
    let Some(tmpfs) = Mounted::tmpfs("4m") else {
        return;
    };
    let checks = inspect(&tmpfs.at)
        .unwrap()
        .checks(&settings(false, 1024), &root(&tmpfs.at));
    assert_eq!(checks[0].status, Status::Warn);
    assert!(
        checks[0]
            .cause
            .contains("AGENT_REQUIRE_PERSISTENT_HOME=false")
    );
}

#[test]
fn a_home_in_an_overlay_is_refused_as_the_container_layer() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["lower", "upper", "work", "home"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let at = dir.path().join("home");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.path().join("lower").display(),
        dir.path().join("upper").display(),
        dir.path().join("work").display()
    );
    let Some(overlay) = Mounted::at(Some(dir), at, &["-t", "overlay", "overlay", "-o", &options])
    else {
        return;
    };
    let fs = inspect(&overlay.at).unwrap();
    assert_eq!(fs.fs_type.kind, FsKind::ContainerLayer);
    let check = &fs.checks(&settings(true, 1024), &root(&overlay.at))[0];
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.cause.contains("the container's own layer"),
        "{}",
        check.cause
    );
}

#[test]
fn a_home_on_this_machine_s_disk_is_judged_by_its_real_type() {
    let home = tempfile::tempdir().unwrap();
    let fs = inspect(home.path()).unwrap();
    let mount = fs.mount.clone().expect("every path is on some mount");
    let check = &fs.checks(&settings(true, 1024), &root(home.path()))[0];
    let expected = match fs.fs_type.kind {
        FsKind::Nfs | FsKind::Network => Status::Ok,
        FsKind::LocalDisk | FsKind::Unknown => Status::Warn,
        FsKind::Memory | FsKind::ContainerLayer | FsKind::NotStorage => Status::Fail,
    };
    assert_eq!(check.status, expected, "{} on {}", check.cause, mount.line);
    assert!(check.cause.contains(&mount.fs_type), "{}", check.cause);
}

#[test]
fn a_read_only_home_fails_the_write_check() {
    let Some(tmpfs) = Mounted::tmpfs("4m") else {
        return;
    };
    if !tmpfs.remount("remount,ro") {
        agent_tests::skipped("cannot remount the tmpfs read-only");
        return;
    }
    let fs = inspect(&tmpfs.at).unwrap();
    assert!(fs.read_only);
    let check = fs.probe_writable();
    assert_eq!(
        (check.id.as_str(), check.status),
        ("homes.writable", Status::Fail)
    );
    assert!(check.cause.contains("read-only"), "{}", check.cause);
}

#[test]
fn a_full_home_fails_free_space_and_the_write_probe() {
    let Some(tmpfs) = Mounted::tmpfs("1m") else {
        return;
    };
    let settings = settings(true, 256 << 10);
    let before = inspect(&tmpfs.at).unwrap();
    assert_eq!(
        before.checks(&settings, &root(&tmpfs.at))[1].status,
        Status::Ok
    );
    assert_eq!(before.probe_writable().status, Status::Ok);
    // A process another test forks while the probe's file is open holds it
    // until that process execs, and tmpfs frees the page only then: wait for
    // it, or the filler leaves that page for the probe below.
    let released = (0..500).any(|_| {
        if inspect(&tmpfs.at).unwrap().free_bytes == before.free_bytes {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        false
    });
    assert!(released, "the probe's page on the tmpfs was never freed");

    let filler = vec![0u8; 64 << 10];
    let mut file = std::fs::File::create(tmpfs.at.join("filler")).unwrap();
    use std::io::Write;
    while file.write_all(&filler).is_ok() {}
    drop(file);

    let full = inspect(&tmpfs.at).unwrap();
    let space = &full.checks(&settings, &root(&tmpfs.at))[1];
    assert_eq!(
        (space.id.as_str(), space.status),
        ("homes.free_space", Status::Fail)
    );
    assert!(
        space.cause.contains("below AGENT_MIN_FREE=256.0 KiB"),
        "{}",
        space.cause
    );
    let probe = full.probe_writable();
    assert_eq!(probe.status, Status::Fail);
    assert!(
        probe.cause.contains("No space left on device"),
        "{}",
        probe.cause
    );
    assert_eq!(
        probe.fix.as_deref(),
        Some("free space on the volume or grow it")
    );
}

#[test]
fn the_write_probe_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let check = inspect(home.path()).unwrap().probe_writable();
    assert_eq!(check.status, Status::Ok, "{}", check.cause);
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_home_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = inspect(&dir.path().join("data")).unwrap_err();
    assert!(matches!(err, HomeError::Missing { .. }), "{err}");
    let check = err.check();
    assert_eq!(check.id, "homes.home");
    assert!(
        check
            .fix
            .unwrap()
            .contains("mount an EFS volume at MPC_HOME_DIR")
    );
}

#[test]
fn a_home_the_node_user_cannot_write_is_refused() {
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let stranger = NodeUser::resolve(
        Some(&entrypoint::config::UserSpec::Ids {
            uid: 4242,
            gid: Some(4242),
        }),
        home.path(),
    )
    .unwrap();
    let owner = &inspect(home.path())
        .unwrap()
        .checks(&settings(true, 1024), &stranger)[2];
    assert_eq!(
        (owner.id.as_str(), owner.status),
        ("homes.owner", Status::Fail)
    );
    assert!(
        owner.cause.contains("4242:4242 cannot create files"),
        "{}",
        owner.cause
    );
}
