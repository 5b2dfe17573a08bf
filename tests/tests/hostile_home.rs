//! A home someone else can write to: the agent runs as root on a home owned by
//! the node user, and a link planted at any name it opens or writes must not
//! hand that someone root's files. Each planted link points at a root-owned
//! file outside the home; after `agent init` the file is as it was (content,
//! owner, mode) and the link is refused by name, or (for the temp names a
//! naive writer would reuse) swept as a link and never written through. A
//! FIFO at `config.json` is refused by its type instead of blocking the boot.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_tests::harness::{AgentCommand, Output};
use agent_tests::node_fixture::NodeFixture;
use nix::unistd::Uid;

/// The node user of these homes: not root, not the agent.
const NODE_UID: u32 = 1000;

/// A root-owned file outside the home, and what it was.
struct RootFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    before: (Vec<u8>, u32, u32, u32),
}

impl RootFile {
    fn new() -> RootFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root-only");
        std::fs::write(&path, b"root's own content\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let before = Self::state(&path);
        RootFile {
            _dir: dir,
            path,
            before,
        }
    }

    fn state(path: &Path) -> (Vec<u8>, u32, u32, u32) {
        let meta = std::fs::metadata(path).unwrap();
        (
            std::fs::read(path).unwrap(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777,
        )
    }

    fn assert_untouched(&self, planted: &str) {
        assert_eq!(
            Self::state(&self.path),
            self.before,
            "a link at {planted} changed the root-owned file it points to"
        );
    }
}

/// Gives the home and everything in it to the node user.
fn give_to_node_user(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NODE_UID), Some(NODE_UID)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            give_to_node_user(&entry.unwrap().path());
        }
    }
}

fn init(node: &NodeFixture) -> AgentCommand {
    AgentCommand::new(["init"])
        .envs(node.env())
        .envs(node.secret_env())
}

fn said(out: &Output) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// An initialized home, then given to the node user, with a link at `name`
/// (relative) to `target` in place of whatever was there. The first init runs
/// while the home is root's: the node user cannot run the stand-in node from
/// the build directory, and a home initialized once is what the link meets.
fn home_with_link(name: &str, target: &Path) -> NodeFixture {
    let node = NodeFixture::new();
    let first = init(&node).run();
    assert_eq!(first.code, 0, "the first init: {}", said(&first));
    give_to_node_user(node.home());
    let link = node.path(name);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.is_dir() => std::fs::rename(&link, link.with_extension("moved")).unwrap(),
        Ok(_) => std::fs::remove_file(&link).unwrap(),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NODE_UID), Some(NODE_UID)).unwrap();
    node
}

fn as_root() -> bool {
    if Uid::effective().is_root() {
        return true;
    }
    agent_tests::skipped("needs root to give the home to another user");
    false
}

#[test]
fn links_at_the_names_the_agent_opens_are_refused_and_their_targets_untouched() {
    if !as_root() {
        return;
    }
    for name in [
        ".agent/lock",
        ".agent/holder.json",
        "secrets.json",
        "config.yaml",
        "config.json",
    ] {
        let target = RootFile::new();
        let node = home_with_link(name, &target.path);
        let out = init(&node).run();
        let text = said(&out);
        assert_ne!(out.code, 0, "{name}: {text}");
        assert!(text.contains("homes.symlink"), "{name}: {text}");
        assert!(
            text.contains(&node.path(name).display().to_string()),
            "{name}: the refusal names the link: {text}"
        );
        target.assert_untouched(name);
    }
}

#[test]
fn a_linked_agent_directory_is_refused_and_what_it_points_to_untouched() {
    if !as_root() {
        return;
    }
    let target = RootFile::new();
    let root_dir = target.path.parent().unwrap().to_path_buf();
    std::fs::write(root_dir.join("lock"), b"").unwrap();
    let node = home_with_link(".agent", &root_dir);
    let out = init(&node).run();
    let text = said(&out);
    assert_ne!(out.code, 0, "{text}");
    assert!(text.contains("homes.symlink"), "{text}");
    assert!(
        text.contains(&node.path(".agent").display().to_string()),
        "{text}"
    );
    target.assert_untouched(".agent");
    let mut names: Vec<String> = std::fs::read_dir(&root_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["lock", "root-only"],
        "nothing written into the link's target"
    );
    let lock = std::fs::metadata(root_dir.join("lock")).unwrap();
    assert_eq!(
        (lock.uid(), lock.gid()),
        (0, 0),
        "the lock's target keeps its owner"
    );
}

#[test]
fn links_at_the_temp_names_of_a_naive_writer_are_never_written_through() {
    if !as_root() {
        return;
    }
    for name in [
        ".config.yaml.agent-tmp",
        ".secrets.json.agent-tmp",
        ".config.json.agent-tmp",
        ".agent/.holder.json.agent-tmp",
        ".agent/.initialized.json.agent-tmp",
    ] {
        let target = RootFile::new();
        let node = home_with_link(name, &target.path);
        let out = init(&node).run();
        assert_eq!(out.code, 0, "{name}: {}", said(&out));
        target.assert_untouched(name);
        let secrets = std::fs::metadata(node.path("secrets.json")).unwrap();
        assert_eq!(
            (secrets.uid(), secrets.mode() & 0o777),
            (NODE_UID, 0o600),
            "{name}"
        );
    }
}

#[test]
fn a_fifo_at_config_json_is_refused_without_hanging_the_boot() {
    if !as_root() {
        return;
    }
    let node = NodeFixture::new();
    nix::unistd::mkfifo(
        &node.path("config.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    give_to_node_user(node.home());
    let mut agent = init(&node).start();
    let code = agent.wait_exit(Duration::from_secs(15));
    let text = format!("{:?}", agent.stdout.all());
    assert!(code.is_some_and(|c| c != 0), "agent init: {code:?} {text}");
    assert!(text.contains("homes.file_type"), "{text}");
    assert!(text.contains("a FIFO"), "{text}");
    assert!(
        text.contains(&node.path("config.json").display().to_string()),
        "{text}"
    );
}
