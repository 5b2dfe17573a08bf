//! The boot stages of `agent run` and `agent init`, as the library orders
//! them — verify (secrets, keys), the home (inspect, lock, prepare), the
//! launch plan — each recorded on the state and logged with its duration, and
//! the policy for what they find: hold and re-check, exit, or warn and go on.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use entrypoint::check::{Check, Problem, ProblemKind, Status, worst};
use entrypoint::clients::Clients;
use entrypoint::config::{Backoff, HomeSettings, Node, NodeConfig, OnMismatch, Policy};
use entrypoint::homes::{
    self, HomeError, HomeInputs, HomeLock, HomeStop, IoWatch, NodeUser, WriteTest, lock,
};
use entrypoint::keys::{ChainFacts, KeysVerdict};
use entrypoint::launch::{self, LaunchInputs, LaunchPlan};
use entrypoint::secrets::{NodeSecrets, SecretSettings};
use entrypoint::verify::{self, KeysInUse, Step, VerifyInputs};

use crate::http::lifecycle::Event;
use crate::http::state::State;
use crate::http::views::{Phase, Reason};
use crate::node::commands::ReapedCommands;
use crate::supervisor::Reaper;
use crate::{exit, process};
use tokio::sync::oneshot;

/// Which command runs the stages: `run` holds and re-checks with a backoff,
/// `init` never holds.
#[derive(Clone, Copy)]
pub enum Mode {
    Run { hold_retry: Backoff },
    Init,
}

/// What the stages read, and where they report.
pub struct Pipeline<'a> {
    pub node: &'a NodeConfig,
    pub homes: &'a HomeSettings,
    pub policy: &'a Policy,
    /// `AGENT_EFS_FILE_SYSTEM_ID` (`agent run`): asked about a home that is not on EFS.
    pub efs_file_system_id: Option<&'a str>,
    pub env: &'a BTreeMap<String, String>,
    pub clients: &'a Clients,
    pub state: State,
    pub reaper: Reaper,
    pub mode: Mode,
}

/// After a problem: hold and re-check, or exit with a code.
enum Next {
    Hold(Backoff),
    Exit(i32),
}

/// Everything the node is started with.
pub struct Ready {
    pub secrets: NodeSecrets,
    /// The public keys the node runs with (secrets.json's when it stays).
    pub keys_in_use: KeysInUse,
    pub plan: LaunchPlan,
}

