//! The `agent` binary's parts: the command line, the supervisor of the child,
//! the HTTP server and the state they share.

pub mod cli;
mod exec;
mod exit;
mod health;
mod keys;
mod logging;
mod metrics;
mod probe;
mod readiness;
mod render;
mod server;
mod show_config;
mod state;
mod supervisor;
