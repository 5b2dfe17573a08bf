//! How every file on the home is written: a temp file, fsync, rename, fsync of
//! the directory; the previous version kept aside as `<name>.bak.<unix-time>`
//! when the content changes; no write at all when it does not.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zeroize::Zeroizing;

use super::owner::NodeUser;

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Written {
    /// The file already had this content; nothing was touched.
    Unchanged,
    /// There was no file.
    Created,
    /// The file had other content; it was replaced and, when asked, the
    /// previous version kept under `backup`.
    Replaced { backup: Option<PathBuf> },
}

impl Written {
    /// Whether the file on disk changed.
    pub fn wrote(&self) -> bool {
        !matches!(self, Written::Unchanged)
    }
}

/// What happens to the previous version of a file that is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// Kept as `<name>.bak.<unix-time>` (a hard link to the old inode): node state.
    Backup,
    /// Replaced without a copy: the agent's own bookkeeping (holder, start file).
    Discard,
}

/// Writes `contents` to `path` with `mode`, owned by `owner` when the agent
/// runs as root. At every instant `path` holds either the old or the new
/// content; with [`Previous::Backup`] the old content stays on disk under a
/// new name.
pub fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    previous: Previous,
    owner: &NodeUser,
) -> io::Result<Written> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(Zeroizing::new(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if existing.as_deref().map(Vec::as_slice) == Some(contents) {
        return Ok(Written::Unchanged);
    }
    let dir = parent(path)?;
    let name = file_name(path)?;
    let temp = dir.join(format!(".{name}{}", super::scratch::TEMP_SUFFIX));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)?;
    // The umask may have narrowed the mode, and an old temp file keeps its own.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    owner.own(&file)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    let written = match existing {
        None => Written::Created,
        Some(_) if previous == Previous::Discard => Written::Replaced { backup: None },
        Some(_) => Written::Replaced {
            backup: Some(keep_aside(path, dir, name, mode)?),
        },
    };
    std::fs::rename(&temp, path)?;
    sync_dir(dir)?;
    Ok(written)
}

/// Links the current `path` to a fresh `<name>.bak.<unix-time>[.<n>]`; the
/// backup is never readable more widely than the new file.
fn keep_aside(path: &Path, dir: &Path, name: &str, mode: u32) -> io::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut backup = dir.join(format!("{name}.bak.{now}"));
    let mut n = 0;
    loop {
        match std::fs::hard_link(path, &backup) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                n += 1;
                backup = dir.join(format!("{name}.bak.{now}.{n}"));
            }
            Err(e) => return Err(e),
        }
    }
    let old_mode = std::fs::metadata(&backup)?.mode() & 0o7777;
    if old_mode & !mode != 0 {
        std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(old_mode & mode))?;
    }
    Ok(backup)
}

/// Narrows an existing file's permission bits to `mode` (e.g. a 0644
/// `secrets.json` left by start.sh). Returns the old mode when it changed.
pub fn restrict_mode(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    let old = std::fs::metadata(path)?.mode() & 0o7777;
    if old & !mode == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(old & mode))?;
    Ok(Some(old))
}

/// Creates `dir` (mode 0755, owned by `owner`) when it does not exist.
pub fn ensure_dir(dir: &Path, owner: &NodeUser) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
            owner.own_path(dir)?;
            sync_dir(parent(dir)?)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the entries of `dir` durable (a rename or link is not until then).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path needs a directory"))
}

fn file_name(path: &Path) -> io::Result<&str> {
    path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file path needs a UTF-8 name",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homes::owner::UserSource;

    fn me() -> NodeUser {
        NodeUser {
            name: None,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            source: UserSource::HomeOwner,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn first_write_creates_with_the_mode_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let w = write_file(&path, b"{}", 0o600, Previous::Backup, &me()).unwrap();
        assert_eq!(w, Written::Created);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["secrets.json"]);
    }

    #[test]
    fn same_content_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_file(&path, b"a", 0o644, Previous::Backup, &me()).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        let w = write_file(&path, b"a", 0o644, Previous::Backup, &me()).unwrap();
        assert_eq!(w, Written::Unchanged);
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(before.ino(), after.ino());
        assert_eq!(before.mtime_nsec(), after.mtime_nsec());
    }

    #[test]
    fn changed_content_keeps_the_previous_version_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_file(&path, b"old", 0o644, Previous::Backup, &me()).unwrap();
        let first = write_file(&path, b"new", 0o644, Previous::Backup, &me()).unwrap();
        let second = write_file(&path, b"newer", 0o644, Previous::Backup, &me()).unwrap();
        let (Written::Replaced { backup: Some(a) }, Written::Replaced { backup: Some(b) }) =
            (first, second)
        else {
            panic!("both writes replace with a backup");
        };
        assert_ne!(a, b, "two backups within one second get distinct names");
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert_eq!(std::fs::read(&b).unwrap(), b"new");
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        assert!(
            a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("config.json.bak.")
        );
    }

    #[test]
    fn backups_are_never_wider_than_the_new_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let Written::Replaced {
            backup: Some(backup),
        } = write_file(&path, b"new", 0o600, Previous::Backup, &me()).unwrap()
        else {
            panic!("replaced with a backup");
        };
        assert_eq!(std::fs::metadata(&backup).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn discarded_versions_leave_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holder.json");
        write_file(&path, b"1", 0o644, Previous::Discard, &me()).unwrap();
        let w = write_file(&path, b"2", 0o644, Previous::Discard, &me()).unwrap();
        assert_eq!(w, Written::Replaced { backup: None });
        assert_eq!(names(dir.path()), ["holder.json"]);
    }

    #[test]
    fn restrict_mode_only_narrows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(restrict_mode(&path, 0o600).unwrap(), Some(0o644));
        assert_eq!(restrict_mode(&path, 0o600).unwrap(), None);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}
