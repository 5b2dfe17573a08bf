//! The restore drill in doctor's vault group, on request (`--drill`): the
//! vault's newest backup downloaded and judged as `agent vault verify`
//! judges it, with the secrets and the chain doctor already read. Not on
//! every run: it downloads a keyshare.

use std::collections::BTreeMap;

use entrypoint::check::Check;
use entrypoint::clients::Clients;
use entrypoint::config::DoctorConfig;
use entrypoint::restore::{self, Against, Choice, check_ids};
use entrypoint::vault::Vault;
use entrypoint::verify::Verified;

/// The drill's checks (`restore.*`): skipped, saying why, when there is no
/// vault or nothing valid to judge with.
pub async fn checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    verified: Option<&Verified>,
    clients: &Clients,
) -> Vec<Check> {
    let Some(settings) = &config.vault else {
        return vec![Check::skipped(
            check_ids::BACKUP,
            "not drilled: no vault is configured (AGENT_KEYSHARE_VAULT)",
        )];
    };
    let Some(verified) = verified else {
        return vec![Check::skipped(
            check_ids::BACKUP,
            "not drilled: the secrets and the chain were not read (see the secrets and keys groups)",
        )];
    };
    let vault = Vault::open(clients, env, settings, &config.node.node).await;
    let fetched = restore::fetch(&vault, Choice::Newest).await;
    let against = Against {
        store_key: verified.secrets.store_key.as_ref(),
        keys: &verified.keys,
        allow_stale: false,
    };
    match restore::judge(fetched, &against) {
        Ok(judged) => judged.checks,
        Err(stop) => stop.into_checks(),
    }
}
