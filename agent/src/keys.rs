//! `agent keys`: fetch and validate the node's secrets and show, for each, where
//! it came from, whether it is good, and its public key or fingerprint — what
//! an operator compares with the chain and with their key inventory.

use entrypoint::check::Status;
use entrypoint::config::{Command, Config, Layers, LogFormat};
use entrypoint::secrets::{self, SecretReport};

use crate::{exit, logging, show_config};

pub fn main(layers: Layers, json: bool) -> i32 {
    logging::init(
        LogFormat::from_layers(&layers),
        layers.env.get("RUST_LOG").map(String::as_str),
        logging::Output::Stderr,
    );
    let config = match Config::resolve(Command::Keys, &layers) {
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
    let settings = config
        .secrets
        .as_ref()
        .expect("keys reads the secret settings");
    let (report, valid) = match runtime.block_on(secrets::load(settings, &layers.env)) {
        Ok(s) => (s.report, true),
        Err(f) => (f.report, false),
    };
    if json {
        let body = serde_json::json!({ "valid": valid, "secrets": report });
        println!("{}", serde_json::to_string_pretty(&body).expect("JSON"));
    } else {
        print_table(&report);
    }
    if valid { 0 } else { exit::UNHEALTHY }
}

fn print_table(report: &[SecretReport]) {
    let rows: Vec<[String; 4]> = report
        .iter()
        .map(|r| {
            [
                r.name.env_name().to_string(),
                mark(r.status).to_string(),
                r.source.to_string(),
                r.public_key
                    .clone()
                    .or_else(|| r.fingerprint.as_ref().map(|f| format!("sha256:{f}…")))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["SECRET", "", "SOURCE", "PUBLIC KEY / FINGERPRINT"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), 1, width(2)];
    println!(
        "{:<w0$}  {:<1}  {:<w2$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        w0 = widths[0],
        w2 = widths[2]
    );
    for row in &rows {
        println!(
            "{:<w0$}  {}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w2 = widths[2]
        );
    }
    let problems: Vec<&SecretReport> = report.iter().filter(|r| r.status == Status::Fail).collect();
    if problems.is_empty() {
        println!("\nall secrets valid");
        return;
    }
    println!("\n{} problem(s):", problems.len());
    for p in problems {
        println!("  ✖ {}", p.cause);
        if let Some(fix) = &p.fix {
            println!("    fix: {fix}");
        }
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Ok => "✔",
        Status::Warn => "!",
        Status::Fail => "✖",
        Status::Skipped => "–",
    }
}
