//! The home, read-only: the filesystem and its mount, free space, owner and
//! write permission (without writing), the lock holder (without taking the
//! lock), the init marker, what the next boot would change in config.json,
//! config.yaml and secrets.json, and the store key against the shares.

use entrypoint::check::Check;
use entrypoint::config::Config;
use entrypoint::homes::config_json::{NearConfigInputs, pending_config_json};
use entrypoint::homes::config_yaml::{MpcConfigInputs, pending_config_yaml};
use entrypoint::homes::secrets_file::{SecretsJsonAction, plan_secrets_json};
use entrypoint::homes::store_key::{StoreKeyVerdict, shares, verify_store_key};
use entrypoint::homes::{Edit, NodeUser, filesystem, init, lock};
use entrypoint::keys::KeyReport;
use entrypoint::secrets::NodeSecrets;

pub fn checks(
    config: &Config,
    secrets: Option<&NodeSecrets>,
    keys: Option<&KeyReport>,
) -> Vec<Check> {
    let node = config
        .node
        .as_ref()
        .expect("doctor reads the node settings");
    let homes = config
        .homes
        .as_ref()
        .expect("doctor reads the home settings");
    let home = node.home_dir.as_path();
    let mut checks = Vec::new();
    let user = match NodeUser::resolve(homes.node_user.as_ref(), home) {
        Ok(user) => user,
        Err(e) => return vec![e.check()],
    };
    match filesystem::inspect(home) {
        Ok(fs) => checks.extend(fs.checks(homes, &user)),
        Err(e) => return vec![e.check()],
    }
    checks.push(
        match nix::unistd::access(home, nix::unistd::AccessFlags::W_OK) {
            Ok(()) => Check::ok(
                "homes.writable",
                format!("{} is writable (checked without writing)", home.display()),
            ),
            Err(e) => Check::fail(
                "homes.writable",
                format!("{} is not writable: {e}", home.display()),
                "mount the volume read-write (no readOnly in the task definition's mountPoints)",
            ),
        },
    );
    checks.push(match (lock::is_held(home), lock::read_holder(home)) {
        (Ok(true), Ok(holder)) => Check::ok(
            "homes.lock",
            format!(
                "held by {}",
                holder.map_or_else(
                    || "an agent that left no holder record".to_string(),
                    |h| h.to_string()
                )
            ),
        ),
        (Ok(false), _) => Check::ok("homes.lock", "free: no agent runs a node on this home"),
        (Err(e), _) | (_, Err(e)) => e.check(),
    });
    checks.push(match init::read_marker(home) {
        Ok(Some(marker)) if marker.chain == node.chain.as_str() => Check::ok(
            "homes.init",
            format!(
                "initialized for {} by agent {}",
                marker.chain, marker.agent_version
            ),
        ),
        Ok(Some(marker)) => Check::fail(
            "homes.init",
            format!(
                "initialized for {}, but MPC_ENV is {}",
                marker.chain,
                node.chain.as_str()
            ),
            "set MPC_ENV to the chain this home belongs to, or give this node another home",
        ),
        Ok(None) => Check::ok(
            "homes.init",
            "not initialized yet: the first boot runs mpc-node init",
        ),
        Err(e) => e.check(),
    });
    checks.push(drift(
        "homes.config.json",
        pending_config_json(home, &NearConfigInputs::new(node)),
    ));
    checks.push(drift(
        "homes.config.yaml",
        pending_config_yaml(home, &MpcConfigInputs::new(node)),
    ));
    if let Some(secrets) = secrets {
        let facts = keys.and_then(KeyReport::chain_facts);
        checks.push(match plan_secrets_json(home, &secrets.p2p, &secrets.account, homes.secrets_json, facts.as_ref()) {
            Ok(plan) => {
                let drift: Vec<String> = plan
                    .drift
                    .iter()
                    .map(|d| format!("{}: file {} vs secrets {}", d.field, d.file.join(","), d.validated.join(",")))
                    .collect();
                match plan.action {
                    SecretsJsonAction::Unchanged => Check::ok("homes.secrets.json", "secrets.json holds the validated keys"),
                    SecretsJsonAction::Created => Check::ok("homes.secrets.json", "no secrets.json yet: the next boot writes it from the validated keys"),
                    SecretsJsonAction::Replaced => Check::warn(
                        "homes.secrets.json",
                        format!("secrets.json is stale ({}); the next boot replaces it (keeping a backup): {}", drift.join("; "), plan.reason),
                        "nothing to do: restart the task, or run agent init",
                    ),
                    SecretsJsonAction::Kept => Check::warn(
                        "homes.secrets.json",
                        format!("secrets.json differs from the validated secrets ({}) and stays: {}", drift.join("; "), plan.reason),
                        "make Secrets Manager and secrets.json agree: put the keys the chain accepts into both",
                    ),
                }
                .with_detail(serde_json::to_value(&plan).unwrap_or_default())
            }
            Err(e) => e.check(),
        });
        checks.push(match &secrets.store_key {
            Some(key) => match verify_store_key(home, key) {
                Ok(verdict) => verdict.check(),
                Err(e) => e.check(),
            },
            None => match shares(home) {
                Ok(found) if found.is_empty() => StoreKeyVerdict::NoShares.check(),
                Ok(found) => Check::fail(
                    "homes.store_key",
                    format!(
                        "MPC_SECRET_STORE_KEY is set nowhere, but the home holds shares ({})",
                        found
                            .iter()
                            .map(|s| s.path.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "restore the store key these shares were written with",
                ),
                Err(e) => e.check(),
            },
        });
    }
    checks
}

/// What the next boot would change in a file the node reads.
fn drift(id: &str, pending: Result<Option<Vec<Edit>>, entrypoint::homes::HomeError>) -> Check {
    match pending {
        Ok(None) => Check::ok(id, "not there yet: the boot writes it"),
        Ok(Some(edits)) if edits.is_empty() => Check::ok(id, "as the agent writes it"),
        Ok(Some(edits)) => Check::warn(
            id,
            format!(
                "the next boot changes {} (a backup is kept)",
                edits.iter().map(|e| e.path.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "nothing to do if the values were changed by hand on purpose: the agent sets them on every boot",
        )
        .with_detail(serde_json::to_value(&edits).unwrap_or_default()),
        Err(e) => e.check(),
    }
}
