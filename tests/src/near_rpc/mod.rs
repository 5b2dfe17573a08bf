//! A NEAR JSON-RPC node stand-in on loopback whose answers are built from
//! nearcore's own types (`near-primitives` views, `near-jsonrpc-primitives`
//! requests, responses and errors), so it cannot serve a shape a real node
//! would not. The chain it describes is a [`Scenario`], replaceable while it
//! runs (from the test via [`NearRpcStandin::set_scenario`], or from another
//! process via `PUT /control/scenario`).

mod methods;
mod scenario;
mod server;

pub use scenario::{
    Account, AllowedMpcDockerImageHash, BackupServiceInfo, ContractViews, DestinationNodeInfo,
    ErrorForm, Fault, Key, NodeId, ParticipantInfo, Scenario,
};
pub use server::{NearRpcStandin, ReceivedRequest};

use near_primitives::hash::{CryptoHash, hash};

/// The stand-in's block hash at `height`: stable, and distinct per height.
pub fn block_hash(height: u64) -> CryptoHash {
    hash(&height.to_le_bytes())
}
