//! The `secrets` stage: fetch the node's secrets, validate them fail-closed,
//! and keep them in types that cannot leak.

mod secret;

pub use secret::{NodeKey, Secret};
