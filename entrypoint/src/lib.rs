//! Everything that must be true before mpc-node starts, one module per stage:
//! `config` → `secrets` → `keys` → `homes` → `launch`. No process supervision
//! and no HTTP here; the `agent` binary runs these stages and reports them.

pub mod check;
pub mod config;
pub mod homes;
pub mod keys;
pub mod launch;
pub mod secrets;
