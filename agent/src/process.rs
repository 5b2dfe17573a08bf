//! The agent's process-wide parts, set up before any stage or child: the
//! state, the signal handlers, the reaper (PID 1 or subreaper) and, for the
//! supervising commands, the HTTP server.

use std::sync::Arc;

use entrypoint::config::{Config, ConfigError, Layers, LogFormat};

use crate::state::{Judgement, State};
use crate::supervisor::{LogTail, Reaper, Role, Signals};
use crate::{exit, logging, server, show_config};

pub struct Process {
    pub state: State,
    pub signals: Signals,
    pub reaper: Reaper,
    pub tail: Arc<LogTail>,
}

impl Process {
    /// Installs the signal handlers and the reaper; `serve` also starts the
    /// HTTP server. `Err` is the exit code.
    pub async fn start(config: &Config, judgement: Judgement, serve: bool) -> Result<Process, i32> {
        let state = State::new(judgement, show_config::settings(config));
        let signals = Signals::install().map_err(|e| {
            tracing::error!(error = %e, "cannot install signal handlers");
            exit::SOFTWARE
        })?;
        let reaper = match Reaper::start(state.clone()) {
            Ok((reaper, Role::Init)) => {
                tracing::info!("running as PID 1: reaping every orphan");
                reaper
            }
            Ok((reaper, Role::Subreaper)) => {
                tracing::info!("not PID 1: registered as child subreaper");
                reaper
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot become a child subreaper");
                return Err(exit::SOFTWARE);
            }
        };
        let tail = Arc::new(LogTail::default());
        if serve {
            let listener = server::bind(config.listen).await.map_err(|e| {
                tracing::error!("{e}");
                exit::CONFIG
            })?;
            let listen = listener.local_addr().unwrap_or(config.listen);
            tracing::info!(%listen, "serving /health, /ready, /status, /metrics, /config");
            server::spawn(listener, state.clone(), tail.clone());
        }
        Ok(Process {
            state,
            signals,
            reaper,
            tail,
        })
    }
}

/// The start of every command that works on a configuration: its log lines
/// going to `output`, its configuration resolved by `resolve` (or refused
/// with every problem, exit 78), and a runtime. `Err` is the exit code.
pub fn begin<C>(
    layers: &Layers,
    resolve: fn(&Layers) -> Result<C, ConfigError>,
    output: logging::Output,
) -> Result<(C, tokio::runtime::Runtime), i32> {
    logging::init(
        LogFormat::from_layers(layers),
        layers.env.get("RUST_LOG").map(String::as_str),
        output,
    );
    let config = resolve(layers).map_err(|e| show_config::refuse(&e, layers, output))?;
    Ok((config, runtime()?))
}

/// A current-thread runtime, or the exit code when none can be had.
pub fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start the async runtime");
            exit::SOFTWARE
        })
}
