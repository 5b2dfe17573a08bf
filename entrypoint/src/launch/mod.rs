//! The `launch` stage: the exact command, environment and user mpc-node is
//! started with, from the prepared [`NodeHome`]. Secrets reach the node only
//! through its environment or a file of mode 0600 off the home — never its
//! argv — and it gets nothing it does not need. Its checks beside the
//! command: the image the node reports against the contract, and the node's
//! allowed-hashes file ([`image`]).

pub mod image;
pub mod start_config;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::config::settings::Id;
use crate::config::{Chain, HomeSettings, Node};
use crate::homes::beneath::Refusal;
use crate::homes::{HomeError, NodeHome, NodeUser, atomic};
use crate::keys::KeyReport;
use crate::node_binary::{self, Launch, NodeCommands};
use crate::secrets::Secret;
use crate::stage::{Failure, Stage, StageResult, StageStop, Staged, StopKind};
use start_config::StartConfigInputs;

/// Where the start file goes: off the home, so the store key never sits next
/// to the shares it encrypts. Where `/run` cannot take it, a directory of a
/// fresh random name under `/tmp` (never a fixed name in a place anyone can
/// write), made for this boot and removed with the file.
const START_FILE_DIR: &str = "/run/mpc-agent";
const FALLBACK_PARENT: &str = "/tmp";
const FALLBACK_PREFIX: &str = "mpc-agent-";

/// What the launch plan is made from, beside the home.
pub struct LaunchInputs<'a> {
    pub node: &'a Node,
    pub homes: &'a HomeSettings,
    /// The agent's environment (what is passed through, `RUST_LOG`).
    pub env: &'a BTreeMap<String, String>,
    /// What the keys stage read of the chain (the allowed image hashes).
    pub keys: &'a KeyReport,
}

/// The launch stage: `start` or `start-with-config-file` (as configured, or
/// as the binary's `--help` says, asked through `commands`), the start file
/// rendered and written, and the plan with its checks: `launch.command`,
/// `launch.image_hash`, `launch.allowed_hashes_file`.
pub async fn plan(
    home: &NodeHome,
    inputs: &LaunchInputs<'_>,
    commands: &impl NodeCommands,
) -> StageResult<LaunchPlan> {
    let node = inputs.node;
    let stop = |failure| StageStop::after(Stage::Launch, StopKind::Blocking, Vec::new(), failure);
    let allowed_hashes = match image::allowed_hashes_dir_check(&home.user).into_failure() {
        Ok(failure) => return Err(stop(failure)),
        Err(passed) => passed,
    };
    let launch = launch_kind(inputs, commands).await;
    let image_hash = image::node_image_hash(launch, inputs.env).await;
    let mut start_file = Path::new(START_FILE_DIR).join(start_file_name(&node.home_dir));
    let mut image_note = String::new();
    let mut written = None;
    if launch == Launch::StartWithConfigFile {
        let digest = image_hash.as_ref().ok();
        image_note = match &image_hash {
            Ok(digest) => format!("; [tee] image_hash {digest} from the ECS container metadata"),
            Err(why) => format!(
                "; [tee] image_hash is zeros: {why}, so the node logs that its image is NOT in the allowed hash list"
            ),
        };
        let rendered = start_config::render(&StartConfigInputs {
            home: &node.home_dir,
            store_key: &home.store_key,
            backup_key: home.backup_key.as_ref(),
            chain: node.chain,
            boot_nodes: node.boot_nodes.as_deref(),
            genesis_path: (node.chain == Chain::Localnet)
                .then_some(inputs.homes.localnet_genesis.as_path()),
            tier3_public_addr: node.tier3_public_addr,
            log_format: node.log_format.as_deref(),
            log_filter: Some(node_log_filter(inputs.env)),
            node: &home.config.config,
            image_hash: digest.map(String::as_str),
        })
        .map_err(|e| stop(Failure::refusal(e.check())))?;
        let (dir, made) =
            start_file_dir(&home.user).map_err(|check| stop(Failure::refusal(check)))?;
        start_file = dir.join(start_file_name(&node.home_dir));
        // From here on the file is removed when the plan is dropped.
        let guard = StartFile {
            path: start_file.clone(),
            made_dir: made.then_some(dir),
        };
        start_config::write_start_config(&start_file, &rendered, &home.user)
            .map_err(|e| stop(e.failure()))?;
        written = Some(guard);
    }
    let plan = LaunchPlan::new(
        node,
        launch,
        &start_file,
        LaunchSecrets {
            store_key: &home.store_key,
            backup_key: home.backup_key.as_ref(),
        },
        inputs.env,
        home.user.clone(),
    );
    let plan = LaunchPlan {
        start_file: written,
        ..plan
    };
    let summary = plan.describe();
    let check = Check::ok(
        "launch.command",
        format!(
            "{} as {} with {}{image_note}",
            summary.command.join(" "),
            summary.user,
            summary.env.join(", ")
        ),
    )
    .with_detail(serde_json::to_value(&summary).unwrap_or_default());
    let image_check = image::image_hash_check(inputs.keys, &image_hash);
    Ok(Staged::new(plan, vec![check, image_check, allowed_hashes]))
}

