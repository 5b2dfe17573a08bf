//! The `agent` binary's parts, as the product reads: the commands, what the
//! agent does about the node's life (the boot stages, rotation, readiness),
//! the supervisor of the child, and the HTTP side (the state, its phases, the
//! views served, the metrics).

pub mod cli;
mod commands;
mod exit;
mod http;
mod logging;
mod memory;
mod node;
mod process;
mod render;
mod supervisor;

// The readers of what others send, for the fuzz targets (fuzz/).
pub use commands::doctor::remote_config;
pub use node::indexer::read as read_node_metrics;
