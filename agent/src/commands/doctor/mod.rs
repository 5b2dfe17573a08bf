//! `agent doctor`: every check of the boot pipeline plus the AWS side and the
//! running agent, read-only (no lock taken, nothing written, nothing started),
//! concurrently, each group within its own timeout. A table for a person or a
//! stable JSON document; exit 0 all good, 1 a failure, 2 warnings only.
//!
//! It runs where the operator is: inside the container (`docker exec`), from
//! the container's environment; or on the instance (over SSM), where that
//! environment is not at hand, from the running agent's `/config`.

mod alarms;
mod aws;
mod drill;
mod running;
mod vault;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use entrypoint::check::{Check, Status};
use entrypoint::clients::Clients;
use entrypoint::config::settings::Id;
use entrypoint::config::{Command, DoctorConfig, Layers, LogFormat};
use entrypoint::homes::{self, HomeInputs, Keep, NodeUser, WriteTest};
use entrypoint::keys::{self, KeyReport};
use entrypoint::launch;
use entrypoint::node_binary;
use entrypoint::probe;
use entrypoint::restore;
use entrypoint::secrets::SecretName;
use entrypoint::verify::{self, Step, VerifyInputs};

use crate::life::views::{ConfigOrigin, ConfigView, DoctorEntry, DoctorReport};
use crate::node::commands::DoctorCommands;
use crate::{exit, logging, render};

pub struct Options {
    pub json: bool,
    /// Only these groups or check ids (prefixes).
    pub only: Vec<String>,
    pub list: bool,
    pub timeout: Duration,
    /// The running agent to take the configuration from.
    pub from: Option<String>,
    /// Run the restore drill in the vault group.
    pub drill: bool,
}

/// The groups of checks, in the order they are shown.
const GROUPS: [(&str, &str); 9] = [
    (
        "config",
        "the settings: every problem of the environment and the config file",
    ),
    (
        "secrets",
        "each secret: source, version, validity, public key or fingerprint",
    ),
    (
        "keys",
        "the keys against the chain: RPC, chain id, access key, contract state, participant",
    ),
    (
        "home",
        "filesystem and mount, free space, owner, lock holder, init marker, tier3 address, config.json / config.yaml / secrets.json drift, store key against the shares",
    ),
    (
        "launch",
        "the image hash the node reports (ECS container metadata) against the contract's allowed_docker_image_hashes, /tmp writable for the node's allowed-hashes file",
    ),
    (
        "vault",
        "the keyshare vault: configured or not, the bucket's versioning, Object Lock and encryption, every keyshare of the home in it with the same checksum, the newest off the home; with --drill, the newest backup judged as agent vault verify judges it",
    ),
    (
        "aws",
        "credentials and caller identity, clock skew, EFS file system, mount target in this AZ, port 2049",
    ),
    (
        "agent",
        "the running agent's /status: phase, restarts, last exit, reasons",
    ),
    (
        "alarms",
        "the CloudWatch alarms on this node's metrics (AGENT_CLOUDWATCH_NAMESPACE, Node dimension) in ALARM or INSUFFICIENT_DATA: reason and since when",
    ),
];

pub fn main(layers: Layers, options: Options) -> i32 {
    logging::init(
        LogFormat::from_layers(&layers),
        layers.env_value(Id::RustLog),
        logging::Output::Stderr,
    );
    if options.list {
        for (group, what) in GROUPS {
            println!("{group:<8} {what}");
        }
        return 0;
    }
    let runtime = match crate::process::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let started = Instant::now();
    let (origin, entries) = runtime.block_on(diagnose(layers, &options));
    let entries: Vec<DoctorEntry> = entries
        .into_iter()
        .filter(|e| {
            options.only.is_empty()
                || options
                    .only
                    .iter()
                    .any(|o| e.group == *o || e.check.id.starts_with(o.as_str()))
        })
        .collect();
    let report = DoctorReport::new(origin, entries, started.elapsed());
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        match &report.configuration {
            ConfigOrigin::Environment => {
                println!("agent doctor: configuration from this environment\n")
            }
            ConfigOrigin::RunningAgent { url, ignored } => {
                println!("agent doctor: configuration from the running agent at {url}");
                if !ignored.is_empty() {
                    println!("  not taken from its /config: {}", ignored.join(", "));
                }
                println!();
            }
        }
        for (group, _) in GROUPS {
            let checks: Vec<Check> = report
                .checks
                .iter()
                .filter(|e| e.group == group)
                .map(|e| e.check.clone())
                .collect();
            if !checks.is_empty() {
                render::print_section(group, &checks);
            }
        }
        render::print_problems(report.checks.iter().map(|e| &e.check));
    }
    match report.status {
        Status::Fail => exit::UNHEALTHY,
        Status::Warn => exit::WARNINGS,
        Status::Ok | Status::Skipped => 0,
    }
}

