//! The `agent` binary's parts: the command line, the supervisor of the child,
//! the HTTP server and the state they share.

pub mod cli;
mod doctor;
mod exec;
mod exit;
mod health;
mod init;
mod keys;
mod logging;
mod metrics;
mod node_commands;
mod pipeline;
mod process;
mod readiness;
mod render;
mod rotation;
mod run;
mod server;
mod show_config;
mod state;
mod supervisor;
mod views;
