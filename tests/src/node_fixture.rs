//! One MPC node's world for `agent run`: a home, its keys, the chain that
//! knows them (the NEAR RPC stand-in, in process), the stand-in node's web UI
//! port, and the environment that ties them together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use near_crypto::PublicKey;
use serde_json::json;

use crate::harness::{AgentCommand, backup_key, free_port, keypair, standin_node_bin, store_key};
use crate::near_rpc::{NearRpcStandin, Scenario};
use crate::standin_node::keyshare::{self, KeysetRequest, KeysetResult};
use crate::standin_node::{
    Behavior, EXIT_FILE, INDEXER_FILE, Indexer, KEYSET_METRICS_FILE, KeysetMetrics,
};

pub const ACCOUNT: &str = "node0.test.near";
pub const CONTRACT: &str = "v1.signer.test.near";

/// A key pair in NEAR's text form.
#[derive(Clone, Debug)]
pub struct Key {
    pub secret: String,
    pub public: String,
}

impl Key {
    pub fn random() -> Key {
        let (secret, public) = keypair();
        Key { secret, public }
    }

    pub fn public_key(&self) -> PublicKey {
        self.public.parse().unwrap()
    }
}

/// The chain stand-in on its own runtime thread.
pub struct Chain {
    _runtime: tokio::runtime::Runtime,
    pub rpc: NearRpcStandin,
}

impl Chain {
    pub fn start(scenario: Scenario) -> Chain {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let rpc = runtime
            .block_on(NearRpcStandin::start(
                "127.0.0.1:0".parse().unwrap(),
                scenario,
            ))
            .expect("start the NEAR RPC stand-in");
        Chain {
            _runtime: runtime,
            rpc,
        }
    }
}

pub struct NodeFixture {
    pub home: tempfile::TempDir,
    pub account: Key,
    pub p2p: Key,
    pub store_key: String,
    pub backup_key: String,
    /// The stand-in node's web UI (`/health`, `/public_data`).
    pub web_ui: SocketAddr,
    pub chain: Chain,
    genesis: std::sync::Arc<tempfile::NamedTempFile>,
    wrappers: tempfile::TempDir,
}

impl Default for NodeFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeFixture {
    /// A node whose keys the chain knows: the account key as a function-call
    /// key for the contract, the p2p key as the participant's tls_public_key.
    pub fn new() -> NodeFixture {
        let account = Key::random();
        let p2p = Key::random();
        let scenario = scenario(&account.public, &p2p.public);
        let genesis = std::sync::Arc::new(tempfile::NamedTempFile::new().unwrap());
        std::fs::write(
            genesis.path(),
            json!({ "chain_id": "mpc-localnet", "genesis_time": "2026-01-01T00:00:00Z" })
                .to_string(),
        )
        .unwrap();
        let fixture = NodeFixture {
            home: tempfile::tempdir().unwrap(),
            account,
            p2p,
            store_key: store_key(),
            backup_key: backup_key(),
            web_ui: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            chain: Chain::start(scenario),
            genesis,
            wrappers: tempfile::tempdir().unwrap(),
        };
        fixture.write_config_yaml();
        fixture
    }

