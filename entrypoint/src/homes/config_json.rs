//! `config.json` (nearcore's config in the near home): the edits start.sh
//! makes on every boot, as JSON edits that keep every other field and the key
//! order, written only when a value changes.

use std::net::SocketAddr;
use std::path::Path;

use near_primitives::types::AccountId;
use serde_json::{Map, Value, json};

use super::atomic::{self, Previous};
use super::beneath;
use super::owner::NodeUser;
use super::{Edit, FileUpdate, HomeError};

const FILE: &str = "config.json";
use crate::config::{Chain, HomeSettings, Node};

/// What the edits depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearConfigInputs {
    pub chain: Chain,
    pub contract_id: AccountId,
    pub tier3_public_addr: Option<SocketAddr>,
    /// `AGENT_NEARCORE_RPC_ADDR`, `AGENT_NEARCORE_NETWORK_ADDR`.
    pub rpc_addr: Option<SocketAddr>,
    pub network_addr: Option<SocketAddr>,
}

impl NearConfigInputs {
    pub fn new(node: &Node, homes: &HomeSettings) -> NearConfigInputs {
        NearConfigInputs {
            chain: node.chain,
            contract_id: node.contract_id.clone(),
            tier3_public_addr: node.tier3_public_addr,
            rpc_addr: homes.nearcore_rpc_addr,
            network_addr: homes.nearcore_network_addr,
        }
    }
}

/// Applies upstream's edits to a parsed `config.json`; returns the values that changed.
/// - `store.load_mem_tries_for_tracked_shards = true`;
/// - `tracked_shards_config = {"Accounts": [contract]}`;
/// - mpc-localnet: `state_sync_enabled = false`; other chains: `state_sync.sync = "Peers"`,
///   keeping the other fields of `state_sync`;
/// - `rpc.addr` and `network.addr` when `AGENT_NEARCORE_RPC_ADDR` and
///   `AGENT_NEARCORE_NETWORK_ADDR` are set (upstream sets them at a fresh init
///   only; as the agent's own settings they hold on every boot, so that a
///   changed setting takes effect);
/// - `network.experimental.tier3_public_addr` when `MPC_TIER3_PUBLIC_ADDR` is set.
///
/// Missing objects on the way are created (start.sh would stop with a KeyError).
pub fn patch(config: &mut Map<String, Value>, inputs: &NearConfigInputs) -> Vec<Edit> {
    let mut edits = Vec::new();
    set(
        config,
        &["store", "load_mem_tries_for_tracked_shards"],
        json!(true),
        &mut edits,
    );
    set(
        config,
        &["tracked_shards_config"],
        json!({ "Accounts": [inputs.contract_id.as_str()] }),
        &mut edits,
    );
    if inputs.chain == Chain::Localnet {
        set(config, &["state_sync_enabled"], json!(false), &mut edits);
    } else {
        set(config, &["state_sync", "sync"], json!("Peers"), &mut edits);
    }
    let addresses: [(&[&str], Option<SocketAddr>); 3] = [
        (&["rpc", "addr"], inputs.rpc_addr),
        (&["network", "addr"], inputs.network_addr),
        (
            &["network", "experimental", "tier3_public_addr"],
            inputs.tier3_public_addr,
        ),
    ];
    for (path, addr) in addresses {
        if let Some(addr) = addr {
            set(config, path, json!(addr.to_string()), &mut edits);
        }
    }
    edits
}

/// Sets `path` to `value`, creating objects on the way (a non-object in the
/// way is replaced by one); records the edit when the value changes.
fn set(map: &mut Map<String, Value>, path: &[&str], value: Value, edits: &mut Vec<Edit>) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut here = map;
    for (depth, key) in parents.iter().enumerate() {
        let slot = here
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            edits.push(Edit::new(
                path_of(&path[..=depth]),
                Some(slot.clone()),
                json!({}),
            ));
            *slot = Value::Object(Map::new());
        }
        here = slot.as_object_mut().expect("made an object above");
    }
    let old = here.get(*last);
    if old != Some(&value) {
        edits.push(Edit::new(path_of(path), old.cloned(), value.clone()));
        here.insert(last.to_string(), value);
    }
}

fn path_of(path: &[&str]) -> String {
    path.join(".")
}

/// nearcore's caps on block-paced messages, lifted: more than any localnet sends.
const UNLIMITED: u32 = 1_000_000;

