//! `agent init`: the boot stages up to and including the home — secrets,
//! keys against the chain, lock, first init, the files the node reads — and
//! then stop, releasing the lock. It never holds: a problem exits with its code.

use entrypoint::clients::Clients;
use entrypoint::config::{InitConfig, Layers};

use crate::life::state::Judgement;
use crate::logging;
use crate::node::pipeline::{Boot, Mode, Pipeline};
use crate::process::{self, Process};

pub fn main(layers: Layers) -> i32 {
    let (config, runtime) =
        match process::begin(&layers, InitConfig::resolve, logging::Output::Stdout) {
            Ok(begun) => begun,
            Err(code) => return code,
        };
    runtime.block_on(async {
        let mut process = match Process::start(&config.base, Judgement::default(), None).await {
            Ok(p) => p,
            Err(code) => return code,
        };
        let clients = Clients::new();
        let boot = Boot {
            node: &config.node,
            homes: &config.homes,
            policy: &config.policy,
            efs_file_system_id: None,
            env: &layers.env,
            clients: &clients,
            state: process.state.clone(),
            reaper: process.reaper.clone(),
            vault: config.vault.as_ref(),
            restore: config.restore,
        };
        let mut pipeline = Pipeline::new(boot, Mode::Init);
        tokio::select! {
            ready = pipeline.prepare() => match ready {
                Ok(ready) => {
                    let summary = ready.plan.describe();
                    tracing::info!(command = %summary.command.join(" "), user = %summary.user, "home ready: the node can start");
                    0
                }
                Err(code) => code,
            },
            stop = process.signals.next_stop() => {
                tracing::info!(signal = stop.as_str(), "stopped; the home is left as an interrupted init leaves it (the next run resumes)");
                crate::exit::by_signal(stop)
            }
        }
    })
}
