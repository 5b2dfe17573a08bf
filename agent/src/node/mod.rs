//! What the agent does about the node's life: the boot stages in order
//! (`stages`) and the policy for what stops them (`pipeline`), the rotated
//! secrets while it runs
//! (`rotation`), its readiness and sync (`readiness`, reading `indexer`,
//! judged by `sync`), the chain watched while it runs (`watch`), the home's
//! keyshares copied to the vault (`vault`), and its short commands through
//! the reaper (`commands`).

pub mod commands;
pub mod indexer;
pub mod pipeline;
pub mod readiness;
pub mod rotation;
mod stages;
pub mod sync;
pub mod vault;
pub mod watch;