    /// Another home for the same node: the same keys, chain and config.yaml.
    pub fn twin_of(other: &NodeFixture) -> NodeFixture {
        let twin = NodeFixture {
            home: tempfile::tempdir().unwrap(),
            account: other.account.clone(),
            p2p: other.p2p.clone(),
            store_key: other.store_key.clone(),
            backup_key: other.backup_key.clone(),
            web_ui: other.web_ui,
            chain: Chain::start(other.scenario()),
            genesis: other.genesis.clone(),
            wrappers: tempfile::tempdir().unwrap(),
        };
        std::fs::copy(other.path("config.yaml"), twin.path("config.yaml")).unwrap();
        twin
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A config.yaml with the web UI on a port of this test (the agent keeps
    /// an operator's config.yaml and updates only the account fields).
    pub fn write_config_yaml(&self) {
        let free = || format!("127.0.0.1:{}", free_port());
        let yaml = format!(
            "my_near_account_id: {ACCOUNT}\nnear_responder_account_id: {ACCOUNT}\nnumber_of_responder_keys: 1\nweb_ui: {}\nmigration_web_ui: {}\npprof_bind_address: {}\ntriple:\n  concurrency: 2\n  desired_triples_to_buffer: 16\n  timeout_sec: 60\n  parallel_triple_generation_stagger_time_sec: 1\npresignature:\n  concurrency: 2\n  desired_presignatures_to_buffer: 8\n  timeout_sec: 60\nsignature:\n  timeout_sec: 60\nckd:\n  timeout_sec: 60\nindexer:\n  validate_genesis: false\n  sync_mode: Latest\n  concurrency: 1\n  mpc_contract_id: {CONTRACT}\n  finality: optimistic\n",
            self.web_ui,
            free(),
            free()
        );
        std::fs::write(self.home().join("config.yaml"), yaml).unwrap();
    }

    /// A stand-in binary that runs with `switches` set (the agent gives the
    /// node's commands a minimal environment, so switches travel this way).
    pub fn standin_with(&self, switches: &[(&str, &str)]) -> PathBuf {
        let path = self
            .wrappers
            .path()
            .join(format!("mpc-node-{}", rand::random::<u32>()));
        let exports: String = switches
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'\n"))
            .collect();
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n{exports}exec '{}' \"$@\"\n",
                standin_node_bin().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Plants an encrypted share made with `store_key`, as the node writes one.
    pub fn plant_share(&self, store_key: &str) {
        let status = std::process::Command::new(standin_node_bin())
            .args(["write-test-share", "--home"])
            .arg(self.home())
            .args(["--store-key", store_key, "--kind", "key"])
            .status()
            .unwrap();
        assert!(status.success(), "write-test-share failed");
    }

    /// What the stand-in node does once started.
    pub fn behave(&self, behavior: &Behavior) {
        std::fs::write(
            self.home().join("standin-behavior.json"),
            serde_json::to_string(behavior).unwrap(),
        )
        .unwrap();
    }

    /// What the stand-in node's `/metrics` shows of its indexer from now on.
    pub fn indexer(&self, indexer: &Indexer) {
        indexer.write_to(&self.home().join(INDEXER_FILE));
    }

    /// Has the running stand-in node store `request` as mpc-node stores a
    /// keyset (a resharing, a domain added), and waits for what became of it.
    pub fn store_keyset(&self, request: &KeysetRequest) -> KeysetResult {
        keyshare::request(self.home(), request)
    }

    /// What the stand-in node's `/metrics` shows of its keysets from now on.
    pub fn keyset_metrics(&self, metrics: &KeysetMetrics) {
        metrics.write_to(&self.home().join(KEYSET_METRICS_FILE));
    }

    /// Makes the running stand-in node exit with `code`, once.
    pub fn exit_node(&self, code: i32) {
        std::fs::write(self.home().join(EXIT_FILE), code.to_string()).unwrap();
    }

    /// The environment of `agent run` for this node, secrets not included.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MPC_HOME_DIR", self.home().display().to_string()),
            ("MPC_ENV", "mpc-localnet".into()),
            ("MPC_ACCOUNT_ID", ACCOUNT.into()),
            ("MPC_CONTRACT_ID", CONTRACT.into()),
            ("AGENT_NEAR_RPC_URL", self.chain.rpc.url()),
            ("AGENT_RPC_TIMEOUT", "2s".into()),
            ("AGENT_NODE_BIN", standin_node_bin().display().to_string()),
            (
                "AGENT_LOCALNET_GENESIS",
                self.genesis.path().display().to_string(),
            ),
            ("AGENT_READY_URL", format!("http://{}/health", self.web_ui)),
            (
                "AGENT_NODE_METRICS_URL",
                format!("http://{}/metrics", self.web_ui),
            ),
            ("AGENT_READY_INTERVAL", "100ms".into()),
            ("AGENT_SECRETS_JITTER", "0s".into()),
            ("AGENT_HOLD_RETRY", "100ms..500ms".into()),
            ("AGENT_MIN_FREE", "1MiB".into()),
            ("AGENT_STOP_GRACE", "5s".into()),
            ("AGENT_FAIL_LINGER", "1s".into()),
        ]
    }

    /// The node's secrets, as ECS `secrets:` injection passes them.
    pub fn secret_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MPC_ACCOUNT_SK", self.account.secret.clone()),
            ("MPC_P2P_PRIVATE_KEY", self.p2p.secret.clone()),
            ("MPC_SECRET_STORE_KEY", self.store_key.clone()),
            ("MPC_BACKUP_ENCRYPTION_KEY_HEX", self.backup_key.clone()),
        ]
    }

    /// `agent run` for this node with its secrets in the environment.
    pub fn run(&self) -> AgentCommand {
        AgentCommand::new(["run"])
            .envs(self.env())
            .envs(self.secret_env())
    }

    /// `agent run` with no secret in the environment (they come from elsewhere).
    pub fn run_without_secrets(&self) -> AgentCommand {
        AgentCommand::new(["run"]).envs(self.env())
    }

    /// The chain as it is now.
    pub fn scenario(&self) -> Scenario {
        self.chain.rpc.scenario()
    }

    /// Removes every access key of the node's account on chain; returns the
    /// chain as it was, to put back.
    pub fn remove_account_keys(&self) -> Scenario {
        let healthy = self.scenario();
        let mut without_keys = healthy.clone();
        without_keys
            .accounts
            .get_mut(
                &ACCOUNT
                    .parse::<near_primitives::types::AccountId>()
                    .unwrap(),
            )
            .expect("the node's account is on chain")
            .keys
            .clear();
        self.chain.rpc.set_scenario(without_keys);
        healthy
    }

    /// The chain knows the node by these keys from now on.
    pub fn chain_knows(&self, signer: &str, p2p: &str) {
        self.chain.rpc.set_scenario(scenario(signer, p2p));
    }

    pub fn secrets_json(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.home().join("secrets.json")).unwrap())
            .unwrap()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.home().join(relative)
    }
}

/// A localnet whose contract runs with the node as participant 0.
pub fn scenario(signer: &str, p2p: &str) -> Scenario {
    serde_json::from_value(json!({
        "chain_id": "mpc-localnet",
        "latest_block_height": 1000,
        "latest_block_time": "2026-11-01T00:00:00Z",
        "accounts": { ACCOUNT: { "keys": [
            { "public_key": signer, "permission": { "FunctionCall": {
                "receiver_id": CONTRACT, "method_names": [], "allowance": null } } },
        ] } },
        "contracts": { CONTRACT: { "Running": {
            "parameters": {
                "participants": { "next_id": 1, "participants": [
                    [ACCOUNT, 0, { "url": "https://node0.test:80", "tls_public_key": p2p }],
                ] },
                "threshold": 1,
            },
        } } },
    }))
    .expect("a valid scenario")
}
