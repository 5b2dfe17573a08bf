//! A stand-in for `mpc-node` with the real binary's command-line surface and
//! switches ([`Behavior`]) that make it misbehave on purpose.
//!
//! - `mpc-node behave --json '{…}'` runs a behaviour directly (for `agent exec`);
//!   `mpc-node start` and `mpc-node start-with-config-file` read it from
//!   `<home>/standin-behavior.json` (the quiet default when absent).
//! - `mpc-node init` writes a near home the way nearcore's init does: one file
//!   at a time, fsynced, with a pause between files so that a kill can land in
//!   the middle (see [`agent_tests::standin_node`] for the switches).
//! - `mpc-node --help` lists `start-with-config-file` only when
//!   `MPC_NODE_STANDIN_CONFIG_FILE=1`, to present both kinds of image.
//! - `mpc-node write-test-share` stores an encrypted keyset the way the node
//!   does, refusing what it refuses (`--domains`, `--attempt`; `--pieces` and
//!   `--pause-ms` write the file slowly); a started node stores each keyset a
//!   test requests (see [`agent_tests::standin_node`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_tests::standin_node::keyshare::{self, KeysetRequest, KeysetResult};
use agent_tests::standin_node::{
    BackupKeyUsed, Behavior, CONFIG_FILE_SWITCH, ENV_LOG, EXIT_FILE, INDEXER_FILE, INIT_OFFLINE,
    INIT_PAUSE_MS, INIT_STOP_AFTER, Indexer, IndexerEnums, KEYSET_METRICS_FILE,
    KEYSET_REQUEST_FILE, KEYSET_RESULT_FILE, KeysetControl, KeysetMetrics, Logged, OnStop,
    ShareKind, VERSION_SWITCH,
};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nix::sys::signal::{Signal, raise};
use nix::unistd::{ForkResult, fork};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(name = "mpc-node", about = "Stand-in for mpc-node")]
struct Cli {
    #[arg(long, value_name = "plain|json", global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Starts the MPC node using a single TOML configuration file instead of environment variables and CLI flags
    StartWithConfigFile { config: PathBuf },
    Start {
        /// [env: MPC_HOME_DIR]
        #[arg(long)]
        home_dir: Option<PathBuf>,
        /// [env: MPC_SECRET_STORE_KEY]
        secret_store_key_hex: Option<String>,
    },
    /// Generates/downloads required files for Near node to run
    Init {
        /// [env: MPC_HOME_DIR]
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        chain_id: Option<String>,
        #[arg(long)]
        genesis: Option<PathBuf>,
        #[arg(long)]
        download_config: bool,
        #[arg(long)]
        download_genesis: bool,
        #[arg(long)]
        boot_nodes: Option<String>,
    },
    /// Imports a keyshare from JSON and stores it in the local encrypted storage
    ImportKeyshare {
        /// [env: MPC_HOME_DIR]
        #[arg(long)]
        home_dir: Option<PathBuf>,
        /// JSON string with the keyshare in format: {"epoch":1,"private_share":"...","public_key":"..."}
        keyshare_json: String,
        /// Hex-encoded 16 byte AES key for local storage encryption
        local_encryption_key_hex: String,
    },
    /// Exports a keyshare from local encrypted storage and prints it to the console
    ExportKeyshare {
        /// [env: MPC_HOME_DIR]
        #[arg(long)]
        home_dir: Option<PathBuf>,
        /// Hex-encoded 16 byte AES key for local storage encryption
        local_encryption_key_hex: String,
    },
    /// Behave as the JSON says (see `Behavior`).
    #[command(hide = true)]
    Behave {
        #[arg(long, default_value = "{}")]
        json: String,
    },
    /// Write an encrypted keyshare as the node does.
    #[command(hide = true)]
    WriteTestShare {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        store_key: String,
        #[arg(long, value_enum, default_value = "key")]
        kind: ShareKind,
        #[arg(long, default_value = "1")]
        epoch: u64,
        /// Domains 0..D (`--kind key`).
        #[arg(long, default_value = "1")]
        domains: u64,
        /// The attempt of every domain's share (`--kind key`).
        #[arg(long, default_value = "0")]
        attempt: u64,
        /// Write the file in this many pieces…
        #[arg(long, default_value = "1")]
        pieces: u32,
        /// …pausing this long after each but the last.
        #[arg(long, default_value = "0")]
        pause_ms: u64,
    },
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !matches!(
        args.get(1).map(String::as_str),
        Some("start" | "start-with-config-file")
    ) {
        log_environment(None, None);
    }
    // Like mpc-node: `--version` is answered before the command line is parsed.
    if matches!(args.get(1).map(String::as_str), Some("--version" | "-V")) {
        let version = std::env::var(VERSION_SWITCH).unwrap_or_else(|_| "3.14.1".to_string());
        println!(
            "mpc-node {version}\n(release {version}) (build_time standin) (commit standin) (rustc standin)"
        );
        return;
    }
    let config_file = std::env::var(CONFIG_FILE_SWITCH).is_ok_and(|v| v == "1");
    let matches = Cli::command()
        .mut_subcommand("start-with-config-file", |c| c.hide(!config_file))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let behavior = match cli.command {
        Cmd::Behave { json } => match serde_json::from_str::<Behavior>(&json) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("mpc-node: bad behaviour JSON: {e}");
                std::process::exit(2);
            }
        },
        Cmd::Start {
            home_dir,
            secret_store_key_hex,
        } => {
            let home_dir = or_env(
                home_dir.map(Into::into),
                "MPC_HOME_DIR",
                "--home-dir <HOME_DIR>",
            );
            let key = or_env(
                secret_store_key_hex.map(Into::into),
                "MPC_SECRET_STORE_KEY",
                "<SECRET_STORE_KEY_HEX>",
            );
            let home = PathBuf::from(home_dir);
            let indexer = config_yaml_indexer(&home);
            let web_ui = yaml_web_ui(&home);
            let backup = std::env::var("MPC_BACKUP_ENCRYPTION_KEY_HEX")
                .ok()
                .filter(|v| !v.is_empty());
            says_log_filter(std::env::var("RUST_LOG").ok());
            start_node(&home, &key.to_string_lossy(), backup, web_ui, indexer)
        }
        Cmd::StartWithConfigFile { config } => {
            let file = start_config_home(&config, config_file);
            says_log_filter(file.filter);
            start_node(
                &file.home,
                &file.key,
                file.backup,
                file.web_ui,
                file.indexer,
            )
        }
        Cmd::Init {
            dir,
            chain_id,
            genesis,
            download_config,
            download_genesis,
            boot_nodes,
        } => {
            let dir = or_env(dir.map(Into::into), "MPC_HOME_DIR", "--dir <DIR>");
            init(
                Path::new(&dir),
                chain_id.as_deref(),
                genesis.as_deref(),
                download_config,
                download_genesis,
                boot_nodes.as_deref(),
            );
            return;
        }
        Cmd::WriteTestShare {
            home,
            store_key,
            kind,
            epoch,
            domains,
            attempt,
            pieces,
            pause_ms,
        } => {
            let mut request =
                KeysetRequest::new(epoch, domains).slowly(pieces, Duration::from_millis(pause_ms));
            for domain in 0..domains {
                request = request.attempt(domain, attempt);
            }
            write_test_share(&home, &store_key, kind, &request);
            return;
        }
        Cmd::ImportKeyshare {
            home_dir,
            keyshare_json,
            local_encryption_key_hex,
        } => {
            let home = or_env(
                home_dir.map(Into::into),
                "MPC_HOME_DIR",
                "--home-dir <HOME_DIR>",
            );
            import_keyshare(Path::new(&home), &keyshare_json, &local_encryption_key_hex);
            return;
        }
        Cmd::ExportKeyshare {
            home_dir,
            local_encryption_key_hex,
        } => {
            let home = or_env(
                home_dir.map(Into::into),
                "MPC_HOME_DIR",
                "--home-dir <HOME_DIR>",
            );
            export_keyshare(Path::new(&home), &local_encryption_key_hex);
            return;
        }
    };
    run(behavior);
}

