//! A node whose agent copies its keyshares to a vault on moto: a KMS key
//! (`alias/mpc-vault`), an Object Lock bucket (or none yet), the node's world
//! ([`NodeFixture`]) with the keyshare of epoch 1 on its home, and `agent
//! run` with the vault's settings, looking at the home every [`INTERVAL`].

use std::time::Duration;

use crate::harness::AgentCommand;
use crate::moto::Moto;
use crate::node_fixture::{ACCOUNT, NodeFixture};

pub const BUCKET: &str = "mpc-vault";
pub const VAULT: &str = "s3://mpc-vault/mainnet";
/// `AGENT_KEYSHARE_VAULT_INTERVAL` of these tests.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// The keyshare the home holds from the start.
pub const FIRST: &str = "epoch_1_with_1_domains";

pub struct VaultWorld {
    pub moto: Moto,
    pub node: NodeFixture,
    pub kms_key_id: String,
    pub kms_key_arn: String,
}

impl Default for VaultWorld {
    fn default() -> Self {
        VaultWorld::new()
    }
}

impl VaultWorld {
    /// With the bucket (Object Lock, 1 day of GOVERNANCE retention).
    pub fn new() -> VaultWorld {
        VaultWorld::on(Moto::start(), true)
    }

    /// On `moto` (four requests: the key, its alias and, with `bucket`, the
    /// bucket and its lock).
    pub fn on(moto: Moto, bucket: bool) -> VaultWorld {
        let (kms_key_id, kms_key_arn) = moto.create_kms_key(Some("alias/mpc-vault"));
        if bucket {
            moto.create_locked_bucket(BUCKET, 1);
        }
        let node = NodeFixture::new();
        node.plant_share(&node.store_key);
        VaultWorld {
            moto,
            node,
            kms_key_id,
            kms_key_arn,
        }
    }

    /// `agent run` with the vault, each upload under the KMS key, and
    /// `max_behind` for `AGENT_KEYSHARE_VAULT_MAX_BEHIND`.
    pub fn run(&self, max_behind: &str) -> AgentCommand {
        self.node
            .run()
            .envs(self.moto.env())
            .env("AGENT_KEYSHARE_VAULT", VAULT)
            .env("AGENT_KEYSHARE_VAULT_KMS_KEY", "alias/mpc-vault")
            .env(
                "AGENT_KEYSHARE_VAULT_INTERVAL",
                format!("{}ms", INTERVAL.as_millis()),
            )
            .env("AGENT_KEYSHARE_VAULT_MAX_BEHIND", max_behind)
    }

    /// The object key of the home's keyshare `file`.
    pub fn object_key(file: &str) -> String {
        format!("mainnet/{ACCOUNT}/{file}")
    }

    /// The bytes of `permanent_keys/<file>` on the home.
    pub fn home_bytes(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.node.path("permanent_keys").join(file)).unwrap()
    }

    /// The versions the vault holds of the home's keyshare `file`.
    pub fn versions(&self, file: &str) -> usize {
        let key = VaultWorld::object_key(file);
        self.moto
            .versions(BUCKET, &key)
            .iter()
            .filter(|(k, _, _)| *k == key)
            .count()
    }
}
