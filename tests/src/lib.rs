pub mod near_rpc;
