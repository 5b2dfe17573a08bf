//! How every file on the home is written: a temp file, fsync, rename, fsync of
//! the directory; the previous version kept aside as `<name>.bak.<unix-time>`
//! when the content changes; no write at all when it does not. Every name is
//! resolved below an open directory ([`super::beneath`]), never through a link.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};
use serde::Serialize;
use zeroize::Zeroizing;

use super::beneath::{self, Dir, Refusal};
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

/// Writes `contents` to `rel` below `root` with `mode`, owned by `owner` when
/// the agent runs as root. At every instant the file holds either the old or
/// the new content; with [`Previous::Backup`] the old content stays on disk
/// under a new name. Nothing below `root` is followed if it is a link: an
/// existing file must be a regular file with one link and the node's or the
/// agent's own, and the temp file is a fresh random name created with
/// `O_EXCL`.
pub fn write_file(
    root: &Path,
    rel: &Path,
    contents: &[u8],
    mode: u32,
    previous: Previous,
    owner: &NodeUser,
) -> io::Result<Written> {
    let root = Dir::open(root)?;
    let (dir, name) = root.parent_of(rel)?;
    let name = name.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file path needs a UTF-8 name",
        )
    })?;
    let existing = match open_ours(&dir, Path::new(name), owner) {
        Ok((file, _)) => {
            let bytes = read_all(&file, &dir.join(name))?;
            Some((file, bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if existing.as_ref().map(|(_, bytes)| bytes.as_slice()) == Some(contents) {
        return Ok(Written::Unchanged);
    }
    let temp = temp_file(&dir, name, contents, mode, owner)?;
    let placed = (|| {
        let written = match &existing {
            None => Written::Created,
            Some(_) if previous == Previous::Discard => Written::Replaced { backup: None },
            Some((old, _)) => Written::Replaced {
                backup: Some(keep_aside(&dir, name, old, mode)?),
            },
        };
        renameat(&*dir, temp.as_str(), &*dir, name)?;
        io::Result::Ok(written)
    })();
    match placed {
        Ok(written) => {
            dir.sync()?;
            Ok(written)
        }
        Err(e) => {
            // The temp file is ours and unused; the sweep would remove it too.
            let _ = unlinkat(&*dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            Err(e)
        }
    }
}

/// Writes `contents` as `name` in `dir`, a name that must not exist: a temp
/// file beside it (mode `mode`, owned by `owner`, fsynced), put in place with
/// link(2), then the temp name removed and `dir` synced. link(2) makes the
/// name appear whole or not at all and never replaces: a name taken in the
/// meantime is `AlreadyExists`, and what holds it is left as it is. A kill
/// leaves at most the temp name, which [`super::scratch`] sweeps.
pub fn create_new(
    dir: &Dir,
    name: &str,
    contents: &[u8],
    mode: u32,
    owner: &NodeUser,
) -> io::Result<()> {
    let temp = temp_file(dir, name, contents, mode, owner)?;
    let placed = linkat(dir, temp.as_str(), dir, name, AtFlags::empty());
    // Placed or not, the temp name goes; the sweep would remove it too.
    let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
    placed?;
    dir.sync()
}

/// A new temp file beside `name` in `dir` holding `contents`, with `mode`
/// (whatever the umask), owned by `owner`, fsynced; its name. Nothing is
/// left behind when it cannot be made whole.
fn temp_file(
    dir: &Dir,
    name: &str,
    contents: &[u8],
    mode: u32,
    owner: &NodeUser,
) -> io::Result<String> {
    let temp = temp_name(name);
    let fd = dir.open_at(
        Path::new(&temp),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(mode),
    )?;
    let filled = (|| {
        let mut file = File::from(fd);
        // The umask may have narrowed the mode.
        fchmod(&file, Mode::from_bits_truncate(mode))?;
        owner.own(&file)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = filled {
        let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    Ok(temp)
}

/// A temp name beside `name` that no one can have prepared:
/// `.<name>.<random>.agent-tmp` (swept by [`super::scratch`] if a kill leaves it).
fn temp_name(name: &str) -> String {
    format!(
        ".{name}.{:016x}{}",
        rand::random::<u64>(),
        super::scratch::TEMP_SUFFIX
    )
}

/// Opens `rel` (below `dir`) to read or change it: a regular file, one link,
/// owned by the node user or the agent. `NotFound` when there is none.
fn open_ours(dir: &Dir, rel: &Path, owner: &NodeUser) -> io::Result<(File, FileStat)> {
    let fd = dir.open_at(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())?;
    let (file, stat) = dir.regular(fd, rel)?;
    check_ours(&dir.join(rel), &stat, owner)?;
    Ok((file, stat))
}

/// One link and the expected owner, for a file or directory the agent changes.
pub(crate) fn check_ours(path: &Path, stat: &FileStat, owner: &NodeUser) -> io::Result<()> {
    let agent = nix::unistd::geteuid().as_raw();
    if stat.st_uid != owner.uid && stat.st_uid != agent {
        return Err(io::Error::other(Refusal::Owner {
            path: path.to_path_buf(),
            uid: stat.st_uid,
            node_uid: owner.uid,
            agent_uid: agent,
        }));
    }
    if !beneath::is_dir(stat) && stat.st_nlink != 1 {
        return Err(io::Error::other(Refusal::HardLinked {
            path: path.to_path_buf(),
            links: stat.st_nlink,
        }));
    }
    Ok(())
}

fn read_all(file: &File, path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(beneath::READ_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > beneath::READ_LIMIT {
        return Err(io::Error::other(Refusal::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: beneath::READ_LIMIT,
        }));
    }
    Ok(bytes)
}

/// Links the current `name` to a fresh `<name>.bak.<unix-time>[.<n>]` (the
/// name itself, never what a link there points to); the backup, `old`, is
/// never readable more widely than the new file.
fn keep_aside(dir: &Dir, name: &str, old: &File, mode: u32) -> io::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut backup = format!("{name}.bak.{now}");
    let mut n = 0;
    loop {
        match linkat(dir, name, dir, backup.as_str(), AtFlags::empty()) {
            Ok(()) => break,
            Err(Errno::EEXIST) => {
                n += 1;
                backup = format!("{name}.bak.{now}.{n}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let old_mode = fstat(old)?.st_mode & 0o7777;
    if old_mode & !mode != 0 {
        fchmod(old, Mode::from_bits_truncate(old_mode & mode))?;
    }
    Ok(dir.join(backup))
}

/// Narrows an existing file's permission bits to `mode` (e.g. a 0644
/// `secrets.json` left by start.sh), through its fd. Returns the old mode
/// when it changed.
pub fn restrict_mode(
    root: &Path,
    rel: &Path,
    mode: u32,
    owner: &NodeUser,
) -> io::Result<Option<u32>> {
    let root = Dir::open(root)?;
    let (file, stat) = open_ours(&root, rel, owner)?;
    let old = stat.st_mode & 0o7777;
    if old & !mode == 0 {
        return Ok(None);
    }
    fchmod(&file, Mode::from_bits_truncate(old & mode))?;
    Ok(Some(old))
}

/// Creates the directory `rel` below `root` (with `mode`, owned by `owner`)
/// when it does not exist, and opens it. An existing one must be a directory,
/// not a link, owned by the node user or the agent.
pub fn ensure_dir(root: &Path, rel: &Path, mode: u32, owner: &NodeUser) -> io::Result<Dir> {
    let root = Dir::open(root)?;
    let (parent, name) = root.parent_of(rel)?;
    let created = match mkdirat(&*parent, name, Mode::from_bits_truncate(mode)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(e.into()),
    };
    let dir = parent
        .dir(Path::new(name))?
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let stat = fstat(&dir)?;
    if created {
        fchmod(&dir, Mode::from_bits_truncate(mode))?;
        owner.own_fd(&dir, &stat)?;
        parent.sync()?;
    } else {
        check_ours(dir.path(), &stat, owner)?;
    }
    Ok(dir)
}

/// Makes the entries of `dir` durable (a rename or link is not until then).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    Dir::open(dir)?.sync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homes::owner::UserSource;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> NodeUser {
        NodeUser {
            name: None,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            source: UserSource::HomeOwner,
        }
    }

    fn write(
        path: &Path,
        contents: &[u8],
        mode: u32,
        previous: Previous,
        owner: &NodeUser,
    ) -> io::Result<Written> {
        let name = Path::new(path.file_name().unwrap());
        write_file(
            path.parent().unwrap(),
            name,
            contents,
            mode,
            previous,
            owner,
        )
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
        let w = write(&path, b"{}", 0o600, Previous::Backup, &me()).unwrap();
        assert_eq!(w, Written::Created);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["secrets.json"]);
    }

    #[test]
    fn same_content_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write(&path, b"a", 0o644, Previous::Backup, &me()).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        let w = write(&path, b"a", 0o644, Previous::Backup, &me()).unwrap();
        assert_eq!(w, Written::Unchanged);
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(before.ino(), after.ino());
        assert_eq!(before.mtime_nsec(), after.mtime_nsec());
    }

    #[test]
    fn changed_content_keeps_the_previous_version_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write(&path, b"old", 0o644, Previous::Backup, &me()).unwrap();
        let first = write(&path, b"new", 0o644, Previous::Backup, &me()).unwrap();
        let second = write(&path, b"newer", 0o644, Previous::Backup, &me()).unwrap();
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
        } = write(&path, b"new", 0o600, Previous::Backup, &me()).unwrap()
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
        write(&path, b"1", 0o644, Previous::Discard, &me()).unwrap();
        let w = write(&path, b"2", 0o644, Previous::Discard, &me()).unwrap();
        assert_eq!(w, Written::Replaced { backup: None });
        assert_eq!(names(dir.path()), ["holder.json"]);
    }

    #[test]
    fn a_new_file_is_placed_whole_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let root = Dir::open(dir.path()).unwrap();
        create_new(&root, "epoch_1_with_1_domains", b"sealed", 0o600, &me()).unwrap();
        let path = dir.path().join("epoch_1_with_1_domains");
        assert_eq!(std::fs::read(&path).unwrap(), b"sealed");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 1, "the temp name is gone");
        let err = create_new(&root, "epoch_1_with_1_domains", b"other", 0o600, &me()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"sealed", "never replaced");
        assert_eq!(names(dir.path()), ["epoch_1_with_1_domains"]);
    }

    #[test]
    fn restrict_mode_only_narrows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let name = Path::new(path.file_name().unwrap());
        assert_eq!(
            restrict_mode(dir.path(), name, 0o600, &me()).unwrap(),
            Some(0o644)
        );
        assert_eq!(restrict_mode(dir.path(), name, 0o600, &me()).unwrap(), None);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}
