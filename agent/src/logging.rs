//! The agent's own log lines: JSON or plain, filtered by `RUST_LOG`.

use entrypoint::config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Where the log lines go.
#[derive(Clone, Copy)]
pub enum Output {
    /// The supervising commands: the container's log is stdout.
    Stdout,
    /// The reporting commands: stdout carries the report.
    Stderr,
}

impl Output {
    /// Writes text meant for a person where the log lines go.
    pub fn print(self, text: &str) {
        match self {
            Output::Stdout => print!("{text}"),
            Output::Stderr => eprint!("{text}"),
        }
    }
}

/// Installs the subscriber. `RUST_LOG` is shared with the node, so a filter
/// that names only the node's targets still lets the agent's info lines through.
pub fn init(format: LogFormat, rust_log: Option<&str>, output: Output) {
    use std::io::IsTerminal;
    let filter = filter(rust_log.unwrap_or(""));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, output) {
        (LogFormat::Json, Output::Stdout) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .init(),
        (LogFormat::Json, Output::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .init(),
        (LogFormat::Plain, Output::Stdout) => builder
            .compact()
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .init(),
        (LogFormat::Plain, Output::Stderr) => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
}

fn filter(rust_log: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(rust_log);
    let directives: Vec<&str> = rust_log.split(',').map(str::trim).collect();
    let global =
        rust_log.trim().is_empty() || directives.iter().any(|d| !d.is_empty() && !d.contains('='));
    for target in ["agent", "entrypoint"] {
        let named = directives
            .iter()
            .any(|d| d.split('=').next() == Some(target));
        if !global && !named {
            filter = filter.add_directive(
                format!("{target}=info")
                    .parse()
                    .expect("a static directive parses"),
            );
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_only_filter_keeps_the_agents_info_lines() {
        let directives = |rust_log: &str| {
            let mut d: Vec<String> = filter(rust_log)
                .to_string()
                .split(',')
                .map(str::to_string)
                .collect();
            d.sort();
            d
        };
        assert_eq!(
            directives("mpc_node=debug"),
            ["agent=info", "entrypoint=info", "mpc_node=debug"]
        );
        assert_eq!(directives("warn"), ["warn"]);
        assert_eq!(
            directives("agent=trace"),
            ["agent=trace", "entrypoint=info"]
        );
        assert_eq!(directives(""), ["info"]);
    }
}
