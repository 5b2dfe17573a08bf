//! The agent's own exit codes. Whenever a child ran, the agent exits with the
//! child's code instead (128+n when it died of signal n).

/// `agent health`: the endpoint did not answer 200; `agent vault restore`:
/// nothing restored; `agent vault verify`: the drill failed.
pub const UNHEALTHY: i32 = 1;
/// `agent doctor`: warnings, no failure.
pub const WARNINGS: i32 = 2;
/// The command line is malformed: an unknown flag, a missing or invalid value
/// (EX_USAGE). Distinct from doctor's codes, so a mistyped flag never reads as
/// "warnings only".
pub const USAGE: i32 = 64;
/// `agent init`: no NEAR RPC answered (EX_UNAVAILABLE).
pub const UNAVAILABLE: i32 = 69;
/// The agent itself failed (EX_SOFTWARE): a runtime or signal handler could not be set up.
pub const SOFTWARE: i32 = 70;
/// The home's filesystem did not answer within `AGENT_HOME_IO_TIMEOUT` (EX_IOERR).
pub const IOERR: i32 = 74;
/// Another agent held the home's lock longer than `AGENT_LOCK_WAIT`, or at all
/// for `agent vault restore` (EX_TEMPFAIL).
pub const TEMPFAIL: i32 = 75;
/// The configuration is invalid, the HTTP address is taken, or a check failed
/// under `AGENT_ON_KEY_MISMATCH=exit` (EX_CONFIG).
pub const CONFIG: i32 = 78;
/// The command exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// The code for an agent told to stop by `signal` before any child ran.
pub fn by_signal(signal: nix::sys::signal::Signal) -> i32 {
    128 + signal as i32
}
