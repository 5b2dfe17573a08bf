//! `agent exec -- CMD…`: the HTTP server first, then the supervisor around CMD.

use std::ffi::OsString;

use entrypoint::config::{ExecConfig, Layers};

use crate::life::state::Judgement;
use crate::logging;
use crate::node::readiness;
use crate::process::{self, Process};
use crate::supervisor::{ChildSpec, Outcome, Supervisor};

pub fn main(layers: Layers, command: Vec<OsString>) -> i32 {
    let (config, runtime) =
        match process::begin(&layers, ExecConfig::resolve, logging::Output::Stdout) {
            Ok(begun) => begun,
            Err(code) => return code,
        };
    let mut args = command.into_iter();
    let spec = ChildSpec {
        program: args.next().expect("clap requires a command"),
        args: args.collect(),
        env: None,
        user: None,
    };
    runtime.block_on(supervise(config, spec))
}

async fn supervise(config: ExecConfig, spec: ChildSpec) -> i32 {
    let settings = config.supervision;
    let judgement = Judgement {
        probe_required: settings.ready_url.is_some(),
        probe_max_age: settings.ready_interval * 3,
        ..Judgement::default()
    };
    let mut process =
        match Process::start(&config.base, judgement, Some(settings.status_log_tail)).await {
            Ok(p) => p,
            Err(code) => return code,
        };
    let _readiness = settings
        .ready_url
        .clone()
        .map(|url| readiness::spawn(url, settings.ready_interval, process.state.clone(), None));
    let supervisor = Supervisor {
        spec,
        settings,
        state: process.state,
        reaper: process.reaper,
        tail: process.tail,
    };
    match supervisor.run(&mut process.signals, None).await {
        Outcome::Exit(code) => code,
        Outcome::Replace { .. } => unreachable!("exec takes no replacement requests"),
    }
}