/// `start` or `start-with-config-file`: as configured, or as the binary's help says.
async fn launch_kind(inputs: &LaunchInputs<'_>, commands: &impl NodeCommands) -> Launch {
    node_binary::kind(inputs.homes.start_mode, &inputs.node.bin, commands).await
}

/// One start file per home, so agents of several homes on one host never
/// share one, and the same name on every boot (and every agent version), so a
/// boot rewrites the file its predecessor left instead of adding one.
fn start_file_name(home: &Path) -> String {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    let digest = sha2::Sha256::digest(home.as_os_str().as_bytes());
    format!("start-{}.toml", hex::encode(&digest[..8]))
}

/// The start file written for a launch, removed (with the directory made for
/// it under `/tmp`) when dropped: when the agent stops, and before the next
/// boot through the stages writes it anew. Only a SIGKILL leaves it behind,
/// and the next boot's write replaces it.
#[derive(Debug)]
pub struct StartFile {
    path: PathBuf,
    made_dir: Option<PathBuf>,
}

impl StartFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StartFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the start file");
        }
        if let Some(dir) = &self.made_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `/run/mpc-agent`, else a fresh directory under `/tmp`; `true` when it was
/// made for this boot alone.
fn start_file_dir(user: &NodeUser) -> Result<(PathBuf, bool), Check> {
    match runtime_dir(&[Path::new(START_FILE_DIR)], user) {
        Ok(dir) => Ok((dir, false)),
        Err(check) if check.id != "launch.start_file" => Err(check),
        Err(check) => fresh_dir(Path::new(FALLBACK_PARENT), FALLBACK_PREFIX, user)
            .map(|dir| (dir, true))
            .map_err(|e| {
                Check::fail(
                    "launch.start_file",
                    format!(
                        "{}; nor a directory under {FALLBACK_PARENT}: {e}",
                        check.cause
                    ),
                    "make /run (or /tmp) writable for the agent",
                )
            }),
    }
}

/// A directory of a fresh random name `<prefix><16 hex>` under `parent`,
/// created here (never one that was there), 0700, the node user's.
pub fn fresh_dir(parent: &Path, prefix: &str, user: &NodeUser) -> std::io::Result<PathBuf> {
    use nix::errno::Errno;
    use nix::sys::stat::{Mode, fchmod, fstat};
    let parent_dir = crate::homes::beneath::Dir::open(parent)?;
    for _ in 0..16 {
        let name = format!("{prefix}{:016x}", rand::random::<u64>());
        match nix::sys::stat::mkdirat(&parent_dir, name.as_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
        let made = parent_dir
            .dir(Path::new(&name))?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        fchmod(&made, Mode::from_bits_truncate(0o700))?;
        user.own_fd(&made, &fstat(&made)?)?;
        return Ok(parent.join(name));
    }
    Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
}

/// The first of `candidates` that is, or can be made, the start files'
/// directory: mode 0700, the node user's, created or opened without
/// following a link. One that is a link, not a directory or someone else's is
/// refused by name (only root can put one under `/run`; under `/tmp` anyone
/// can); one that cannot be created (read-only, no permission) gives way to
/// the next.
pub fn runtime_dir(candidates: &[&Path], user: &NodeUser) -> Result<PathBuf, Check> {
    let mut last = None;
    for dir in candidates {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            continue;
        };
        let made = atomic::ensure_dir(parent, Path::new(name), 0o700, user).and_then(|opened| {
            let stat = nix::sys::stat::fstat(&opened)?;
            if stat.st_mode & 0o7777 != 0o700 {
                nix::sys::stat::fchmod(&opened, nix::sys::stat::Mode::from_bits_truncate(0o700))?;
            }
            user.own_fd(&opened, &stat)
        });
        match made {
            Ok(()) => return Ok(dir.to_path_buf()),
            Err(e) => match Refusal::take(e) {
                Ok(refusal) => return Err(HomeError::Refused(refusal).check()),
                Err(e) => last = Some((dir, e)),
            },
        }
    }
    Err(Check::fail(
        "launch.start_file",
        match last {
            Some((dir, e)) => format!("cannot create {}: {e}", dir.display()),
            None => "no directory for the start file".to_string(),
        },
        "make /run or /tmp writable for the agent",
    ))
}

