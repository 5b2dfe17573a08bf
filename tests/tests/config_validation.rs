//! A bad configuration is refused before anything starts, with every problem
//! named at once: the setting, the rule it broke and the fix; exit 78.

use agent_tests::harness::{agent_output, config_problems, settings_view};
use agent_tests::views::setting;
use entrypoint::config::Source;

const NODE_ENV: [(&str, &str); 4] = [
    ("MPC_HOME_DIR", "/data"),
    ("MPC_ENV", "testnet"),
    ("MPC_ACCOUNT_ID", "node0.testnet"),
    ("MPC_CONTRACT_ID", "v1.signer-prod.testnet"),
];

fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = NODE_ENV
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    env.extend_from_slice(overrides);
    env
}

#[test]
fn localnet_is_refused_with_the_right_name_suggested() {
    let out = agent_output(&["config"], &with(&[("MPC_ENV", "localnet")]));
    assert_eq!(out.code, 78);
    assert!(
        out.stdout.contains(
            "MPC_ENV=\"localnet\" (from environment) must be one of mpc-localnet, testnet, mainnet"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("did you mean mpc-localnet?"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_problem_is_named_at_once() {
    let out = agent_output(
        &["config", "--json"],
        &[
            ("MPC_ENV", "devnet"),
            ("MPC_ACCOUNT_ID", "Node0.testnet"),
            ("AGENT_STOP_GRACE", "soon"),
            ("AGENT_LISTEN", "localhost"),
        ],
    );
    assert_eq!(out.code, 78);
    let report = config_problems(&out);
    assert!(!report.valid);
    let ids: Vec<&str> = report.problems.iter().map(|p| p.id.as_str()).collect();
    for id in [
        "config.MPC_ENV",
        "config.MPC_ACCOUNT_ID",
        "config.AGENT_STOP_GRACE",
        "config.AGENT_LISTEN",
        "config.MPC_HOME_DIR",
        "config.MPC_CONTRACT_ID",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for p in &report.problems {
        assert!(
            p.fix.as_deref().is_some_and(|f| !f.is_empty()),
            "no fix: {p:?}"
        );
    }
}

#[test]
fn exec_refuses_a_bad_setting_before_starting_anything() {
    let out = agent_output(
        &["exec", "--", "touch", "/tmp/should-not-exist"],
        &[("AGENT_STOP_GRACE", "soon")],
    );
    assert_eq!(out.code, 78);
    assert!(out.stdout.contains("AGENT_STOP_GRACE"), "{}", out.stdout);
    assert!(
        out.stdout.contains("write it like 500ms, 2s, 5m, 1h"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("child started"));
}

#[test]
fn a_misspelt_agent_variable_is_named_with_its_likely_meaning() {
    let out = agent_output(&["exec", "--", "true"], &[("AGENT_STOP_GRCE", "2s")]);
    assert_eq!(out.code, 78);
    assert!(
        out.stdout.contains("did you mean AGENT_STOP_GRACE?"),
        "{}",
        out.stdout
    );
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "stop_grace = \"3s\"\nprestop_delay = 4\nmpc_env = \"mainnet\"\n",
    )
    .unwrap();
    let out = agent_output(
        &[
            "config",
            "--json",
            "--config",
            file.to_str().unwrap(),
            "--stop-grace",
            "1s",
        ],
        &with(&[("AGENT_PRESTOP_DELAY", "5s"), ("AGENT_STOP_GRACE", "2s")]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let report = settings_view(&out);
    let find = |name: &str| setting(&report, name);
    assert_eq!(find("AGENT_STOP_GRACE").value.as_deref(), Some("1s"));
    assert_eq!(find("AGENT_STOP_GRACE").source, Source::Cli);
    assert_eq!(find("AGENT_PRESTOP_DELAY").value.as_deref(), Some("5s"));
    assert_eq!(find("AGENT_PRESTOP_DELAY").source, Source::Env);
    assert_eq!(find("MPC_ENV").value.as_deref(), Some("testnet"));
    assert_eq!(find("AGENT_RESTART").source, Source::Default);
}

#[test]
fn a_broken_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "stop_grace = \n").unwrap();
    let out = agent_output(&["config", "--config", file.to_str().unwrap()], &NODE_ENV);
    assert_eq!(out.code, 78);
    assert!(out.stdout.contains("is not valid TOML"), "{}", out.stdout);
    std::fs::write(&file, "stop_grase = \"2s\"\n").unwrap();
    let out = agent_output(&["config", "--config", file.to_str().unwrap()], &NODE_ENV);
    assert_eq!(out.code, 78);
    assert!(
        out.stdout.contains("did you mean stop_grace?"),
        "{}",
        out.stdout
    );
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let out = agent_output(&["exec", "--help"], &[]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("--stop-grace <DURATION>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("[env: AGENT_STOP_GRACE] [default: 25s]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("[default: never]"), "{}", out.stdout);
    let out = agent_output(&["config", "--help"], &[]);
    assert!(
        out.stdout.contains("[env: MPC_ENV] [default: required]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[default: on-failure]"),
        "{}",
        out.stdout
    );
}
