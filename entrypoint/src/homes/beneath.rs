//! Names under a directory the agent was told about (`MPC_HOME_DIR`, the
//! runtime directory) opened without following a link: the directory itself
//! is opened as configured, and every name below it is resolved from its fd
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (where the kernel
//! lacks it, `O_NOFOLLOW` per component). Anyone who can write to the home
//! (the node, another task on the access point) can plant a link there; the
//! agent runs as root, so a followed link would hand them root's files.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use zeroize::Zeroizing;

/// The most the agent reads of one file on the home: the files it reads are
/// a few KiB; a link to `/dev/zero` or a runaway file must not fill memory.
pub const READ_LIMIT: u64 = 4 << 20;

/// A name on the home the agent will not use, and why. Carried inside an
/// [`io::Error`] so that every `HomeError::io` turns it into its own check.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{} is a symbolic link; the agent does not follow links on the home (it runs as root)",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error("{} is {kind}, not a regular file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{} is {kind}, not a directory", path.display())]
    NotADirectory { path: PathBuf, kind: &'static str },
    #[error("{} is {size} bytes, more than the {limit} bytes the agent reads", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{} has {links} hard links; a file the agent changes has one", path.display())]
    HardLinked { path: PathBuf, links: u64 },
    #[error(
        "{} is owned by uid {uid}, neither the node user ({node_uid}) nor the agent ({agent_uid})",
        path.display()
    )]
    Owner {
        path: PathBuf,
        uid: u32,
        node_uid: u32,
        agent_uid: u32,
    },
}

impl Refusal {
    /// The refusal inside `error`, if it carries one.
    pub(crate) fn take(error: io::Error) -> Result<Refusal, io::Error> {
        if error.get_ref().is_some_and(|e| e.is::<Refusal>()) {
            let inner = error.into_inner().expect("checked above");
            return Ok(*inner.downcast::<Refusal>().expect("checked above"));
        }
        Err(error)
    }

    pub fn path(&self) -> &Path {
        match self {
            Refusal::Symlink { path }
            | Refusal::NotAFile { path, .. }
            | Refusal::NotADirectory { path, .. }
            | Refusal::TooLarge { path, .. }
            | Refusal::HardLinked { path, .. }
            | Refusal::Owner { path, .. } => path,
        }
    }

    /// The check id and the fix.
    pub fn id_and_fix(&self) -> (&'static str, String) {
        let path = self.path().display();
        match self {
            Refusal::Symlink { .. } => (
                "homes.symlink",
                format!(
                    "remove the link (rm {path}); the agent writes the file itself, and a link on the home is never followed"
                ),
            ),
            Refusal::NotAFile { .. } | Refusal::NotADirectory { .. } => (
                "homes.file_type",
                format!(
                    "move {path} aside (mv {path} {path}.broken); the agent writes a fresh one"
                ),
            ),
            Refusal::TooLarge { .. } => (
                "homes.file_size",
                format!(
                    "move {path} aside (mv {path} {path}.broken); it is not a file the node wrote"
                ),
            ),
            Refusal::HardLinked { .. } => (
                "homes.hard_link",
                format!(
                    "remove the other names of {path}, or move it aside so the agent writes a fresh one"
                ),
            ),
            Refusal::Owner { node_uid, .. } => (
                "homes.file_owner",
                format!(
                    "give {path} to the node user (chown {node_uid} {path}) if it is the node's, or move it aside"
                ),
            ),
        }
    }
}

fn refuse(refusal: Refusal) -> io::Error {
    io::Error::other(refusal)
}

/// What `st_mode` says a file is, in words.
pub(crate) fn kind_of(stat: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "of an unknown type",
    }
}

pub(crate) fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

pub(crate) fn is_file(stat: &FileStat) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
}

/// The regular file `rel` below `root`, read as [`Dir::read`] does; `None`
/// when there is none.
pub fn read_file(root: &Path, rel: &Path) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    Dir::open(root)?.read(rel)
}

