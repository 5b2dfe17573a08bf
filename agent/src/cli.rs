//! The command line: one subcommand per job, each with a flag for every setting
//! it reads (generated from the settings table, so `--help` lists them all).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, value_parser};
use entrypoint::config::settings::Id;
use entrypoint::config::{self, Command, Layers, SETTINGS};

use crate::commands::{self, doctor, exec, health, init, keys, run, status, vault};
use crate::exit;

pub fn main() -> i32 {
    crate::memory::one_arena();
    let first = std::env::args_os().nth(1);
    let matches = match cli_for(first.as_ref().and_then(|a| a.to_str())).try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { 0 };
        }
    };
    match matches.subcommand() {
        Some(("exec", m)) => {
            let command: Vec<OsString> = m
                .get_many::<OsString>("command")
                .expect("clap requires a command")
                .cloned()
                .collect();
            exec::main(layers(m, Command::Exec), command)
        }
        Some(("health", m)) => health::main(
            layers(m, Command::Health),
            health::Options {
                url: m.get_one::<String>("url").cloned(),
                ready: m.get_flag("ready"),
                timeout: *m.get_one("timeout").expect("has a default"),
            },
        ),
        Some(("status", m)) => status::main(
            layers(m, Command::Health),
            status::Options {
                url: m.get_one::<String>("url").cloned(),
                wait: m.get_flag("wait"),
                timeout: *m.get_one("timeout").expect("has a default"),
                every: *m.get_one("every").expect("has a default"),
            },
        ),
        Some(("run", m)) => run::main(layers(m, Command::Run)),
        Some(("init", m)) => init::main(layers(m, Command::Init)),
        Some(("doctor", m)) => doctor::main(
            layers(m, Command::Doctor),
            doctor::Options {
                json: m.get_flag("json"),
                only: m
                    .get_many::<String>("check")
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
                list: m.get_flag("list-checks"),
                timeout: *m.get_one("timeout").expect("has a default"),
                from: m.get_one::<String>("from").cloned(),
                drill: m.get_flag("drill"),
            },
        ),
        Some(("vault", m)) => vault_main(m),
        Some(("keys", m)) => keys::main(
            layers(m, Command::Keys),
            m.get_flag("json"),
            m.get_flag("offline"),
        ),
        Some(("config", m)) if m.get_flag("reference") => {
            print!("{}", commands::config::reference());
            0
        }
        Some(("config", m)) => commands::config::main(layers(m, Command::Run), m.get_flag("json")),
        _ => unreachable!("clap requires a known subcommand"),
    }
}

/// `agent vault restore` and `agent vault verify`.
fn vault_main(m: &ArgMatches) -> i32 {
    let (action, m) = match m.subcommand() {
        Some(("restore", m)) => {
            let choice = match (m.get_one::<String>("object"), m.get_one::<u64>("epoch")) {
                (Some(object), _) => vault::Requested::Object(object.clone()),
                (None, Some(epoch)) => vault::Requested::Epoch(*epoch),
                (None, None) => vault::Requested::Newest,
            };
            let allow_stale = m.get_flag("allow-stale");
            (
                vault::Action::Restore {
                    choice,
                    allow_stale,
                },
                m,
            )
        }
        Some(("verify", m)) => (vault::Action::Verify, m),
        _ => unreachable!("clap requires a known vault subcommand"),
    };
    vault::main(
        layers(m, Command::Vault),
        vault::Options {
            action,
            json: m.get_flag("json"),
        },
    )
}

/// The command line. When the first argument names a subcommand only that
/// one is built (its flags are every setting it reads, and building the
/// others' would be most of the start-up of `agent exec`); otherwise all of
/// them, for the top-level help and errors.
fn cli_for(first: Option<&str>) -> clap::Command {
    let named = SUBCOMMANDS.iter().find(|(name, _)| Some(*name) == first);
    let root = clap::Command::new("agent")
        .version(env!("CARGO_PKG_VERSION"))
        .about("PID 1 for the NEAR MPC node container: checks everything mpc-node needs, then runs it and tells the truth about its health")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .global(true)
                .value_parser(value_parser!(PathBuf))
                .help(format!(
                    "TOML file of settings: keys are the setting names in lower case without AGENT_ (stop_grace = \"25s\"); flags and the environment win over it [env: {}]",
                    config::CONFIG_FILE_VAR
                )),
        );
    match named {
        Some((_, build)) => root.subcommand(build()),
        None => root.subcommands(SUBCOMMANDS.iter().map(|(_, build)| build())),
    }
}

/// Builds one subcommand.
type Subcommand = fn() -> clap::Command;

