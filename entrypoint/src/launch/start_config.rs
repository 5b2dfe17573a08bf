//! How mpc-node is started: `mpc-node start` with `config.yaml` and the
//! environment (what start.sh does), or `mpc-node start-with-config-file`
//! with one TOML file the agent renders (images since 3.7).

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Chain;
use crate::homes::HomeError;
use crate::homes::atomic::{self, Previous, Written};
use crate::homes::owner::NodeUser;
use crate::secrets::Secret;

/// Everything the start file says.
pub struct StartConfigInputs<'a> {
    pub home: &'a Path,
    pub store_key: &'a Secret,
    pub backup_key: Option<&'a Secret>,
    pub chain: Chain,
    pub boot_nodes: Option<&'a str>,
    /// The localnet genesis (mpc-localnet only).
    pub genesis_path: Option<&'a Path>,
    pub tier3_public_addr: Option<SocketAddr>,
    /// `MPC_LOG_FORMAT`; the node's default `plain` when unset.
    pub log_format: Option<&'a str>,
    /// `RUST_LOG`; the node falls back to its own default when unset.
    pub log_filter: Option<&'a str>,
    /// The `config.yaml` content, for `[node]`.
    pub node: &'a serde_yaml::Value,
    /// `[tee] image_hash`: the container's image digest; `None` writes zeros.
    pub image_hash: Option<&'a str>,
}

/// The image hash of a node outside a TEE, as `mpc-node start` uses it.
const NO_IMAGE_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// Where `mpc-node start` keeps the allowed hashes outside a TEE.
pub const ALLOWED_HASHES_FILE: &str = "/tmp/allowed_image_hashes.json";

/// Renders the `start-with-config-file` TOML: `home_dir`, `[secrets]`,
/// `[tee]` (local authority, the image hash given), `[log]`, `[near_init]` and
/// `[node]`. It holds the store key, so it comes back as a [`Secret`].
pub fn render(inputs: &StartConfigInputs) -> Result<Secret, HomeError> {
    use toml::{Table, Value};
    let table = |entries: Vec<(&str, Value)>| -> Value {
        Value::Table(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    };
    let text = |s: &str| Value::String(s.to_string());
    let mut secrets = vec![("secret_store_key_hex", text(inputs.store_key.expose()))];
    if let Some(backup) = inputs.backup_key {
        secrets.push(("backup_encryption_key_hex", text(backup.expose())));
    }
    let mut log = vec![("format", text(inputs.log_format.unwrap_or("plain")))];
    if let Some(filter) = inputs.log_filter {
        log.push(("filter", text(filter)));
    }
    let localnet = inputs.chain == Chain::Localnet;
    let mut near_init = vec![
        ("chain_id", text(inputs.chain.as_str())),
        ("download_genesis", Value::Boolean(!localnet)),
    ];
    if !localnet {
        near_init.push(("download_config", text("rpc")));
    }
    if let Some(boot_nodes) = inputs.boot_nodes {
        near_init.push(("boot_nodes", text(boot_nodes)));
    }
    if let Some(genesis) = inputs.genesis_path {
        near_init.push(("genesis_path", text(&genesis.to_string_lossy())));
    }
    if let Some(addr) = inputs.tier3_public_addr {
        near_init.push(("tier3_public_addr", text(&addr.to_string())));
    }
    let node = yaml_to_toml(inputs.node, "node").map_err(|reason| HomeError::Unparsable {
        path: inputs.home.join("config.yaml"),
        reason,
    })?;
    let mut root = Table::new();
    root.insert("home_dir".to_string(), text(&inputs.home.to_string_lossy()));
    root.insert("secrets".to_string(), table(secrets));
    root.insert(
        "tee".to_string(),
        table(vec![
            (
                "image_hash",
                text(inputs.image_hash.unwrap_or(NO_IMAGE_HASH)),
            ),
            ("latest_allowed_hash_file_path", text(ALLOWED_HASHES_FILE)),
            ("authority", table(vec![("type", text("local"))])),
        ]),
    );
    root.insert("log".to_string(), table(log));
    root.insert("near_init".to_string(), table(near_init));
    root.insert("node".to_string(), node);
    let rendered = toml::to_string(&root);
    // The table's copies of the keys are zeroed; the rendered text is the only one left.
    if let Some(Value::Table(secrets)) = root.get_mut("secrets") {
        for (_, value) in secrets.iter_mut() {
            if let Value::String(s) = value {
                zeroize::Zeroize::zeroize(s);
            }
        }
    }
    let rendered = rendered.map_err(|e| HomeError::Unparsable {
        path: inputs.home.join("config.yaml"),
        reason: format!("cannot be written as TOML: {e}"),
    })?;
    Ok(Secret::new(rendered))
}

/// `config.yaml` as TOML: nulls (absent optional fields) are dropped; keys
/// must be strings; a YAML tag, serde_yaml's form of an externally tagged
/// enum's variant (`sync_mode: !Block {height: N}`), becomes toml's form of
/// it: a table of the variant (`sync_mode = { Block = { height = N } }`), or
/// the variant's name when it carries no data (`!Latest` → `"Latest"`).
/// Errors name the key, never a value.
fn yaml_to_toml(value: &serde_yaml::Value, at: &str) -> Result<toml::Value, String> {
    use serde_yaml::Value as Y;
    use toml::Value as T;
    Ok(match value {
        Y::Bool(b) => T::Boolean(*b),
        Y::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => T::Integer(i),
            (None, Some(f)) if n.is_f64() => T::Float(f),
            _ => return Err(format!("{at} is a number TOML cannot hold")),
        },
        Y::String(s) => T::String(s.clone()),
        Y::Sequence(items) => T::Array(
            items
                .iter()
                .filter(|v| !matches!(v, Y::Null))
                .map(|v| yaml_to_toml(v, at))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut table = toml::Table::new();
            for (key, v) in map {
                let Some(key) = key.as_str() else {
                    return Err(format!("{at} has a key that is not a string"));
                };
                // Not `is_null`: it looks through a tag, and `!Latest` is a variant.
                if !matches!(v, Y::Null) {
                    table.insert(key.to_string(), yaml_to_toml(v, &format!("{at}.{key}"))?);
                }
            }
            T::Table(table)
        }
        Y::Null => return Err(format!("{at} is null")),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let variant = tag.strip_prefix('!').unwrap_or(&tag);
            if variant.is_empty() || variant.starts_with(['!', '<']) {
                return Err(format!(
                    "{at} has a YAML tag that names no enum variant, which TOML cannot hold"
                ));
            }
            if matches!(tagged.value, Y::Null) {
                T::String(variant.to_string())
            } else {
                let data = yaml_to_toml(&tagged.value, &format!("{at}.{variant}"))?;
                T::Table(toml::Table::from_iter([(variant.to_string(), data)]))
            }
        }
    })
}

