//! Where the home is: the filesystem under `MPC_HOME_DIR` and the mount it is
//! on, whether it outlives the task, free space, owner and mode, and whether a
//! write really lands.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use nix::sys::statvfs::FsFlags;
use serde::Serialize;
use serde_json::json;

use super::HomeError;
use super::owner::NodeUser;
use crate::check::Check;
use crate::config::HomeSettings;

/// What the write probe writes.
pub const PROBE_BYTES: usize = 4096;

/// What a filesystem means for the node's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsKind {
    /// NFS, which is what EFS is: outlives the task, shared between hosts.
    Nfs,
    /// Another network filesystem (SMB, Ceph): outlives the task.
    Network,
    /// A disk of this host (ext4, xfs, btrfs…): outlives the task, not a move to another host.
    LocalDisk,
    /// tmpfs or ramfs: gone when the task stops.
    Memory,
    /// The container's own writable layer (overlay, aufs): gone with the container.
    ContainerLayer,
    /// proc, sysfs, a read-only image (squashfs)…: not a place for state.
    NotStorage,
    /// A type this table does not know (FUSE, …).
    Unknown,
}

/// A filesystem type as `statfs(2)` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FsType {
    pub kind: FsKind,
    /// The kernel's name for the magic number (`nfs`, `tmpfs`, `overlay`…), or the number in hex.
    pub name: String,
    pub magic: u32,
}

/// Maps a `statfs` `f_type` magic number (linux/magic.h) to what it means for the home.
pub fn fs_type(magic: u32) -> FsType {
    let (kind, name) = match magic {
        0x6969 => (FsKind::Nfs, "nfs"),
        0xFE53_4D42 => (FsKind::Network, "smb2"),
        0xFF53_4D42 => (FsKind::Network, "cifs"),
        0x00C3_6400 => (FsKind::Network, "ceph"),
        0xEF53 => (FsKind::LocalDisk, "ext4"),
        0x5846_5342 => (FsKind::LocalDisk, "xfs"),
        0x9123_683E => (FsKind::LocalDisk, "btrfs"),
        0x2FC1_2FC1 => (FsKind::LocalDisk, "zfs"),
        0xF2F5_2010 => (FsKind::LocalDisk, "f2fs"),
        0x0102_1994 => (FsKind::Memory, "tmpfs"),
        0x8584_58F6 => (FsKind::Memory, "ramfs"),
        0x794C_7630 => (FsKind::ContainerLayer, "overlay"),
        0x6175_6673 => (FsKind::ContainerLayer, "aufs"),
        0x9FA0 => (FsKind::NotStorage, "proc"),
        0x6265_6572 => (FsKind::NotStorage, "sysfs"),
        0x7371_7368 => (FsKind::NotStorage, "squashfs"),
        0x6367_7270 => (FsKind::NotStorage, "cgroup2"),
        0x1CD1 => (FsKind::NotStorage, "devpts"),
        0x6573_5546 => (FsKind::Unknown, "fuse"),
        _ => {
            return FsType {
                kind: FsKind::Unknown,
                name: format!("{magic:#x}"),
                magic,
            };
        }
    };
    FsType {
        kind,
        name: name.to_string(),
        magic,
    }
}

/// One line of `/proc/self/mountinfo`: the mount a path is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The line as the kernel wrote it.
    pub line: String,
    pub mount_point: PathBuf,
    /// `nfs4`, `tmpfs`, `overlay`, `ext4`…
    pub fs_type: String,
    /// `fs-0123.efs.us-east-1.amazonaws.com:/`, `/dev/nvme0n1p1`, `overlay`…
    pub source: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
}

