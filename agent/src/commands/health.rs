//! `agent health`: the container HEALTHCHECK client (the images have no curl).
//! Prints one line and exits 0 on 200, 1 otherwise.

use std::time::Duration;

use entrypoint::config::{Command, Config, Layers};

use entrypoint::probe;

use crate::{exit, process};

pub struct Options {
    pub url: Option<String>,
    pub ready: bool,
    pub timeout: Duration,
}

pub fn main(layers: Layers, options: Options) -> i32 {
    let url = match options.url {
        Some(url) => url,
        None => match Config::resolve(Command::Health, &layers) {
            Ok(c) => c.local_url(if options.ready { "/ready" } else { "/health" }),
            Err(e) => {
                // No log here: the HEALTHCHECK shows this command's stdout.
                print!("unhealthy: {}", process::problems_text(&e.0));
                return exit::CONFIG;
            }
        },
    };
    let Ok(runtime) = process::runtime() else {
        println!("unhealthy: cannot start the async runtime");
        return exit::SOFTWARE;
    };
    let (line, code) = match runtime.block_on(probe::get(&url, options.timeout)) {
        Ok((status, body)) => {
            let summary = summarize(&body);
            if status == 200 {
                (format!("healthy: {url} answered 200{summary}"), 0)
            } else {
                (
                    format!("unhealthy: {url} answered {status}{summary}"),
                    exit::UNHEALTHY,
                )
            }
        }
        Err(e) => (format!("unhealthy: {e}"), exit::UNHEALTHY),
    };
    println!("{line}");
    code
}

/// ` (pass: running)` from a health body, ` (detail)` from a ready body.
fn summarize(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match (text("status"), text("output"), text("detail")) {
        (Some(s), Some(o), _) => format!(" ({s}: {o})"),
        (_, _, Some(d)) => format!(" ({d})"),
        _ => String::new(),
    }
}
