//! A node and its keyshare vault on moto: the node's world
//! ([`NodeFixture`]), a KMS key (`alias/mpc-vault`) and the vault's bucket
//! (Object Lock, versioning; or none yet), the contract's keyset on the chain
//! stand-in, and backups planted as the node writes them — a keyshare the
//! stand-in node stored on a scratch home, uploaded by the vault's own
//! `upload` — so a test of the restore does not wait on the loop that fills
//! the vault; and `agent run` whose loop fills it, looking at the home every
//! [`INTERVAL`].

use std::path::Path;
use std::time::{Duration, SystemTime};

use entrypoint::homes::{Keep, KeyshareFile, look};
use entrypoint::keyshare::KeyshareName;
use entrypoint::vault::Vault;
use serde_json::json;

use crate::harness::{Agent, AgentCommand, WAIT};
use crate::moto::{Moto, vault_target};
use crate::node_fixture::{ACCOUNT, CONTRACT, NodeFixture};
use crate::standin_node::write_test_share;

pub const BUCKET: &str = "mpc-vault";
/// The vault's location, as `AGENT_KEYSHARE_VAULT` names it.
pub const LOCATION: &str = "s3://mpc-vault/mainnet";
/// `AGENT_KEYSHARE_VAULT_INTERVAL` of [`VaultFixture::run_vaulting`].
pub const INTERVAL: Duration = Duration::from_millis(250);
/// The keyshare [`VaultFixture::keyshare_on_home`] plants.
pub const FIRST: &str = "epoch_1_with_1_domains";

pub struct VaultFixture {
    pub node: NodeFixture,
    pub moto: Moto,
    pub vault: Vault,
    /// The KMS key the vault's objects are encrypted under (its ARN).
    pub kms_key: String,
    pub kms_key_id: String,
}

impl Default for VaultFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl VaultFixture {
    /// A node whose contract holds no keyset yet, and an empty vault.
    pub fn new() -> VaultFixture {
        VaultFixture::on(Moto::start(), true)
    }

    /// On `moto` (four requests: the key, its alias and, with `bucket`, the
    /// bucket and its lock of 1 day of GOVERNANCE retention).
    pub fn on(moto: Moto, bucket: bool) -> VaultFixture {
        let node = NodeFixture::new();
        let (kms_key_id, kms_key) = moto.create_kms_key(Some("alias/mpc-vault"));
        if bucket {
            moto.create_locked_bucket(BUCKET, 1);
        }
        let vault = moto.vault(vault_target(LOCATION, Some(&kms_key)));
        VaultFixture {
            node,
            moto,
            vault,
            kms_key,
            kms_key_id,
        }
    }

    /// With the keyshare [`FIRST`] on the home, as the node stores one.
    pub fn keyshare_on_home(self) -> VaultFixture {
        self.node.plant_share(&self.node.store_key);
        self
    }

    /// The contract's `Running` state holds the keyset of `epoch`: domain
    /// `d` made at `attempts[d]`. The participant is the node, by its p2p key.
    pub fn keyset(&self, epoch: u64, attempts: &[u64]) {
        let mut scenario = self.node.scenario();
        let running = scenario
            .contracts
            .get_mut(
                &CONTRACT
                    .parse::<near_primitives::types::AccountId>()
                    .unwrap(),
            )
            .and_then(|state| state.get_mut("Running"))
            .expect("the fixture's contract runs");
        running["keyset"] = keyset(epoch, attempts);
        self.node.chain.rpc.set_scenario(scenario);
    }

    /// A keyshare of `epoch` with `domains` domains, each made at
    /// `attempt`, sealed under `store_key` and stored by the stand-in node
    /// (`mpc-node write-test-share`) as the node stores one, then uploaded
    /// to the vault.
    pub fn plant(&self, epoch: u64, domains: u64, attempt: u64, store_key: &str) -> KeyshareFile {
        let file = sealed_share(epoch, domains, attempt, store_key);
        self.moto
            .block_on(self.vault.upload(file.name, bytes(&file)))
            .expect("upload the planted backup");
        file
    }

    /// The object key of `name` in the vault.
    pub fn object_key(&self, name: KeyshareName) -> String {
        self.vault.object_key(name)
    }

    /// `s3://BUCKET/KEY` of `name`.
    pub fn url(&self, name: KeyshareName) -> String {
        format!("s3://{BUCKET}/{}", self.object_key(name))
    }

