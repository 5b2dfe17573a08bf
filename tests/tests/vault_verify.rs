//! `agent vault verify`, the weekly restore drill: everything a restore
//! judges and nothing it writes. It needs no home (the stack's drill task
//! mounts none), takes no lock, exits 0 when the newest backup would restore
//! the node and 1 naming what failed, and writes its verdict as one
//! CloudWatch EMF line (`VaultDrillFailed`) when a namespace is set.
//! `agent doctor --drill` runs the same judgment in its vault group.

use agent::views::VaultReport;
use agent_tests::emf::{self, Line};
use agent_tests::harness::doctor_report;
use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::vault_fixture::{VaultFixture, folder};
use agent_tests::views::Checks;
use entrypoint::check::Status;
use serde_json::Value;

/// The EMF lines of an output, each read by the format's rules.
fn emf_lines(text: &str) -> Vec<Line> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    emf::valid_lines(&lines)
}

#[test]
fn a_drill_that_would_restore_the_node_passes_and_says_so_once() {
    let fx = VaultFixture::new();
    fx.keyset(4, &[2, 2]);
    fx.plant(3, 2, 0, &fx.node.store_key);
    let newest = fx.plant(4, 2, 2, &fx.node.store_key);
    let out = fx
        .vault_command(&["verify"])
        // The drill's task has no home volume: the home's path is not there.
        .env("MPC_HOME_DIR", "/nonexistent/mpc-home")
        .env("AGENT_CLOUDWATCH_NAMESPACE", "MpcAgent")
        .env("AGENT_CLOUDWATCH_NODE", "mpc-node-0")
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "the drill passed: {} (epoch 4) would restore this node",
            fx.url(newest.name)
        )),
        "{}",
        out.stdout
    );
    let emf = emf_lines(&out.stderr);
    assert_eq!(emf.len(), 1, "one line: {}", out.stderr);
    let line = &emf[0];
    assert_eq!(line.directives.len(), 1, "{line:?}");
    assert_eq!(line.directives[0].namespace, "MpcAgent");
    assert_eq!(line.directives[0].dimension_sets, [["Node"]]);
    assert_eq!(line.dimensions["Node"], "mpc-node-0");
    assert_eq!(line.values["VaultDrillFailed"], 0.0);
    assert!(line.timestamp_ms > 1_700_000_000_000);
    let logged: Vec<Value> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the restore drill"))
        })
        .collect();
    assert_eq!(
        logged.len(),
        1,
        "one log line with the verdict: {}",
        out.stderr
    );
    assert!(!std::path::Path::new("/nonexistent/mpc-home").exists());
}

#[test]
fn a_drill_writes_nothing_on_the_home_and_takes_no_lock() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    fx.plant(1, 1, 0, &fx.node.store_key);
    // An agent runs the node on the home (its keyshare restored at boot):
    // the drill does not contend for the lock.
    let agent = fx.run().start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    let names = || {
        let mut names = agent_tests::harness::file_names(fx.home());
        names.sort();
        names
    };
    let before = names();
    let out = fx.vault_command(&["verify", "--json"]).run();
    assert_eq!(out.code, 0, "{out:?}");
    let report: VaultReport = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.command, "verify");
    assert!(report.ok && report.restored.is_none());
    assert!(
        report.checks.iter().all(|c| !c.id.starts_with("homes.")
            && c.id != "restore.lock"
            && c.id != "restore.write"),
        "{:#?}",
        report.checks
    );
    assert_eq!(names(), before);
}

#[test]
fn a_failed_drill_exits_1_naming_what_failed() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    let out = fx
        .vault_command(&["verify"])
        .env("AGENT_CLOUDWATCH_NAMESPACE", "MpcAgent")
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "the drill failed: the vault holds no keyshare of node0.test.near ({} is empty)",
            folder()
        )),
        "{}",
        out.stdout
    );
    let emf = emf_lines(&out.stderr);
    assert_eq!(emf.len(), 1, "{}", out.stderr);
    assert_eq!(emf[0].values["VaultDrillFailed"], 1.0);
    assert_eq!(
        emf[0].dimensions["Node"], "node0.test.near",
        "the Node dimension defaults to the account"
    );
}

#[test]
fn doctor_runs_the_drill_only_when_asked() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    fx.plant(1, 1, 0, &fx.node.store_key);
    let doctor = |more: &[&str]| {
        let args = ["doctor", "--json", "--check", "vault"].iter().chain(more);
        let out = AgentCommand::new(args)
            .envs(fx.env())
            .envs(fx.node.secret_env())
            .run();
        doctor_report(&out)
    };
    let plain = doctor(&[]);
    let drilled = plain
        .checks
        .iter()
        .any(|e| e.check.id.starts_with("restore."));
    assert!(!drilled, "no download without --drill: {plain:?}");

    let drilled = doctor(&["--drill"]);
    for id in [
        "restore.backup",
        "restore.download",
        "restore.store_key",
        "restore.epoch",
    ] {
        let entry = drilled
            .checks
            .iter()
            .find(|e| e.check.id == id)
            .unwrap_or_else(|| panic!("no {id}"));
        assert_eq!(entry.check.status, Status::Ok, "{entry:?}");
        assert_eq!(entry.group, "vault");
    }
    // A stale vault is a failed drill in doctor too.
    fx.keyset(2, &[0]);
    let stale = doctor(&["--drill"]);
    assert_eq!(stale.check("restore.epoch").status, Status::Fail);
    assert_eq!(stale.status, Status::Fail);
}
