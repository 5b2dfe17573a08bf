//! Which NEAR chain the node joins (`MPC_ENV`): its name and its public RPC.
//! Several stages read it (the secrets' rules, the keys against the chain,
//! the home's init), so it stands below all of them.

use serde::{Deserialize, Serialize};

/// Which chain the node joins (`MPC_ENV`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chain {
    #[serde(rename = "mpc-localnet")]
    Localnet,
    #[serde(rename = "testnet")]
    Testnet,
    #[serde(rename = "mainnet")]
    Mainnet,
}

impl Chain {
    pub const NAMES: [&'static str; 3] = ["mpc-localnet", "testnet", "mainnet"];

    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Localnet => "mpc-localnet",
            Chain::Testnet => "testnet",
            Chain::Mainnet => "mainnet",
        }
    }

    /// The public NEAR RPC of this chain; a localnet has none.
    pub fn public_rpc_url(self) -> Option<&'static str> {
        match self {
            Chain::Localnet => None,
            Chain::Testnet => Some("https://rpc.testnet.near.org"),
            Chain::Mainnet => Some("https://rpc.mainnet.near.org"),
        }
    }
}