/// Runs every group; the configuration first, then the rest concurrently.
async fn diagnose(layers: Layers, options: &Options) -> (ConfigOrigin, Vec<DoctorEntry>) {
    let (origin, layers, agent_config) = match source(layers, options).await {
        Ok(found) => found,
        Err(check) => return (ConfigOrigin::Environment, vec![entry("config", check)]),
    };
    let mut entries = Vec::new();
    let config = match DoctorConfig::resolve(&layers) {
        Ok(config) => {
            entries.push(entry(
                "config",
                Check::ok(
                    "config",
                    format!(
                        "the configuration is valid ({} settings)",
                        config.base.effective.len()
                    ),
                ),
            ));
            Some(config)
        }
        Err(e) => {
            entries.extend(e.0.into_iter().map(|c| entry("config", c)));
            None
        }
    };
    let agent_url = options.from.clone().unwrap_or_else(|| {
        config
            .as_ref()
            .map(|c| c.base.local_url(""))
            .unwrap_or_else(|| "http://127.0.0.1:8090".into())
    });
    let limit = options.timeout;
    let node_checks = async {
        let Some(config) = &config else {
            return vec![entry(
                "secrets",
                Check::skipped("secrets", "not checked: the configuration has problems"),
            )];
        };
        node_checks(
            config,
            &layers.env,
            agent_config.as_ref(),
            limit,
            options.drill,
        )
        .await
    };
    let aws_checks = async {
        match &config {
            Some(config) => bounded("aws", limit, aws::checks(config, &layers.env, limit)).await,
            None => Vec::new(),
        }
    };
    let agent_checks = bounded("agent", limit, running::checks(&agent_url, limit));
    let alarm_checks = async {
        match &config {
            Some(config) => {
                bounded("alarms", limit, alarms::checks(config, &layers.env, limit)).await
            }
            None => Vec::new(),
        }
    };
    let vault_checks = async {
        match &config {
            Some(config) => {
                let local = agent_config.is_none();
                let checks = vault::checks(config, &layers.env, local, &agent_url, limit);
                bounded("vault", limit, checks).await
            }
            None => Vec::new(),
        }
    };
    let (node, aws, agent, vault, alarms) = tokio::join!(
        node_checks,
        aws_checks,
        agent_checks,
        vault_checks,
        alarm_checks
    );
    entries.extend(node);
    entries.extend(aws.into_iter().map(|c| entry("aws", c)));
    entries.extend(vault.into_iter().map(|c| entry("vault", c)));
    entries.extend(agent.into_iter().map(|c| entry("agent", c)));
    entries.extend(alarms.into_iter().map(|c| entry("alarms", c)));
    (origin, entries)
}

/// The configuration's layers: this environment when it has the node's, else
/// the running agent's `/config`.
async fn source(
    layers: Layers,
    options: &Options,
) -> Result<(ConfigOrigin, Layers, Option<ConfigView>), Check> {
    let local = options.from.is_none() && layers.env_value(Id::MpcHomeDir).is_some();
    if local {
        return Ok((ConfigOrigin::Environment, layers, None));
    }
    let base = options.from.clone().unwrap_or_else(|| {
        let listen = layers
            .env_value(Id::Listen)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| "127.0.0.1:8090".parse().expect("a valid address"));
        entrypoint::config::local_url(listen, "")
    });
    let url = format!("{}/config", base.trim_end_matches('/'));
    let body = match probe::get(&url, options.timeout).await {
        Ok((200, body)) => body,
        Ok((status, _)) => return Err(no_configuration(&url, &format!("it answered {status}"))),
        Err(e) => return Err(no_configuration(&url, &e)),
    };
    let RemoteConfig {
        config,
        env,
        ignored,
    } = remote_config(&body, &layers.env).map_err(|e| no_configuration(&url, &e))?;
    Ok((
        ConfigOrigin::RunningAgent { url: base, ignored },
        Layers { env, ..layers },
        Some(config),
    ))
}