/// The node's log filter: `RUST_LOG` when set, else `info`, as `--help`
/// says (the node itself, given none, logs errors only).
const DEFAULT_LOG_FILTER: &str = "info";

fn node_log_filter(process_env: &BTreeMap<String, String>) -> &str {
    process_env
        .get(Id::RustLog.name())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_LOG_FILTER)
}

/// Withheld from the node by name: the secrets the agent hands over itself
/// (only as the launch plan decides), and AWS credentials and the files or
/// endpoints they come from.
const WITHHELD: [&str; 15] = [
    "MPC_ACCOUNT_SK",
    "MPC_P2P_PRIVATE_KEY",
    "MPC_SECRET_STORE_KEY",
    "MPC_BACKUP_ENCRYPTION_KEY_HEX",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_PROFILE",
];

/// Withheld from the node by prefix: the agent's own settings, and the ECS
/// container credential endpoint and its authorization token.
const WITHHELD_PREFIXES: [&str; 3] = [
    "AGENT_",
    "AWS_CONTAINER_CREDENTIALS_",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Whether the agent keeps `name` from every process of the node.
pub fn withheld(name: &str) -> bool {
    WITHHELD.contains(&name) || WITHHELD_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What every process of the node gets from the agent's environment (its
/// `init` and `--help` as well as the node): everything but what
/// [`withheld`] names, so the operator's own variables (a foreign chain's
/// token named by `token = {env = "…"}`, `HTTPS_PROXY`, `NO_PROXY`) reach it.
/// An empty variable is not passed: the node reads `""` as a value.
pub fn node_environment(
    process_env: &BTreeMap<String, String>,
) -> impl Iterator<Item = (String, String)> + '_ {
    process_env
        .iter()
        .filter(|(name, value)| !value.is_empty() && !withheld(name))
        .map(|(name, value)| (name.clone(), value.clone()))
}

/// How mpc-node is started. Not `Debug`-printable with values: the
/// environment holds the store key (its `Secret`s redact themselves).
#[derive(Debug)]
pub struct LaunchPlan {
    pub launch: Launch,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The child's whole environment.
    pub env: Vec<(String, Secret)>,
    pub user: NodeUser,
    /// The start file of `start-with-config-file`, removed when dropped:
    /// keep it as long as the node may start from it.
    pub start_file: Option<StartFile>,
}

/// The secrets the node is started with.
pub struct LaunchSecrets<'a> {
    pub store_key: &'a Secret,
    pub backup_key: Option<&'a Secret>,
}

impl LaunchPlan {
    /// `mpc-node start` with upstream's environment, or
    /// `mpc-node start-with-config-file <start_file>` (the file holds the secrets).
    pub fn new(
        node: &Node,
        launch: Launch,
        start_file: &Path,
        secrets: LaunchSecrets,
        process_env: &BTreeMap<String, String>,
        user: NodeUser,
    ) -> LaunchPlan {
        // What the plan sets replaces what the agent's environment holds.
        const SET_BY_THE_PLAN: [&str; 2] = ["MPC_HOME_DIR", "MPC_LOG_FORMAT"];
        let mut env: Vec<(String, Secret)> = node_environment(process_env)
            .filter(|(name, _)| {
                name != "RUST_LOG"
                    && (launch != Launch::Start || !SET_BY_THE_PLAN.contains(&name.as_str()))
            })
            .map(|(name, value)| (name, Secret::new(value)))
            .collect();
        env.push(("RUST_LOG".into(), Secret::new(node_log_filter(process_env))));
        let args: Vec<OsString> = match launch {
            Launch::Start => {
                env.push((
                    "MPC_HOME_DIR".into(),
                    Secret::new(node.home_dir.display().to_string()),
                ));
                env.push(("MPC_SECRET_STORE_KEY".into(), secrets.store_key.clone()));
                if let Some(backup) = secrets.backup_key {
                    env.push(("MPC_BACKUP_ENCRYPTION_KEY_HEX".into(), backup.clone()));
                }
                if let Some(format) = &node.log_format {
                    env.push(("MPC_LOG_FORMAT".into(), Secret::new(format.as_str())));
                }
                vec!["start".into()]
            }
            Launch::StartWithConfigFile => vec!["start-with-config-file".into(), start_file.into()],
        };
        LaunchPlan {
            launch,
            program: node.bin.clone(),
            args,
            env,
            user,
            start_file: None,
        }
    }

