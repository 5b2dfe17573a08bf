//! The twelve failures seen in the field, each named — cause and fix — by
//! `agent run` before the node starts (on `/status` and in its log) and by
//! `agent doctor --json`, against moto, the nearcore-typed RPC stand-in and
//! the stand-in node.

use agent::views::{ConfigOrigin, DoctorReport, Phase};
use agent_tests::harness::{Agent, AgentCommand, JsonServer, WAIT, doctor_report, free_port};
use agent_tests::moto::{Moto, Value as Secret};
use agent_tests::mounts::Mounted;
use agent_tests::node_fixture::{Key, NodeFixture};
use agent_tests::standin_node::Behavior;
use agent_tests::views::{Checks, reason};
use entrypoint::check::{Check, Status};
use serde_json::json;

/// `agent doctor --json` with `env`; the check `id` of its report.
fn doctor_check(env: Vec<(&'static str, String)>, id: &str) -> Check {
    let out = AgentCommand::new(["doctor", "--json", "--timeout", "3s"])
        .envs(env)
        .run();
    let report = doctor_report(&out);
    assert_eq!(report.schema, DoctorReport::SCHEMA);
    report.check(id).clone()
}

/// The agent holds for `id`: `/status` and the log name it; returns the cause.
fn holds_for(agent: &Agent, id: &str) -> String {
    let status = agent.wait_phase(WAIT, Phase::Holding);
    let reason = status.reason.expect("a hold has a reason");
    assert_eq!(reason.kind, id, "{reason:#?}");
    assert!(
        reason.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "no fix: {reason:#?}"
    );
    let line = agent.wait_log("holding: the node is not started");
    assert_eq!(line["check"], id);
    reason.cause
}

fn fails(check: &Check, containing: &str) {
    assert_eq!(check.status, Status::Fail, "{check:#?}");
    assert!(
        check.cause.contains(containing),
        "{containing:?} not in {check:#?}"
    );
    assert!(
        check.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "no fix: {check:#?}"
    );
}

fn with_secrets(
    node: &NodeFixture,
    overrides: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = node.env();
    env.extend(
        node.secret_env()
            .into_iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k)),
    );
    env.extend_from_slice(overrides);
    env
}

#[test]
fn f01_a_placeholder_secret() {
    let node = NodeFixture::new();
    let env = with_secrets(&node, &[("MPC_ACCOUNT_SK", "CHANGEME".into())]);
    let agent = AgentCommand::new(["run"]).envs(env.clone()).start();
    assert!(holds_for(&agent, "secrets.MPC_ACCOUNT_SK").contains("placeholder"));
    fails(&doctor_check(env, "secrets.MPC_ACCOUNT_SK"), "placeholder");
}

#[test]
fn f02_mpc_env_localnet() {
    let node = NodeFixture::new();
    let env = with_secrets(
        &node,
        &[
            ("MPC_ENV", "localnet".into()),
            ("AGENT_FAIL_LINGER", "10s".into()),
        ],
    );
    let mut agent = AgentCommand::new(["run"]).envs(env.clone()).start();
    let status = agent.wait_phase(WAIT, Phase::Failed);
    let reason = status.reason.expect("a failure has a reason");
    assert_eq!(reason.kind, "config.MPC_ENV");
    assert!(
        reason
            .fix
            .as_deref()
            .unwrap()
            .contains("did you mean mpc-localnet?")
    );
    let line = agent.wait_log("invalid configuration");
    assert_eq!(line["check"], "config.MPC_ENV");
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 78);
    let check = doctor_check(env, "config.MPC_ENV");
    assert_eq!(check.status, Status::Fail);
    assert!(
        check
            .fix
            .as_deref()
            .unwrap()
            .contains("did you mean mpc-localnet?")
    );
}

#[test]
fn f03_the_signer_key_is_not_an_access_key() {
    let node = NodeFixture::new();
    let on_chain = Key::random();
    node.chain_knows(&on_chain.public, &node.p2p.public);
    let agent = node.run().start();
    let cause = holds_for(&agent, "keys.access_key");
    assert!(
        cause.contains(&node.account.public) && cause.contains(&on_chain.public),
        "{cause}"
    );
    fails(
        &doctor_check(with_secrets(&node, &[]), "keys.access_key"),
        &on_chain.public,
    );
}