/// What `doctor --from` takes from a running agent's `/config`.
pub struct RemoteConfig {
    /// The answer as read.
    pub config: ConfigView,
    /// This environment completed by it (see [`remote_settings`]).
    pub env: BTreeMap<String, String>,
    /// The names left out, each with why.
    pub ignored: Vec<String>,
}

/// Reads a running agent's `/config` answer; `Err` says why it cannot be read.
pub fn remote_config(body: &[u8], env: &BTreeMap<String, String>) -> Result<RemoteConfig, String> {
    let config: ConfigView = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let (env, ignored) = remote_settings(env, &config);
    Ok(RemoteConfig {
        config,
        env,
        ignored,
    })
}

/// This environment, completed by the running agent's `/config` with only
/// the settings this doctor reads and whose value `/config` shows whole;
/// and the names left out, each with why. This environment wins (e.g. an RPC
/// URL with its API key). A name this doctor does not know (an `AWS_*`
/// variable, say) is never taken: it could steer where the checks send the
/// instance's credentials.
fn remote_settings(
    local: &BTreeMap<String, String>,
    config: &ConfigView,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = local.clone();
    let mut ignored = Vec::new();
    for setting in &config.settings.settings {
        let name = entrypoint::excerpt::excerpt(&setting.name, 64);
        let Some(value) = &setting.value else {
            continue;
        };
        match entrypoint::config::settings::find(&setting.name) {
            None => ignored.push(format!("{name} (not a setting this doctor knows)")),
            Some(known) if !known.read_by(Command::Doctor) => {}
            Some(known) if known.is_url() && (setting.redacted || !shown_whole(value)) => ignored
                .push(format!(
                    "{name} (a URL, shown without its path; set it in this environment)"
                )),
            Some(_) => {
                env.entry(setting.name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
    }
    (env, ignored)
}

/// Every URL of `value` is all there is to it: scheme, host and port.
fn shown_whole(value: &str) -> bool {
    value.split(',').all(|url| {
        let shown = keys::shown_url(url.trim());
        !shown.ends_with("/…") && shown == url.trim().trim_end_matches('/')
    })
}

fn no_configuration(url: &str, why: &str) -> Check {
    Check::fail(
        "config",
        format!(
            "no configuration: this environment has no MPC_HOME_DIR and the running agent's {url} cannot be read ({why})"
        ),
        "run doctor inside the container (docker exec <container> agent doctor), or point --from at the agent (http://HOST:8090)",
    )
}

/// Secrets, keys against the chain and the home, in that order: each needs the
/// one before. From this environment, through the same `verify` and home
/// inspection as `agent run`; on the instance, from what the running agent
/// validated.
async fn node_checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    agent_config: Option<&ConfigView>,
    limit: Duration,
    drill: bool,
) -> Vec<DoctorEntry> {
    let Some(agent) = agent_config else {
        return local_checks(config, env, limit, drill).await;
    };
    let mut entries = agent_secrets(agent);
    if drill {
        entries.push(entry(
            "vault",
            Check::skipped(
                entrypoint::restore::check_ids::BACKUP,
                "not drilled: the store key is the container's; run doctor --drill inside the container",
            ),
        ));
    }
    let node = &config.node.node;
    let Some((signer, p2p)) = agent_public_keys(agent) else {
        entries.push(entry(
            "keys",
            Check::skipped("keys", "not checked: no valid keys to compare"),
        ));
        return entries;
    };
    let from = "the running agent's secret".to_string();
    let input = keys::KeysInput {
        chain: node.chain,
        account_id: node.account_id.clone(),
        contract_id: node.contract_id.clone(),
        signer_public_key: signer,
        p2p_public_key: p2p,
        signer_key_source: from.clone(),
        p2p_key_source: from,
    };
    match tokio::time::timeout(
        limit,
        keys::check(&config.node.chain_rpc, &input, &Clients::new()),
    )
    .await
    {
        Ok(report) => entries.extend(report.checks().into_iter().map(|c| entry("keys", c))),
        Err(_) => entries.push(entry("keys", rpc_timed_out(config, limit))),
    }
    entries.push(entry(
        "home",
        Check::skipped(
            "home",
            format!(
                "not checked: MPC_HOME_DIR ({}) is the container's path; run doctor inside the container to check the home",
                node.home_dir.display()
            ),
        ),
    ));
    entries.push(entry(
        "launch",
        Check::skipped(
            "launch",
            "not checked: the image digest and /tmp are the container's; run doctor inside the container, or read launch.image_hash on the running agent's /status",
        ),
    ));
    entries
}

/// The node's checks from this environment: what `agent run` would judge.
async fn local_checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    limit: Duration,
    drill: bool,
) -> Vec<DoctorEntry> {
    let mut entries = Vec::new();
    let mut secret_checks: Option<Vec<Check>> = None;
    let clients = Clients::new();
    // The secrets and the chain are read at once: one group's limit.
    let verified = tokio::time::timeout(
        limit,
        verify::verify(
            VerifyInputs::new(&config.node, &config.homes, env, &clients),
            |step| {
                if let Step::Secrets { checks, .. } = step {
                    secret_checks = Some(checks.to_vec());
                }
            },
        ),
    )
    .await;
    let verified = match verified {
        Ok(Ok(verified)) => Some(verified),
        Ok(Err(stop)) => {
            entries.extend(stop.into_checks().into_iter().map(|c| entry("secrets", c)));
            entries.push(entry(
                "keys",
                Check::skipped("keys", "not checked: no valid keys to compare"),
            ));
            None
        }
        Err(_) => {
            match secret_checks {
                Some(checks) => {
                    entries.extend(checks.into_iter().map(|c| entry("secrets", c)));
                    entries.push(entry("keys", rpc_timed_out(config, limit)));
                }
                None => entries.push(entry("secrets", timed_out("secrets", limit))),
            }
            None
        }
    };
    if let Some(verified) = &verified {
        entries.extend(
            verified
                .secret_checks
                .iter()
                .cloned()
                .map(|c| entry("secrets", c)),
        );
        entries.extend(
            verified
                .key_checks
                .iter()
                .cloned()
                .map(|c| entry("keys", c)),
        );
    }
    if drill {
        let drilled = drill::checks(config, env, verified.as_ref(), &clients);
        let drilled = bounded("vault", limit, drilled).await;
        entries.extend(drilled.into_iter().map(|c| entry("vault", c)));
    }
    let (home, user) = home_checks(config, env, verified.as_ref(), limit).await;
    entries.extend(home.into_iter().map(|c| entry("home", c)));
    let launch = bounded(
        "launch",
        limit,
        launch_checks(config, env, verified.as_ref(), user.as_ref()),
    )
    .await;
    entries.extend(launch.into_iter().map(|c| entry("launch", c)));
    entries
}

/// The launch stage's checks beside its command, as `agent run` makes them:
/// the image hash the node would report against the contract, and the
/// node's allowed-hashes file. `user` is the node's, when the home told it.
async fn launch_checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    verified: Option<&verify::Verified>,
    user: Option<&NodeUser>,
) -> Vec<Check> {
    let image = match verified {
        Some(verified) => {
            let node = &config.node.node;
            let commands = DoctorCommands::new(env);
            let launch = node_binary::kind(config.homes.start_mode, &node.bin, &commands).await;
            let reported = launch::image::node_image_hash(launch, env).await;
            launch::image::image_hash_check(&verified.keys, &reported)
        }
        None => Check::skipped(
            "launch.image_hash",
            "not checked: the keys were not checked against the chain",
        ),
    };
    let allowed_hashes = match user {
        Some(user) => launch::image::allowed_hashes_dir_check(user),
        None => Check::skipped(
            "launch.allowed_hashes_file",
            "not checked: the node's user is not known (see the home group: MPC_HOME_DIR, AGENT_NODE_USER)",
        ),
    };
    vec![image, allowed_hashes]
}

