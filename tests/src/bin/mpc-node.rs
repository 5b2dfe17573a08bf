//! A stand-in for `mpc-node` with the real binary's command-line surface and
//! switches ([`Behavior`]) that make it misbehave on purpose.
//!
//! `mpc-node behave --json '{…}'` runs a behaviour directly (for `agent exec`);
//! `mpc-node start` reads it from `$MPC_HOME_DIR/standin-behavior.json`.

use std::io::Write;
use std::time::Duration;

use agent_tests::standin_node::{Behavior, OnStop};
use clap::{Parser, Subcommand};
use nix::sys::signal::{Signal, raise};
use nix::unistd::{ForkResult, fork};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(name = "mpc-node", version, about = "Stand-in for mpc-node")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Behave as the JSON says (see `Behavior`).
    Behave {
        #[arg(long, default_value = "{}")]
        json: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let behavior = match cli.command {
        Cmd::Behave { json } => match serde_json::from_str::<Behavior>(&json) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("mpc-node: bad behaviour JSON: {e}");
                std::process::exit(2);
            }
        },
    };
    run(behavior);
}

fn run(b: Behavior) {
    // Forks happen while the process is still single-threaded.
    if b.orphans > 0 {
        leave_orphans(b.orphans, Duration::from_millis(b.orphan_ms));
    }
    for _ in 0..b.group_children {
        start_group_child();
    }
    let mut out = std::io::stdout().lock();
    for line in &b.stdout {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    let mut err = std::io::stderr().lock();
    for line in &b.stderr {
        let _ = writeln!(err, "{line}");
    }
    drop(err);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(live(b));
}

async fn live(b: Behavior) {
    let mut handlers = Vec::new();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        handlers.push((
            sig,
            signal(SignalKind::from_raw(sig as i32)).expect("signal handler"),
        ));
    }
    for (sig, mut stream) in handlers {
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                println!("mpc-node: got {}", sig.as_str());
            }
        });
    }
    if b.on_stop != OnStop::Die {
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            let mut stream = signal(SignalKind::from_raw(sig as i32)).expect("signal handler");
            let on_stop = b.on_stop;
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    println!("mpc-node: got {}", sig.as_str());
                    if on_stop == OnStop::ExitClean {
                        println!("mpc-node: shutting down");
                        std::process::exit(0);
                    }
                }
            });
        }
    }
    // Tests wait for this line before they signal: the handlers are in place.
    println!("mpc-node: running");
    if let Some(addr) = b.health {
        let delay = Duration::from_millis(b.health_after_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            serve_health(addr).await;
        });
    }
    if b.exit_code.is_some() || b.die_by_signal.is_some() {
        tokio::time::sleep(Duration::from_millis(b.after_ms)).await;
        if let Some(n) = b.die_by_signal {
            let sig = Signal::try_from(n).expect("a valid signal number");
            // Default action, even for signals handled above.
            unsafe {
                let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
            }
            let _ = raise(sig);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::process::exit(b.exit_code.unwrap_or(0));
    }
    std::future::pending::<()>().await;
}

/// An intermediate process forks `count` grandchildren and exits at once:
/// the grandchildren become orphans of whoever reaps for this process tree.
fn leave_orphans(count: u32, life: Duration) {
    // SAFETY: single-threaded here; children only sleep and _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        ForkResult::Child => {
            for _ in 0..count {
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    std::thread::sleep(life);
                    unsafe { libc::_exit(0) };
                }
            }
            unsafe { libc::_exit(0) };
        }
    }
}

/// A child in our process group that ignores nothing and lives for ever.
fn start_group_child() {
    // SAFETY: single-threaded here; the child only sleeps.
    if let Ok(ForkResult::Child) = unsafe { fork() } {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

async fn serve_health(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind health");
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK")
                .await;
        });
    }
}