impl Pipeline<'_> {
    /// Runs the stages until the node can start. `Err` is the code the agent
    /// exits with. Holding (in `run`) re-runs them with a backoff. The home's
    /// lock is taken into `lock` and kept there: the caller holds it as long
    /// as the node may run.
    pub async fn prepare(&self, lock: &mut Option<HomeLock>) -> Result<Ready, i32> {
        let mut delay: Option<Duration> = None;
        loop {
            let problem = match self.attempt(lock).await {
                Ok(ready) => return Ok(ready),
                Err(problem) => problem,
            };
            let first = problem.first();
            let reason = Reason::new(first.id.clone(), first.cause.clone(), first.fix.clone());
            let hold_retry = match self.next(problem.kind) {
                Next::Hold(retry) => retry,
                Next::Exit(code) => {
                    tracing::error!(check = %reason.kind, cause = %reason.cause, fix = reason.fix.as_deref().unwrap_or(""), exit_code = code, "not starting the node");
                    self.state.apply(Event::Fail(reason));
                    return Err(code);
                }
            };
            let wait = delay.map_or(hold_retry.initial, |d| (d * 2).min(hold_retry.max));
            tracing::warn!(
                check = %reason.kind,
                cause = %reason.cause,
                fix = reason.fix.as_deref().unwrap_or(""),
                retry_in_s = wait.as_secs_f64(),
                "holding: the node is not started until this is fixed"
            );
            self.state.apply(Event::Hold(reason));
            tokio::time::sleep(wait).await;
            delay = Some(wait);
        }
    }

    /// What a problem the policy does not waive leads to.
    fn next(&self, kind: ProblemKind) -> Next {
        match (kind, self.mode) {
            (ProblemKind::LockTimeout, _) => Next::Exit(exit::TEMPFAIL),
            (ProblemKind::Stalled, _) => Next::Exit(exit::IOERR),
            (ProblemKind::RpcUnavailable, Mode::Init) => Next::Exit(exit::UNAVAILABLE),
            (_, Mode::Init) => Next::Exit(exit::CONFIG),
            (ProblemKind::RpcUnavailable, Mode::Run { hold_retry }) => Next::Hold(hold_retry),
            (_, Mode::Run { .. }) if self.policy.on_key_mismatch == OnMismatch::Exit => {
                Next::Exit(exit::CONFIG)
            }
            (_, Mode::Run { hold_retry }) => Next::Hold(hold_retry),
        }
    }

    /// One pass through the stages.
    async fn attempt(&self, held: &mut Option<HomeLock>) -> Result<Ready, Problem> {
        let node = &self.node.node;
        let homes = self.homes;

        self.state.apply(Event::Enter(Phase::Secrets));
        let verified = verify::verify(
            VerifyInputs {
                node,
                secrets: &self.node.secrets,
                chain: &self.node.chain_rpc,
                secrets_json: homes.secrets_json,
                env: self.env,
                home_io_timeout: homes.io_timeout,
                clients: self.clients,
            },
            |step| match step {
                Step::Secrets { checks, took } => {
                    self.record("secrets", checks, took);
                    self.state.apply(Event::Enter(Phase::Keys));
                }
                Step::Keys { checks, took } => self.record("keys", checks, took),
            },
        )
        .await
        .map_err(|failure| Problem {
            kind: ProblemKind::Blocking,
            checks: failure.checks(),
        })?;
        self.state.set_secrets(&verified.secrets.report);
        if let Some(problem) = verified.problem() {
            self.gate(problem)?;
        }
        self.state
            .set_keys_ok(verified.verdict == KeysVerdict::Match);

        self.state.apply(Event::Enter(Phase::Home));
        let started = Instant::now();
        let home = self.home(&verified, held).await.map_err(|stop| {
            self.record("home", &stop.checks, started.elapsed());
            stop.problem
        })?;
        self.record("home", &home.checks, started.elapsed());

        let started = Instant::now();
        let launched = launch::plan(
            &home,
            &LaunchInputs {
                node,
                homes,
                env: self.env,
                keys: &verified.keys,
            },
            &self.commands(&home.user),
        )
        .await;
        let checks = match &launched {
            Ok((_, checks)) => checks.as_slice(),
            Err(check) => std::slice::from_ref(check),
        };
        self.record("launch", checks, started.elapsed());
        let (plan, _) = launched.map_err(|check| Problem {
            kind: ProblemKind::Blocking,
            checks: vec![check],
        })?;
        Ok(Ready {
            secrets: home.stored_into(verified.secrets),
            keys_in_use: verified.keys_in_use,
            plan,
        })
    }

    /// The home stage, on a thread of its own (its file work can hang on a
    /// hard-mounted EFS, and this thread serves `/health` and signals),
    /// watched: a piece of file work under way past `AGENT_HOME_IO_TIMEOUT`
    /// ends the stage with `homes.stalled`, the thread left to its call.
    /// The lock goes to the thread and comes back with its answer.
    async fn home(
        &self,
        verified: &verify::Verified,
        held: &mut Option<HomeLock>,
    ) -> Result<homes::NodeHome, HomeStop> {
        let io = IoWatch::default();
        let stage = HomeStage {
            node: self.node.node.clone(),
            homes: self.homes.clone(),
            secrets: self.node.secrets.clone(),
            efs_file_system_id: self.efs_file_system_id.map(str::to_string),
            env: self.env.clone(),
            validated: verified.secrets.clone(),
            facts: verified.keys.chain_facts(),
            state: self.state.clone(),
            reaper: self.reaper.clone(),
            io: io.clone(),
        };
        let lock = held.take();
        let (tx, mut answer) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("home".into())
            .spawn(move || {
                let done = match process::runtime() {
                    Ok(runtime) => runtime.block_on(stage.run(lock)),
                    Err(_) => (lock, Err(HomeStop::after(Vec::new(), no_runtime()))),
                };
                let _ = tx.send(done);
            });
        if let Err(e) = spawned {
            return Err(HomeStop::after(
                Vec::new(),
                HomeError::Io {
                    action: "start a thread for",
                    path: self.node.node.home_dir.clone(),
                    source: e,
                },
            ));
        }
        let limit = self.homes.io_timeout;
        let mut watchdog = tokio::time::interval(
            (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        );
        loop {
            tokio::select! {
                done = &mut answer => {
                    let Ok((lock, result)) = done else {
                        return Err(HomeStop::after(Vec::new(), no_runtime()));
                    };
                    *held = lock;
                    return result;
                }
                _ = watchdog.tick() => {
                    if let Some(stall) = io.overdue(limit) {
                        tracing::error!(home = %self.node.node.home_dir.display(), doing = %stall.doing, waited_s = stall.waited.as_secs(), "the home does not answer");
                        return Err(HomeStop::stalled(&stall, &self.node.node.home_dir, limit));
                    }
                }
            }
        }
    }

    /// Lets a problem through when the policy says so, with a warning.
    fn gate(&self, problem: Problem) -> Result<(), Problem> {
        if !self.policy.waives(problem.kind) {
            return Err(problem);
        }
        for check in &problem.checks {
            tracing::warn!(check = %check.id, cause = %check.cause, "starting anyway, as the policy says");
        }
        Ok(())
    }

    /// Records a stage's checks and logs its outcome and duration.
    fn record(&self, stage: &'static str, checks: &[Check], took: Duration) {
        let status = worst(checks);
        if stage == "keys"
            && let Some(text) =
                entrypoint::keys::migration_concluded(&self.state.stage_checks(stage), checks)
        {
            tracing::info!(check = entrypoint::keys::check_ids::PARTICIPANT, "{text}");
        }
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

    /// Runs the node's short commands (`init`, `--help`) as `user`, with no
    /// secrets in their environment: `--help` prints the values of the
    /// variables the node reads.
    fn commands(&self, user: &NodeUser) -> ReapedCommands {
        ReapedCommands::new(self.reaper.clone(), user, self.env, IoWatch::default())
    }
}

/// A stage's answer could not be had: no runtime on its thread, or the thread
/// ended without one.
fn no_runtime() -> HomeError {
    HomeError::Io {
        action: "run the home stage on",
        path: "its own thread".into(),
        source: io::Error::other("no runtime, or the thread ended without an answer"),
    }
}

/// What the home stage reads, owned, for its thread.
struct HomeStage {
    node: Node,
    homes: HomeSettings,
    secrets: SecretSettings,
    efs_file_system_id: Option<String>,
    env: BTreeMap<String, String>,
    validated: NodeSecrets,
    facts: Option<ChainFacts>,
    state: State,
    reaper: Reaper,
    io: IoWatch,
}

impl HomeStage {
    /// Inspected, locked (once: the lock is kept across holds), prepared.
    async fn run(
        self,
        mut held: Option<HomeLock>,
    ) -> (Option<HomeLock>, Result<homes::NodeHome, HomeStop>) {
        let result = self.prepare(&mut held).await;
        self.io.stop();
        (held, result)
    }

    async fn prepare(&self, held: &mut Option<HomeLock>) -> Result<homes::NodeHome, HomeStop> {
        let inputs = HomeInputs {
            node: &self.node,
            homes: &self.homes,
            secrets: &self.secrets,
            efs_file_system_id: self.efs_file_system_id.as_deref(),
            env: &self.env,
            io: self.io.clone(),
        };
        let inspection = homes::inspect(&inputs, WriteTest::Probe).await?;
        if held.is_none() {
            let taken = self.lock(&inspection.user).await;
            *held = Some(taken.map_err(|e| HomeStop::after(inspection.checks.clone(), e))?);
            self.state.apply(Event::Enter(Phase::Home));
        }
        let lock = held.as_ref().expect("just taken");
        // The node's commands (init) wait aside: they are not file work.
        let commands = ReapedCommands::new(
            self.reaper.clone(),
            &inspection.user,
            &self.env,
            self.io.clone(),
        );
        homes::prepare(
            inspection,
            lock,
            &inputs,
            &self.validated,
            self.facts.as_ref(),
            &commands,
        )
        .await
    }

    /// Takes the home's lock, showing who holds it while waiting.
    async fn lock(&self, user: &NodeUser) -> Result<HomeLock, HomeError> {
        let state = self.state.clone();
        lock::acquire(
            &self.node.home_dir,
            lock::Holder::this_process(),
            self.homes.lock_wait,
            user,
            &self.io,
            |holder| {
                let who = holder.map_or_else(|| "another process".to_string(), ToString::to_string);
                tracing::warn!(holder = %who, "waiting for the home's lock: another agent runs a node on this home");
                state.apply(Event::WaitForLock(Reason::new(
                    "homes.lock",
                    format!("the home's lock is held by {who}"),
                    Some("this agent starts the node when the other one stops (a rolling deploy); if none should run, stop it".into()),
                )));
            },
        )
        .await
    }
}
