//! The boot stages of `agent run` and `agent init`, in order — secrets, keys
//! against the chain, the home, the launch plan — each recorded on the state
//! and logged with its duration, and the policy for what they find: hold and
//! re-check, exit, or warn and go on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use entrypoint::check::{Check, Status, worst};
use entrypoint::config::{
    Config, HomeSettings, Node, OnMismatch, OnRpcUnavailable, Policy, StartMode,
};
use entrypoint::homes::config_json::{self, NearConfigInputs};
use entrypoint::homes::config_yaml::{self, MpcConfigInputs};
use entrypoint::homes::init::{self, InitPlan};
use entrypoint::homes::start_config::{self, Launch, StartConfigInputs};
use entrypoint::homes::store_key::{self, StoreKeyVerdict};
use entrypoint::homes::{HomeError, HomeLock, NodeUser, filesystem, lock, secrets_file};
use entrypoint::keys::{self, KeysVerdict};
use entrypoint::launch::{LaunchPlan, LaunchSecrets};
use entrypoint::secrets::{self, NodeSecrets, Secret, SecretName};

use crate::exit;
use crate::node_commands::ReapedCommands;
use crate::state::{Phase, Reason, State};
use crate::supervisor::Reaper;

/// Which command runs the stages: `init` never holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Init,
}

pub struct Pipeline<'a> {
    pub config: &'a Config,
    pub env: &'a BTreeMap<String, String>,
    pub state: State,
    pub reaper: Reaper,
    pub mode: Mode,
}

/// Everything the node is started with.
pub struct Ready {
    pub secrets: NodeSecrets,
    pub plan: LaunchPlan,
}

/// Why the stages stopped short of the node.
struct Problem {
    /// The failed (and warned) checks; the first failed one names the reason.
    checks: Vec<Check>,
    kind: ProblemKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProblemKind {
    /// The node cannot start this way whatever the policy says (an invalid
    /// secret, a store key that does not decrypt the shares, a home that
    /// cannot keep them).
    Blocking,
    /// The node could start; `AGENT_ON_KEY_MISMATCH=warn` lets it.
    Overridable,
    /// No NEAR RPC answered; `AGENT_ON_RPC_UNAVAILABLE` decides.
    RpcUnavailable,
    /// Exit with this code, whatever the policy (the lock wait ran out).
    Final(i32),
}

impl Problem {
    fn new(kind: ProblemKind, checks: Vec<Check>) -> Problem {
        Problem { checks, kind }
    }

    fn reason(&self) -> Reason {
        let first = self
            .checks
            .iter()
            .find(|c| c.status == Status::Fail)
            .or(self.checks.first())
            .expect("a problem has a check");
        Reason::new(first.id.clone(), first.cause.clone(), first.fix.clone())
    }
}

impl From<HomeError> for Problem {
    fn from(e: HomeError) -> Problem {
        Problem::new(ProblemKind::Blocking, vec![e.check()])
    }
}

/// Where the start file goes: off the home, so the store key never sits next
/// to the shares it encrypts.
const START_FILE_DIRS: [&str; 2] = ["/run/mpc-agent", "/tmp/mpc-agent"];

impl Pipeline<'_> {
    fn node(&self) -> &Node {
        self.config
            .node
            .as_ref()
            .expect("the node settings are resolved")
    }

    fn homes(&self) -> &HomeSettings {
        self.config
            .homes
            .as_ref()
            .expect("the home settings are resolved")
    }

    fn policy(&self) -> &Policy {
        self.config.policy.as_ref().expect("the policy is resolved")
    }

