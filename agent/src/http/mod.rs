//! The HTTP side: the agent's state and the one table of its phases, the
//! typed views `/status` and `/config` serve (and `agent doctor` reads), the
//! metrics, and the server that renders them without computing anything.

pub mod admission;
pub mod lifecycle;
pub mod metrics;
pub mod server;
pub mod state;
pub mod views;