/// The home group, read on a thread of its own within `limit`: a home whose
/// filesystem hangs (a hard-mounted EFS gone away) is `homes.stalled`, not a
/// doctor that never ends. With the checks, the node's user when the home
/// was inspected.
async fn home_checks(
    config: &DoctorConfig,
    env: &BTreeMap<String, String>,
    verified: Option<&verify::Verified>,
    limit: Duration,
) -> (Vec<Check>, Option<NodeUser>) {
    let home_dir = config.node.node.home_dir.clone();
    let config = config.clone();
    let env = env.clone();
    let secrets = verified.map(|v| v.secrets.clone());
    let facts = verified.and_then(|v| v.keys.chain_facts());
    let keys = verified.map(|v| v.keys.clone());
    let read = homes::runner::on_own_thread(limit, move |io| async move {
        // All of it is file work, the node's `--help` included: within `limit`.
        io.start("inspecting it");
        let inputs = HomeInputs {
            node: &config.node.node,
            homes: &config.homes,
            secrets: &config.node.secrets,
            // The aws group asks about the EFS.
            efs_file_system_id: None,
            env: &env,
            io,
        };
        // Known even when the home fails its checks (read-only, full).
        let user =
            NodeUser::resolve(config.homes.node_user.as_ref(), &config.node.node.home_dir).ok();
        let checks = match homes::inspect(&inputs, WriteTest::Permission).await {
            Ok(inspection) => {
                let commands = DoctorCommands::new(&env);
                let survey = inspection
                    .survey(&inputs, secrets.as_ref(), facts.as_ref(), &commands)
                    .await;
                inputs.io.start("looking at its keyshares");
                let keyshare = keyshare_check(&config, keys.as_ref());
                let checks = inspection.checks.into_iter().chain(survey);
                checks.chain([keyshare]).collect()
            }
            Err(stop) => stop.into_checks(),
        };
        (checks, user)
    })
    .await;
    read.unwrap_or_else(|stall| {
        (
            vec![stall.check(&home_dir, limit, "doctor --timeout")],
            None,
        )
    })
}