/// Each subcommand, by name.
const SUBCOMMANDS: [(&str, Subcommand); 9] = [
    ("run", run_command),
    ("init", init_command),
    ("exec", exec_command),
    ("health", health_command),
    ("status", status_command),
    ("doctor", doctor_command),
    ("keys", keys_command),
    ("vault", vault_command),
    ("config", config_command),
];

fn run_command() -> clap::Command {
    with_settings(
            clap::Command::new("run").about(
                "Boot mpc-node: validate the secrets, compare the keys with the chain, lock and prepare the home, then run the node as its PID 1 and serve its health (the container ENTRYPOINT)",
            ),
            Command::Run,
        )
}

fn init_command() -> clap::Command {
    with_settings(
            clap::Command::new("init").about(
                "Run the boot stages up to and including the home (first init, config files, secrets.json), then stop; never holds",
            ),
            Command::Init,
        )
}

fn exec_command() -> clap::Command {
    with_settings(
        clap::Command::new("exec")
            .about(
                "Run CMD as the agent's child: PID 1 duties, signal forwarding, restarts, health",
            )
            .override_usage("agent exec [OPTIONS] -- CMD [ARGS]...")
            .arg(
                Arg::new("command")
                    .value_name("CMD")
                    .num_args(1..)
                    .required(true)
                    .trailing_var_arg(true)
                    .value_parser(value_parser!(OsString))
                    .help("The command to supervise and its arguments"),
            ),
        Command::Exec,
    )
}

fn health_command() -> clap::Command {
    with_settings(
                clap::Command::new("health")
                    .about("Ask the running agent's /health (or /ready); exit 0 on 200, 1 otherwise. For the container HEALTHCHECK")
                    .arg(Arg::new("url").long("url").value_name("URL").help("Ask this URL instead [default: /health on AGENT_LISTEN, loopback for a wildcard address]"))
                    .arg(Arg::new("ready").long("ready").action(ArgAction::SetTrue).help("Ask /ready instead of /health"))
                    .arg(duration_arg("timeout", "3s", "Give up after this long")),
                Command::Health,
            )
}

fn status_command() -> clap::Command {
    with_settings(
                clap::Command::new("status")
                    .about("Show the running agent's sync progress (refreshing in place on a terminal until the node is ready) and its chain watch. Exit 0 when ready, 1 otherwise")
                    .arg(Arg::new("url").long("url").value_name("URL").help("The agent's base URL [default: AGENT_LISTEN, loopback for a wildcard address]"))
                    .arg(Arg::new("wait").long("wait").action(ArgAction::SetTrue).help("Poll until the node is ready (exit 0) or --timeout passes (exit 1)"))
                    .arg(duration_arg("timeout", "1h", "How long --wait waits"))
                    .arg(duration_arg("every", "1s", "How often the status is read again")),
                Command::Health,
            )
}

fn doctor_command() -> clap::Command {
    with_settings(
                clap::Command::new("doctor")
                    .about("Run every check read-only (no lock, no write, nothing started): config, secrets, keys against the chain, home, AWS, the running agent. Exit 0 all good, 1 a failure, 2 warnings only")
                    .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print the report as JSON (schema mpc-agent.doctor.v1)"))
                    .arg(Arg::new("check").long("check").value_name("NAME").num_args(1..).help("Only these groups (config, secrets, keys, home, launch, vault, aws, agent) or check ids"))
                    .arg(Arg::new("list-checks").long("list-checks").action(ArgAction::SetTrue).help("List the groups of checks and exit"))
                    .arg(duration_arg("timeout", "5s", "Each group of checks gives up after this long"))
                    .arg(Arg::new("from").long("from").value_name("URL").help("Take the configuration from the running agent at URL (its /config), e.g. on the instance over SSM [default: this environment, else the agent on AGENT_LISTEN]"))
                    .arg(Arg::new("drill").long("drill").action(ArgAction::SetTrue).help("Also run the restore drill in the vault group: download the newest backup and judge it as agent vault verify does")),
                Command::Doctor,
            )
}

fn keys_command() -> clap::Command {
    with_settings(
                clap::Command::new("keys")
                    .about("Fetch and validate the node's secrets, show each one's source and its public key or fingerprint, and compare the keys with the chain. Exit 0 when everything matches, 1 otherwise")
                    .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print JSON"))
                    .arg(Arg::new("offline").long("offline").action(ArgAction::SetTrue).help("Do not ask the chain")),
                Command::Keys,
            )
}