    /// The node's environment with the vault (secrets not included).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.node.env();
        env.extend(self.moto.env());
        env.push(("AGENT_KEYSHARE_VAULT", LOCATION.into()));
        env.push(("AGENT_KEYSHARE_VAULT_KMS_KEY", self.kms_key.clone()));
        env
    }

    /// `agent vault <args…>` for this node, its secrets in the environment.
    pub fn vault_command(&self, args: &[&str]) -> AgentCommand {
        AgentCommand::new(std::iter::once("vault").chain(args.iter().copied()))
            .envs(self.env())
            .envs(self.node.secret_env())
    }

    /// `agent run` for this node with the vault.
    pub fn run(&self) -> AgentCommand {
        self.node
            .run()
            .envs(self.moto.env())
            .env("AGENT_KEYSHARE_VAULT", LOCATION)
            .env("AGENT_KEYSHARE_VAULT_KMS_KEY", &self.kms_key)
    }

    /// `agent run` whose loop copies the home's keyshares to the vault
    /// every [`INTERVAL`], each upload under the KMS key's alias, with
    /// `max_behind` for `AGENT_KEYSHARE_VAULT_MAX_BEHIND`.
    pub fn run_vaulting(&self, max_behind: &str) -> AgentCommand {
        self.run()
            .env("AGENT_KEYSHARE_VAULT_KMS_KEY", "alias/mpc-vault")
            .env(
                "AGENT_KEYSHARE_VAULT_INTERVAL",
                format!("{}ms", INTERVAL.as_millis()),
            )
            .env("AGENT_KEYSHARE_VAULT_MAX_BEHIND", max_behind)
    }

    pub fn home(&self) -> &Path {
        self.node.home()
    }

    /// The bytes of `permanent_keys/<file>` on the home.
    pub fn home_bytes(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.node.path("permanent_keys").join(file)).unwrap()
    }

    /// The versions the vault holds of the home's keyshare `file`.
    pub fn versions(&self, file: &str) -> usize {
        let key = object_key_of(file);
        self.moto
            .versions(BUCKET, &key)
            .iter()
            .filter(|(k, _, _)| *k == key)
            .count()
    }
}

/// The object key of the keyshare `file` of the node's account.
/// The home's newest keyshare on `/status`, once the vault holds it.
pub fn vaulted_file(status: &agent::views::Status) -> Option<String> {
    let vault = status.vault.as_ref()?;
    vault.vaulted.as_ref()?;
    vault.newest.as_ref().map(|n| n.file.clone())
}

/// Waits until the agent's vault loop has looked at the home `looks`
/// intervals from now: what it would do in that time, it has done.
pub fn after_looks(agent: &Agent, looks: u32) {
    let from = SystemTime::now() + INTERVAL * looks;
    agent.wait_status(WAIT, |s| {
        s.vault.as_ref().is_some_and(|v| v.looked_at >= from)
    });
}

pub fn object_key_of(file: &str) -> String {
    format!("mainnet/{ACCOUNT}/{file}")
}

/// The contract's `keyset`: its epoch and each domain's key and attempt,
/// as near/mpc's `KeyForDomain` writes them.
pub fn keyset(epoch: u64, attempts: &[u64]) -> serde_json::Value {
    let domains: Vec<serde_json::Value> = attempts
        .iter()
        .enumerate()
        .map(|(domain, attempt)| {
            json!({
                "domain_id": domain,
                "key": { "Secp256k1": { "near_public_key": format!("secp256k1:{}", "3".repeat(88)) } },
                "attempt": attempt,
            })
        })
        .collect();
    json!({ "epoch_id": epoch, "domains": domains })
}

/// A keyshare as the stand-in node stores it on a scratch home: its file,
/// bytes kept.
pub fn sealed_share(epoch: u64, domains: u64, attempt: u64, store_key: &str) -> KeyshareFile {
    let scratch = tempfile::tempdir().unwrap();
    let out = write_test_share(
        scratch.path(),
        store_key,
        &[
            "--epoch",
            &epoch.to_string(),
            "--domains",
            &domains.to_string(),
            "--attempt",
            &attempt.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let seen = look(scratch.path(), Keep::Bytes).unwrap();
    seen.newest().expect("the stored keyshare").clone()
}

/// The sealed bytes of a keyshare file that was read with its bytes.
pub fn bytes(file: &KeyshareFile) -> &[u8] {
    file.bytes
        .as_deref()
        .expect("a keyshare read with its bytes")
}

/// The account's folder in the vault.
pub fn folder() -> String {
    format!("{LOCATION}/{ACCOUNT}/")
}