    /// Runs the stages until the node can start. `Err` is the code the agent
    /// exits with. Holding (in `run`) re-runs them with a backoff. The home's
    /// lock is taken into `lock` and kept there: the caller holds it as long
    /// as the node may run.
    pub async fn prepare(&self, lock: &mut Option<HomeLock>) -> Result<Ready, i32> {
        let retry = self.policy().hold_retry;
        let mut delay = retry.initial;
        loop {
            let problem = match self.attempt(lock).await {
                Ok(ready) => return Ok(ready),
                Err(problem) => problem,
            };
            let reason = problem.reason();
            let exit_code = match (problem.kind, self.mode) {
                (ProblemKind::Final(code), _) => Some(code),
                (ProblemKind::RpcUnavailable, Mode::Init) => Some(exit::UNAVAILABLE),
                (ProblemKind::RpcUnavailable, Mode::Run) => None,
                (_, Mode::Init) => Some(exit::CONFIG),
                (_, Mode::Run) if self.policy().on_key_mismatch == OnMismatch::Exit => {
                    Some(exit::CONFIG)
                }
                (_, Mode::Run) => None,
            };
            if let Some(code) = exit_code {
                tracing::error!(check = %reason.kind, cause = %reason.cause, fix = reason.fix.as_deref().unwrap_or(""), exit_code = code, "not starting the node");
                self.state.set_phase_for(Phase::Failed, reason);
                return Err(code);
            }
            tracing::warn!(
                check = %reason.kind,
                cause = %reason.cause,
                fix = reason.fix.as_deref().unwrap_or(""),
                retry_in_s = delay.as_secs_f64(),
                "holding: the node is not started until this is fixed"
            );
            self.state.hold(reason);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(retry.max);
        }
    }

    /// Lets a problem through when the policy says so, with a warning.
    fn gate(&self, kind: ProblemKind, checks: Vec<Check>) -> Result<(), Problem> {
        let failed: Vec<Check> = checks
            .into_iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let policy = self.policy();
        let waived = match kind {
            ProblemKind::Overridable => policy.on_key_mismatch == OnMismatch::Warn,
            ProblemKind::RpcUnavailable => policy.on_rpc_unavailable == OnRpcUnavailable::Skip,
            _ => false,
        };
        if !waived {
            return Err(Problem::new(kind, failed));
        }
        for check in &failed {
            tracing::warn!(check = %check.id, cause = %check.cause, "starting anyway, as the policy says");
        }
        Ok(())
    }

    /// Records a stage's checks and logs its outcome and duration.
    fn record(&self, stage: &'static str, checks: &[Check], started: Instant) {
        let took = started.elapsed();
        let status = worst(checks);
        self.state.set_checks(stage, checks.to_vec());
        self.state.metrics().set_stage_duration(stage, took);
        tracing::info!(
            stage,
            status = status.as_str(),
            took_ms = took.as_millis() as u64,
            "stage done"
        );
        for check in checks
            .iter()
            .filter(|c| matches!(c.status, Status::Warn | Status::Fail))
        {
            tracing::warn!(stage, check = %check.id, status = check.status.as_str(), cause = %check.cause, fix = check.fix.as_deref().unwrap_or(""), "check");
        }
    }

