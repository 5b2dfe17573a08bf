//! The agent's own exit codes. Whenever a child ran, the agent exits with the
//! child's code instead (128+n when it died of signal n).

/// `agent health`: the endpoint did not answer 200.
pub const UNHEALTHY: i32 = 1;
/// The command line is malformed (clap's own code).
pub const USAGE: i32 = 2;
/// The agent itself failed (EX_SOFTWARE): a runtime or signal handler could not be set up.
pub const SOFTWARE: i32 = 70;
/// The configuration is invalid or the HTTP address is taken (EX_CONFIG).
pub const CONFIG: i32 = 78;
/// The command exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// The code for an agent told to stop by `signal` before any child ran.
pub fn by_signal(signal: nix::sys::signal::Signal) -> i32 {
    128 + signal as i32
}