/// Appends this command and the names of its environment to the file named
/// by [`ENV_LOG`], when set.
fn log_environment(backup_key: Option<BackupKeyUsed>, indexer: Option<IndexerEnums>) {
    let Some(path) = std::env::var_os(ENV_LOG) else {
        return;
    };
    let line = Logged {
        command: std::env::args().nth(1).unwrap_or_default(),
        env: std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect(),
        backup_key,
        indexer,
    };
    let line = serde_json::to_string(&line).expect("JSON");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.to_string_lossy())));
    writeln!(file, "{line}").expect("write the environment log");
}

/// An argument the real node also takes from the environment; missing in
/// both is clap's usage error (exit 2).
fn or_env(given: Option<OsString>, var: &str, usage: &str) -> OsString {
    given
        .or_else(|| std::env::var_os(var).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| {
            eprintln!("error: the following required arguments were not provided:\n  {usage}");
            std::process::exit(2);
        })
}

/// Exits like the node on a fatal error: the anyhow chain on stderr, code 1.
fn fail(message: &str) -> ! {
    eprintln!("Error: {message}");
    std::process::exit(1);
}

fn behavior_in(home: &Path) -> Behavior {
    match std::fs::read_to_string(home.join("standin-behavior.json")) {
        Ok(text) => serde_json::from_str(&text)
            .unwrap_or_else(|e| fail(&format!("bad standin-behavior.json: {e}"))),
        Err(_) => Behavior::default(),
    }
}

