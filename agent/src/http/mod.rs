//! The HTTP side: the server that renders the agent's state (`/health`,
//! `/ready`, `/status`, `/metrics`, `/config`) without computing anything, and
//! the admission of its connections.

pub mod admission;
pub mod server;
