//! The `keys` stage: ask NEAR RPC what the chain holds for the node's account
//! and the signer contract, and judge the node's public keys against it.

mod access;
mod contract;

pub use access::{KeyFit, NEWER_NODE_METHODS, NODE_METHODS, describe};
pub use contract::{ContractState, Participant, ParticipantSet, Standing, StateError};