/// What the node does on start before it runs: the store key must be 16 hex
/// bytes; `secrets.json` is read (or, absent, generated with fresh keys as the
/// node does); `<home>/key` must decrypt with the store key; the web UI serves
/// `/health`, `/metrics` (the indexer of `<home>/standin-indexer.json`) and
/// `/public_data` on `web_ui` (the behaviour's `health` wins); writing a code
/// into `<home>/standin-exit` makes it exit with that code. The backup key is
/// the one given, else one made as the node makes it. `indexer` is what the
/// node read of its config (logged).
fn start_node(
    home: &Path,
    store_key: &str,
    backup_key: Option<String>,
    web_ui: Option<std::net::SocketAddr>,
    indexer: IndexerEnums,
) -> Behavior {
    let key = match hex::decode(store_key) {
        Ok(k) if k.len() == 16 => k,
        _ => fail("invalid local storage aes key hex"),
    };
    let backup = backup_key_of(home, backup_key);
    log_environment(Some(backup), Some(indexer));
    let public = node_secrets(home);
    let share = home.join("key");
    if share.exists() {
        use aes_gcm::aead::{Aead, KeyInit};
        let bytes =
            std::fs::read(&share).unwrap_or_else(|e| fail(&format!("{}: {e}", share.display())));
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&key).expect("16 bytes");
        let decrypted = bytes.len() >= 12
            && cipher
                .decrypt(aes_gcm::Nonce::from_slice(&bytes[..12]), &bytes[12..])
                .is_ok();
        if !decrypted {
            fail("Failed to decrypt key file\n\nCaused by:\n    decryption failed");
        }
    }
    // The key storage made at start, as upstream's `KeyStorageConfig::create`.
    for dir in ["permanent_keys", "temporary_keys"] {
        std::fs::create_dir_all(home.join(dir))
            .unwrap_or_else(|e| fail(&format!("{}: {e}", home.join(dir).display())));
    }
    let mut behavior = behavior_in(home);
    if behavior.health.is_none() {
        behavior.health = web_ui;
    }
    behavior.public_data = Some(public);
    behavior
        .indexer_file
        .get_or_insert_with(|| home.join(INDEXER_FILE));
    behavior
        .exit_file
        .get_or_insert_with(|| home.join(EXIT_FILE));
    behavior
        .keyset_metrics_file
        .get_or_insert_with(|| home.join(KEYSET_METRICS_FILE));
    behavior.keysets = Some(KeysetControl {
        home: home.to_path_buf(),
        store_key: store_key.to_string(),
    });
    behavior
}

/// The backup key the node runs with: the one given (64 hex characters), or,
/// as the node does without one, a fresh key written over
/// `<home>/backup_encryption_key.hex` (mode 0600) on every start.
fn backup_key_of(home: &Path, given: Option<String>) -> BackupKeyUsed {
    let fingerprint = |hex: &str| entrypoint::secrets::Secret::new(hex).fingerprint();
    if let Some(given) = given {
        if !matches!(hex::decode(&given), Ok(k) if k.len() == 32) {
            fail("invalid backup symmetric key hex");
        }
        return BackupKeyUsed {
            fingerprint: fingerprint(&given),
            generated: false,
        };
    }
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    use std::os::unix::fs::OpenOptionsExt;
    let path = home.join("backup_encryption_key.hex");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(fresh.as_bytes()))
        .unwrap_or_else(|e| {
            fail(&format!(
                "failed to create secret file {}: {e}",
                path.display()
            ))
        });
    BackupKeyUsed {
        fingerprint: fingerprint(&fresh),
        generated: true,
    }
}

/// The keys of `<home>/secrets.json`, as `/public_data` shows them; an absent
/// file is generated with fresh keys (mode 0600), as the node does.
fn node_secrets(home: &Path) -> serde_json::Value {
    let path = home.join("secrets.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => {
            let fresh =
                || near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519).to_string();
            let signer = fresh();
            let text = serde_json::json!({
                "p2p_private_key": fresh(),
                "near_signer_key": signer,
                "near_responder_keys": [signer],
            })
            .to_string();
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap_or_else(|_| fail("secrets.json already exists. Refusing to overwrite."));
            file.write_all(text.as_bytes()).expect("write secrets.json");
            text
        }
    };
    let secrets: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("secrets.json: {e}")));
    let public = |field: &str| -> String {
        let sk: near_crypto::SecretKey = secrets[field]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fail(&format!("secrets.json: {field} is not a key")));
        sk.public_key().to_string()
    };
    serde_json::json!({
        "near_signer_public_key": public("near_signer_key"),
        "near_p2p_public_key": public("p2p_private_key"),
        "near_responder_public_keys": [public("near_signer_key")],
        "tee_participant_info": null,
    })
}

