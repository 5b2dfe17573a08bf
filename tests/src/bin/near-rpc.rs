//! `near-rpc`: the NEAR JSON-RPC stand-in as a process, for demos and for
//! tests that drive the agent binary.
//!
//! `near-rpc --listen 127.0.0.1:0 --scenario chain.json` prints
//! `listening on http://IP:PORT` as its first line, serves JSON-RPC on `/`
//! and the control API on the same port (`GET`/`PUT /control/scenario`,
//! `GET /control/requests`), and exits 0 on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use agent_tests::near_rpc::{NearRpcStandin, Scenario};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(about = "NEAR JSON-RPC stand-in answering from a scenario file")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3030")]
    listen: SocketAddr,
    /// JSON scenario: chain id, blocks, accounts and keys, contract states, fault.
    #[arg(long)]
    scenario: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("near-rpc: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let scenario = load(&args.scenario)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;
    let standin = NearRpcStandin::start(args.listen, scenario)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;

    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", standin.url())
        .and_then(|()| stdout.flush())
        .map_err(|err| err.to_string())?;

    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

fn load(path: &PathBuf) -> Result<Scenario, String> {
    let text = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let scenario: Scenario =
        serde_json::from_slice(&text).map_err(|err| format!("{}: {err}", path.display()))?;
    scenario
        .validate()
        .map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(scenario)
}