    /// The plan without secret values: names of the environment variables only.
    pub fn describe(&self) -> LaunchSummary {
        LaunchSummary {
            launch: self.launch,
            command: std::iter::once(self.program.display().to_string())
                .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
                .collect(),
            env: self.env.iter().map(|(k, _)| k.clone()).collect(),
            user: self.user.describe(),
        }
    }
}

/// What `/status` (as `launch.command`'s detail) and the log say about the
/// launch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchSummary {
    pub launch: Launch,
    pub command: Vec<String>,
    /// Variable names only.
    pub env: Vec<String>,
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Chain;

    fn node() -> Node {
        Node {
            bin: "/app/mpc-node".into(),
            home_dir: "/data".into(),
            chain: Chain::Testnet,
            account_id: "node0.testnet".parse().unwrap(),
            contract_id: "v1.signer-prod.testnet".parse().unwrap(),
            responder_id: "node0.testnet".parse().unwrap(),
            boot_nodes: None,
            tier3_public_addr: None,
            log_format: Some("json".into()),
        }
    }

    fn user() -> NodeUser {
        NodeUser::resolve(None, Path::new("/")).unwrap()
    }

    #[test]
    fn start_passes_the_store_key_in_the_environment_only_and_the_operators_variables_through() {
        let store = Secret::new("00112233445566778899aabbccddeeff");
        let env: BTreeMap<String, String> = [
            ("PATH", "/usr/bin"),
            ("MPC_ACCOUNT_SK", "ed25519:secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
            ("AGENT_LISTEN", "0.0.0.0:8090"),
            ("TZ", ""),
            ("RUST_LOG", "info"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("ETH_PROVIDER_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_SESSION_TOKEN", "session"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/token"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/web-token"),
            ("MPC_HOME_DIR", "/elsewhere"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let plan = LaunchPlan::new(
            &node(),
            Launch::Start,
            Path::new("/run/start.toml"),
            LaunchSecrets {
                store_key: &store,
                backup_key: None,
            },
            &env,
            user(),
        );
        assert_eq!(plan.args, vec![OsString::from("start")]);
        let names: Vec<&str> = plan.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "AWS_REGION",
                "ETH_PROVIDER_TOKEN",
                "HTTPS_PROXY",
                "PATH",
                "RUST_LOG",
                "MPC_HOME_DIR",
                "MPC_SECRET_STORE_KEY",
                "MPC_LOG_FORMAT"
            ]
        );
        let home = plan.env.iter().find(|(k, _)| k == "MPC_HOME_DIR").unwrap();
        assert_eq!(home.1.expose(), "/data", "the plan's value wins");
        assert!(!format!("{plan:?}").contains("00112233"));
        assert!(!format!("{:?}", plan.describe()).contains("00112233"));
    }

    #[test]
    fn start_with_config_file_names_the_file_and_passes_no_key() {
        let store = Secret::new("00112233445566778899aabbccddeeff");
        let plan = LaunchPlan::new(
            &node(),
            Launch::StartWithConfigFile,
            Path::new("/run/mpc-agent/start.toml"),
            LaunchSecrets {
                store_key: &store,
                backup_key: None,
            },
            &BTreeMap::new(),
            user(),
        );
        assert_eq!(
            plan.describe().command,
            [
                "/app/mpc-node",
                "start-with-config-file",
                "/run/mpc-agent/start.toml"
            ]
        );
        let env: Vec<(&str, &str)> = plan
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(env, [("RUST_LOG", "info")], "the default filter, no key");
    }

    #[test]
    fn the_start_file_directory_is_made_0700_and_a_link_there_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let me = NodeUser {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            ..user()
        };
        let linked = base.path().join("linked");
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &linked).unwrap();
        let refused = runtime_dir(&[&linked, &base.path().join("fallback")], &me).unwrap_err();
        assert_eq!(refused.id, "homes.symlink", "{refused:?}");
        assert!(
            refused.cause.contains(&linked.display().to_string()),
            "{refused:?}"
        );

        let fresh = base.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o777)).unwrap();
        let missing = base.path().join("missing");
        assert_eq!(runtime_dir(&[&fresh], &me).unwrap(), fresh);
        assert_eq!(runtime_dir(&[&missing], &me).unwrap(), missing);
        for dir in [&fresh, &missing] {
            let mode = std::fs::symlink_metadata(dir).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
    }
}
