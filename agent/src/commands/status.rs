//! `agent status`: the running agent's sync progress and chain watch, read
//! from its `/status` through the typed view. On a terminal it refreshes in
//! place (a progress bar) until the node is ready; `--wait` polls until ready
//! (exit 0) or the timeout (exit 1); otherwise it prints once and exits 0 when
//! ready, 1 when not.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use entrypoint::config::{Command, Config, Layers};
use entrypoint::probe;

use crate::life::views::{Status, Sync, SyncSource, Watch};
use crate::{exit, process};

pub struct Options {
    /// The agent's base URL, e.g. `http://127.0.0.1:8090`.
    pub url: Option<String>,
    pub wait: bool,
    /// How long `--wait` waits.
    pub timeout: Duration,
    /// How often the screen is refreshed.
    pub every: Duration,
}

pub fn main(layers: Layers, options: Options) -> i32 {
    let base = match options.url.clone() {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => match Config::resolve(Command::Health, &layers) {
            Ok(c) => c.local_url(""),
            Err(e) => {
                print!("{}", process::problems_text(&e.0));
                return exit::CONFIG;
            }
        },
    };
    let Ok(runtime) = process::runtime() else {
        println!("cannot start the async runtime");
        return exit::SOFTWARE;
    };
    runtime.block_on(watch(&base, &options))
}

async fn watch(base: &str, options: &Options) -> i32 {
    let url = format!("{base}/status");
    let tty = std::io::stdout().is_terminal();
    let follow = options.wait || tty;
    let deadline = Instant::now() + options.timeout;
    let mut shown_lines = 0;
    let mut last_text = String::new();
    loop {
        let (text, ready) = match read(&url).await {
            Ok(status) => (screen(&status, tty), status.ready.ready),
            Err(e) => (format!("{e}\n"), false),
        };
        let mut out = std::io::stdout().lock();
        if tty {
            // Back to the first line of the previous screen, cleared to the end.
            if shown_lines > 0 {
                let _ = write!(out, "\x1b[{shown_lines}F\x1b[J");
            }
            let _ = write!(out, "{text}");
            shown_lines = text.lines().count();
        } else if text != last_text {
            let _ = write!(out, "{text}");
        }
        let _ = out.flush();
        drop(out);
        last_text = text;
        if ready {
            return 0;
        }
        if !follow || (options.wait && Instant::now() >= deadline) {
            return exit::UNHEALTHY;
        }
        tokio::time::sleep(options.every).await;
    }
}

async fn read(url: &str) -> Result<Status, String> {
    match probe::get(url, Duration::from_secs(3)).await {
        Ok((200, body)) => serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not an agent's /status: {e}")),
        Ok((code, _)) => Err(format!("{url} answered {code}")),
        Err(e) => Err(format!("no agent answers at {url}: {e}")),
    }
}

/// The screen for one `/status`: the node, its sync, readiness, the watch.
pub fn screen(status: &Status, bar: bool) -> String {
    let mut out = String::new();
    let node = match &status.child.running {
        Some(running) => format!(
            "{} (node pid {}, up {})",
            status.phase,
            running.pid,
            span(running.uptime_seconds)
        ),
        None => status.phase.to_string(),
    };
    out.push_str(&format!(
        "agent   {node}, restarts {}\n",
        status.child.restarts
    ));
    match &status.sync {
        Some(sync) => out.push_str(&sync_lines(sync, bar)),
        None => out.push_str("sync    not read yet\n"),
    }
    let ready = if status.ready.ready { "yes" } else { "no" };
    out.push_str(&format!("ready   {ready}: {}\n", status.ready.detail));
    out.push_str(&watch_line(status.watch.as_ref()));
    out
}

fn sync_lines(sync: &Sync, bar: bool) -> String {
    if sync.source == SyncSource::HealthOnly {
        return format!(
            "sync    unknown: {}\n",
            sync.note.as_deref().unwrap_or("no indexer metrics")
        );
    }
    let height = sync.height.map_or("?".into(), |h| h.to_string());
    let head = sync
        .chain_head
        .map(|h| format!(" of {h} (chain head)"))
        .unwrap_or_default();
    let lag = sync.lag_seconds.unwrap_or_default();
    let mut first = format!("sync    block {height}{head}");
    if sync.caught_up {
        first.push_str(&format!(", caught up ({} behind)", span(lag)));
        if let Some(took) = sync.synced_in_seconds {
            first.push_str(&format!(", synced in {}", span(took)));
        }
        first.push('\n');
    } else {
        let done = match sync.started_lag_seconds {
            Some(start) if start > 0.0 => (1.0 - lag / start).clamp(0.0, 1.0),
            _ => 0.0,
        };
        if bar {
            first = format!(
                "sync    {} {:5.1}%  {}",
                progress_bar(done, 30),
                done * 100.0,
                &first[8..]
            );
        } else {
            first.push_str(&format!(" ({:.1}% of this sync)", done * 100.0));
        }
        first.push('\n');
        let blocks = sync
            .lag_blocks
            .map(|b| format!("{b} blocks, "))
            .unwrap_or_default();
        let pace = sync
            .blocks_per_second
            .map(|p| format!("; {p:.1} blocks/s"))
            .unwrap_or_default();
        let eta = sync
            .eta_seconds
            .map(|e| format!("; ETA {}", span(e)))
            .unwrap_or_else(|| "; ETA unknown yet".into());
        first.push_str(&format!(
            "        {blocks}{} behind{pace}{eta}\n",
            span(lag)
        ));
    }
    if let Some(stall) = &sync.stall {
        first.push_str(&format!(
            "stall   {}; {}\n",
            crate::life::state::stall_text(stall),
            stall.action
        ));
    }
    if let Some(note) = &sync.note {
        first.push_str(&format!("note    {note}\n"));
    }
    first
}

fn watch_line(watch: Option<&Watch>) -> String {
    let Some(watch) = watch else {
        return "watch   no pass yet\n".into();
    };
    let at = humantime::format_rfc3339_seconds(watch.checked_at);
    if watch.reasons.is_empty() {
        return format!("watch   ok at {at}\n");
    }
    let mut out = String::new();
    for reason in &watch.reasons {
        out.push_str(&format!("watch   {}: {}\n", reason.kind, reason.cause));
    }
    out
}

fn progress_bar(done: f64, width: usize) -> String {
    let filled = ((done * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// `2h 10m`, `3m 05s`, `42s`.
fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_bars_read_at_a_glance() {
        assert_eq!(span(42.4), "42s");
        assert_eq!(span(185.0), "3m 05s");
        assert_eq!(span(7800.0), "2h 10m");
        assert_eq!(progress_bar(0.5, 10), "[#####-----]");
        assert_eq!(progress_bar(2.0, 4), "[####]");
    }
}
