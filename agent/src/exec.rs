//! `agent exec -- CMD…`: the HTTP server first, then the supervisor around CMD.

use std::ffi::OsString;
use std::sync::Arc;

use entrypoint::config::{Command, Config, Layers, LogFormat};

use crate::state::{Judgement, State};
use crate::supervisor::{ChildSpec, LogTail, Reaper, Role, Signals, Supervisor};
use crate::{exit, logging, readiness, server, show_config};

pub fn main(layers: Layers, command: Vec<OsString>) -> i32 {
    logging::init(
        LogFormat::from_layers(&layers),
        layers.env.get("RUST_LOG").map(String::as_str),
        logging::Output::Stdout,
    );
    let config = match Config::resolve(Command::Exec, &layers) {
        Ok(c) => c,
        Err(e) => return show_config::refuse(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return exit::SOFTWARE;
        }
    };
    let mut args = command.into_iter();
    let spec = ChildSpec {
        program: args.next().expect("clap requires a command"),
        args: args.collect(),
    };
    runtime.block_on(supervise(config, spec))
}

async fn supervise(config: Config, spec: ChildSpec) -> i32 {
    let settings = config.supervision.clone().expect("exec supervises");
    let state = State::new(
        Judgement {
            probe_required: settings.ready_url.is_some(),
            probe_max_age: settings.ready_interval * 3,
            ..Judgement::default()
        },
        show_config::to_json(&config),
    );
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return exit::SOFTWARE;
        }
    };
    let reaper = match Reaper::start(state.clone()) {
        Ok((reaper, role)) => {
            match role {
                Role::Init => tracing::info!("running as PID 1: reaping every orphan"),
                Role::Subreaper => tracing::info!("not PID 1: registered as child subreaper"),
            }
            reaper
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot become a child subreaper");
            return exit::SOFTWARE;
        }
    };
    let tail = Arc::new(LogTail::default());
    match server::bind(config.listen).await {
        Ok(listener) => {
            let listen = listener.local_addr().unwrap_or(config.listen);
            tracing::info!(%listen, "serving /health, /ready, /status, /metrics, /config");
            server::spawn(listener, state.clone(), tail.clone());
        }
        Err(e) => {
            tracing::error!("{e}");
            return exit::CONFIG;
        }
    }
    if let Some(url) = settings.ready_url.clone() {
        readiness::spawn(url, settings.ready_interval, state.clone());
    }
    Supervisor {
        spec,
        settings,
        state,
        reaper,
        tail,
    }
    .run(&mut signals)
    .await
}
