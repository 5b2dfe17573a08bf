//! `agent doctor`'s vault group: whether a vault is configured, what keeps
//! its bucket from losing a keyshare (versioning, Object Lock and its
//! default retention, encryption), every keyshare of the home in it with the
//! same checksum, and the off-home judgment: the running agent's, which knows
//! the node's backup-service gauges, else made here from the home and the
//! vault by the same function. Read-only: a look at `permanent_keys/`, a
//! listing, reads of the bucket's configuration.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use entrypoint::check::Check;
use entrypoint::clients::Clients;
use entrypoint::config::DoctorConfig;
use entrypoint::homes::{self, Keep, Look, runner};
use entrypoint::vault::{Vault, VaultError, VaultListing, VaultTarget};

use crate::life::off_home;
use crate::life::views::{self, HomeKeyshare, VaultedObject};

use super::running;

/// `local`: the home is this doctor's to read (it runs in the container);
/// `agent`: the running agent's address.
pub async fn checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    local: bool,
    agent: &str,
    limit: Duration,
) -> Vec<Check> {
    let home = &config.node.node.home_dir;
    let look = async {
        if !local {
            return None;
        }
        let dir = home.clone();
        let looked = runner::off_thread(limit, "looking at permanent_keys/", move || {
            homes::look(&dir, Keep::Digests)
        })
        .await;
        Some(match looked {
            Ok(Ok(look)) => Ok(look),
            Ok(Err(e)) => Err(e.check()),
            Err(stall) => Err(stall.check(home, limit, "doctor --timeout")),
        })
    };
    let vault = async {
        let settings = config.vault.as_ref()?;
        let vault = Vault::new(
            Clients::new().s3(env, limit).await,
            VaultTarget::of(settings, &config.node.node),
        );
        let (protections, listing) = tokio::join!(vault.protections(), vault.list());
        Some((vault, protections, listing))
    };
    let agent = async {
        running::fetch(agent, limit)
            .await
            .ok()
            .and_then(|(_, status)| status.vault)
    };
    let (look, vault, agent) = tokio::join!(look, vault, agent);

    let mut checks = Vec::new();
    let look = match look {
        Some(Ok(look)) => Some(look),
        Some(Err(check)) => {
            checks.push(check);
            None
        }
        None => None,
    };
    // The newest keyshare: the home's, else as the running agent saw it.
    let newest = look
        .as_ref()
        .and_then(|l| l.newest().map(|f| HomeKeyshare::of(f, SystemTime::now())))
        .or_else(|| agent.as_ref().and_then(|a| a.newest.clone()));
    checks.push(configured(config, newest.as_ref()));
    let Some((vault, protections, listing)) = vault else {
        checks.push(off_home_check(
            agent.as_ref(),
            local_view(config, newest, None, None),
        ));
        return checks;
    };
    let location = &vault.target().location;
    checks.extend(protections.checks(&location.bucket, vault.target().kms_key.as_deref()));
    match (&look, &listing) {
        (Some(look), Ok(listing)) => checks.extend(in_the_vault(&vault, look, listing)),
        (Some(_), Err(e)) => checks.push(unlisted(e)),
        (None, _) => checks.push(Check::skipped(
            "vault.keyshares",
            format!(
                "not checked: MPC_HOME_DIR ({}) is the container's; run doctor inside the container to compare the home's keyshares with the vault",
                home.display()
            ),
        )),
    }
    let vaulted = newest.as_ref().and_then(|n| {
        let listing = listing.as_ref().ok()?;
        let object = listing
            .keyshares
            .iter()
            .find(|o| o.name.to_string() == n.file)?;
        (object.sha256.as_deref() == Some(n.sha256.as_str())).then(|| VaultedObject {
            url: location.url_of(&object.key),
            key: object.key.clone(),
            version_id: object.version_id.clone(),
            at: object.last_modified.unwrap_or(SystemTime::UNIX_EPOCH),
            sha256: n.sha256.clone(),
        })
    });
    let listing_error = listing.as_ref().err().map(|e| e.check("vault.list"));
    checks.push(off_home_check(
        agent.as_ref(),
        local_view(config, newest, vaulted, listing_error),
    ));
    checks
}

