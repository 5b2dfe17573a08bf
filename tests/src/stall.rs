//! A filesystem that never answers, the stand-in for an EFS that has gone
//! away under an NFS hard mount: a FUSE mount whose server never reads its
//! requests. Every call into it (a stat of the mount point, an open, a
//! statfs) waits in the kernel for an answer that does not come, exactly as
//! an NFS call waits for its server; and as on NFS, a fatal signal still ends
//! the waiting thread's process. Closing the FUSE descriptor (the drop) ends
//! every wait with ENOTCONN, then the mount is detached.
//!
//! Mounting needs root and `/dev/fuse`; without them the constructor says so
//! and returns `None`, and the test passes saying it was skipped.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub struct StalledMount {
    /// The server's end of the mount: never read, closed first on drop.
    fuse: Option<File>,
    pub at: PathBuf,
    _dir: tempfile::TempDir,
}

impl StalledMount {
    pub fn new() -> Option<StalledMount> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("home");
        std::fs::create_dir(&at).unwrap();
        // Close-on-exec (the standard library's default): the agent never holds it.
        let fuse = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
        {
            Ok(file) => file,
            Err(e) => {
                crate::skipped(format!("cannot open /dev/fuse for a stalled mount: {e}"));
                return None;
            }
        };
        let options = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fuse.as_raw_fd()
        ))
        .unwrap();
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        // SAFETY: every pointer is a NUL-terminated string alive across the call.
        let mounted = unsafe {
            libc::mount(
                c"stalled".as_ptr(),
                target.as_ptr(),
                c"fuse.stalled".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if mounted != 0 {
            crate::skipped(format!(
                "mounting a FUSE filesystem is not permitted here: {}",
                std::io::Error::last_os_error()
            ));
            return None;
        }
        Some(StalledMount {
            fuse: Some(fuse),
            at,
            _dir: dir,
        })
    }
}

impl Drop for StalledMount {
    fn drop(&mut self) {
        drop(self.fuse.take());
        let target = CString::new(self.at.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path alive across the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}
