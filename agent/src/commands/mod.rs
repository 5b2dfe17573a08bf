//! One module per command: `run` (the ENTRYPOINT), `init`, `keys`, `doctor`,
//! `exec` (any command under the agent as PID 1), `health` (the HEALTHCHECK
//! client), `status` (the sync's progress in a terminal), `vault` (restore
//! and its drill) and `config`.

pub mod config;
pub mod doctor;
pub mod exec;
pub mod health;
pub mod init;
pub mod keys;
pub mod run;
pub mod status;
pub mod vault;