    async fn attempt(&self, held: &mut Option<HomeLock>) -> Result<Ready, Problem> {
        let config = self.config;
        let node = self.node();
        let homes = self.homes();
        let secret_settings = config
            .secrets
            .as_ref()
            .expect("the secret settings are resolved");

        self.state.enter_stage(Phase::Secrets);
        let started = Instant::now();
        let secrets = match secrets::load(secret_settings, self.env).await {
            Ok(s) => {
                self.record("secrets", &report_checks(&s), started);
                self.state.set_secrets(&s.report);
                s
            }
            Err(failure) => {
                let checks = failure.checks();
                self.record("secrets", &checks, started);
                return Err(Problem::new(ProblemKind::Blocking, checks));
            }
        };

        self.state.enter_stage(Phase::Keys);
        let started = Instant::now();
        let report = keys::check(
            config
                .chain_rpc
                .as_ref()
                .expect("the chain settings are resolved"),
            &crate::keys::keys_input(config, &secrets),
        )
        .await;
        let mut key_checks = report.checks();
        let facts = report.chain_facts();
        let verdict = match report.verdict() {
            // The keys in Secrets Manager are not the chain's, but secrets.json's are, and it stays.
            KeysVerdict::Mismatch
                if facts.as_ref().is_some_and(|facts| {
                    secrets_file::kept_keys(
                        &node.home_dir,
                        &secrets.p2p,
                        &secrets.account,
                        homes.secrets_json,
                        Some(facts),
                    )
                    .ok()
                    .flatten()
                    .is_some_and(|(signer, p2p)| facts.accepts(&signer, &p2p).accepted())
                }) =>
            {
                key_checks.push(Check::warn(
                    "keys.effective",
                    "the node runs with the keys in secrets.json, which the chain accepts; the validated secrets are not the chain's",
                    "put the keys of secrets.json into Secrets Manager (or fix the secrets), so that both agree",
                ));
                KeysVerdict::Match
            }
            verdict => verdict,
        };
        self.record("keys", &key_checks, started);
        match verdict {
            KeysVerdict::Match => {}
            KeysVerdict::Mismatch => self.gate(ProblemKind::Overridable, key_checks.clone())?,
            KeysVerdict::RpcUnavailable => {
                self.gate(ProblemKind::RpcUnavailable, key_checks.clone())?
            }
        }
        self.state.set_keys_ok(verdict == KeysVerdict::Match);

        self.state.enter_stage(Phase::Home);
        let started = Instant::now();
        let mut home_checks = Vec::new();
        let home = self
            .home(&secrets, facts.as_ref(), held, &mut home_checks)
            .await;
        self.record("home", &home_checks, started);
        let (user, store_key, yaml) = home?;
        self.gate(ProblemKind::Blocking, home_checks)?;
        let home = node.home_dir.as_path();
        let commands = self.commands(&user);

        let started = Instant::now();
        let launch = self.launch_kind(&commands).await;
        let start_file = start_file_dir().join(start_file_name(home));
        if launch == Launch::StartWithConfigFile {
            let rendered = start_config::render(&StartConfigInputs {
                home,
                store_key: &store_key,
                backup_key: secrets.backup_key.as_ref(),
                chain: node.chain,
                boot_nodes: node.boot_nodes.as_deref(),
                genesis_path: (node.chain == entrypoint::config::Chain::Localnet)
                    .then_some(homes.localnet_genesis.as_path()),
                tier3_public_addr: node.tier3_public_addr,
                log_format: node.log_format.as_deref(),
                log_filter: self.env.get("RUST_LOG").map(String::as_str),
                node: &yaml.config,
            })?;
            entrypoint::homes::atomic::ensure_dir(start_file.parent().expect("a directory"), &user)
                .map_err(|e| {
                    Problem::new(
                        ProblemKind::Blocking,
                        vec![Check::fail(
                            "launch.start_file",
                            format!("cannot create {}: {e}", start_file.display()),
                            "make /run or /tmp writable for the agent",
                        )],
                    )
                })?;
            start_config::write_start_config(&start_file, &rendered, &user)?;
        }
        let plan = LaunchPlan::new(
            node,
            launch,
            &start_file,
            LaunchSecrets {
                store_key: &store_key,
                backup_key: secrets.backup_key.as_ref(),
            },
            self.env,
            user.clone(),
        );
        let summary = plan.describe();
        let launch_check = Check::ok(
            "launch.command",
            format!(
                "{} as {} with {}",
                summary.command.join(" "),
                summary.user,
                summary.env.join(", ")
            ),
        )
        .with_detail(serde_json::to_value(&summary).unwrap_or_default());
        self.record("launch", std::slice::from_ref(&launch_check), started);
        Ok(Ready { secrets, plan })
    }

    /// The home stage: where the home is, its lock, the store key, the first
    /// init and the files the node reads. Every check goes into `checks`,
    /// whatever happens; the failed ones are judged by the caller.
    async fn home(
        &self,
        secrets: &NodeSecrets,
        facts: Option<&entrypoint::keys::ChainFacts>,
        held: &mut Option<HomeLock>,
        checks: &mut Vec<Check>,
    ) -> Result<(NodeUser, Secret, config_yaml::MpcConfig), Problem> {
        let node = self.node();
        let homes = self.homes();
        let home = node.home_dir.as_path();
        let user =
            NodeUser::resolve(homes.node_user.as_ref(), home).map_err(|e| failed(checks, e))?;
        let fs = filesystem::inspect(home).map_err(|e| failed(checks, e))?;
        let fs_checks = fs.checks(homes, &user);
        if fs_checks
            .iter()
            .any(|c| c.id == "homes.filesystem" && c.status == Status::Fail)
        {
            // The EFS side says why the home is not on EFS: it leads the reasons.
            checks.extend(self.efs_failures().await);
        }
        checks.extend(fs_checks);
        checks.push(fs.probe_writable());
        // A home the node cannot keep its shares on blocks whatever the key policy says.
        self.gate(ProblemKind::Blocking, checks.clone())?;

        if held.is_none() {
            *held = Some(self.lock(home, &user).await?);
            self.state.enter_stage(Phase::Home);
        }
        let lock = held.as_ref().expect("just taken");
        checks.push(Check::ok(
            "homes.lock",
            format!(
                "this agent holds the home's lock ({}); another agent on this home waits",
                lock.holder()
            ),
        ));
        let (store_key, store_check) = self.store_key(secrets, home).await;
        checks.push(store_check.clone());
        let Some(store_key) = store_key else {
            return Err(Problem::new(ProblemKind::Blocking, vec![store_check]));
        };
        let init = init::init_home(
            lock,
            &InitPlan::new(node, homes),
            &user,
            &self.commands(&user),
        )
        .await
        .map_err(|e| failed(checks, e))?;
        checks.push(init.check());
        let json = config_json::update_config_json(home, &NearConfigInputs::new(node), &user)
            .map_err(|e| failed(checks, e))?;
        checks.push(json.check());
        let yaml = config_yaml::update_config_yaml(home, &MpcConfigInputs::new(node), &user)
            .map_err(|e| failed(checks, e))?;
        checks.push(yaml.update.check());
        let secrets_json = secrets_file::update_secrets_json(
            home,
            &secrets.p2p,
            &secrets.account,
            homes.secrets_json,
            facts,
            &user,
        )
        .map_err(|e| failed(checks, e))?;
        checks.push(secrets_json.check());
        Ok((user, store_key, yaml))
    }