/// The indexer's enums of `<home>/config.yaml`, read as mpc-node's
/// serde_yaml reads them: a file it cannot read that way makes the node exit,
/// as its `load_config_file` does. Without the file nothing is checked.
fn config_yaml_indexer(home: &Path) -> IndexerEnums {
    #[derive(serde::Deserialize)]
    struct ConfigYaml {
        #[serde(default)]
        indexer: IndexerEnums,
    }
    let Ok(text) = std::fs::read_to_string(home.join("config.yaml")) else {
        return IndexerEnums::default();
    };
    serde_yaml::from_str::<ConfigYaml>(&text)
        .map(|config| config.indexer)
        .unwrap_or_else(|e| fail(&format!("Load config.yaml\n\nCaused by:\n    {e}")))
}

/// `web_ui` of `<home>/config.yaml`: `host:port` or `{host, port}`.
fn yaml_web_ui(home: &Path) -> Option<std::net::SocketAddr> {
    let text = std::fs::read_to_string(home.join("config.yaml")).ok()?;
    let config: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    web_ui_of(&config["web_ui"])
}

fn web_ui_of(value: &serde_yaml::Value) -> Option<std::net::SocketAddr> {
    if let Some(text) = value.as_str() {
        return text.parse().ok();
    }
    let host = value["host"].as_str()?;
    let port = value["port"].as_u64()?;
    format!("{host}:{port}").parse().ok()
}

/// The log filter the node runs with, as its first line (the real node
/// takes `RUST_LOG`, or `[log].filter` of the start file; without either it
/// logs errors only).
fn says_log_filter(filter: Option<String>) {
    match filter.filter(|f| !f.is_empty()) {
        Some(filter) => println!("mpc-node: log filter {filter}"),
        None => println!("mpc-node: no log filter: errors only"),
    }
}

/// What the stand-in takes from a start file.
struct StartFile {
    home: PathBuf,
    key: String,
    backup: Option<String>,
    /// `[node].web_ui`.
    web_ui: Option<std::net::SocketAddr>,
    /// `[log].filter`.
    filter: Option<String>,
    /// `[node.indexer]`'s enums, read as upstream's `StartConfig` reads them.
    indexer: IndexerEnums,
}

