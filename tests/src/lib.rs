//! Support for the integration tests: the stand-ins they run (mpc-node, NEAR
//! RPC) and the harness that drives the real `agent` binary.

pub mod docker;
pub mod emf;
pub mod faults;
pub mod harness;
pub mod moto;
pub mod mounts;
pub mod near_rpc;
pub mod node_fixture;
pub mod stall;
pub mod standin_node;
pub mod vault_fixture;
pub mod views;

/// Where the tests that skipped append a line each, when it is set: the
/// variable `scripts/test` sets, so that a run that passes still lists what it
/// could not test (libtest hides the stderr of tests that pass).
pub const SKIPPED_FILE_VAR: &str = "TESTS_SKIPPED_FILE";

/// Says that the running test skips its work and why: `skipped: WHY` on
/// stderr, and `BINARY::TEST: WHY` appended to the file `$TESTS_SKIPPED_FILE`
/// names, if it names one.
pub fn skipped(why: impl std::fmt::Display) {
    use std::io::Write;
    eprintln!("skipped: {why}");
    let Some(path) = std::env::var_os(SKIPPED_FILE_VAR).filter(|p| !p.is_empty()) else {
        return;
    };
    // A test binary is named `<target>-<hash>`; libtest names a test's thread after the test.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".into());
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("?")
        .to_string();
    let line = format!("{binary}::{test}: {why}\n");
    // One write of one line to a file opened for appending: lines of tests
    // running at once, in several processes, do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot note the skip in {}: {e}", path.to_string_lossy());
    }
}
