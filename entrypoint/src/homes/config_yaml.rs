//! `config.yaml` (the MPC node's own config): created with upstream start.sh's
//! defaults when absent; on later boots only the accounts and the contract are
//! set, everything else (operator edits, unknown keys, key order) is kept.
//!
//! The file is handled as a YAML value, so comments do not survive a rewrite.
//! That is acceptable: the node itself rewrites the file, without comments,
//! whenever its parsed form differs from the text (`ConfigFile::from_file`).
//! A YAML tag (`sync_mode: !Block {height: N}`) stays a tag.

use std::path::Path;

use near_primitives::types::AccountId;
use serde_yaml::{Mapping, Value};

use super::atomic::{self, Previous, Written};
use super::beneath;
use super::owner::NodeUser;
use super::{Edit, FileUpdate, HomeError};

const FILE: &str = "config.yaml";
use crate::config::{Chain, Node};

/// What the file depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpcConfigInputs {
    pub chain: Chain,
    pub account_id: AccountId,
    /// `MPC_RESPONDER_ID`, already defaulted to the account by the config stage.
    pub responder_id: AccountId,
    pub contract_id: AccountId,
}

impl MpcConfigInputs {
    pub fn new(node: &Node) -> MpcConfigInputs {
        MpcConfigInputs {
            chain: node.chain,
            account_id: node.account_id.clone(),
            responder_id: node.responder_id.clone(),
            contract_id: node.contract_id.clone(),
        }
    }
}

/// The resulting `config.yaml`, and what was done to the file.
#[derive(Clone, Debug, PartialEq)]
pub struct MpcConfig {
    pub update: FileUpdate,
    /// The content as the node will read it (the `[node]` table of the start file).
    pub config: Value,
}

fn mapping<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Mapping(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// What start.sh (3.14) writes when `config.yaml` is absent, in its order.
pub fn upstream_default(inputs: &MpcConfigInputs) -> Value {
    let mut indexer = vec![
        ("validate_genesis", Value::from(false)),
        ("sync_mode", Value::from("Latest")),
        ("concurrency", Value::from(1)),
        ("mpc_contract_id", Value::from(inputs.contract_id.as_str())),
    ];
    if inputs.chain != Chain::Localnet {
        indexer.push(("port_override", Value::from(80)));
    }
    indexer.push(("finality", Value::from("optimistic")));
    mapping([
        (
            "my_near_account_id",
            Value::from(inputs.account_id.as_str()),
        ),
        (
            "near_responder_account_id",
            Value::from(inputs.responder_id.as_str()),
        ),
        ("number_of_responder_keys", Value::from(50)),
        ("web_ui", Value::from("0.0.0.0:8080")),
        ("migration_web_ui", Value::from("0.0.0.0:8079")),
        ("pprof_bind_address", Value::from("0.0.0.0:34001")),
        (
            "triple",
            mapping([
                ("concurrency", Value::from(2)),
                ("desired_triples_to_buffer", Value::from(16384)),
                ("timeout_sec", Value::from(120)),
                (
                    "parallel_triple_generation_stagger_time_sec",
                    Value::from(1),
                ),
            ]),
        ),
        (
            "presignature",
            mapping([
                ("concurrency", Value::from(16)),
                ("desired_presignatures_to_buffer", Value::from(8192)),
                ("timeout_sec", Value::from(60)),
            ]),
        ),
        ("signature", mapping([("timeout_sec", Value::from(60))])),
        ("ckd", mapping([("timeout_sec", Value::from(60))])),
        ("indexer", mapping(indexer)),
        ("cores", Value::from(12)),
    ])
}

/// The fields of upstream's `ConfigFile` (near/mpc `crates/node-config`)
/// that are externally tagged enums: `indexer.sync_mode` (`Interruption`,
/// `Latest`, `Block(BlockArgs { height })`) and `indexer.finality`
/// (`optimistic`, `near-final`, `final`). mpc-node's YAML parser reads a
/// variant as a YAML tag (`!Block {height: N}`) or, without data, a plain
/// name (`Latest`), and refuses the map form (`{Block: {height: N}}`).
pub const ENUM_FIELDS: [(&str, &str); 2] = [("indexer", "sync_mode"), ("indexer", "finality")];

/// An enum field of config.yaml written in the map form, which mpc-node's
/// YAML parser refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapForm {
    /// `indexer.sync_mode`.
    pub field: String,
    /// The value as written, as one line of JSON (valid YAML flow).
    pub written: String,
    /// The field as it should be written: `sync_mode: !Block {"height":1}`,
    /// or `sync_mode: Latest` for a variant without data.
    pub tag_form: Option<String>,
}