/// The edits upstream makes once, right after a fresh init
/// (`apply_near_config_patches`), and no later boot repeats: on mpc-localnet,
/// nearcore's caps on received `Block`, `OptimisticBlock` and `BlockRequest`
/// messages lifted. They are sized for mainnet block times; a sped-up
/// localnet outruns them, a follower drops blocks and catches up at the cap.
pub fn patch_fresh_init(config: &mut Map<String, Value>, chain: Chain) -> Vec<Edit> {
    let mut edits = Vec::new();
    if chain == Chain::Localnet {
        let unlimited = json!({
            "maximum_size": UNLIMITED,
            "refill_rate": UNLIMITED,
            "initial_size": UNLIMITED,
        });
        set(
            config,
            &[
                "network",
                "experimental",
                "network_config_overrides",
                "received_messages_rate_limits",
            ],
            json!({ "rate_limits": {
                "Block": unlimited,
                "OptimisticBlock": unlimited,
                "BlockRequest": unlimited,
            } }),
            &mut edits,
        );
    }
    edits
}

/// Applies [`patch_fresh_init`] to the config.json a fresh init staged at
/// `rel` below `home`, before it moves into the home: the file is the init's
/// own, so no backup is kept of it.
pub fn update_staged_config_json(
    home: &Path,
    rel: &Path,
    chain: Chain,
    user: &NodeUser,
) -> Result<Vec<Edit>, HomeError> {
    let path = home.join(rel);
    let mut config = read_existing(home, rel)?;
    let edits = patch_fresh_init(&mut config, chain);
    if !edits.is_empty() {
        let text = serde_json::to_string_pretty(&Value::Object(config)).expect("JSON serializes");
        atomic::write_file(home, rel, text.as_bytes(), 0o644, Previous::Discard, user)
            .map_err(HomeError::io("write", &path))?;
    }
    Ok(edits)
}

/// The config.json at `rel` below `home`, which must be there.
fn read_existing(home: &Path, rel: &Path) -> Result<Map<String, Value>, HomeError> {
    read(home, rel)?.ok_or_else(|| {
        HomeError::io("read", &home.join(rel))(std::io::Error::from(std::io::ErrorKind::NotFound))
    })
}

/// The config.json at `rel` below `home`; `None` when there is none.
fn read(home: &Path, rel: &Path) -> Result<Option<Map<String, Value>>, HomeError> {
    let path = &home.join(rel);
    let Some(bytes) = beneath::read_file(home, rel).map_err(HomeError::io("read", path))? else {
        return Ok(None);
    };
    let unparsable = |reason: String| HomeError::Unparsable {
        path: path.to_path_buf(),
        reason,
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(unparsable("not a JSON object".to_string())),
        Err(e) => Err(unparsable(format!("not JSON: {e}"))),
    }
}

/// The edits the next boot would make to `<home>/config.json`, without
/// writing; `None` when there is no config.json yet (the first init makes it).
pub fn pending_config_json(
    home: &Path,
    inputs: &NearConfigInputs,
) -> Result<Option<Vec<Edit>>, HomeError> {
    Ok(read(home, Path::new(FILE))?.map(|mut config| patch(&mut config, inputs)))
}

