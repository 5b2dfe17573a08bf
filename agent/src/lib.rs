//! The `agent` binary's parts, as the product reads: the commands, what the
//! agent does about the node's life (the boot stages, rotation, readiness),
//! the supervisor of the child, the agent's life itself (its phases, its
//! state, the views and metrics it is shown as), the HTTP server that renders
//! it, the metrics line it writes for CloudWatch (`metric_lines`, in the
//! format of `emf`), and the one way a background loop runs.

pub mod cli;
mod commands;
pub mod emf;
mod every;
mod exit;
mod http;
mod life;
mod logging;
mod memory;
mod metric_lines;
mod node;
mod process;
mod render;
mod supervisor;

// The documents `/status`, `/config`, `agent doctor --json` and `agent keys
// --json` write, for whoever reads them (the tests).
pub use life::views;
// The readers of what others send, for the fuzz targets (fuzz/).
pub use commands::doctor::remote_config;
pub use node::indexer::read as read_node_metrics;
