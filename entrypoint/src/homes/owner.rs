//! Who the node runs as (`AGENT_NODE_USER`, else the owner of the home), and
//! giving every file and directory the agent writes on the home to that user.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, fstat};
use nix::unistd::{Gid, Uid, User, fchown, fchownat};
use serde::Serialize;

use super::HomeError;
use super::beneath::{self, Dir};
use crate::config::UserSpec;

/// The user the node runs as. The integrator starts the child with these ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeUser {
    /// The passwd name, when the image knows the uid.
    pub name: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub source: UserSource,
}

/// Where the node user came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserSource {
    /// `AGENT_NODE_USER`.
    Setting,
    /// The owner of `MPC_HOME_DIR`.
    HomeOwner,
}

impl NodeUser {
    /// Resolves `spec` against the image's passwd database; without a spec,
    /// the user that owns `home`.
    pub fn resolve(spec: Option<&UserSpec>, home: &Path) -> Result<NodeUser, HomeError> {
        let lookup = |uid: u32| {
            User::from_uid(Uid::from_raw(uid))
                .map_err(|e| HomeError::UnknownUser {
                    spec: uid.to_string(),
                    reason: format!("the passwd lookup failed: {e}"),
                })
                .map(|u| u.map(|u| (u.name, u.gid.as_raw())))
        };
        match spec {
            None => {
                let meta =
                    std::fs::metadata(home).map_err(HomeError::io("read the owner of", home))?;
                Ok(NodeUser {
                    name: lookup(meta.uid())?.map(|(name, _)| name),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    source: UserSource::HomeOwner,
                })
            }
            Some(UserSpec::Name(name)) => match User::from_name(name) {
                Ok(Some(user)) => Ok(NodeUser {
                    name: Some(user.name),
                    uid: user.uid.as_raw(),
                    gid: user.gid.as_raw(),
                    source: UserSource::Setting,
                }),
                Ok(None) => Err(HomeError::UnknownUser {
                    spec: name.clone(),
                    reason: "the image's /etc/passwd has no such user".to_string(),
                }),
                Err(e) => Err(HomeError::UnknownUser {
                    spec: name.clone(),
                    reason: format!("the passwd lookup failed: {e}"),
                }),
            },
            Some(UserSpec::Ids {
                uid,
                gid: Some(gid),
            }) => Ok(NodeUser {
                name: lookup(*uid)?.map(|(name, _)| name),
                uid: *uid,
                gid: *gid,
                source: UserSource::Setting,
            }),
            Some(UserSpec::Ids { uid, gid: None }) => match lookup(*uid)? {
                Some((name, gid)) => Ok(NodeUser {
                    name: Some(name),
                    uid: *uid,
                    gid,
                    source: UserSource::Setting,
                }),
                None => Err(HomeError::UnknownUser {
                    spec: uid.to_string(),
                    reason:
                        "the image's /etc/passwd has no entry for this uid, so its group is unknown"
                            .to_string(),
                }),
            },
        }
    }

    /// `mpc (1000:1000)` or `1000:1000`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({}:{})", self.uid, self.gid),
            None => format!("{}:{}", self.uid, self.gid),
        }
    }

    /// Whether this user may create files in a directory with these owner ids and mode.
    pub fn can_write(&self, owner_uid: u32, owner_gid: u32, mode: u32) -> bool {
        self.uid == 0
            || (self.uid == owner_uid && mode & 0o200 != 0)
            || (self.gid == owner_gid && mode & 0o020 != 0)
            || mode & 0o002 != 0
    }

    /// Gives an open file or directory to this user, when the agent runs as
    /// root and the file is not already theirs (a no-op otherwise).
    pub(crate) fn own(&self, file: &File) -> io::Result<()> {
        self.own_fd(file, &fstat(file)?)
    }

    /// [`NodeUser::own`] for an fd whose `fstat` is `stat`.
    pub(crate) fn own_fd(&self, fd: &impl AsFd, stat: &FileStat) -> io::Result<()> {
        if !Uid::effective().is_root() || (stat.st_uid == self.uid && stat.st_gid == self.gid) {
            return Ok(());
        }
        Ok(fchown(
            fd.as_fd(),
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )?)
    }

    /// [`NodeUser::own`] for `rel` below `root` and everything below it:
    /// directories are walked by fd (each opened without following a link),
    /// every other entry is changed with `fchownat(AT_SYMLINK_NOFOLLOW)`, so
    /// a name swapped for a link mid-walk gives the link, never its target.
    pub(crate) fn own_tree(&self, root: &Path, rel: &Path) -> io::Result<()> {
        let root = Dir::open(root)?;
        let dir = root
            .dir(rel)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.own_dir(&dir)
    }

    fn own_dir(&self, dir: &Dir) -> io::Result<()> {
        self.own_fd(dir, &fstat(dir)?)?;
        if !Uid::effective().is_root() {
            return Ok(());
        }
        for (name, stat) in dir.entries()? {
            if beneath::is_dir(&stat) {
                match dir.dir(Path::new(&name))? {
                    Some(below) => self.own_dir(&below)?,
                    None => continue,
                }
            } else if stat.st_uid != self.uid || stat.st_gid != self.gid {
                fchownat(
                    dir,
                    name.as_os_str(),
                    Some(Uid::from_raw(self.uid)),
                    Some(Gid::from_raw(self.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32) -> NodeUser {
        NodeUser {
            name: None,
            uid,
            gid,
            source: UserSource::Setting,
        }
    }

    #[test]
    fn write_access_follows_owner_group_and_other_bits() {
        assert!(user(0, 0).can_write(1000, 1000, 0o500));
        assert!(user(1000, 5).can_write(1000, 1000, 0o755));
        assert!(!user(1000, 5).can_write(1000, 1000, 0o555));
        assert!(user(2000, 1000).can_write(1000, 1000, 0o775));
        assert!(!user(2000, 1000).can_write(1000, 1000, 0o755));
        assert!(user(2000, 2000).can_write(1000, 1000, 0o777));
    }

    #[test]
    fn root_resolves_by_name_and_by_uid() {
        let by_name =
            NodeUser::resolve(Some(&UserSpec::Name("root".into())), Path::new("/")).unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        let by_uid =
            NodeUser::resolve(Some(&UserSpec::Ids { uid: 0, gid: None }), Path::new("/")).unwrap();
        assert_eq!(by_uid.name.as_deref(), Some("root"));
        assert!(
            NodeUser::resolve(
                Some(&UserSpec::Name("no-such-user-here".into())),
                Path::new("/")
            )
            .is_err()
        );
    }
}