/// Reads the start file as the node does: the tables `start-with-config-file`
/// requires, or exit 1 naming the file.
fn start_config_home(path: &Path, supported: bool) -> StartFile {
    if !supported {
        eprintln!("error: unrecognized subcommand 'start-with-config-file'");
        std::process::exit(2);
    }
    let refused = |why: &str| -> ! {
        fail(&format!(
            "failed to parse config file: {}\n\nCaused by:\n    {why}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| refused(&e.to_string()));
    let config: toml::Table = text.parse().unwrap_or_else(|e| refused(&format!("{e}")));
    let get = |dotted: &str| {
        let mut here = Some(&config);
        let mut value = None;
        for part in dotted.split('.') {
            value = here.and_then(|t| t.get(part));
            here = value.and_then(|v| v.as_table());
        }
        value.unwrap_or_else(|| refused(&format!("missing field `{dotted}`")))
    };
    let key = get("secrets.secret_store_key_hex")
        .as_str()
        .unwrap_or("")
        .to_string();
    for required in [
        "tee.image_hash",
        "tee.latest_allowed_hash_file_path",
        "tee.authority.type",
        "log.format",
        "node.my_near_account_id",
        "node.indexer.mpc_contract_id",
        "node.indexer.sync_mode",
        "node.indexer.finality",
    ] {
        get(required);
    }
    let indexer: IndexerEnums = get("node.indexer")
        .clone()
        .try_into()
        .unwrap_or_else(|e| refused(&format!("node.indexer: {e}")));
    if config.contains_key("near_init") {
        get("near_init.chain_id");
        if get("near_init.download_genesis").as_bool().is_none() {
            refused("near_init.download_genesis: invalid type, expected a boolean");
        }
    }
    match get("log.format").as_str() {
        Some("plain" | "json") => {}
        _ => refused("log.format: unknown variant, expected `plain` or `json`"),
    }
    match get("tee.authority.type").as_str() {
        Some("local") => {}
        Some("dstack") => {
            get("tee.authority.dstack_endpoint");
        }
        _ => refused("tee.authority: unknown variant, expected `local` or `dstack`"),
    }
    let image_hash = get("tee.image_hash").as_str().unwrap_or("");
    if !image_hash
        .strip_prefix("sha256:")
        .is_some_and(|h| matches!(hex::decode(h), Ok(b) if b.len() == 32))
    {
        refused("tee.image_hash: expected sha256: followed by 64 hex characters");
    }
    let home = PathBuf::from(
        get("home_dir")
            .as_str()
            .unwrap_or_else(|| refused("home_dir: expected a string")),
    );
    let web_ui = config
        .get("node")
        .and_then(|n| n.get("web_ui"))
        .and_then(|v| serde_yaml::to_value(v).ok())
        .and_then(|v| web_ui_of(&v));
    let backup = config
        .get("secrets")
        .and_then(|s| s.get("backup_encryption_key_hex"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let filter = config
        .get("log")
        .and_then(|l| l.get("filter"))
        .and_then(|f| f.as_str())
        .map(str::to_string);
    StartFile {
        home,
        key,
        backup,
        web_ui,
        filter,
        indexer,
    }
}

/// Writes files the way nearcore's `init_configs` does, one at a time.
struct InitWriter {
    dir: PathBuf,
    pause: Duration,
    stop_after: Option<usize>,
    written: usize,
}

impl InitWriter {
    fn write(&mut self, name: &str, contents: &[u8]) {
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path)
            .unwrap_or_else(|e| fail(&format!("Failed to create {}: {e}", path.display())));
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .unwrap_or_else(|e| fail(&format!("Failed to write {}: {e}", path.display())));
        self.written += 1;
        if self.stop_after == Some(self.written) {
            let _ = raise(Signal::SIGKILL);
        }
        std::thread::sleep(self.pause);
    }
}

fn key_file(account_id: &str) -> Vec<u8> {
    let secret = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
    serde_json::to_vec_pretty(&serde_json::json!({
        "account_id": account_id,
        "public_key": secret.public_key().to_string(),
        "secret_key": secret.to_string(),
    }))
    .expect("JSON")
}

fn near_config(chain_id: &str, boot_nodes: &str, downloaded: bool) -> serde_json::Value {
    let state_sync = if downloaded {
        serde_json::json!({
            "dump": null,
            "sync": {"ExternalStorage": {
                "location": {"GCS": {"bucket": format!("state-parts-{chain_id}")}},
                "num_concurrent_requests": 25,
                "num_concurrent_requests_during_catchup": 5,
                "external_storage_fallback_threshold": 3
            }}
        })
    } else {
        serde_json::json!({"dump": null, "sync": "Peers"})
    };
    serde_json::json!({
        "genesis_file": "genesis.json",
        "genesis_records_file": null,
        "validator_key_file": "validator_key.json",
        "node_key_file": "node_key.json",
        "rpc": {
            "addr": "0.0.0.0:3030",
            "prometheus_addr": null,
            "cors_allowed_origins": ["*"],
            "polling_config": {"polling_interval": {"secs": 0, "nanos": 500000000}, "polling_timeout": {"secs": 10, "nanos": 0}},
            "limits_config": {"json_payload_max_size": 10485760},
            "enable_debug_rpc": false
        },
        "telemetry": {"endpoints": []},
        "network": {
            "addr": "0.0.0.0:24567",
            "external_address": "",
            "boot_nodes": boot_nodes,
            "whitelist_nodes": "",
            "max_num_peers": 40,
            "minimum_outbound_peers": 5,
            "ideal_connections_lo": 30,
            "ideal_connections_hi": 35,
            "peer_recent_time_window": {"secs": 600, "nanos": 0},
            "handshake_timeout": {"secs": 20, "nanos": 0},
            "experimental": {
                "inbound_disabled": false,
                "connect_only_to_boot_nodes": false,
                "skip_sending_tombstones_seconds": 0,
                "tier1_enable_inbound": true,
                "tier1_enable_outbound": true,
                "tier1_connect_interval": {"secs": 60, "nanos": 0},
                "tier1_new_connections_per_attempt": 50
            }
        },
        "consensus": {
            "min_num_peers": 3,
            "block_production_tracking_delay": {"secs": 0, "nanos": 100000000},
            "min_block_production_delay": {"secs": 0, "nanos": 600000000},
            "max_block_production_delay": {"secs": 2, "nanos": 0},
            "max_block_wait_delay": {"secs": 6, "nanos": 0}
        },
        "tracked_shards_config": "NoShards",
        "archive": false,
        "save_trie_changes": true,
        "store": {
            "path": null,
            "enable_statistics": false,
            "max_open_files": 10000,
            "col_state_cache_size": 536870912,
            "load_mem_tries_for_tracked_shards": false
        },
        "state_sync_enabled": true,
        "state_sync": state_sync,
        "epoch_sync": {"epoch_sync_horizon": 216000, "timeout_for_epoch_sync": {"secs": 60, "nanos": 0}}
    })
}

/// The genesis a chain id gets: downloaded/embedded ones are fixed, a custom
/// chain gets a fresh single-validator genesis.
fn genesis_for(chain_id: &str, validator: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "protocol_version": 78,
        "genesis_time": if validator.is_some() { "2026-08-21T00:00:00.000000000Z" } else { "2020-07-21T16:55:51.591948Z" },
        "chain_id": chain_id,
        "genesis_height": if validator.is_some() { 0 } else { 9820210 },
        "num_block_producer_seats": 100,
        "epoch_length": if validator.is_some() { 60 } else { 43200 },
        "validators": validator.map(|key| serde_json::json!([{"account_id": "test.near", "public_key": key, "amount": "50000000000000000000000000000000"}])).unwrap_or(serde_json::json!([])),
        "records": []
    })
}

fn init(
    dir: &Path,
    chain_id: Option<&str>,
    genesis: Option<&Path>,
    download_config: bool,
    download_genesis: bool,
    boot_nodes: Option<&str>,
) {
    let chain_id = chain_id.unwrap_or("");
    // nearcore asserts on an empty chain id.
    assert!(
        !chain_id.is_empty(),
        "assertion failed: !chain_id.is_empty()"
    );
    let well_known = matches!(chain_id, "mainnet" | "testnet");
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let mut out = InitWriter {
        dir: dir.to_path_buf(),
        pause: Duration::from_millis(number(INIT_PAUSE_MS).unwrap_or(30)),
        stop_after: number(INIT_STOP_AFTER).map(|n: u64| n as usize),
        written: 0,
    };
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| fail(&format!("Failed to create {}: {e}", dir.display())));
    if dir.join("config.json").exists() {
        // nearcore only checks that the genesis is readable, then adds missing keys.
        let path = dir.join("genesis.json");
        let readable = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if readable.is_none() {
            fail(&format!("Failed to read genesis config {}", path.display()));
        }
        if !dir.join("node_key.json").exists() {
            out.write("node_key.json", &key_file("node"));
        }
        if !well_known && !dir.join("validator_key.json").exists() {
            out.write("validator_key.json", &key_file("test.near"));
        }
        return;
    }
    let offline = std::env::var(INIT_OFFLINE).is_ok_and(|v| v == "1");
    if (download_genesis || download_config) && offline {
        fail("Failed to download the genesis: error sending request: network unreachable");
    }
    if download_genesis && !well_known && genesis.is_none() {
        fail(&format!(
            "Failed to download the genesis: no genesis URL for chain {chain_id}"
        ));
    }
    let config = near_config(chain_id, boot_nodes.unwrap_or(""), download_config);
    out.write(
        "config.json",
        &serde_json::to_vec_pretty(&config).expect("JSON"),
    );
    out.write("node_key.json", &key_file("node"));
    let validator = (!well_known).then(|| key_file("test.near"));
    if let Some(validator) = &validator {
        out.write("validator_key.json", validator);
    }
    let genesis = match genesis {
        // Read and written back re-serialized, as nearcore does.
        Some(path) => std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_else(|| fail(&format!("Failed to read genesis config {}", path.display()))),
        None => {
            let key = validator.as_ref().map(|v| {
                serde_json::from_slice::<serde_json::Value>(v).expect("JSON")["public_key"]
                    .as_str()
                    .expect("a key")
                    .to_string()
            });
            genesis_for(chain_id, key.as_deref())
        }
    };
    out.write(
        "genesis.json",
        &serde_json::to_vec_pretty(&genesis).expect("JSON"),
    );
}

/// `import-keyshare`, as the node's: the legacy keyshare JSON (`epoch`,
/// `private_share`, `public_key`) stored encrypted as the epoch's permanent
/// share; an existing share is never overwritten.
fn import_keyshare(home: &Path, json: &str, key_hex: &str) {
    println!("Importing keyshare to local storage...");
    let key = match hex::decode(key_hex) {
        Ok(k) if k.len() == 16 => k,
        _ => fail("Invalid encryption key: must be 32 hex characters (16 bytes)"),
    };
    let share: serde_json::Value = serde_json::from_str(json)
        .unwrap_or_else(|e| fail(&format!("Failed to parse keyshare JSON: {e}")));
    let epoch = match (
        share["epoch"].as_u64(),
        share["private_share"].as_str(),
        share["public_key"].as_str(),
    ) {
        (Some(epoch), Some(_), Some(_)) => epoch,
        _ => fail(
            "Failed to parse keyshare JSON: missing field `epoch`, `private_share` or `public_key`",
        ),
    };
    println!("Parsed keyshare for epoch {epoch}");
    std::fs::create_dir_all(home).unwrap_or_else(|e| {
        fail(&format!(
            "Failed to create directory {}: {e}",
            home.display()
        ))
    });
    if home.join("key").exists() {
        fail("Refusing to overwrite existing local keyshare");
    }
    write_test_share(
        home,
        &hex::encode(&key),
        ShareKind::Key,
        &KeysetRequest::new(epoch, 1),
    );
    println!("Successfully imported keyshare to {}", home.display());
}

/// `export-keyshare`, as the node's: the share of `<home>/key` decrypted and printed.
fn export_keyshare(home: &Path, key_hex: &str) {
    use aes_gcm::aead::{Aead, KeyInit};
    println!("Exporting keyshare from local storage...");
    let key = match hex::decode(key_hex) {
        Ok(k) if k.len() == 16 => k,
        _ => fail("Invalid encryption key: must be 32 hex characters (16 bytes)"),
    };
    if !home.exists() {
        fail(&format!("Directory {} does not exist", home.display()));
    }
    let bytes = std::fs::read(home.join("key"))
        .unwrap_or_else(|_| fail(&format!("No keyshare found in {}", home.display())));
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&key).expect("16 bytes");
    let plain = (bytes.len() >= 12)
        .then(|| {
            cipher
                .decrypt(aes_gcm::Nonce::from_slice(&bytes[..12]), &bytes[12..])
                .ok()
        })
        .flatten()
        .unwrap_or_else(|| fail("Failed to decrypt key file\n\nCaused by:\n    decryption failed"));
    let share: serde_json::Value = serde_json::from_slice(&plain).expect("a share");
    println!("{}", serde_json::to_string_pretty(&share).expect("JSON"));
    println!(
        "\nKeyshare for epoch {} successfully exported.",
        share["epoch_id"]
    );
}