/// Patches `<home>/config.json` in place of start.sh's inline Python: a
/// backup when it changes, no write when nothing changes.
pub fn update_config_json(
    home: &Path,
    inputs: &NearConfigInputs,
    user: &NodeUser,
) -> Result<FileUpdate, HomeError> {
    let path = home.join(FILE);
    let mut config = read_existing(home, Path::new(FILE))?;
    let edits = patch(&mut config, inputs);
    let written = if edits.is_empty() {
        atomic::Written::Unchanged
    } else {
        let text = serde_json::to_string_pretty(&Value::Object(config)).expect("JSON serializes");
        atomic::write_file(
            home,
            Path::new(FILE),
            text.as_bytes(),
            0o644,
            Previous::Backup,
            user,
        )
        .map_err(HomeError::io("write", &path))?
    };
    Ok(FileUpdate {
        path,
        written,
        edits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(chain: Chain, tier3: Option<&str>) -> NearConfigInputs {
        NearConfigInputs {
            chain,
            contract_id: "v1.signer-prod.testnet".parse().unwrap(),
            tier3_public_addr: tier3.map(|a| a.parse().unwrap()),
            rpc_addr: None,
            network_addr: None,
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn testnet_edits_keep_siblings_and_order() {
        let mut config = object(json!({
            "genesis_file": "genesis.json",
            "store": {"path": null, "load_mem_tries_for_tracked_shards": false, "max_open_files": 10000},
            "state_sync": {"dump": null, "sync": {"ExternalStorage": {"location": {}}}},
            "tracked_shards_config": "NoShards",
            "zeta": 1
        }));
        let edits = patch(
            &mut config,
            &inputs(Chain::Testnet, Some("203.0.113.5:24567")),
        );
        let paths: Vec<&str> = edits.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "store.load_mem_tries_for_tracked_shards",
                "tracked_shards_config",
                "state_sync.sync",
                "network.experimental.tier3_public_addr"
            ]
        );
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(
            text,
            r#"{"genesis_file":"genesis.json","store":{"path":null,"load_mem_tries_for_tracked_shards":true,"max_open_files":10000},"state_sync":{"dump":null,"sync":"Peers"},"tracked_shards_config":{"Accounts":["v1.signer-prod.testnet"]},"zeta":1,"network":{"experimental":{"tier3_public_addr":"203.0.113.5:24567"}}}"#
        );
        assert!(
            patch(
                &mut config,
                &inputs(Chain::Testnet, Some("203.0.113.5:24567"))
            )
            .is_empty()
        );
    }

    #[test]
    fn localnet_turns_state_sync_off_and_creates_what_is_missing() {
        let mut config = object(json!({"state_sync": null}));
        patch(&mut config, &inputs(Chain::Localnet, None));
        assert_eq!(config["state_sync_enabled"], json!(false));
        assert_eq!(config["state_sync"], json!(null), "left alone on localnet");
        assert_eq!(
            config["store"],
            json!({"load_mem_tries_for_tracked_shards": true})
        );
        assert!(!config.contains_key("network"));
    }

    #[test]
    fn a_non_object_in_the_way_is_replaced_and_reported() {
        let mut config = object(json!({"state_sync": null}));
        let edits = patch(&mut config, &inputs(Chain::Mainnet, None));
        assert_eq!(config["state_sync"], json!({"sync": "Peers"}));
        assert!(
            edits
                .iter()
                .any(|e| e.path == "state_sync" && e.from == Some(json!(null)))
        );
        assert!(
            edits
                .iter()
                .any(|e| e.path == "state_sync.sync" && e.from.is_none())
        );
    }

    #[test]
    fn configured_listen_addresses_are_set_beside_the_network_siblings() {
        let mut config = object(
            json!({"rpc": {"addr": "0.0.0.0:3030", "cors_allowed_origins": ["*"]}, "network": {"addr": "0.0.0.0:24567", "boot_nodes": ""}}),
        );
        let mut with_addresses = inputs(Chain::Mainnet, None);
        with_addresses.rpc_addr = Some("0.0.0.0:3031".parse().unwrap());
        with_addresses.network_addr = Some("0.0.0.0:24568".parse().unwrap());
        let edits = patch(&mut config, &with_addresses);
        assert!(edits.iter().any(|e| e.path == "rpc.addr"));
        assert!(edits.iter().any(|e| e.path == "network.addr"));
        assert_eq!(
            config["rpc"],
            json!({"addr": "0.0.0.0:3031", "cors_allowed_origins": ["*"]})
        );
        assert_eq!(
            config["network"],
            json!({"addr": "0.0.0.0:24568", "boot_nodes": ""})
        );
        let unset = patch(&mut config, &inputs(Chain::Mainnet, None));
        assert!(
            !unset.iter().any(|e| e.path.ends_with(".addr")),
            "unset leaves them"
        );
    }

    #[test]
    fn a_fresh_localnet_init_lifts_the_block_message_caps_and_other_chains_keep_them() {
        let mut config = object(
            json!({"network": {"experimental": {"network_config_overrides": {"connect_to_reliable_peers_on_startup": true}}}}),
        );
        let edits = patch_fresh_init(&mut config, Chain::Localnet);
        assert_eq!(edits.len(), 1);
        let overrides = &config["network"]["experimental"]["network_config_overrides"];
        assert_eq!(
            overrides["connect_to_reliable_peers_on_startup"],
            json!(true)
        );
        for kind in ["Block", "OptimisticBlock", "BlockRequest"] {
            assert_eq!(
                overrides["received_messages_rate_limits"]["rate_limits"][kind]["refill_rate"],
                json!(1_000_000)
            );
        }
        assert!(patch_fresh_init(&mut config, Chain::Localnet).is_empty());
        assert!(patch_fresh_init(&mut object(json!({})), Chain::Testnet).is_empty());
    }
}
