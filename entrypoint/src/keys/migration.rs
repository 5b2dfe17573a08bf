//! The signer contract's `migration_info()` answer, read for one account: a
//! node migration moves an account's node to new keys, and until the new node
//! receives the keyshares and concludes it, the contract still lists the old
//! `tls_public_key`. The wire shape is
//! `{account_id: [backup_service_info | null, destination_node_info | null]}`
//! with `destination_node_info = {signer_account_pk, destination_node_info:
//! {url, tls_public_key}}`; every other field is ignored.

use std::collections::BTreeMap;

use near_crypto::PublicKey;
use near_primitives::types::AccountId;
use serde::{Deserialize, Serialize};

use super::rpc::MAX_DETAIL_CHARS;
use crate::excerpt::excerpt;

/// What `migration_info()` says of one account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum MigrationFinding {
    /// The contract has no `migration_info` view (a contract before node
    /// migrations, or no contract).
    NoView,
    /// The view answered; `destination` is the node the account migrates to.
    Read {
        backup_service_key: Option<PublicKey>,
        destination: Option<Box<Destination>>,
    },
    /// An answer that is not the view's shape, or a view that failed otherwise.
    Unreadable { error: String },
}

/// The node an account migrates to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// The key the new node signs its transactions with.
    pub signer_account_pk: PublicKey,
    pub url: String,
    /// The new node's p2p key.
    pub tls_public_key: PublicKey,
}

impl MigrationFinding {
    /// Reads the bytes of a `migration_info()` answer for `account_id`.
    pub fn read(bytes: &[u8], account_id: &AccountId) -> MigrationFinding {
        match serde_json::from_slice::<BTreeMap<AccountId, WireEntry>>(bytes) {
            Ok(mut all) => {
                let WireEntry(backup, destination) = all.remove(account_id).unwrap_or_default();
                MigrationFinding::Read {
                    backup_service_key: backup.map(|b| b.public_key),
                    destination: destination.map(|d| {
                        Box::new(Destination {
                            signer_account_pk: d.signer_account_pk,
                            url: excerpt(&d.destination_node_info.url, 256),
                            tls_public_key: d.destination_node_info.tls_public_key,
                        })
                    }),
                }
            }
            Err(err) => MigrationFinding::Unreadable {
                error: excerpt(
                    &format!("migration_info is not the signer contract's shape: {err}"),
                    MAX_DETAIL_CHARS,
                ),
            },
        }
    }

    /// The destination, when a migration of the account is under way.
    pub fn destination(&self) -> Option<&Destination> {
        match self {
            MigrationFinding::Read { destination, .. } => destination.as_deref(),
            _ => None,
        }
    }
}

#[derive(Default, Deserialize)]
struct WireEntry(Option<WireBackup>, Option<WireDestination>);

#[derive(Deserialize)]
struct WireBackup {
    public_key: PublicKey,
}

#[derive(Deserialize)]
struct WireDestination {
    signer_account_pk: PublicKey,
    destination_node_info: WireParticipantInfo,
}

#[derive(Deserialize)]
struct WireParticipantInfo {
    url: String,
    tls_public_key: PublicKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The destination of near/mpc's wire format catalog.
    const KEY: &str = "ed25519:US517G5965aydkZ46HS38QLi7UQiSojurfbQfKCELFx";

    fn account(id: &str) -> AccountId {
        id.parse().unwrap()
    }

    #[test]
    fn the_accounts_destination_is_read_and_other_accounts_ignored() {
        let answer = json!({
            "node0.near": [
                {"public_key": KEY},
                {"signer_account_pk": KEY, "destination_node_info": {"url": "http://localhost:7", "tls_public_key": KEY}}
            ],
            "node1.near": [{"public_key": KEY}, null],
        });
        let bytes = answer.to_string();
        let found = MigrationFinding::read(bytes.as_bytes(), &account("node0.near"));
        let destination = found.destination().expect("a destination");
        assert_eq!(destination.url, "http://localhost:7");
        assert_eq!(destination.tls_public_key.to_string(), KEY);
        let other = MigrationFinding::read(bytes.as_bytes(), &account("node1.near"));
        assert!(matches!(
            other,
            MigrationFinding::Read {
                backup_service_key: Some(_),
                destination: None
            }
        ));
        let absent = MigrationFinding::read(bytes.as_bytes(), &account("node9.near"));
        assert_eq!(absent.destination(), None);
        assert!(matches!(
            MigrationFinding::read(b"[1]", &account("node0.near")),
            MigrationFinding::Unreadable { .. }
        ));
    }
}