/// `homes.keyshare` by the boot's judgment, read-only: a home without the
/// keyshare its node needs is the gap `agent run` would name, or a warning
/// that it restores it from the vault (whether it can: `--drill`).
fn keyshare_check(config: &DoctorConfig, keys: Option<&KeyReport>) -> Check {
    let Some(keys) = keys else {
        return Check::skipped(
            restore::check_ids::KEYSHARE,
            "not judged: the keys were not checked against the chain",
        );
    };
    let seen = homes::look(&config.node.node.home_dir, Keep::Digests);
    match restore::missing(seen.as_ref(), keys) {
        Ok(missing) => missing.foreseen(config.restore, config.vault.as_ref()),
        Err(verdict) => verdict,
    }
}

/// The secrets as the running agent validated them (its `/config`).
fn agent_secrets(agent: &ConfigView) -> Vec<DoctorEntry> {
    let reports = agent.secrets.as_deref().unwrap_or_default();
    if reports.is_empty() {
        return vec![entry(
            "secrets",
            Check::skipped(
                "secrets",
                "the running agent has not validated its secrets yet",
            ),
        )];
    }
    reports
        .iter()
        .map(|report| {
            let check = Check {
                id: format!("secrets.{}", report.name.env_name()),
                status: report.status,
                cause: format!("{} (as the running agent validated it)", report.cause),
                fix: report.fix.clone(),
                detail: serde_json::to_value(report).unwrap_or_default(),
            };
            entry("secrets", check)
        })
        .collect()
}