fn vault_command() -> clap::Command {
    let json = || {
        Arg::new("json")
            .long("json")
            .action(ArgAction::SetTrue)
            .help("Print the report as JSON")
    };
    clap::Command::new("vault")
        .about("The keyshare vault: restore a lost home from it, or rehearse the restore (the weekly drill)")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(with_settings(
            clap::Command::new("restore")
                .about("Restore the account's keyshare from the vault onto a home that holds none: the newest (highest epoch, then most domains) unless one is named, checked against its checksum, the store key and the contract's keyset, written as the node writes it under the home's lock. Exit 0 restored, 1 refused (nothing written), 75 another agent holds the home")
                .arg(Arg::new("object").long("object").value_name("KEY").help("Restore this object of the vault: its key (PREFIX/<account>/epoch_<E>_with_<D>_domains), its s3:// URL or its file name"))
                .arg(Arg::new("epoch").long("epoch").value_name("E").value_parser(value_parser!(u64)).conflicts_with("object").help("Restore the newest keyshare of this epoch"))
                .arg(Arg::new("allow-stale").long("allow-stale").action(ArgAction::SetTrue).help("Take a keyshare of an older epoch than the contract's keyset (a network that has not moved on, a test network)"))
                .arg(json()),
            Command::Vault,
        ))
        .subcommand(with_settings(
            clap::Command::new("verify")
                .about("The restore drill: everything restore judges, without the write (no lock, nothing written on the home). Exit 0 when the newest backup downloads, matches its checksum, opens under the store key and matches the contract's epoch and attempts; 1 otherwise, naming what failed")
                .arg(json()),
            Command::Vault,
        ))
}

fn config_command() -> clap::Command {
    with_settings(
                clap::Command::new("config")
                    .about("Show the effective configuration of `agent run` (value and source of every setting) and validate it; exit 78 when invalid")
                    .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print JSON"))
                    .arg(
                        Arg::new("reference")
                            .long("reference")
                            .action(ArgAction::SetTrue)
                            .help("Print every setting of every command as a Markdown table (the README's reference) and exit"),
                    ),
                Command::Run,
            )
}

fn duration_arg(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("DURATION")
        .default_value(default)
        .value_parser(|v: &str| {
            config::values::duration(v).map_err(|r| format!("{}; {}", r.rule, r.fix))
        })
        .help(help)
}

/// Adds a flag for every setting `command` reads, grouped under headings.
fn with_settings(mut cmd: clap::Command, command: Command) -> clap::Command {
    for s in SETTINGS.iter().filter(|s| s.read_by(command)) {
        cmd = cmd.arg(
            Arg::new(s.name)
                .long(s.flag())
                .value_name(s.value_name)
                .help_heading(s.group.heading())
                .help(format!(
                    "{} [env: {}] [default: {}]",
                    s.help,
                    s.name,
                    s.default_text(command)
                )),
        );
    }
    cmd
}

fn layers(m: &ArgMatches, command: Command) -> Layers {
    let mut layers = Layers::from_env();
    for &id in Id::ALL.iter().filter(|id| id.setting().read_by(command)) {
        if let Some(v) = m.get_one::<String>(id.name()) {
            layers.cli.insert(id, v.clone());
        }
    }
    layers.file = m.get_one::<PathBuf>("config").cloned().or_else(|| {
        layers
            .env
            .get(config::CONFIG_FILE_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    layers
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        super::cli_for(None).debug_assert();
    }

    /// A subcommand parses the same whether it is built alone or in the tree.
    #[test]
    fn a_subcommand_built_alone_is_the_one_in_the_tree() {
        let tree = super::cli_for(None);
        for (name, _) in super::SUBCOMMANDS {
            let alone = super::cli_for(Some(name));
            let ids = |cmd: &clap::Command| -> Vec<String> {
                let sub = cmd.find_subcommand(name).unwrap();
                sub.get_arguments()
                    .map(|a| a.get_id().to_string())
                    .collect()
            };
            assert_eq!(ids(&alone), ids(&tree), "{name}");
            assert_eq!(alone.get_subcommands().count(), 1);
        }
    }

    #[test]
    fn exec_help_lists_every_setting_with_its_default() {
        let mut exec = super::cli_for(None)
            .find_subcommand("exec")
            .unwrap()
            .clone()
            .term_width(10_000);
        let help = exec.render_long_help().to_string();
        for s in entrypoint::config::SETTINGS
            .iter()
            .filter(|s| s.read_by(entrypoint::config::Command::Exec))
        {
            assert!(
                help.contains(&format!("--{}", s.flag())),
                "{} missing",
                s.name
            );
            assert!(
                help.contains(&format!("[env: {}]", s.name)),
                "{} env missing",
                s.name
            );
        }
        assert!(help.contains("[default: never]"));
    }
}
