//! Filesystems mounted for one test (tmpfs, read-only binds), unmounted when
//! dropped. Mounting needs root; without it the constructor says so and
//! returns `None`, and the test that needed it passes saying it was skipped.

use std::path::PathBuf;
use std::process::Command;

/// A filesystem mounted for one test, unmounted when dropped.
pub struct Mounted {
    /// The directory the mount point lives in, when the mount made it.
    _dir: Option<tempfile::TempDir>,
    pub at: PathBuf,
}

impl Mounted {
    pub fn new(args: &[&str]) -> Option<Mounted> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("home");
        std::fs::create_dir(&at).unwrap();
        Self::at(Some(dir), at, args)
    }

    /// Mounts over an existing directory (what was in it is hidden until the drop).
    pub fn over(at: &std::path::Path, args: &[&str]) -> Option<Mounted> {
        Self::at(None, at.to_path_buf(), args)
    }

    pub fn tmpfs(size: &str) -> Option<Mounted> {
        Self::new(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0755"),
            "tmpfs",
        ])
    }

    /// Mounts `args` at `at` (inside `dir`, kept alive with the mount).
    pub fn at(dir: Option<tempfile::TempDir>, at: PathBuf, args: &[&str]) -> Option<Mounted> {
        let out = Command::new("mount").args(args).arg(&at).output();
        match out {
            Ok(out) if out.status.success() => Some(Mounted { _dir: dir, at }),
            Ok(out) => {
                crate::skipped(format!(
                    "mount {args:?} is not permitted here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                None
            }
            Err(e) => {
                crate::skipped(format!("cannot run mount: {e}"));
                None
            }
        }
    }

    pub fn remount(&self, options: &str) -> bool {
        Command::new("mount")
            .args(["-o", options])
            .arg(&self.at)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}