    /// What is wrong with the home's EFS (`AGENT_EFS_FILE_SYSTEM_ID`), if
    /// anything: no mount target in this zone, port 2049 closed.
    async fn efs_failures(&self) -> Vec<Check> {
        let Some(id) = &self.config.efs_file_system_id else {
            return Vec::new();
        };
        let limit = std::time::Duration::from_secs(5);
        let zone = crate::placement::availability_zone(self.env, limit).await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        tokio::time::timeout(
            limit * 2,
            entrypoint::homes::efs::checks(&sdk, id, zone.as_deref(), limit),
        )
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.status == Status::Fail)
        .collect()
    }

    /// Takes the home's lock, showing who holds it while waiting.
    async fn lock(&self, home: &Path, user: &NodeUser) -> Result<HomeLock, Problem> {
        let state = self.state.clone();
        let waited = self.homes().lock_wait;
        let taken = lock::acquire(home, lock::Holder::this_process(), waited, user, |holder| {
            let who = holder.map_or_else(|| "another process".to_string(), ToString::to_string);
            tracing::warn!(holder = %who, "waiting for the home's lock: another agent runs a node on this home");
            state.set_phase_for(
                Phase::WaitingForLock,
                Reason::new(
                    "homes.lock",
                    format!("the home's lock is held by {who}"),
                    Some("this agent starts the node when the other one stops (a rolling deploy); if none should run, stop it".into()),
                ),
            );
        })
        .await;
        match taken {
            Ok(lock) => Ok(lock),
            Err(e @ HomeError::LockTimeout { .. }) => Err(Problem::new(
                ProblemKind::Final(exit::TEMPFAIL),
                vec![e.check()],
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The store key the node will use: the configured one if it fits the
    /// shares, or a generated one stored in Secrets Manager first when there
    /// is no key anywhere and no share. `None` with the failed check otherwise.
    async fn store_key(&self, secrets: &NodeSecrets, home: &Path) -> (Option<Secret>, Check) {
        let settings = self
            .config
            .secrets
            .as_ref()
            .expect("the secret settings are resolved");
        if let Some(key) = &secrets.store_key {
            let verdict = match store_key::verify_store_key(home, key) {
                Ok(v) => v,
                Err(e) => return (None, e.check()),
            };
            let check = verdict.check();
            return match verdict {
                StoreKeyVerdict::DoesNotDecrypt { file, .. } => {
                    let from_manager = matches!(
                        secrets.source(SecretName::SecretStoreKey),
                        secrets::Source::SecretsManager { .. }
                    );
                    let previous = if from_manager {
                        secrets::store_key::previous(settings, self.env).await
                    } else {
                        None
                    };
                    let restores = previous.filter(|p| {
                        matches!(
                            store_key::verify_store_key(home, &p.key),
                            Ok(StoreKeyVerdict::Decrypts { .. })
                        )
                    });
                    let check = match restores {
                        Some(p) => Check::fail(
                            check.id.clone(),
                            format!("{}; the previous version ({}) decrypts it", check.cause, p.source),
                            format!(
                                "make that version current again: aws secretsmanager update-secret-version-stage --secret-id <id> --version-stage AWSCURRENT --move-to-version-id {} (the shares in {} were written with it)",
                                match &p.source {
                                    secrets::Source::SecretsManager { version_id, .. } => version_id.clone().unwrap_or_default(),
                                    _ => String::new(),
                                },
                                file.display()
                            ),
                        )
                        .with_detail(check.detail.clone()),
                        None => check,
                    };
                    (None, check)
                }
                StoreKeyVerdict::Malformed { .. } => (None, check),
                _ => {
                    let source = secrets.source(SecretName::SecretStoreKey);
                    tracing::info!(fingerprint = %key.fingerprint(), %source, generated = false, "the node's secret store key");
                    (Some(key.clone()), check)
                }
            };
        }
        let id = "homes.store_key";
        match store_key::shares(home) {
            Err(e) => return (None, e.check()),
            Ok(shares) if !shares.is_empty() => {
                let listed: Vec<String> = shares
                    .iter()
                    .map(|s| s.path.display().to_string())
                    .collect();
                return (
                    None,
                    Check::fail(
                        id,
                        format!(
                            "MPC_SECRET_STORE_KEY is set nowhere, but the home holds shares encrypted with one ({}); a new key would make them unreadable",
                            listed.join(", ")
                        ),
                        "restore the store key these shares were written with into its secret (Secrets Manager keeps earlier versions) or MPC_SECRET_STORE_KEY",
                    ),
                );
            }
            Ok(_) => {}
        }
        if !self.homes().generate_store_key {
            return (
                None,
                Check::fail(
                    id,
                    "MPC_SECRET_STORE_KEY is set nowhere and AGENT_GENERATE_STORE_KEY is false",
                    "provide MPC_SECRET_STORE_KEY (32 hex characters), or allow the agent to generate one on a home without shares",
                ),
            );
        }
        match secrets::store_key::generate(settings, self.env).await {
            Ok(stored) => {
                tracing::info!(fingerprint = %stored.key.fingerprint(), source = %stored.source, generated = true, "the node's secret store key");
                let check = Check::ok(
                    id,
                    format!(
                        "no store key existed and the home holds no share: generated one (sha256:{}…) and stored it in {} before first use",
                        stored.key.fingerprint(),
                        stored.source
                    ),
                );
                (Some(stored.key), check)
            }
            Err(e) => (
                None,
                Check::fail(
                    id,
                    format!("cannot keep a generated store key: {}", e.cause),
                    e.fix,
                ),
            ),
        }
    }

    /// `start` or `start-with-config-file`: as configured, or as the binary's help says.
    async fn launch_kind(&self, commands: &ReapedCommands) -> Launch {
        let mode = self.homes().start_mode;
        if mode != StartMode::Auto {
            return start_config::launch(mode, None);
        }
        use entrypoint::homes::init::NodeCommands;
        let help = commands
            .run(&self.node().bin, &["--help".into()])
            .await
            .ok()
            .filter(|f| f.exit == init::NodeExit::Code(0))
            .map(|f| f.output);
        start_config::launch(mode, help.as_deref())
    }

    /// Runs the node's short commands (`init`, `--help`) as `user`, with no
    /// secrets in their environment: `--help` prints the values of the
    /// variables the node reads.
    fn commands(&self, user: &NodeUser) -> ReapedCommands {
        ReapedCommands {
            reaper: self.reaper.clone(),
            user: user.clone(),
            env: entrypoint::launch::passed_through(self.env).collect(),
        }
    }
}

/// A home error as a blocking problem, its check also kept with the stage's.
fn failed(checks: &mut Vec<Check>, e: HomeError) -> Problem {
    let check = e.check();
    checks.push(check.clone());
    Problem::new(ProblemKind::Blocking, vec![check])
}

/// The checks of a successful secrets stage.
fn report_checks(secrets: &NodeSecrets) -> Vec<Check> {
    secrets.report.iter().map(|r| r.check()).collect()
}

/// One start file per home, so agents of several homes on one host never share one.
fn start_file_name(home: &Path) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    home.hash(&mut hasher);
    format!("start-{:016x}.toml", hasher.finish())
}

fn start_file_dir() -> PathBuf {
    START_FILE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|dir| {
            std::fs::create_dir_all(dir).is_ok()
                && nix::unistd::access(dir.as_path(), nix::unistd::AccessFlags::W_OK).is_ok()
        })
        .unwrap_or_else(std::env::temp_dir)
}