/// An encrypted share under `<home>`: a keyset stored as the node stores it
/// (`keyshare/local.rs`), or the files of the other kinds.
fn write_test_share(home: &Path, store_key: &str, kind: ShareKind, request: &KeysetRequest) {
    let create_new = |path: &Path, contents: &[u8]| {
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("create dir");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .expect("write share");
    };
    let epoch = request.epoch;
    match kind {
        ShareKind::Key => match keyshare::store(home, store_key, request) {
            KeysetResult::Stored(_) => {}
            KeysetResult::Refused(why) => fail(&why),
        },
        ShareKind::Legacy => {
            keyshare::store_legacy(home, store_key, epoch).unwrap_or_else(|e| fail(&e))
        }
        ShareKind::Permanent => {
            let bytes = keyshare::sealed(store_key, &KeysetRequest::new(epoch, 1))
                .unwrap_or_else(|e| fail(&e));
            let path = home
                .join("permanent_keys")
                .join(format!("epoch_{epoch}_with_1_domains"));
            create_new(&path, &bytes);
        }
        ShareKind::Temporary => {
            let bytes = keyshare::sealed(store_key, &KeysetRequest::new(epoch, 1))
                .unwrap_or_else(|e| fail(&e));
            let dir = home.join("temporary_keys");
            create_new(&dir.join(format!("started_{epoch}_0_0")), b"");
            create_new(&dir.join(format!("keyshare_{epoch}_0_0")), &bytes);
        }
    }
}

