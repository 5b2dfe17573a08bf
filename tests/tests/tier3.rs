//! `homes.tier3` through `agent init` off mpc-localnet: without
//! `MPC_TIER3_PUBLIC_ADDR` a fresh init is refused when the image has
//! `start-with-config-file` (upstream refuses it too), and is a warning
//! otherwise; both name the variable and why peer state sync needs it.
//! `agent doctor` shows the same `homes.tier3`.

use agent_tests::harness::{AgentCommand, Output, doctor_report};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::CONFIG_FILE_SWITCH;
use agent_tests::views::Checks;
use entrypoint::check::{Check, Status};

/// `agent init` for a testnet node on a fresh home, the image's kind chosen by `config_file`.
fn init_on_testnet(node: &NodeFixture, config_file: bool) -> Output {
    let mut chain = node.scenario();
    chain.chain_id = "testnet".to_string();
    node.chain.rpc.set_scenario(chain);
    AgentCommand::new(["init"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("MPC_ENV", "testnet")
        .env(CONFIG_FILE_SWITCH, if config_file { "1" } else { "0" })
        .run()
}

fn tier3_lines(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| l.contains("homes.tier3"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_fresh_init_for_a_start_with_config_file_image_is_refused_without_tier3() {
    let node = NodeFixture::new();
    let out = init_on_testnet(&node, true);
    assert_eq!(out.code, 78, "{out:?}");
    let lines = tier3_lines(&out);
    assert!(
        lines.iter().any(|l| l.contains("MPC_TIER3_PUBLIC_ADDR")
            && l.contains("state sync")
            && l.contains("refuses a fresh testnet init")),
        "{lines:#?}"
    );
    assert!(!node.path("config.json").exists(), "init did not run");
}

#[test]
fn without_start_with_config_file_a_missing_tier3_is_a_warning() {
    let node = NodeFixture::new();
    let out = init_on_testnet(&node, false);
    assert_eq!(out.code, 0, "{out:?}");
    let lines = tier3_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("MPC_TIER3_PUBLIC_ADDR") && l.contains("warn")),
        "{lines:#?}"
    );
    assert!(node.path("config.json").exists(), "init ran");
}

/// `agent doctor --json` for the same testnet node, with `env` beside its
/// own: its `homes.tier3` and exit code.
fn doctor_on_testnet(node: &NodeFixture, env: &[(&str, &str)]) -> (Check, i32) {
    let mut chain = node.scenario();
    chain.chain_id = "testnet".to_string();
    node.chain.rpc.set_scenario(chain);
    let out = AgentCommand::new(["doctor", "--json", "--check", "home"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("MPC_ENV", "testnet")
        .envs(env.iter().copied())
        .run();
    (doctor_report(&out).check("homes.tier3").clone(), out.code)
}

#[test]
fn doctor_judges_tier3_as_init_does_for_both_kinds_of_image() {
    let node = NodeFixture::new();
    let (refused, code) = doctor_on_testnet(&node, &[(CONFIG_FILE_SWITCH, "1")]);
    assert_eq!(refused.status, Status::Fail, "{refused:#?}");
    assert!(
        refused.cause.contains("refuses a fresh testnet init"),
        "{refused:#?}"
    );
    assert_eq!(code, 1, "doctor fails where init refuses");
    let (warned, _) = doctor_on_testnet(&node, &[(CONFIG_FILE_SWITCH, "0")]);
    assert_eq!(warned.status, Status::Warn, "{warned:#?}");
    assert!(
        warned
            .fix
            .as_deref()
            .unwrap()
            .contains("MPC_TIER3_PUBLIC_ADDR")
    );
    assert!(!node.path("config.json").exists(), "doctor writes nothing");
}

#[test]
fn doctor_says_a_set_tier3_address_is_fine() {
    let node = NodeFixture::new();
    let (check, _) = doctor_on_testnet(&node, &[("MPC_TIER3_PUBLIC_ADDR", "203.0.113.5:24567")]);
    assert_eq!(check.status, Status::Ok, "{check:#?}");
    assert!(check.cause.contains("203.0.113.5:24567"));
}
