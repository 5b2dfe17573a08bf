//! What the agent does about the node's life: the boot stages as the library
//! orders them, with the policy (`pipeline`), the rotated secrets while it runs
//! (`rotation`), its readiness (`readiness`), and its short commands through
//! the reaper (`commands`).

pub mod commands;
pub mod pipeline;
pub mod readiness;
pub mod rotation;