/// Stores each keyset a test requests in the home's request file, once it
/// appears (removed first), and writes what became of it.
async fn store_requested_keysets(control: KeysetControl) {
    let request_file = control.home.join(KEYSET_REQUEST_FILE);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(text) = std::fs::read_to_string(&request_file) else {
            continue;
        };
        let _ = std::fs::remove_file(&request_file);
        let result = match serde_json::from_str::<KeysetRequest>(&text) {
            Ok(request) => {
                let (home, key) = (control.home.clone(), control.store_key.clone());
                tokio::task::spawn_blocking(move || keyshare::store(&home, &key, &request))
                    .await
                    .expect("the keyset writer")
            }
            Err(e) => KeysetResult::Refused(format!("bad keyset request: {e}")),
        };
        match &result {
            KeysetResult::Stored(name) => println!("mpc-node: stored keyset {name}"),
            KeysetResult::Refused(why) => println!("mpc-node: refused keyset: {why}"),
        }
        let result_file = control.home.join(KEYSET_RESULT_FILE);
        let temp = result_file.with_extension("tmp");
        std::fs::write(&temp, serde_json::to_vec(&result).expect("JSON"))
            .and_then(|()| std::fs::rename(&temp, &result_file))
            .expect("write the keyset result");
    }
}

fn run(b: Behavior) {
    // Forks happen while the process is still single-threaded.
    if b.orphans > 0 {
        leave_orphans(b.orphans, Duration::from_millis(b.orphan_ms));
    }
    for _ in 0..b.group_children {
        start_group_child();
    }
    let mut out = std::io::stdout().lock();
    for line in &b.stdout {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    let mut err = std::io::stderr().lock();
    for line in &b.stderr {
        let _ = writeln!(err, "{line}");
    }
    drop(err);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(live(b));
}

async fn live(b: Behavior) {
    let mut handlers = Vec::new();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        handlers.push((
            sig,
            signal(SignalKind::from_raw(sig as i32)).expect("signal handler"),
        ));
    }
    for (sig, mut stream) in handlers {
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                println!("mpc-node: got {}", sig.as_str());
            }
        });
    }
    if b.on_stop != OnStop::Die {
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            let mut stream = signal(SignalKind::from_raw(sig as i32)).expect("signal handler");
            let on_stop = b.on_stop;
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    println!("mpc-node: got {}", sig.as_str());
                    if on_stop == OnStop::ExitClean {
                        println!("mpc-node: shutting down");
                        std::process::exit(0);
                    }
                }
            });
        }
    }
    // Tests wait for this line before they signal: the handlers are in place.
    println!("mpc-node: running");
    if let Some(addr) = b.health {
        let delay = Duration::from_millis(b.health_after_ms);
        let public_data = b.public_data.clone().unwrap_or(serde_json::Value::Null);
        let files = MetricsFiles {
            indexer: b.indexer_file.clone(),
            keyset: b.keyset_metrics_file.clone(),
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            serve_web_ui(addr, public_data, files).await;
        });
    }
    if let Some(path) = b.exit_file.clone() {
        tokio::spawn(exit_when_told(path));
    }
    if let Some(control) = b.keysets.clone() {
        tokio::spawn(store_requested_keysets(control));
    }
    if b.exit_code.is_some() || b.die_by_signal.is_some() {
        tokio::time::sleep(Duration::from_millis(b.after_ms)).await;
        if let Some(n) = b.die_by_signal {
            let sig = Signal::try_from(n).expect("a valid signal number");
            // Default action, even for signals handled above.
            unsafe {
                let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
            }
            let _ = raise(sig);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::process::exit(b.exit_code.unwrap_or(0));
    }
    std::future::pending::<()>().await;
}