#[test]
fn f04_the_p2p_key_is_not_the_participants() {
    let node = NodeFixture::new();
    let registered = Key::random();
    node.chain_knows(&node.account.public, &registered.public);
    let agent = node.run().start();
    let cause = holds_for(&agent, "keys.participant");
    assert!(cause.contains(&registered.public), "{cause}");
    fails(
        &doctor_check(with_secrets(&node, &[]), "keys.participant"),
        &registered.public,
    );
}

#[test]
fn f05_a_stale_secrets_json() {
    let node = NodeFixture::new();
    let old = Key::random();
    std::fs::write(
        node.path("secrets.json"),
        json!({ "p2p_private_key": node.p2p.secret, "near_signer_key": old.secret, "near_responder_keys": [old.secret] }).to_string(),
    )
    .unwrap();
    let doctor = doctor_check(with_secrets(&node, &[]), "homes.secrets.json");
    assert_eq!(doctor.status, Status::Warn);
    assert!(doctor.cause.contains("stale"), "{doctor:#?}");
    assert!(doctor.cause.contains(&old.public), "{doctor:#?}");
    let agent = node.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let status = agent.status();
    let check = status.check("homes.secrets.json");
    assert!(check.cause.contains(&old.public), "{check:#?}");
    let line = agent
        .logs()
        .into_iter()
        .find(|l| l["check"] == "homes.secrets.json")
        .expect("the drift is logged");
    assert!(line["cause"].as_str().unwrap().contains(&old.public));
}

#[test]
fn f06_a_store_key_that_cannot_decrypt_the_shares() {
    let node = NodeFixture::new();
    node.plant_share(&agent_tests::harness::store_key());
    let agent = node.run().start();
    assert!(holds_for(&agent, "homes.store_key").contains("does not decrypt"));
    drop(agent);
    fails(
        &doctor_check(with_secrets(&node, &[]), "homes.store_key"),
        "does not decrypt",
    );
}

