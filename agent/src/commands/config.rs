//! `agent config`: every setting with its value and where it came from (what
//! `/config` serves), or every problem; `--reference`, the README's table.

use entrypoint::config::{Layers, RunConfig, SETTINGS};

use crate::exit;
use crate::life::views::{ConfigProblems, Settings};
use crate::process::problems_text;

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
            Command::Vault,
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
            serde_json::to_string_pretty(&Settings::of(&config.base)).expect("JSON")
        ),
        (Ok(config), false) => {
            for e in &config.base.effective {
                println!(
                    "{:<24} {:<40} {}",
                    e.id.name(),
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
            serde_json::to_string_pretty(&ConfigProblems::of(e.0.clone())).expect("JSON")
        ),
        (Err(e), false) => print!("{}", problems_text(&e.0)),
    }
    match result {
        Ok(_) => 0,
        Err(_) => exit::CONFIG,
    }
}