/// An intermediate process forks `count` grandchildren and exits at once:
/// the grandchildren become orphans of whoever reaps for this process tree.
fn leave_orphans(count: u32, life: Duration) {
    // SAFETY: single-threaded here; children only sleep and _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        ForkResult::Child => {
            for _ in 0..count {
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    std::thread::sleep(life);
                    unsafe { libc::_exit(0) };
                }
            }
            unsafe { libc::_exit(0) };
        }
    }
}

/// A child in our process group that ignores nothing and lives for ever.
fn start_group_child() {
    // SAFETY: single-threaded here; the child only sleeps.
    if let Ok(ForkResult::Child) = unsafe { fork() } {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Exits with the code written into `path`, once it appears (removed first,
/// so the next start runs on).
async fn exit_when_told(path: PathBuf) {
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(code) = text.trim().parse::<i32>()
        {
            let _ = std::fs::remove_file(&path);
            println!("mpc-node: exiting with code {code}");
            std::process::exit(code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The files `/metrics` reads on every scrape.
#[derive(Clone)]
struct MetricsFiles {
    indexer: Option<PathBuf>,
    keyset: Option<PathBuf>,
}

/// The metrics text: the process's own gauge always, the indexer's and the
/// keyset's when their files hold them.
fn metrics_text(files: &MetricsFiles) -> String {
    let mut text = String::from(
        "# HELP mpc_standin_up 1 while the stand-in runs\n# TYPE mpc_standin_up gauge\nmpc_standin_up 1\n",
    );
    fn read<T: serde::de::DeserializeOwned>(path: Option<&PathBuf>) -> Option<T> {
        serde_json::from_slice(&std::fs::read(path?).ok()?).ok()
    }
    if let Some(indexer) = read::<Indexer>(files.indexer.as_ref()) {
        text.push_str(&indexer.exposition());
    }
    if let Some(keyset) = read::<KeysetMetrics>(files.keyset.as_ref()) {
        text.push_str(&keyset.exposition());
    }
    text
}

/// The node's web UI: `/health` (a static `OK`, as the node's), `/metrics`
/// and `/public_data`.
async fn serve_web_ui(
    addr: std::net::SocketAddr,
    public_data: serde_json::Value,
    files: MetricsFiles,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot bind the web UI on {addr}: {e}")));
    let public_data = public_data.to_string();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let public_data = public_data.clone();
        let files = files.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, content_type, body) = if request.starts_with("GET /health ") {
                ("200 OK", "text/plain", "OK".to_string())
            } else if request.starts_with("GET /public_data ") {
                ("200 OK", "application/json", public_data)
            } else if request.starts_with("GET /metrics ") {
                ("200 OK", "text/plain; version=0.0.4", metrics_text(&files))
            } else {
                ("404 Not Found", "text/plain", "not found".to_string())
            };
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        });
    }
}
