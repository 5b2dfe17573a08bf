//! An RPC provider's credentials in `AGENT_NEAR_RPC_URL` (user info, an API
//! key in the path, one in the query) appear in no output of the agent: its
//! log at trace level, `/config`, `/status`, `/health`, `/ready`, `/metrics`,
//! doctor's report (human and JSON, from the environment and from `--from`),
//! a failed request's error, and a configuration error.

use agent::views::Phase;
use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::views::{Checks, setting};

const PASSWORD: &str = "pw-91c4e7";
const PATH_KEY: &str = "pathkey-5f3c9e2a";
const QUERY_KEY: &str = "querykey-d81b06";

/// `http://user:PASSWORD@ADDR/v3/PATH_KEY?apiKey=QUERY_KEY`.
fn with_credentials(addr: &str) -> String {
    format!("http://user:{PASSWORD}@{addr}/v3/{PATH_KEY}?apiKey={QUERY_KEY}")
}

fn assert_nothing_of_the_credentials(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: nothing to search");
    for needle in [PASSWORD, PATH_KEY, QUERY_KEY] {
        assert!(!text.contains(needle), "{what} shows {needle}:\n{text}");
    }
}

/// The node's environment with `AGENT_NEAR_RPC_URL` set to `url`.
fn env_with_rpc(node: &NodeFixture, url: &str) -> Vec<(&'static str, String)> {
    let mut env = node.env();
    env.retain(|(k, _)| *k != "AGENT_NEAR_RPC_URL");
    env.push(("AGENT_NEAR_RPC_URL", url.to_string()));
    env.extend(node.secret_env());
    env
}

fn doctor(env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = AgentCommand::new(["doctor", "--timeout", "5s"].iter().chain(args))
        .envs(env.iter().cloned())
        .env("RUST_LOG", "trace")
        .run();
    format!("{}\n{}", out.stdout, out.stderr)
}

#[test]
fn credentials_in_the_rpc_url_appear_in_no_output() {
    let node = NodeFixture::new();
    let rpc_addr = node.chain.rpc.addr().to_string();
    let env = env_with_rpc(&node, &with_credentials(&rpc_addr));
    let agent = AgentCommand::new(["run"])
        .envs(env.iter().cloned())
        .env("RUST_LOG", "trace")
        .start();
    agent.wait_phase(WAIT, Phase::Running);
    // The provider was asked under its path: the URL is used whole, shown without it.
    assert!(!node.chain.rpc.requests().is_empty());
    let config = agent.get("/config");
    let view = config.config_view();
    let rpc = setting(&view.settings, "AGENT_NEAR_RPC_URL");
    assert_eq!(
        rpc.value.as_deref(),
        Some(format!("http://{rpc_addr}/…").as_str()),
        "{rpc:#?}"
    );
    assert!(rpc.redacted, "{rpc:#?}");
    let status = agent.get("/status");
    assert!(
        status.body.contains(&format!("http://{rpc_addr}/…")),
        "{}",
        status.body
    );
    for (path, answer) in [
        ("/config", config),
        ("/status", status),
        ("/health", agent.get("/health")),
        ("/ready", agent.get("/ready")),
        ("/metrics", agent.get("/metrics")),
    ] {
        assert_nothing_of_the_credentials(path, &answer.body);
    }
    let from = format!("http://{}", agent.addr());
    for args in [
        &[][..],
        &["--json"][..],
        &["--from", &from][..],
        &["--from", &from, "--json"][..],
    ] {
        assert_nothing_of_the_credentials(&format!("doctor {args:?}"), &doctor(&env, args));
    }
    let logs = format!(
        "{}\n{}",
        agent.stdout.all().join("\n"),
        agent.stderr.all().join("\n")
    );
    assert!(logs.lines().count() > 20, "trace output expected");
    assert_nothing_of_the_credentials("the agent's log", &logs);
}

#[test]
fn credentials_in_an_rpc_url_that_fails_appear_in_no_error() {
    let node = NodeFixture::new();
    // Nothing listens on port 9 of loopback: every try is refused.
    let env = env_with_rpc(&node, &with_credentials("127.0.0.1:9"));
    for args in [&[][..], &["--json"][..]] {
        let report = doctor(&env, args);
        assert!(report.contains("http://127.0.0.1:9/…"), "{report}");
        assert_nothing_of_the_credentials(&format!("doctor {args:?}"), &report);
    }
}

#[test]
fn credentials_in_an_invalid_rpc_url_appear_in_no_configuration_error() {
    let node = NodeFixture::new();
    let invalid = format!("ftp://user:{PASSWORD}@rpc.example/v3/{PATH_KEY}?apiKey={QUERY_KEY}");
    let env = env_with_rpc(&node, &invalid);
    for format in ["plain", "json"] {
        let out = AgentCommand::new(["config"])
            .envs(env.iter().cloned())
            .env("AGENT_LOG_FORMAT", format)
            .run();
        assert_eq!(out.code, 78, "{out:?}");
        let all = format!("{}\n{}", out.stdout, out.stderr);
        assert!(all.contains("AGENT_NEAR_RPC_URL"), "{all}");
        assert_nothing_of_the_credentials(&format!("agent config ({format})"), &all);
    }
    // agent run keeps the refusal on /health and /status for AGENT_FAIL_LINGER.
    let agent = AgentCommand::new(["run"])
        .envs(env.iter().cloned())
        .env("AGENT_FAIL_LINGER", "20s")
        .start();
    let health = agent.wait_until("/health", WAIT, |r| r.status == 503);
    let status = agent.get("/status");
    let view = status.status_view();
    let check = view.check("config.AGENT_NEAR_RPC_URL");
    assert!(check.cause.contains("the value is not shown"), "{check:#?}");
    for (what, text) in [
        ("/health", health.body),
        ("/status", status.body),
        ("/config", agent.get("/config").body),
        ("the log", agent.stdout.all().join("\n")),
    ] {
        assert_nothing_of_the_credentials(what, &text);
    }
}
