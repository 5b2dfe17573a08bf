//! Support for the integration tests: the stand-ins they run (mpc-node, NEAR
//! RPC) and the harness that drives the real `agent` binary.

pub mod docker;
pub mod faults;
pub mod harness;
pub mod json;
pub mod moto;
pub mod mounts;
pub mod near_rpc;
pub mod node_fixture;
pub mod standin_node;
