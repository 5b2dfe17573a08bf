//! `bench-lifecycle --agent PATH`: times the agent's own lifecycle costs that a
//! command-line timer cannot see, and prints them (no pass/fail):
//! - SIGTERM to the agent → agent exited, for a child that exits at once;
//! - process start → first 200 on `/health`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_tests::harness::{free_port, http};
use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Parser)]
struct Args {
    /// The agent binary to measure (a release build).
    #[arg(long)]
    agent: PathBuf,
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

fn main() {
    let args = Args::parse();
    let mut stop = Vec::with_capacity(args.iterations);
    let mut first_health = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let port = free_port();
        let started = Instant::now();
        let mut agent = Command::new(&args.agent)
            .args(["exec", "--", "sleep", "1000"])
            .env("AGENT_LISTEN", format!("127.0.0.1:{port}"))
            .env("AGENT_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = started + Duration::from_secs(10);
        loop {
            if let Ok(r) = http("GET", addr, "/health", Duration::from_secs(1))
                && r.status == 200
            {
                first_health.push(started.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "no /health answer within 10 s");
        }
        // Wait until the child runs, so the stop measures the whole stop sequence.
        loop {
            let status = http("GET", addr, "/status", Duration::from_secs(1)).expect("/status");
            if status.body.contains("\"phase\":\"running\"") {
                break;
            }
            assert!(Instant::now() < deadline, "the child never ran");
        }
        let asked = Instant::now();
        kill(Pid::from_raw(agent.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        agent.wait().expect("wait for the agent");
        stop.push(asked.elapsed());
    }
    report("SIGTERM → agent exited (child exits at once)", &mut stop);
    report("start → first 200 on /health", &mut first_health);
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.3} ms, p95 {:.3} ms, max {:.3} ms ({} runs)",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(1.0)),
        samples.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