/// The enum fields of `config` in the map form, in [`ENUM_FIELDS`] order.
pub fn map_forms(config: &Value) -> Vec<MapForm> {
    ENUM_FIELDS
        .iter()
        .filter_map(|(section, field)| {
            let Some(Value::Mapping(map)) = config.get(section)?.get(field) else {
                return None;
            };
            let json = |value: &Value| serde_json::to_string(value).unwrap_or_default();
            let tag_form = match map.iter().next() {
                Some((Value::String(variant), Value::Null)) if map.len() == 1 => {
                    Some(format!("{field}: {variant}"))
                }
                Some((Value::String(variant), data)) if map.len() == 1 => {
                    Some(format!("{field}: !{variant} {}", json(data)))
                }
                _ => None,
            };
            Some(MapForm {
                field: format!("{section}.{field}"),
                written: json(&Value::Mapping(map.clone())),
                tag_form,
            })
        })
        .collect()
}

/// Sets the accounts and the contract, as start.sh's `sed` does on every
/// boot; returns the values that changed. `Err` names a part that is not a mapping.
pub fn update(config: &mut Mapping, inputs: &MpcConfigInputs) -> Result<Vec<Edit>, String> {
    let mut edits = Vec::new();
    set(
        config,
        "my_near_account_id",
        inputs.account_id.as_str(),
        "",
        &mut edits,
    );
    set(
        config,
        "near_responder_account_id",
        inputs.responder_id.as_str(),
        "",
        &mut edits,
    );
    let indexer = config
        .entry(Value::from("indexer"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let Value::Mapping(indexer) = indexer else {
        return Err("indexer is not a mapping".to_string());
    };
    set(
        indexer,
        "mpc_contract_id",
        inputs.contract_id.as_str(),
        "indexer.",
        &mut edits,
    );
    Ok(edits)
}

fn set(map: &mut Mapping, key: &str, value: &str, prefix: &str, edits: &mut Vec<Edit>) {
    let new = Value::from(value);
    let old = map.get(key);
    if old != Some(&new) {
        edits.push(Edit::new(
            format!("{prefix}{key}"),
            old.and_then(|v| serde_json::to_value(v).ok()),
            serde_json::Value::from(value),
        ));
        map.insert(Value::from(key), new);
    }
}

/// The edits the next boot would make to `<home>/config.yaml`, without
/// writing; `None` when there is none yet (the boot creates it).
pub fn pending_config_yaml(
    home: &Path,
    inputs: &MpcConfigInputs,
) -> Result<Option<Vec<Edit>>, HomeError> {
    let path = home.join(FILE);
    let Some(mut map) = read(home)? else {
        return Ok(None);
    };
    update(&mut map, inputs)
        .map(Some)
        .map_err(|reason| HomeError::Unparsable { path, reason })
}

/// The content of `<home>/config.yaml`; `None` when there is no such file.
pub fn current(home: &Path) -> Result<Option<Value>, HomeError> {
    Ok(read(home)?.map(Value::Mapping))
}

/// The mapping in `<home>/config.yaml`; `None` when there is no such file.
fn read(home: &Path) -> Result<Option<Mapping>, HomeError> {
    let path = &home.join(FILE);
    let Some(bytes) =
        beneath::read_file(home, Path::new(FILE)).map_err(HomeError::io("read", path))?
    else {
        return Ok(None);
    };
    let unparsable = |reason: String| HomeError::Unparsable {
        path: path.to_path_buf(),
        reason,
    };
    match serde_yaml::from_slice::<Value>(&bytes) {
        Ok(Value::Mapping(map)) => Ok(Some(map)),
        Ok(_) => Err(unparsable("not a YAML mapping".to_string())),
        Err(e) => Err(unparsable(format!("not YAML: {e}"))),
    }
}

/// `config` as the text of config.yaml. Not every YAML that parses can be
/// written back (a tag on a mapping's key, say): `Err` says why.
pub fn to_yaml(config: &Value) -> Result<String, String> {
    serde_yaml::to_string(config)
        .map_err(|e| format!("parses, but cannot be written back once updated: {e}"))
}

/// Creates `<home>/config.yaml` when absent, else updates the three values;
/// a backup when it changes, no write when nothing changes.
pub fn update_config_yaml(
    home: &Path,
    inputs: &MpcConfigInputs,
    user: &NodeUser,
) -> Result<MpcConfig, HomeError> {
    let path = home.join(FILE);
    let unparsable = |reason: String| HomeError::Unparsable {
        path: path.clone(),
        reason,
    };
    let (config, edits) = match read(home)? {
        None => (upstream_default(inputs), Vec::new()),
        Some(mut map) => {
            let edits = update(&mut map, inputs).map_err(unparsable)?;
            if edits.is_empty() {
                return Ok(MpcConfig {
                    update: FileUpdate {
                        path,
                        written: Written::Unchanged,
                        edits,
                    },
                    config: Value::Mapping(map),
                });
            }
            (Value::Mapping(map), edits)
        }
    };
    let text = to_yaml(&config).map_err(unparsable)?;
    let written = atomic::write_file(
        home,
        Path::new(FILE),
        text.as_bytes(),
        0o644,
        Previous::Backup,
        user,
    )
    .map_err(HomeError::io("write", &path))?;
    Ok(MpcConfig {
        update: FileUpdate {
            path,
            written,
            edits,
        },
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(chain: Chain) -> MpcConfigInputs {
        MpcConfigInputs {
            chain,
            account_id: "node0.testnet".parse().unwrap(),
            responder_id: "node0.testnet".parse().unwrap(),
            contract_id: "v1.signer-prod.testnet".parse().unwrap(),
        }
    }

    #[test]
    fn the_default_is_start_sh_s_file() {
        let text = serde_yaml::to_string(&upstream_default(&inputs(Chain::Testnet))).unwrap();
        assert_eq!(
            text,
            "\
my_near_account_id: node0.testnet
near_responder_account_id: node0.testnet
number_of_responder_keys: 50
web_ui: 0.0.0.0:8080
migration_web_ui: 0.0.0.0:8079
pprof_bind_address: 0.0.0.0:34001
triple:
  concurrency: 2
  desired_triples_to_buffer: 16384
  timeout_sec: 120
  parallel_triple_generation_stagger_time_sec: 1
presignature:
  concurrency: 16
  desired_presignatures_to_buffer: 8192
  timeout_sec: 60
signature:
  timeout_sec: 60
ckd:
  timeout_sec: 60
indexer:
  validate_genesis: false
  sync_mode: Latest
  concurrency: 1
  mpc_contract_id: v1.signer-prod.testnet
  port_override: 80
  finality: optimistic
cores: 12
"
        );
        let localnet = upstream_default(&inputs(Chain::Localnet));
        assert!(localnet["indexer"].get("port_override").is_none());
    }

    #[test]
    fn enum_fields_in_the_map_form_are_found_with_their_tag_form() {
        let config: Value = serde_yaml::from_str(
            "indexer:\n  sync_mode: {Block: {height: 7}}\n  finality: {final: null}\n",
        )
        .unwrap();
        assert_eq!(
            map_forms(&config),
            [
                MapForm {
                    field: "indexer.sync_mode".to_string(),
                    written: r#"{"Block":{"height":7}}"#.to_string(),
                    tag_form: Some(r#"sync_mode: !Block {"height":7}"#.to_string()),
                },
                MapForm {
                    field: "indexer.finality".to_string(),
                    written: r#"{"final":null}"#.to_string(),
                    tag_form: Some("finality: final".to_string()),
                },
            ]
        );
        let two: Value =
            serde_yaml::from_str("indexer:\n  sync_mode: {Block: {height: 7}, Latest: null}\n")
                .unwrap();
        assert_eq!(map_forms(&two)[0].tag_form, None);
        let tagged: Value = serde_yaml::from_str(
            "indexer:\n  sync_mode: !Block {height: 7}\n  finality: optimistic\n",
        )
        .unwrap();
        assert!(map_forms(&tagged).is_empty());
        assert!(map_forms(&upstream_default(&inputs(Chain::Testnet))).is_empty());
    }

    #[test]
    fn only_accounts_and_contract_are_touched() {
        let mut map: Mapping = serde_yaml::from_str(
            "zz_operator: 1\nmy_near_account_id: old.testnet\ncores: 4\nindexer:\n  mpc_contract_id: old.signer\n  finality: final\n",
        )
        .unwrap();
        let edits = update(&mut map, &inputs(Chain::Testnet)).unwrap();
        let paths: Vec<&str> = edits.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "my_near_account_id",
                "near_responder_account_id",
                "indexer.mpc_contract_id"
            ]
        );
        assert_eq!(
            serde_yaml::to_string(&map).unwrap(),
            "zz_operator: 1\nmy_near_account_id: node0.testnet\ncores: 4\nindexer:\n  mpc_contract_id: v1.signer-prod.testnet\n  finality: final\nnear_responder_account_id: node0.testnet\n"
        );
        assert!(
            update(&mut map, &inputs(Chain::Testnet))
                .unwrap()
                .is_empty()
        );
        let mut broken: Mapping = serde_yaml::from_str("indexer: 3\n").unwrap();
        assert!(update(&mut broken, &inputs(Chain::Testnet)).is_err());
        // Found by fuzzing: parses and updates, but serde_yaml cannot write it back.
        let mut tagged: Mapping = serde_yaml::from_str("!eb_id:JJ  hoxt::\n !es ._5ct:").unwrap();
        update(&mut tagged, &inputs(Chain::Testnet)).unwrap();
        assert!(to_yaml(&Value::Mapping(tagged)).is_err());
        let mut broken: Mapping = serde_yaml::from_str("indexer: 3\n").unwrap();
        assert!(update(&mut broken, &inputs(Chain::Testnet)).is_err());
    }
}
