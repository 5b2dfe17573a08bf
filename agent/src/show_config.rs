//! `agent config` and the `/config` endpoint: every setting with its value and
//! where it came from; and how an invalid configuration is refused.

use entrypoint::check::Check;
use entrypoint::config::{Config, ConfigError, Layers, LogFormat, RunConfig, SETTINGS};

use crate::views::{Setting, Settings};
use crate::{exit, logging};

/// Every setting of every command as a Markdown table: the README's reference.
pub fn reference() -> String {
    use entrypoint::config::{Command, Setting};
    let commands = |s: &Setting| {
        [
            Command::Run,
            Command::Exec,
            Command::Health,
            Command::Keys,
            Command::Init,
            Command::Doctor,
        ]
        .into_iter()
        .filter(|c| s.read_by(*c))
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
    };
    let default = |s: &Setting| {
        let run = s.default_text(Command::Run);
        let exec = s.default_text(Command::Exec);
        if run == exec || !s.read_by(Command::Exec) {
            format!("`{run}`")
        } else {
            format!("`{exec}` (exec), `{run}` (run)")
        }
    };
    let mut out =
        String::from("| setting | flag | default | read by | meaning |\n|---|---|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | `--{}` | {} | {} | {} |\n",
            s.name,
            s.flag(),
            default(s),
            commands(s),
            s.help.replace('|', "\\|")
        ));
    }
    out
}

pub fn main(layers: Layers, json: bool) -> i32 {
    let result = RunConfig::resolve(&layers);
    match (&result, json) {
        (Ok(config), true) => println!(
            "{}",
            serde_json::to_string_pretty(&settings(&config.base)).expect("JSON")
        ),
        (Ok(config), false) => {
            for e in &config.base.effective {
                println!(
                    "{:<24} {:<40} {}",
                    e.name,
                    e.value.as_deref().unwrap_or("(unset)"),
                    serde_json::to_value(&e.source)
                        .expect("JSON")
                        .as_str()
                        .unwrap_or("")
                );
            }
        }
        (Err(e), true) => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "valid": false, "problems": e.0 }))
                .expect("JSON")
        ),
        (Err(e), false) => print!("{}", problems_text(&e.0)),
    }
    match result {
        Ok(_) => 0,
        Err(_) => exit::CONFIG,
    }
}

/// The effective configuration, as `agent config --json` prints it and `/config` serves it.
pub fn settings(config: &Config) -> Settings {
    let settings = config
        .effective
        .iter()
        .map(|e| {
            let setting = SETTINGS.iter().find(|s| s.name == e.name);
            // An RPC URL may carry a provider's API key: shown without it.
            let shown = match (e.name, &e.value) {
                ("AGENT_NEAR_RPC_URL", Some(urls)) => Some(
                    urls.split(',')
                        .map(|u| entrypoint::keys::shown_url(u.trim()))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => e.value.clone(),
            };
            Setting {
                name: e.name.to_string(),
                redacted: shown != e.value,
                value: shown,
                source: e.source.clone(),
                help: setting.map(|s| s.help.to_string()),
            }
        })
        .collect();
    Settings {
        valid: true,
        command: config.command.name().to_string(),
        file: config.file.clone(),
        settings,
    }
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