/// The mount `path` is on: the entry of `mountinfo` whose mount point is the
/// longest prefix of `path`; among equals the last one (mounted on top).
pub fn mount_of(path: &Path, mountinfo: &str) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some(mount) = parse_mountinfo_line(line) else {
            continue;
        };
        if !path.starts_with(&mount.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| mount.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(mount);
        }
    }
    best
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let mut rest = after.split(' ');
    let fs_type = rest.next()?;
    let source = rest.next()?;
    Some(Mount {
        line: line.to_string(),
        mount_point: PathBuf::from(unescape(fields.get(4)?)),
        fs_type: fs_type.to_string(),
        source: unescape(source),
        options: fields.get(5)?.to_string(),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(code) = u8::from_str_radix(&digits, 8)
                && digits.len() == 3
            {
                out.push(code as char);
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// What the home is on, read without writing anything.
#[derive(Clone, Debug, Serialize)]
pub struct Filesystem {
    /// `MPC_HOME_DIR` with symlinks resolved.
    pub home: PathBuf,
    pub fs_type: FsType,
    pub mount: Option<Mount>,
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub read_only: bool,
    pub owner_uid: u32,
    pub owner_gid: u32,
    /// Permission bits of the home directory.
    pub mode: u32,
}

/// Looks at the home: `statfs`, `statvfs`, `stat` and the mount table.
pub fn inspect(home: &Path) -> Result<Filesystem, HomeError> {
    let meta = match std::fs::metadata(home) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HomeError::Missing {
                home: home.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(HomeError::Io {
                action: "read",
                path: home.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_dir() {
        return Err(HomeError::NotADirectory {
            home: home.to_path_buf(),
        });
    }
    let canonical = std::fs::canonicalize(home).map_err(HomeError::io("resolve", home))?;
    let statfs = nix::sys::statfs::statfs(&canonical)
        .map_err(|e| HomeError::io("statfs", home)(std::io::Error::from(e)))?;
    let statvfs = nix::sys::statvfs::statvfs(&canonical)
        .map_err(|e| HomeError::io("statvfs", home)(std::io::Error::from(e)))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // f_type is a signed word; magic numbers are 32 bits.
    let magic = statfs.filesystem_type().0 as u64 as u32;
    let fragment = statvfs.fragment_size() as u64;
    Ok(Filesystem {
        mount: mount_of(&canonical, &mountinfo),
        home: canonical,
        fs_type: fs_type(magic),
        free_bytes: statvfs.blocks_available() as u64 * fragment,
        total_bytes: statvfs.blocks() as u64 * fragment,
        read_only: statvfs.flags().contains(FsFlags::ST_RDONLY),
        owner_uid: meta.uid(),
        owner_gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    })
}

const EFS_FIX: &str = "mount an EFS volume at MPC_HOME_DIR (task definition volumes + mountPoints)";

impl Filesystem {
    /// `homes.filesystem`, `homes.free_space` and `homes.owner`.
    pub fn checks(&self, settings: &HomeSettings, user: &NodeUser) -> Vec<Check> {
        vec![
            self.persistence(settings.require_persistent),
            self.free_space(settings.min_free),
            self.ownership(user),
        ]
    }

    fn on(&self) -> String {
        let home = self.home.display();
        match &self.mount {
            Some(m) => format!(
                "MPC_HOME_DIR {home} is on {} {} (mounted at {})",
                m.fs_type,
                m.source,
                m.mount_point.display()
            ),
            None => format!("MPC_HOME_DIR {home} is on {}", self.fs_type.name),
        }
    }

    fn persistence(&self, required: bool) -> Check {
        let id = "homes.filesystem";
        let on = self.on();
        let detail = json!({
            "kind": self.fs_type.kind,
            "type": self.fs_type.name,
            "magic": format!("{:#x}", self.fs_type.magic),
            "mount": self.mount.as_ref().map(|m| &m.line),
        });
        let check = match self.fs_type.kind {
            FsKind::Nfs => Check::ok(id, format!("{on}: NFS (EFS), outlives the task")),
            FsKind::Network => {
                Check::ok(id, format!("{on}: a network filesystem, outlives the task"))
            }
            FsKind::LocalDisk => Check::warn(
                id,
                format!(
                    "{on}: a disk of this host; the state outlives the task but stays behind when the task moves to another host"
                ),
                format!("for Fargate or a service that may move, {EFS_FIX}"),
            ),
            FsKind::Unknown => Check::warn(
                id,
                format!("{on}: cannot tell whether it outlives the task"),
                format!("{EFS_FIX}, or make sure this filesystem keeps the node's state"),
            ),
            kind => {
                let lost = match kind {
                    FsKind::Memory => {
                        "it lives in memory: the keyshares and the chain data are lost when the task stops"
                    }
                    FsKind::ContainerLayer => {
                        "it is the container's own layer: the keyshares and the chain data are lost when the container is replaced"
                    }
                    _ => "it is not a filesystem for state",
                };
                if required {
                    Check::fail(
                        id,
                        format!("{on}; {lost}"),
                        format!(
                            "{EFS_FIX}, or set AGENT_REQUIRE_PERSISTENT_HOME=false for a throwaway node"
                        ),
                    )
                } else {
                    Check::warn(
                        id,
                        format!("{on}; {lost} (allowed by AGENT_REQUIRE_PERSISTENT_HOME=false)"),
                        format!("{EFS_FIX} before this node holds a keyshare"),
                    )
                }
            }
        };
        check.with_detail(detail)
    }

    fn free_space(&self, min_free: u64) -> Check {
        let id = "homes.free_space";
        let free = ByteSize(self.free_bytes);
        let min = ByteSize(min_free);
        let detail = json!({
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
            "min_free_bytes": min_free,
        });
        let check = if self.free_bytes < min_free {
            Check::fail(
                id,
                format!("only {free} free on MPC_HOME_DIR, below AGENT_MIN_FREE={min}"),
                "free space on the volume or grow it (EFS grows by itself: check that the home is really on EFS), or lower AGENT_MIN_FREE",
            )
        } else if self.free_bytes / 2 < min_free {
            Check::warn(
                id,
                format!("{free} free on MPC_HOME_DIR, less than twice AGENT_MIN_FREE={min}"),
                "free space on the volume or grow it before the node's data fills it",
            )
        } else {
            Check::ok(id, format!("{free} free of {}", ByteSize(self.total_bytes)))
        };
        check.with_detail(detail)
    }

    fn ownership(&self, user: &NodeUser) -> Check {
        let id = "homes.owner";
        let owned = format!(
            "MPC_HOME_DIR is owned by {}:{} with mode {:04o}",
            self.owner_uid, self.owner_gid, self.mode
        );
        let detail = json!({
            "owner_uid": self.owner_uid,
            "owner_gid": self.owner_gid,
            "mode": format!("{:04o}", self.mode),
            "node_user": user,
        });
        let check = if user.can_write(self.owner_uid, self.owner_gid, self.mode) {
            Check::ok(id, format!("{owned}; the node runs as {}", user.describe()))
        } else {
            Check::fail(
                id,
                format!(
                    "{owned}; the node user {} cannot create files in it",
                    user.describe()
                ),
                format!(
                    "give the directory to {}:{} (for an EFS access point, its root directory's owner), or set AGENT_NODE_USER to its owner",
                    user.uid, user.gid
                ),
            )
        };
        check.with_detail(detail)
    }

    /// `homes.writable`: creates, writes, fsyncs and removes a probe file in
    /// the home (skipped for a read-only mount). A probe a kill left behind is
    /// removed by the next agent to take the lock ([`super::scratch::remove_stale`]).
    pub fn probe_writable(&self) -> Check {
        let id = "homes.writable";
        if self.read_only {
            return Check::fail(
                id,
                format!("MPC_HOME_DIR {} is mounted read-only", self.home.display()),
                "mount the volume read-write (mountPoints readOnly: false; for EFS, an IAM policy that allows elasticfilesystem:ClientWrite)",
            );
        }
        let probe = self.home.join(super::scratch::probe_name());
        let attempt = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&probe)?;
            let written = file
                .write_all(&[0u8; PROBE_BYTES])
                .and_then(|()| file.sync_all());
            drop(file);
            // The agent that holds the lock may have swept it already.
            let removed = match std::fs::remove_file(&probe) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            };
            written?;
            removed?;
            super::atomic::sync_dir(&self.home)
        };
        match attempt() {
            Ok(()) => Check::ok(
                id,
                format!(
                    "a write to {} landed (write, fsync, unlink)",
                    self.home.display()
                ),
            ),
            Err(e) => {
                let fix = match e.raw_os_error() {
                    Some(libc::EROFS) => {
                        "mount the volume read-write (mountPoints readOnly: false; for EFS, an IAM policy that allows elasticfilesystem:ClientWrite)"
                    }
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                        "free space on the volume or grow it"
                    }
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        "let the agent write: for EFS with IAM authorization, allow elasticfilesystem:ClientRootAccess and ClientWrite to the task role, or use an access point whose root directory the agent's user owns"
                    }
                    _ => {
                        "check the mount (NFS port 2049 reachable from the task's security group, the EFS mount target in this availability zone)"
                    }
                };
                Check::fail(
                    id,
                    format!("cannot write to MPC_HOME_DIR {}: {e}", self.home.display()),
                    fix,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_map_to_what_they_mean_for_the_home() {
        assert_eq!(fs_type(0x6969).kind, FsKind::Nfs);
        assert_eq!(fs_type(0x6969).name, "nfs");
        assert_eq!(fs_type(0x0102_1994).kind, FsKind::Memory);
        assert_eq!(fs_type(0x794C_7630).kind, FsKind::ContainerLayer);
        assert_eq!(fs_type(0xEF53).kind, FsKind::LocalDisk);
        assert_eq!(fs_type(0xFF53_4D42).kind, FsKind::Network);
        assert_eq!(fs_type(0x9FA0).kind, FsKind::NotStorage);
        let odd = fs_type(0x1234_5678);
        assert_eq!(
            (odd.kind, odd.name.as_str()),
            (FsKind::Unknown, "0x12345678")
        );
    }

    const MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u
42 27 0:50 / /data rw,relatime shared:1 - nfs4 fs-0123.efs.us-east-1.amazonaws.com:/ rw,vers=4.1,hard
43 27 0:51 / /data/my\\040home rw - tmpfs tmpfs rw,size=1024k
44 27 0:52 / /data rw,relatime - nfs4 fs-4567.efs.us-east-1.amazonaws.com:/ rw,vers=4.1
";

    #[test]
    fn the_mount_is_the_longest_prefix_and_the_last_one_on_top() {
        let m = mount_of(Path::new("/data/mpc"), MOUNTINFO).unwrap();
        assert_eq!(m.fs_type, "nfs4");
        assert_eq!(m.source, "fs-4567.efs.us-east-1.amazonaws.com:/");
        assert!(m.line.starts_with("44 27"));
        let root = mount_of(Path::new("/app"), MOUNTINFO).unwrap();
        assert_eq!(root.fs_type, "overlay");
        let spaced = mount_of(Path::new("/data/my home/x"), MOUNTINFO).unwrap();
        assert_eq!(spaced.fs_type, "tmpfs");
        assert_eq!(spaced.mount_point, PathBuf::from("/data/my home"));
        // `/database` is not under `/data`.
        assert_eq!(
            mount_of(Path::new("/database"), MOUNTINFO).unwrap().fs_type,
            "overlay"
        );
    }

    fn on(kind_magic: u32, free: u64) -> Filesystem {
        Filesystem {
            home: PathBuf::from("/data"),
            fs_type: fs_type(kind_magic),
            mount: mount_of(Path::new("/data"), MOUNTINFO),
            free_bytes: free,
            total_bytes: free * 2,
            read_only: false,
            owner_uid: 1000,
            owner_gid: 1000,
            mode: 0o755,
        }
    }

    fn settings(require_persistent: bool) -> HomeSettings {
        HomeSettings {
            require_persistent,
            min_free: 10 << 30,
            lock_wait: None,
            io_timeout: std::time::Duration::from_secs(60),
            start_mode: crate::config::StartMode::Auto,
            secrets_json: crate::config::SecretsJsonPolicy::Reconcile,
            node_user: None,
            localnet_genesis: PathBuf::from("/app/localnet-genesis.json"),
            generate_store_key: false,
            generate_backup_key: false,
            nearcore_rpc_addr: None,
            nearcore_network_addr: None,
        }
    }

    fn user(uid: u32) -> NodeUser {
        NodeUser {
            name: None,
            uid,
            gid: uid,
            source: super::super::owner::UserSource::HomeOwner,
        }
    }

    #[test]
    fn nfs_with_room_and_the_right_owner_passes() {
        let checks = on(0x6969, 100 << 30).checks(&settings(true), &user(1000));
        assert!(
            checks.iter().all(|c| c.status == crate::check::Status::Ok),
            "{checks:?}"
        );
        assert!(
            checks[0].cause.contains("nfs4 fs-4567"),
            "{}",
            checks[0].cause
        );
    }

    #[test]
    fn the_verdicts_follow_kind_space_and_owner() {
        use crate::check::Status::*;
        let tmpfs = on(0x0102_1994, 100 << 30);
        assert_eq!(tmpfs.checks(&settings(true), &user(0))[0].status, Fail);
        assert_eq!(tmpfs.checks(&settings(false), &user(0))[0].status, Warn);
        assert_eq!(
            on(0xEF53, 100 << 30).checks(&settings(true), &user(0))[0].status,
            Warn
        );
        assert_eq!(
            on(0x6969, 5 << 30).checks(&settings(true), &user(0))[1].status,
            Fail
        );
        assert_eq!(
            on(0x6969, 15 << 30).checks(&settings(true), &user(0))[1].status,
            Warn
        );
        let stranger = on(0x6969, 100 << 30).checks(&settings(true), &user(2000));
        assert_eq!(stranger[2].status, Fail);
        assert!(stranger[2].fix.as_deref().unwrap().contains("2000:2000"));
    }
}
