//! One pass through the boot stages, in pipeline order — verify (secrets
//! and keys, read in one round), the home (inspected, locked, its lost
//! keyshare restored, prepared), the launch plan — each entered on the
//! state, recorded with its checks and logged with its duration. The home's file work runs on a thread of its own
//! (the one rule of `homes::runner`): a hard-mounted EFS that stops answering
//! hangs that thread, never the one serving `/health` and signals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint::check::{Check, Status, worst};
use entrypoint::config::{HomeSettings, Node};
use entrypoint::homes::runner::on_own_thread;
use entrypoint::homes::{
    self, HomeInputs, HomeInspection, HomeLock, IoWatch, NodeHome, NodeUser, Stall, WriteTest, lock,
};
use entrypoint::keys::{ChainFacts, KeysVerdict, check_ids, migration_concluded};
use entrypoint::launch::{self, LaunchInputs, LaunchPlan};
use entrypoint::restore::{self, HealInputs};
use entrypoint::secrets::{NodeSecrets, SecretSettings};
use entrypoint::stage::{Stage, StageResult, StageStop};
use entrypoint::verify::{self, Step, Verified, VerifyInputs};

use super::commands::ReapedCommands;
use super::pipeline::{Pipeline, Ready};
use crate::life::Event;
use crate::life::state::State;
use crate::life::views::Reason;
use crate::supervisor::Reaper;

impl Pipeline<'_> {
    /// One pass through the stages: the node's start, or the stop.
    pub(super) async fn attempt(&mut self) -> Result<Ready, StageStop> {
        let verified = self.verify().await?;
        let home = self.home(&verified).await?;
        let plan = self.launch(&verified, &home).await?;
        Ok(Ready {
            secrets: home.stored_into(verified.secrets),
            keys_in_use: verified.keys_in_use,
            plan,
        })
    }

    /// The secrets and the keys against the chain; a key problem the policy
    /// waives lets the node start with a warning.
    async fn verify(&self) -> Result<Verified, StageStop> {
        let boot = &self.boot;
        boot.state.apply(Event::Enter(Stage::Secrets));
        let inputs = VerifyInputs::new(boot.node, boot.homes, boot.env, boot.clients);
        let verified = verify::verify(inputs, |step| match step {
            Step::Secrets { checks, took } => {
                self.record(Stage::Secrets, checks, took);
                if worst(checks) != Status::Fail {
                    boot.state.apply(Event::Enter(Stage::Keys));
                }
            }
            Step::Keys { checks, took } => {
                let before = boot.state.stage_checks(Stage::Keys);
                if let Some(text) = migration_concluded(&before, checks) {
                    tracing::info!(check = check_ids::PARTICIPANT, "{text}");
                }
                self.record(Stage::Keys, checks, took);
            }
        })
        .await?;
        boot.state.set_secrets(&verified.secrets.report);
        if let Some(stop) = verified.stop() {
            if !boot.policy.waives(stop.kind) {
                return Err(stop);
            }
            for check in stop.failed() {
                tracing::warn!(check = %check.id, cause = %check.cause, "starting anyway, as the policy says");
            }
        }
        boot.state
            .set_keys_ok(verified.verdict == KeysVerdict::Match);
        Ok(verified)
    }

    /// The home stage: inspected, locked (once: the pipeline keeps the lock),
    /// prepared, each on a thread of its own within `AGENT_HOME_IO_TIMEOUT`.
    async fn home(&mut self, verified: &Verified) -> Result<NodeHome, StageStop> {
        self.boot.state.apply(Event::Enter(Stage::Home));
        let started = Instant::now();
        let result = self.home_stage(verified).await;
        self.record_result(Stage::Home, &result, started.elapsed());
        result.map(|staged| staged.value)
    }

    async fn home_stage(&mut self, verified: &Verified) -> StageResult<NodeHome> {
        let limit = self.boot.homes.io_timeout;
        let work = HomeWork::new(self, verified);
        let stalled = |stall: Stall| {
            tracing::error!(home = %work.node.home_dir.display(), doing = %stall.doing, waited_s = stall.waited.as_secs(), "the home does not answer");
            stall.stop(&work.node.home_dir, limit)
        };
        let inspecting = work.clone();
        let inspection =
            on_own_thread(limit, move |io| async move { inspecting.inspect(io).await })
                .await
                .map_err(stalled)??;
        let lock = match &self.lock {
            Some(lock) => lock.clone(),
            None => {
                let (locking, user) = (work.clone(), inspection.user.clone());
                let taken = on_own_thread(
                    limit,
                    move |io| async move { locking.lock(&user, io).await },
                )
                .await
                .map_err(stalled)?
                .map_err(|e| e.stop(inspection.checks.clone()))?;
                self.lock.insert(Arc::new(taken)).clone()
            }
        };
        let healed = self
            .heal(verified, &lock, &inspection.user)
            .await
            .map_err(stalled)?;
        let preparing = work.clone();
        let prepared = on_own_thread(limit, move |io| async move {
            preparing.prepare(io, inspection, &lock).await
        })
        .await
        .map_err(stalled)?;
        // The keyshare's gap is one the node starts with (it must run to be
        // reshared in): `homes.keyshare` joins the stage's checks after its
        // stop decision was made, so it never stops the stage, and a stop is
        // still only ever made from a check that does.
        prepared.map(|mut staged| {
            staged.checks.push(healed);
            staged
        })
    }

    /// A home without its keyshare, of a node that holds a share of the
    /// contract's keyset, restored from the vault before anything else is
    /// done on it, under the pipeline's lock: `homes.keyshare`.
    async fn heal(
        &self,
        verified: &Verified,
        lock: &Arc<HomeLock>,
        user: &NodeUser,
    ) -> Result<Check, Stall> {
        let boot = &self.boot;
        restore::heal(HealInputs {
            lock: lock.clone(),
            user: user.clone(),
            io_timeout: boot.homes.io_timeout,
            node: &boot.node.node,
            keys: &verified.keys,
            store_key: verified.secrets.store_key.as_ref(),
            vault: boot.vault,
            policy: boot.restore,
            clients: boot.clients,
            env: boot.env,
        })
        .await
    }

    /// The launch plan: the command, the start file, the image's hash.
    async fn launch(&self, verified: &Verified, home: &NodeHome) -> Result<LaunchPlan, StageStop> {
        let boot = &self.boot;
        let started = Instant::now();
        // The node's `--help`, asked as its user with no secret in its environment.
        let commands = ReapedCommands::new(
            boot.reaper.clone(),
            &home.user,
            boot.env,
            IoWatch::default(),
        );
        let inputs = LaunchInputs {
            node: &boot.node.node,
            homes: boot.homes,
            env: boot.env,
            keys: &verified.keys,
        };
        let result = launch::plan(home, &inputs, &commands).await;
        self.record_result(Stage::Launch, &result, started.elapsed());
        result.map(|staged| staged.value)
    }

    fn record_result<T>(&self, stage: Stage, result: &StageResult<T>, took: Duration) {
        let checks = match result {
            Ok(staged) => &staged.checks,
            Err(stop) => stop.checks(),
        };
        self.record(stage, checks, took);
    }

    /// Records a stage's checks and logs its outcome and duration.
    fn record(&self, stage: Stage, checks: &[Check], took: Duration) {
        let state = &self.boot.state;
        state.set_checks(stage, checks.to_vec());
        state.metrics().set_stage_duration(stage, took);
        tracing::info!(
            stage = stage.as_str(),
            status = worst(checks).as_str(),
            took_ms = took.as_millis() as u64,
            "stage done"
        );
        for check in checks
            .iter()
            .filter(|c| matches!(c.status, Status::Warn | Status::Fail))
        {
            tracing::warn!(stage = stage.as_str(), check = %check.id, status = check.status.as_str(), cause = %check.cause, fix = check.fix.as_deref().unwrap_or(""), "check");
        }
    }
}

