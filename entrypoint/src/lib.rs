//! Everything that must be true before mpc-node starts, one module per stage:
//! `config` → `secrets` → `keys` → `homes` → `launch`, each taking the typed
//! output of the one before (`Config` → `NodeSecrets` → `KeyReport` →
//! `NodeHome` → `LaunchPlan`), and `verify`, the one judgment of the keys that
//! boot, rotation and `agent doctor` share; `restore`, the one judgment of a
//! keyshare backup that the restore, its drill and the boot share. No process supervision and no HTTP
//! server here; the `agent` binary runs these stages and reports them.

pub mod aws_answer;
pub mod chain;
pub mod check;
pub mod clients;
pub mod config;
pub mod excerpt;
pub mod homes;
pub mod keys;
pub mod keyshare;
pub mod launch;
pub mod node_binary;
pub mod placement;
pub mod probe;
pub mod restore;
pub mod secrets;
pub mod stage;
pub mod vault;
pub mod verify;
