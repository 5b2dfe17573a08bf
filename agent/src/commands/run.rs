//! `agent run`, the container ENTRYPOINT: the HTTP server first, then
//! config → secrets → keys → homes → launch → supervise, each stage's outcome
//! on `/status` as it happens, and the metrics line in the log when
//! `AGENT_CLOUDWATCH_NAMESPACE` is set. A rotated secret restarts the node
//! through the stages again; SIGTERM at any phase stops cleanly.

use std::collections::BTreeMap;

use entrypoint::clients::Clients;
use entrypoint::config::settings::Id;
use entrypoint::config::{ExecConfig, Layers, LogFormat, RunConfig};
use entrypoint::stage::{Stage, StageStop, StopKind};
use tokio::sync::mpsc;

use crate::life::Event;
use crate::life::state::Judgement;
use crate::life::views::Reason;
use crate::node::pipeline::{Boot, Mode, Pipeline};
use crate::node::{readiness, rotation, vault, watch};
use crate::process::{self, Process};
use crate::supervisor::{ChildSpec, Outcome, Supervisor};
use crate::{exit, logging, metric_lines};

pub fn main(layers: Layers) -> i32 {
    logging::init(
        LogFormat::from_layers(&layers),
        layers.env_value(Id::RustLog),
        logging::Output::Stdout,
    );
    let runtime = match process::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match RunConfig::resolve(&layers) {
        Ok(config) => runtime.block_on(run(config, layers.env)),
        Err(e) => runtime.block_on(refuse(&layers, &e)),
    }
}

/// An invalid configuration: every problem logged, and served on `/health`
/// and `/status` (on the listen address, if that much is valid) for a
/// moment, so the orchestrator and the operator see why; then exit 78.
async fn refuse(layers: &Layers, error: &entrypoint::config::ConfigError) -> i32 {
    let code = process::refuse(error, layers, logging::Output::Stdout);
    let Ok(exec) = ExecConfig::resolve(&Layers {
        env: layers
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("AGENT_") || *k == Id::RustLog.name())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cli: layers.cli.clone(),
        file: None,
    }) else {
        return code;
    };
    let Ok(process) = Process::start(
        &exec.base,
        Judgement::default(),
        Some(exec.supervision.status_log_tail),
    )
    .await
    else {
        return code;
    };
    let stop = StageStop::of(Stage::Config, StopKind::Blocking, error.0.clone());
    process.state.set_checks(Stage::Config, error.0.clone());
    if let Some(failed) = stop.as_ref().map(StageStop::reason) {
        process.state.apply(Event::Fail(Reason::of(failed)));
    }
    let linger = exec.supervision.fail_linger;
    tracing::info!(
        linger = %humantime::format_duration(linger),
        "the refusal stays on {} and /status for AGENT_FAIL_LINGER, so the orchestrator and the operator see why; then exit {code}",
        exec.base.local_url("/health"),
    );
    let mut signals = process.signals;
    signals.linger(linger).await;
    code
}

async fn run(config: RunConfig, env: BTreeMap<String, String>) -> i32 {
    let settings = config.supervision.clone();
    let judgement = Judgement {
        probe_required: settings.ready_url.is_some(),
        probe_max_age: settings.ready_interval * 3,
        hold_grace: config.lifetime.hold_grace,
    };
    let Process {
        state,
        mut signals,
        reaper,
        tail,
    } = match Process::start(&config.base, judgement, Some(settings.status_log_tail)).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    // From the first instant: the agent-silent alarm reads the heartbeat.
    let _metric_lines = config
        .cloudwatch
        .clone()
        .map(|settings| metric_lines::spawn(settings, state.clone()));
    // Stall restarts and rotations ask for the node to be replaced here.
    let (restart, mut requests) = mpsc::channel(1);
    let _readiness = if let Some(url) = settings.ready_url.clone() {
        let indexer = readiness::Indexer {
            settings: config.lifetime.sync.clone(),
            restart_window: settings.crash_loop.window,
            restart: restart.clone(),
        };
        Some(readiness::spawn(
            url,
            settings.ready_interval,
            state.clone(),
            Some(indexer),
        ))
    } else {
        None
    };
    let clients = Clients::new();
    let _head = readiness::follow_chain_head(
        config.node.chain_rpc.clone(),
        clients.clone(),
        state.clone(),
    );
    let boot = Boot {
        node: &config.node,
        homes: &config.homes,
        policy: &config.policy,
        efs_file_system_id: config.efs_file_system_id.as_deref(),
        env: &env,
        clients: &clients,
        state: state.clone(),
        reaper: reaper.clone(),
        vault: config.vault.as_ref(),
        restore: config.restore,
    };
    // The pipeline keeps the home's lock from the moment it takes it until the agent exits.
    let mut pipeline = Pipeline::new(
        boot,
        Mode::Run {
            hold_retry: config.lifetime.hold_retry,
        },
    );
    // The home's keyshares, followed from the first boot's home stage on,
    // across the node's restarts: the home does not change.
    let mut keyshares = None;
    loop {
        // The first boot also sets up the keyshare loop's vault (the AWS
        // configuration): a SIGTERM meanwhile is answered all the same.
        let first = keyshares.is_none();
        let prepared = async {
            let ready = pipeline.prepare().await;
            let vault_settings = match &ready {
                Ok(_) if first => Some(vault::Settings::of(&config, &env, &clients).await),
                _ => None,
            };
            (ready, vault_settings)
        };
        let (ready, vault_settings) = tokio::select! {
            prepared = prepared => prepared,
            stop = signals.next_stop() => {
                tracing::info!(signal = stop.as_str(), phase = state.phase_name(), "stopped before the node started");
                state.apply(Event::Stop);
                return exit::by_signal(stop);
            }
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(code) => {
                signals.linger(settings.fail_linger).await;
                return code;
            }
        };
        if let Some(settings) = vault_settings {
            keyshares = Some(vault::spawn(settings, state.clone()));
        }
        // A request left from before this node started is not about it.
        while requests.try_recv().is_ok() {}
        let watcher = rotation::spawn(
            config.clone(),
            env.clone(),
            state.clone(),
            &ready.secrets,
            &ready.keys_in_use,
            restart.clone(),
            clients.clone(),
        );
        let chain_watch = watch::spawn(
            config.clone(),
            env.clone(),
            state.clone(),
            ready.secrets.clone(),
            clients.clone(),
        );
        let plan = ready.plan;
        // Removed when this boot ends (the agent exits, or the stages run again).
        let _start_file = plan.start_file;
        let supervisor = Supervisor {
            spec: ChildSpec {
                program: plan.program.into_os_string(),
                args: plan.args,
                env: Some(plan.env),
                user: Some((plan.user.uid, plan.user.gid)),
            },
            settings: settings.clone(),
            state: state.clone(),
            reaper: reaper.clone(),
            tail: tail.clone(),
        };
        let outcome = supervisor.run(&mut signals, Some(&mut requests)).await;
        drop((watcher, chain_watch));
        match outcome {
            Outcome::Exit(code) => return code,
            Outcome::Replace { reason } => {
                tracing::info!(%reason, "starting the node again through the boot stages")
            }
        }
    }
}
