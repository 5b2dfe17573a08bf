//! The agent's throwaway files on the home — write probes and the temp files of
//! atomic writes — and their removal: a kill can leave one behind, and the next
//! agent to take the lock sweeps them, so no boot adds to the home.

use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::beneath::{self, Dir};

/// Prefix of a write probe in the home.
const PROBE_PREFIX: &str = ".agent-write-probe.";
/// Suffix of an atomic write's temp file, beside the file it replaces.
pub const TEMP_SUFFIX: &str = ".agent-tmp";

/// A probe name no other agent uses at the same time.
pub fn probe_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{PROBE_PREFIX}{}.{nanos}", std::process::id())
}

/// Whether `name` (in the home, `.agent/` or `permanent_keys/`) is one of the
/// agent's scratch files: what a kill left, swept under the lock.
pub fn is_scratch(name: &str) -> bool {
    name.starts_with(PROBE_PREFIX) || (name.starts_with('.') && name.ends_with(TEMP_SUFFIX))
}

/// Removes the scratch files an interrupted agent left in `dirs` (the home,
/// its `.agent/` and `permanent_keys/`, below `home`), and returns their paths. Only under the
/// home's lock: the holder is the only agent writing temp files; a waiting
/// agent's probe that vanishes under it is not an error to that agent.
/// Directories and other names are never touched, and a symlink is removed
/// as a link (`unlinkat` on the directory's fd).
pub fn remove_stale(home: &Path, dirs: &[&Path]) -> io::Result<Vec<String>> {
    let home = Dir::open(home)?;
    let mut removed = Vec::new();
    for rel in dirs {
        let here;
        let dir = if rel.as_os_str().is_empty() {
            &home
        } else {
            match home.dir(rel)? {
                Some(dir) => {
                    here = dir;
                    &here
                }
                None => continue,
            }
        };
        let mut swept = false;
        for (name, stat) in dir.entries()? {
            let Some(name) = name.to_str() else {
                continue;
            };
            if !is_scratch(name) || beneath::is_dir(&stat) {
                continue;
            }
            match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {}
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            }
            swept = true;
            removed.push(dir.join(name).display().to_string());
        }
        if swept {
            // The removals are durable only once the directory is.
            dir.sync()?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_probes_and_temp_files_are_swept_and_nothing_else() {
        let home = tempfile::tempdir().unwrap();
        let agent = home.path().join(".agent");
        std::fs::create_dir(&agent).unwrap();
        for name in [
            ".agent-write-probe.12.345",
            ".config.json.agent-tmp",
            "config.json",
            "key",
            "config.json.bak.1",
        ] {
            std::fs::write(home.path().join(name), b"x").unwrap();
        }
        std::fs::write(home.path().join(probe_name()), b"x").unwrap();
        std::fs::write(agent.join(".holder.json.agent-tmp"), b"x").unwrap();
        std::fs::write(agent.join("lock"), b"").unwrap();
        std::fs::create_dir(agent.join("init-staging")).unwrap();
        let mut removed = remove_stale(home.path(), &[Path::new(""), Path::new(".agent")]).unwrap();
        removed.sort();
        assert_eq!(removed.len(), 4, "{removed:?}");
        assert!(removed.contains(&agent.join(".holder.json.agent-tmp").display().to_string()));
        let mut left: Vec<String> = std::fs::read_dir(home.path())
            .unwrap()
            .chain(std::fs::read_dir(&agent).unwrap())
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".agent",
                "config.json",
                "config.json.bak.1",
                "init-staging",
                "key",
                "lock"
            ]
        );
        assert!(
            remove_stale(home.path(), &[Path::new(""), Path::new(".agent")])
                .unwrap()
                .is_empty()
        );
    }
}