/// `keys.rpc` when the chain did not answer within the group's time.
fn rpc_timed_out(config: &DoctorConfig, limit: Duration) -> Check {
    Check::fail(
        keys::check_ids::RPC,
        format!(
            "no NEAR RPC answered within {}s ({})",
            limit.as_secs_f64(),
            config
                .node
                .chain_rpc
                .urls
                .iter()
                .map(|u| keys::shown_url(u))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "check AGENT_NEAR_RPC_URL and the network path to it (security groups, NAT)",
    )
}

/// The signer and p2p public keys the running agent reported on `/config`.
fn agent_public_keys(
    agent: &ConfigView,
) -> Option<(near_crypto::PublicKey, near_crypto::PublicKey)> {
    let key = |name: SecretName| {
        agent
            .secrets
            .as_ref()?
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.public_key.as_deref())
            .and_then(|k| k.parse().ok())
    };
    Some((key(SecretName::AccountSk)?, key(SecretName::P2pPrivateKey)?))
}

/// A group's checks, or one failed check naming the timeout.
async fn bounded(
    group: &'static str,
    limit: Duration,
    checks: impl std::future::Future<Output = Vec<Check>>,
) -> Vec<Check> {
    tokio::time::timeout(limit, checks)
        .await
        .unwrap_or_else(|_| vec![timed_out(group, limit)])
}

fn timed_out(group: &str, limit: Duration) -> Check {
    Check::fail(
        group,
        format!(
            "the {group} checks did not finish within {}s",
            limit.as_secs_f64()
        ),
        "what they ask does not answer: see the cause on a run with a longer --timeout",
    )
}

fn entry(group: &str, check: Check) -> DoctorEntry {
    DoctorEntry {
        group: group.to_string(),
        check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::views::{Setting, Settings};

    fn remote(settings: &[(&str, &str, bool)]) -> ConfigView {
        ConfigView {
            settings: Settings {
                valid: true,
                command: "run".into(),
                file: None,
                settings: settings
                    .iter()
                    .map(|(name, value, redacted)| Setting {
                        name: name.to_string(),
                        value: Some(value.to_string()),
                        redacted: *redacted,
                        source: entrypoint::config::Source::Env,
                        help: None,
                    })
                    .collect(),
            },
            secrets: None,
        }
    }

    #[test]
    fn only_the_doctors_own_settings_shown_whole_are_taken_from_a_remote_config() {
        let local = BTreeMap::from([("MPC_ENV".to_string(), "testnet".to_string())]);
        let config = remote(&[
            ("MPC_ENV", "mainnet", false),
            ("MPC_ACCOUNT_ID", "node0.near", false),
            ("AWS_ENDPOINT_URL", "http://attacker.example", false),
            ("AGENT_NEAR_RPC_URL", "https://rpc.example/…", true),
            ("AGENT_READY_URL", "http://127.0.0.1:8080/health", false),
            ("AGENT_STOP_GRACE", "7s", false),
            ("AGENT_RPC_TIMEOUT", "3s", false),
        ]);
        let (env, ignored) = remote_settings(&local, &config);
        assert_eq!(env["MPC_ENV"], "testnet", "this environment wins");
        assert_eq!(env["MPC_ACCOUNT_ID"], "node0.near");
        assert_eq!(env["AGENT_RPC_TIMEOUT"], "3s");
        for never in [
            "AWS_ENDPOINT_URL",
            "AGENT_NEAR_RPC_URL",
            "AGENT_STOP_GRACE",
            "AGENT_READY_URL",
        ] {
            assert!(!env.contains_key(never), "{never} taken");
        }
        assert_eq!(
            ignored,
            [
                "AWS_ENDPOINT_URL (not a setting this doctor knows)",
                "AGENT_NEAR_RPC_URL (a URL, shown without its path; set it in this environment)",
            ]
        );
        let posing = remote(&[("AGENT_NEAR_RPC_URL", "https://rpc.example/…", false)]);
        assert!(remote_settings(&BTreeMap::new(), &posing).0.is_empty());
        let whole = remote(&[("AGENT_NEAR_RPC_URL", "http://10.0.0.5:3030", false)]);
        assert_eq!(
            remote_settings(&BTreeMap::new(), &whole).0["AGENT_NEAR_RPC_URL"],
            "http://10.0.0.5:3030"
        );
    }
}
