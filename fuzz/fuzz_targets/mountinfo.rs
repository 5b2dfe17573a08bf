//! `/proc/self/mountinfo` and the home's path: the first line is the path,
//! the rest the table.
#![no_main]

use std::path::Path;

use entrypoint::homes::filesystem::mount_of;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, table) = text.split_once('\n').unwrap_or(("/data", text));
    if let Some(mount) = mount_of(Path::new(path), table) {
        assert!(
            Path::new(path).starts_with(&mount.mount_point),
            "{path:?} is not under the mount found, {:?}",
            mount.mount_point
        );
    }
});
