//! The agent's process-wide parts, set up before any stage or child: the
//! configuration resolved (or refused, one way for every command), the
//! state, the signal handlers, the reaper (PID 1 or subreaper) and, for the
//! supervising commands, the HTTP server.

use std::sync::Arc;

use entrypoint::check::Check;
use entrypoint::config::settings::Id;
use entrypoint::config::{Config, ConfigError, Layers, LogFormat, LogTailAccess};

use crate::http::{admission, server};
use crate::life::state::{Judgement, LogTail, State};
use crate::life::views::Settings;
use crate::supervisor::{Reaper, Role, Signals};
use crate::{exit, logging};

pub struct Process {
    pub state: State,
    pub signals: Signals,
    pub reaper: Reaper,
    pub tail: Arc<LogTail>,
}

impl Process {
    /// Installs the signal handlers and the reaper; `serve` also starts the
    /// HTTP server, which gives the node's log tail to whom it says. `Err`
    /// is the exit code.
    pub async fn start(
        config: &Config,
        judgement: Judgement,
        serve: Option<LogTailAccess>,
    ) -> Result<Process, i32> {
        let state = State::new(judgement, Settings::of(config));
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
        let fd_limit = raise_fd_limit();
        let tail = Arc::new(LogTail::default());
        if let Some(access) = serve {
            let listener = server::bind(config.listen).await.map_err(|e| {
                tracing::error!("{e}");
                exit::CONFIG
            })?;
            let listen = listener.local_addr().unwrap_or(config.listen);
            let cap = admission::cap_for(fd_limit);
            tracing::info!(%listen, max_connections = cap, fd_limit, log_tail = access.as_str(), "serving /health, /ready, /status, /metrics, /config");
            server::spawn(listener, state.clone(), tail.clone(), cap, access);
        }
        Ok(Process {
            state,
            signals,
            reaper,
            tail,
        })
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the child inherits it)
/// and returns the soft limit in force.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit");
            return 1024;
        }
    };
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(soft, hard, error = %e, "cannot raise the file-descriptor limit to the hard limit");
        return soft;
    }
    tracing::info!(soft = hard.max(soft), hard, "file-descriptor limit");
    hard.max(soft)
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
        layers.env_value(Id::RustLog),
        output,
    );
    let config = resolve(layers).map_err(|e| refuse(&e, layers, output))?;
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

/// Reports every problem of an invalid configuration where the command logs:
/// the list `agent config` prints when the log is plain (a terminal, or
/// `AGENT_LOG_FORMAT=plain`), one JSON log line per problem otherwise.
/// Returns the exit code for an invalid configuration.
pub fn refuse(error: &ConfigError, layers: &Layers, output: logging::Output) -> i32 {
    match LogFormat::from_layers(layers) {
        LogFormat::Plain => output.print(&problems_text(&error.0)),
        LogFormat::Json => {
            for problem in &error.0 {
                tracing::error!(check = %problem.id, cause = %problem.cause, fix = problem.fix.as_deref().unwrap_or(""), "invalid configuration");
            }
        }
    }
    exit::CONFIG
}

/// The problems as `agent config` lists them.
pub fn problems_text(problems: &[Check]) -> String {
    let mut text = format!("{} configuration problem(s):\n", problems.len());
    for p in problems {
        text.push_str(&format!("  ✖ {}\n", p.cause));
        if let Some(fix) = &p.fix {
            text.push_str(&format!("    fix: {fix}\n"));
        }
    }
    text
}