/// An open directory and the path it was opened as (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// The directory the agent was told about, opened as configured (links
    /// in its own path are the operator's).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` below this directory, for messages.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Opens `rel` below this directory with `flags` (and `mode` when
    /// creating), following no link on the way: a link at any component is a
    /// [`Refusal::Symlink`] naming it.
    pub fn open_at(&self, rel: &Path, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let mode = if flags.intersects(OFlag::O_CREAT | OFlag::O_TMPFILE) {
            mode
        } else {
            Mode::empty()
        };
        let how = OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let opened = match nix::fcntl::openat2(self.fd.as_fd(), rel, how) {
            // No openat2 (before Linux 5.6, or filtered by seccomp): one component at a time.
            Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG) => self.open_walking(rel, flags, mode),
            other => other,
        };
        opened.map_err(|e| self.explain(rel, e))
    }

    fn open_walking(&self, rel: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let names = components(rel).map_err(|_| Errno::EXDEV)?;
        let Some((last, dirs)) = names.split_last() else {
            return Err(Errno::EINVAL);
        };
        let mut here: Option<OwnedFd> = None;
        for name in dirs {
            let parent = here.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            here = Some(nix::fcntl::openat(
                parent,
                *name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
        }
        let parent = here.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
        nix::fcntl::openat(parent, *last, flags, mode)
    }

    /// The error of an open of `rel`, with the link named when it was one.
    fn explain(&self, rel: &Path, errno: Errno) -> io::Error {
        // `O_DIRECTORY | O_NOFOLLOW` on a link says ENOTDIR.
        if !matches!(errno, Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR) {
            return io::Error::from(errno);
        }
        let mut prefix = PathBuf::new();
        for name in components(rel).unwrap_or_default() {
            prefix.push(name);
            match nix::sys::stat::fstatat(self.fd.as_fd(), &prefix, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) if stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
                    return refuse(Refusal::Symlink {
                        path: self.join(&prefix),
                    });
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if errno == Errno::ENOTDIR {
            return io::Error::from(errno);
        }
        refuse(Refusal::Symlink {
            path: self.join(rel),
        })
    }

    /// The directory `rel` below this one; `None` when it does not exist.
    pub fn dir(&self, rel: &Path) -> io::Result<Option<Dir>> {
        match self.open_at(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.join(rel),
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                let kind = self
                    .stat(rel)
                    .ok()
                    .flatten()
                    .map_or("not a directory", |s| kind_of(&s));
                Err(refuse(Refusal::NotADirectory {
                    path: self.join(rel),
                    kind,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// `rel` as `lstat` sees it (a link is reported, not followed);
    /// `None` when it does not exist.
    pub fn stat(&self, rel: &Path) -> io::Result<Option<FileStat>> {
        let (parent, name) = self.parent_of(rel)?;
        match nix::sys::stat::fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory holding `rel` (this one, or one below it) and `rel`'s last name.
    pub fn parent_of<'r>(&self, rel: &'r Path) -> io::Result<(DirRef<'_>, &'r OsStr)> {
        let names = components(rel)?;
        let Some((last, dirs)) = names.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a file path needs a name",
            ));
        };
        if dirs.is_empty() {
            return Ok((DirRef::This(self), last));
        }
        let parent: PathBuf = dirs.iter().collect();
        match self.dir(&parent)? {
            Some(dir) => Ok((DirRef::Below(dir), last)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// The contents of the regular file `rel`, at most [`READ_LIMIT`]
    /// bytes; `None` when there is none. Opened non-blocking, so a FIFO is
    /// refused by its type instead of waiting for a writer.
    pub fn read(&self, rel: &Path) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.read_with_stat(rel)?.map(|(bytes, _)| bytes))
    }

    /// [`Dir::read`], with what `fstat` said of the file before it was read.
    pub fn read_with_stat(&self, rel: &Path) -> io::Result<Option<(Zeroizing<Vec<u8>>, FileStat)>> {
        let fd = match self.open_at(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (file, stat) = self.regular(fd, rel)?;
        Ok(Some((read_capped(file, &self.join(rel))?, stat)))
    }

    /// `fd` (opened as `rel`) as a file, when it is a regular file.
    pub(crate) fn regular(&self, fd: OwnedFd, rel: &Path) -> io::Result<(File, FileStat)> {
        let stat = nix::sys::stat::fstat(&fd)?;
        if !is_file(&stat) {
            return Err(refuse(Refusal::NotAFile {
                path: self.join(rel),
                kind: kind_of(&stat),
            }));
        }
        Ok((File::from(fd), stat))
    }

    /// The names in this directory with what `lstat` says each is, sorted.
    pub fn entries(&self) -> io::Result<Vec<(std::ffi::OsString, FileStat)>> {
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let mut found = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            match nix::sys::stat::fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => found.push((name.to_os_string(), stat)),
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Makes the entries of this directory durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(nix::unistd::fsync(&self.fd)?)
    }
}

/// A directory reached from a [`Dir`]: itself, or one opened below it.
pub enum DirRef<'a> {
    This(&'a Dir),
    Below(Dir),
}

impl std::ops::Deref for DirRef<'_> {
    type Target = Dir;
    fn deref(&self) -> &Dir {
        match self {
            DirRef::This(dir) => dir,
            DirRef::Below(dir) => dir,
        }
    }
}

/// Reads `file` to its end, refusing more than [`READ_LIMIT`] bytes.
fn read_capped(file: File, path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(READ_LIMIT + 1).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > READ_LIMIT {
        return Err(refuse(Refusal::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: READ_LIMIT,
        }));
    }
    Ok(bytes)
}

/// The names of a relative path; `..`, `/` and the like are refused.
fn components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a plain path below the home", rel.display()),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_on_the_way_is_refused_by_its_name() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("target"), b"root's").unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir-link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), root.path().join("real/file"))
            .unwrap();
        let dir = Dir::open(root.path()).unwrap();
        for (rel, named) in [("dir-link/target", "dir-link"), ("real/file", "real/file")] {
            let err = dir.read(Path::new(rel)).unwrap_err();
            match Refusal::take(err) {
                Ok(Refusal::Symlink { path }) => assert_eq!(path, root.path().join(named)),
                other => panic!("{rel}: {other:?}"),
            }
        }
        for rel in ["../x", "/etc/passwd"] {
            assert!(dir.read(Path::new(rel)).is_err(), "{rel}");
        }
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_and_a_large_file_by_its_size() {
        let root = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&root.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        std::fs::write(root.path().join("big"), vec![b'x'; READ_LIMIT as usize + 1]).unwrap();
        let dir = Dir::open(root.path()).unwrap();
        assert!(matches!(
            Refusal::take(dir.read(Path::new("fifo")).unwrap_err()),
            Ok(Refusal::NotAFile { kind: "a FIFO", .. })
        ));
        assert!(matches!(
            Refusal::take(dir.read(Path::new("big")).unwrap_err()),
            Ok(Refusal::TooLarge { .. })
        ));
        assert!(dir.read(Path::new("absent")).unwrap().is_none());
    }

    #[test]
    fn the_walk_without_openat2_refuses_links_too() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
        std::fs::write(root.path().join("real/file"), b"x").unwrap();
        let dir = Dir::open(root.path()).unwrap();
        assert!(
            dir.open_walking(
                Path::new("real/file"),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
                Mode::empty()
            )
            .is_ok()
        );
        assert_eq!(
            dir.open_walking(
                Path::new("link/passwd"),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
                Mode::empty()
            )
            .unwrap_err(),
            Errno::ENOTDIR
        );
        let err = dir.explain(Path::new("link/passwd"), Errno::ENOTDIR);
        assert!(matches!(Refusal::take(err), Ok(Refusal::Symlink { .. })));
    }
}