/// Writes the rendered start file with mode 0600 (it holds the store key),
/// replacing the previous one without a backup: it is regenerated on every
/// boot and a backup would be one more copy of the key. Keep it off the home
/// (e.g. under `/run`): the store key must not sit next to the shares it
/// encrypts.
pub fn write_start_config(
    path: &Path,
    rendered: &Secret,
    user: &NodeUser,
) -> Result<Written, HomeError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(HomeError::io("write", path)(std::io::Error::from(
            std::io::ErrorKind::InvalidInput,
        )));
    };
    atomic::write_file(
        dir,
        Path::new(name),
        rendered.expose().as_bytes(),
        0o600,
        Previous::Discard,
        user,
    )
    .map_err(HomeError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nulls_are_dropped_and_odd_keys_refused() {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str("a: 1\nb: null\nc: [1, null, 2]\nd: {e: 1.5}\n").unwrap();
        let toml = yaml_to_toml(&yaml, "node").unwrap();
        assert_eq!(toml.to_string(), "{ a = 1, c = [1, 2], d = { e = 1.5 } }");
        let odd: serde_yaml::Value = serde_yaml::from_str("1: x\n").unwrap();
        assert!(yaml_to_toml(&odd, "node").is_err());
    }

    #[test]
    fn yaml_tags_become_toml_s_externally_tagged_variants() {
        let yaml: serde_yaml::Value = serde_yaml::from_str(
            "a: !Block\n  height: 5\nb: !Latest\nc: Latest\nd: [!Block {height: 6}]\n",
        )
        .unwrap();
        let toml = yaml_to_toml(&yaml, "node").unwrap();
        assert_eq!(
            toml.to_string(),
            r#"{ a = { Block = { height = 5 } }, b = "Latest", c = "Latest", d = [{ Block = { height = 6 } }] }"#
        );
    }
}