/// `vault.configured`: a keyshare on the home and no vault is a warning.
fn configured(config: &DoctorConfig, newest: Option<&HomeKeyshare>) -> Check {
    const ID: &str = "vault.configured";
    match (&config.vault, newest) {
        (Some(vault), _) => Check::ok(
            ID,
            format!(
                "AGENT_KEYSHARE_VAULT is {}: the keyshares of {} go to {}",
                vault.location,
                config.node.node.account_id,
                vault.location.url_of(
                    &vault
                        .location
                        .account_prefix(config.node.node.account_id.as_str())
                )
            ),
        ),
        (None, Some(newest)) => Check::warn(
            ID,
            format!(
                "no vault is configured (AGENT_KEYSHARE_VAULT is unset) and the home holds keyshares (the newest: permanent_keys/{}): unless a backup service is served them, they live only on the home",
                newest.file
            ),
            "set AGENT_KEYSHARE_VAULT=s3://BUCKET[/PREFIX] to an Object Lock bucket (the stack's KeyshareVault; README: Keyshare vault)",
        ),
        (None, None) => Check::skipped(
            ID,
            "no vault is configured (AGENT_KEYSHARE_VAULT is unset); the home holds no keyshare yet",
        ),
    }
}

/// One check per keyshare of the home: in the vault with the same SHA-256,
/// missing, or other bytes there.
fn in_the_vault(vault: &Vault, look: &Look, listing: &VaultListing) -> Vec<Check> {
    if look.files.is_empty() {
        return vec![Check::skipped(
            "vault.keyshares",
            "the home holds no keyshare to compare with the vault",
        )];
    }
    let location = &vault.target().location;
    look.files
        .iter()
        .map(|file| {
            let id = format!("vault.keyshare.{}", file.name);
            let url = location.url_of(&vault.object_key(file.name));
            match listing.keyshares.iter().find(|o| o.name == file.name) {
                None => Check::warn(
                    id,
                    format!("permanent_keys/{} (SHA-256 {}) is not in the vault: {url} does not exist", file.name, file.sha256),
                    "a running agent with AGENT_KEYSHARE_VAULT uploads it within AGENT_KEYSHARE_VAULT_INTERVAL; if it does not, read /status.vault.last_error",
                ),
                Some(object) if object.sha256.as_deref() == Some(file.sha256.as_str()) => {
                    Check::ok(
                        id,
                        format!(
                            "permanent_keys/{} is in the vault with the same SHA-256 {}: {url} (version {})",
                            file.name,
                            file.sha256,
                            object.version_id.as_deref().unwrap_or("none")
                        ),
                    )
                }
                Some(object) => Check::fail(
                    id,
                    format!(
                        "{url} (version {}) holds other bytes (SHA-256 {}) than the home's permanent_keys/{} (SHA-256 {})",
                        object.version_id.as_deref().unwrap_or("none"),
                        object.sha256.as_deref().unwrap_or("not recorded"),
                        file.name,
                        file.sha256
                    ),
                    "find out which keyshare the network holds (two homes wrote this account's keyset, or the home was restored from elsewhere); the agent never overwrites the vault's copy; keep both until you know",
                ),
            }
        })
        .collect()
}

fn unlisted(e: &VaultError) -> Check {
    Check::warn("vault.keyshares", e.cause.clone(), e.fix.clone())
}

/// The view the agent would judge, from what this doctor read.
fn local_view(
    config: &DoctorConfig,
    newest: Option<HomeKeyshare>,
    vaulted: Option<VaultedObject>,
    last_error: Option<Check>,
) -> views::Vault {
    views::Vault {
        location: config.vault.as_ref().map(|v| v.location.to_string()),
        looked_at: SystemTime::now(),
        newest,
        vaulted,
        behind_seconds: 0.0,
        max_behind_seconds: config.keyshares.max_behind.as_secs_f64(),
        last_error,
        refused: Vec::new(),
        backup_service: None,
        off_home: Check::skipped(off_home::ID, "judged below"),
    }
}

/// The running agent's judgment (it reads the node's backup-service
/// gauges), else this doctor's of `local`.
fn off_home_check(agent: Option<&views::Vault>, local: views::Vault) -> Check {
    match agent {
        Some(agent) => {
            let mut check = agent.off_home.clone();
            check.cause = format!("{} (as the running agent judged it)", check.cause);
            check
        }
        None => off_home::judge(&local, SystemTime::now()).check,
    }
}