/// What the home stage reads, owned, for the threads its file work runs on.
#[derive(Clone)]
struct HomeWork {
    node: Node,
    homes: HomeSettings,
    secrets: SecretSettings,
    efs_file_system_id: Option<String>,
    env: BTreeMap<String, String>,
    validated: NodeSecrets,
    facts: Option<ChainFacts>,
    state: State,
    reaper: Reaper,
}

impl HomeWork {
    fn new(pipeline: &Pipeline<'_>, verified: &Verified) -> HomeWork {
        let boot = &pipeline.boot;
        HomeWork {
            node: boot.node.node.clone(),
            homes: boot.homes.clone(),
            secrets: boot.node.secrets.clone(),
            efs_file_system_id: boot.efs_file_system_id.map(str::to_string),
            env: boot.env.clone(),
            validated: verified.secrets.clone(),
            facts: verified.keys.chain_facts(),
            state: boot.state.clone(),
            reaper: boot.reaper.clone(),
        }
    }

    fn inputs(&self, io: IoWatch) -> HomeInputs<'_> {
        HomeInputs {
            node: &self.node,
            homes: &self.homes,
            secrets: &self.secrets,
            efs_file_system_id: self.efs_file_system_id.as_deref(),
            env: &self.env,
            io,
        }
    }

    async fn inspect(&self, io: IoWatch) -> Result<HomeInspection, StageStop> {
        homes::inspect(&self.inputs(io), WriteTest::Probe).await
    }

    /// Takes the home's lock, showing who holds it while waiting.
    async fn lock(&self, user: &NodeUser, io: IoWatch) -> Result<HomeLock, homes::HomeError> {
        let state = &self.state;
        let mut waited = false;
        let taken = lock::acquire(
            &self.node.home_dir,
            lock::Holder::this_process(),
            self.homes.lock_wait,
            user,
            &io,
            |holder| {
                waited = true;
                let who = holder.map_or_else(|| "another process".to_string(), ToString::to_string);
                tracing::warn!(holder = %who, "waiting for the home's lock: another agent runs a node on this home");
                state.apply(Event::WaitForLock(Reason::new(
                    "homes.lock",
                    format!("the home's lock is held by {who}"),
                    Some("this agent starts the node when the other one stops (a rolling deploy); if none should run, stop it".into()),
                )));
            },
        )
        .await;
        io.stop();
        if waited && taken.is_ok() {
            state.apply(Event::Enter(Stage::Home));
        }
        taken
    }

    async fn prepare(
        &self,
        io: IoWatch,
        inspection: HomeInspection,
        lock: &HomeLock,
    ) -> StageResult<NodeHome> {
        // The node's commands (init) wait aside: they are not file work.
        let commands =
            ReapedCommands::new(self.reaper.clone(), &inspection.user, &self.env, io.clone());
        let inputs = self.inputs(io.clone());
        let prepared = homes::prepare(
            inspection,
            lock,
            &inputs,
            &self.validated,
            self.facts.as_ref(),
            &commands,
        )
        .await;
        io.stop();
        prepared
    }
}