#[test]
fn f07_a_home_that_does_not_persist() {
    let node = NodeFixture::new();
    let Some(_tmpfs) = Mounted::over(node.home(), &["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
    else {
        return;
    };
    node.write_config_yaml();
    let agent = node.run().start();
    assert!(holds_for(&agent, "homes.filesystem").contains("tmpfs"));
    fails(
        &doctor_check(with_secrets(&node, &[]), "homes.filesystem"),
        "tmpfs",
    );
}

#[test]
fn f08_no_efs_mount_target_in_this_zone_or_port_2049_closed() {
    let node = NodeFixture::new();
    let Some(_tmpfs) = Mounted::over(node.home(), &["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
    else {
        return;
    };
    node.write_config_yaml();
    let moto = Moto::start();
    let here = JsonServer::start(
        json!({ "AvailabilityZone": "eu-west-1a", "TaskARN": "arn:aws:ecs:eu-west-1:1:task/c/t" }),
    );
    let elsewhere = moto.subnet("eu-west-1b", "127.1.0.0/24");
    let only_elsewhere = moto.efs(&[(&elsewhere, "127.1.0.10")]);
    let env = |fs: &str| {
        let mut env = with_secrets(&node, &[]);
        env.extend(moto.env());
        env.push(("AGENT_EFS_FILE_SYSTEM_ID", fs.to_string()));
        env.push(("ECS_CONTAINER_METADATA_URI_V4", here.url.clone()));
        env
    };
    let agent = AgentCommand::new(["run"])
        .envs(env(&only_elsewhere))
        .start();
    let cause = holds_for(&agent, "aws.efs_mount_target");
    assert!(
        cause.contains("no mount target in eu-west-1a") && cause.contains("eu-west-1b"),
        "{cause}"
    );
    drop(agent);
    fails(
        &doctor_check(env(&only_elsewhere), "aws.efs_mount_target"),
        "no mount target in eu-west-1a",
    );

    // A mount target here, on a loopback address where nothing listens on 2049.
    let local = moto.subnet("eu-west-1a", "127.2.0.0/24");
    let closed = moto.efs(&[(&local, "127.2.0.20")]);
    let agent = AgentCommand::new(["run"]).envs(env(&closed)).start();
    assert!(holds_for(&agent, "aws.efs_port").contains("127.2.0.20:2049"));
    drop(agent);
    fails(
        &doctor_check(env(&closed), "aws.efs_port"),
        "127.2.0.20:2049",
    );
}

#[test]
fn f09_iam_denied_to_the_role_the_agent_runs_with() {
    let node = NodeFixture::new();
    let moto = Moto::with_iam_after(3);
    let (_, key_id, secret_key) = moto.create_user_without_permissions("ecsTaskExecutionRole");
    moto.create_secret("node0-MPC_ACCOUNT_SK", Secret::Text(&node.account.secret));
    let mut env = node.env();
    env.extend(moto.env());
    env.extend([
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret_key),
        (
            "AGENT_SECRET_ID_MPC_ACCOUNT_SK",
            "node0-MPC_ACCOUNT_SK".into(),
        ),
        ("MPC_P2P_PRIVATE_KEY", node.p2p.secret.clone()),
        ("MPC_SECRET_STORE_KEY", node.store_key.clone()),
    ]);
    let agent = AgentCommand::new(["run"]).envs(env.clone()).start();
    let cause = holds_for(&agent, "secrets.MPC_ACCOUNT_SK");
    assert!(
        cause.contains("access denied") && cause.contains("execution role"),
        "{cause}"
    );
    let check = doctor_check(env, "secrets.MPC_ACCOUNT_SK");
    fails(&check, "access denied");
    assert!(
        check
            .fix
            .as_deref()
            .unwrap()
            .contains("task role (taskRoleArn), not the execution role")
    );
}

#[test]
fn f10_the_rpc_is_unreachable_or_serves_another_chain() {
    let node = NodeFixture::new();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let agent = node.run().env("AGENT_NEAR_RPC_URL", &nowhere).start();
    assert!(holds_for(&agent, "keys.rpc").contains(&nowhere));
    drop(agent);
    let mut env = with_secrets(&node, &[]);
    env.push(("AGENT_NEAR_RPC_URL", nowhere.clone()));
    fails(&doctor_check(env, "keys.rpc"), &nowhere);

    // The stand-in serves mpc-localnet; a testnet node must not take it.
    let agent = node.run().env("MPC_ENV", "testnet").start();
    assert!(holds_for(&agent, "keys.chain_id").contains("mpc-localnet"));
    drop(agent);
    fails(
        &doctor_check(
            with_secrets(&node, &[("MPC_ENV", "testnet".into())]),
            "keys.chain_id",
        ),
        "mpc-localnet",
    );
}

#[test]
fn f11_a_second_agent_on_the_same_home() {
    let node = NodeFixture::new();
    let first = node.run().start();
    first.wait_until("/ready", WAIT, |r| r.status == 200);
    let second = node.run().start();
    let status = second.wait_phase(WAIT, Phase::WaitingForLock);
    let reason = status.reason.expect("waiting for the lock has a reason");
    assert_eq!(reason.kind, "homes.lock");
    assert!(reason.cause.contains(&format!("pid {}", first.pid())));
    let line = second.wait_log("waiting for the home's lock");
    assert!(
        line["holder"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", first.pid()))
    );
    let check = doctor_check(with_secrets(&node, &[]), "homes.lock");
    assert!(
        check
            .cause
            .contains(&format!("held by pid {}", first.pid())),
        "{check:#?}"
    );
}

#[test]
fn f12_a_crash_loop_with_a_known_fatal_line() {
    let node = NodeFixture::new();
    node.behave(&Behavior {
        stderr: vec!["Error: Failed to decrypt key file".into()],
        exit_code: Some(1),
        after_ms: 30,
        ..Behavior::default()
    });
    let agent = node
        .run()
        .env("AGENT_RESTART_BACKOFF", "20ms..40ms")
        .env("AGENT_CRASH_LOOP", "3/60s")
        .env("AGENT_FAIL_LINGER", "20s")
        .start();
    let health = agent.wait_until("/health", WAIT, |r| r.status == 503);
    assert!(health.health().output.as_str().contains("crash loop"));
    let status = agent.status();
    assert!(reason(&status.reasons, "Failed to decrypt key file").is_some());
    agent.wait_log("crash loop");
    // On the instance, over SSM: no node environment, the running agent's /config.
    let out = AgentCommand::new([
        "doctor",
        "--json",
        "--from",
        &format!("http://{}", agent.addr()),
    ])
    .run();
    let report = doctor_report(&out);
    assert!(
        matches!(report.configuration, ConfigOrigin::RunningAgent { .. }),
        "{:?}",
        report.configuration
    );
    fails(report.check("agent.status"), "crash loop");
    let reason = report.check("agent.reason.Failed to decrypt key file");
    assert!(reason.fix.as_deref().unwrap().contains("AWSPREVIOUS"));
    assert_eq!(out.code, 1);
}
