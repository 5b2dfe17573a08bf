//! `agent doctor` and `agent run` judge one home the same way: for every home
//! the other tests build (fresh, initialized, on tmpfs or overlay, read-only,
//! full, locked by another agent, each store-key case, each secrets.json case
//! under each rule, testnet without a tier3 address for either kind of
//! image), every check id both report has the same status, and
//! doctor exits 1 exactly when `agent run` (under `AGENT_ON_KEY_MISMATCH=exit`)
//! refuses to start the node.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agent::views::{Phase, Reported};
use agent_tests::harness::{Agent, AgentCommand, WAIT, doctor_report, store_key};
use agent_tests::moto::{Moto, Value as Secret};
use agent_tests::mounts::Mounted;
use agent_tests::node_fixture::{Key, NodeFixture};
use agent_tests::standin_node::CONFIG_FILE_SWITCH;
use agent_tests::views::Checks;
use entrypoint::check::Status as Verdict;
use serde_json::json;

/// One home and how its node is configured.
struct Fixture {
    name: String,
    node: NodeFixture,
    env: Vec<(&'static str, String)>,
    /// Kept alive with the fixture: a mount, a local AWS API, another agent.
    _keep: Vec<Box<dyn std::any::Any>>,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let node = NodeFixture::new();
        let env = node.env().into_iter().chain(node.secret_env()).collect();
        Fixture {
            name: name.to_string(),
            node,
            env,
            _keep: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Fixture {
        self.env.retain(|(k, _)| *k != name);
        self.env.push((name, value.into()));
        self
    }

    fn without(mut self, name: &str) -> Fixture {
        self.env.retain(|(k, _)| *k != name);
        self
    }

    fn keep(mut self, thing: impl std::any::Any) -> Fixture {
        self._keep.push(Box::new(thing));
        self
    }

    /// The node's secrets from a local Secrets Manager instead of the environment.
    fn secrets_in_manager(self, store: Option<&str>) -> Fixture {
        let moto = Moto::start();
        let node = &self.node;
        moto.create_secret("node0-MPC_ACCOUNT_SK", Secret::Text(&node.account.secret));
        moto.create_secret("node0-MPC_P2P_PRIVATE_KEY", Secret::Text(&node.p2p.secret));
        if let Some(store) = store {
            moto.create_secret("node0-MPC_SECRET_STORE_KEY", Secret::Text(store));
        }
        let mut fixture = self
            .without("MPC_ACCOUNT_SK")
            .without("MPC_P2P_PRIVATE_KEY")
            .without("MPC_SECRET_STORE_KEY")
            .with("AGENT_SECRET_ID_TEMPLATE", "node0-{name}");
        fixture.env.extend(moto.env());
        fixture.keep(moto)
    }

    fn command(&self, args: &[&str]) -> AgentCommand {
        AgentCommand::new(args.iter().copied()).envs(self.env.iter().cloned())
    }
}

/// A secrets.json with keys of its own; the chain knows them when `known`.
fn secrets_json(fixture: &Fixture, known: bool) {
    let (signer, p2p) = (Key::random(), Key::random());
    std::fs::write(
        fixture.node.path("secrets.json"),
        json!({
            "p2p_private_key": p2p.secret,
            "near_signer_key": signer.secret,
            "near_responder_keys": [signer.secret],
        })
        .to_string(),
    )
    .unwrap();
    if known {
        fixture.node.chain_knows(&signer.public, &p2p.public);
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut all = vec![Fixture::new("fresh")];

    let initialized = Fixture::new("initialized");
    let init = initialized.command(&["init"]).run();
    assert_eq!(init.code, 0, "{init:?}");
    all.push(initialized);

    for (name, args) in [
        ("tmpfs", &["-t", "tmpfs", "-o", "size=64m", "tmpfs"][..]),
        ("read-only", &["-t", "tmpfs", "-o", "size=4m", "tmpfs"][..]),
        ("full", &["-t", "tmpfs", "-o", "size=1m", "tmpfs"][..]),
    ] {
        let fixture = Fixture::new(name).with("AGENT_REQUIRE_PERSISTENT_HOME", "false");
        let Some(mount) = Mounted::over(fixture.node.home(), args) else {
            continue;
        };
        fixture.node.write_config_yaml();
        if name == "read-only" && !mount.remount("remount,ro") {
            continue;
        }
        if name == "full" {
            let filler = vec![0u8; 64 << 10];
            let mut file = std::fs::File::create(fixture.node.path("filler")).unwrap();
            use std::io::Write;
            while file.write_all(&filler).is_ok() {}
        }
        all.push(fixture.keep(mount));
    }
    let persistent = Fixture::new("tmpfs-refused");
    if let Some(mount) = Mounted::over(
        persistent.node.home(),
        &["-t", "tmpfs", "-o", "size=64m", "tmpfs"],
    ) {
        persistent.node.write_config_yaml();
        all.push(persistent.keep(mount));
    }
    let overlay = Fixture::new("overlay");
    let layers = tempfile::tempdir().unwrap();
    for dir in ["lower", "upper", "work"] {
        std::fs::create_dir(layers.path().join(dir)).unwrap();
    }
    let options = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
        layers.path().display()
    );
    if let Some(mount) = Mounted::over(
        overlay.node.home(),
        &["-t", "overlay", "-o", &options, "overlay"],
    ) {
        overlay.node.write_config_yaml();
        all.push(overlay.keep(mount).keep(layers));
    }

    let wrong = Fixture::new("wrong store key");
    wrong.node.plant_share(&store_key());
    all.push(wrong);

    let previous = Fixture::new("store key only in AWSPREVIOUS");
    let shares_key = previous.node.store_key.clone();
    let previous = previous.secrets_in_manager(Some(&shares_key));
    previous.node.plant_share(&shares_key);
    let moto: &Moto = previous._keep[0].downcast_ref().unwrap();
    moto.put_secret_value("node0-MPC_SECRET_STORE_KEY", &store_key());
    all.push(previous);

    let absent = Fixture::new("absent store key, shares").secrets_in_manager(None);
    absent.node.plant_share(&absent.node.store_key);
    all.push(absent);
    all.push(Fixture::new("absent store key, no share").secrets_in_manager(None));
    all.push(Fixture::new("absent store key, nowhere to keep one").without("MPC_SECRET_STORE_KEY"));

    for rule in ["reconcile", "keep", "replace"] {
        let unparsable = Fixture::new(&format!("unparsable secrets.json, {rule}"))
            .with("AGENT_SECRETS_JSON", rule);
        std::fs::write(unparsable.node.path("secrets.json"), "{ not json").unwrap();
        all.push(unparsable);
        let stale =
            Fixture::new(&format!("stale secrets.json, {rule}")).with("AGENT_SECRETS_JSON", rule);
        secrets_json(&stale, false);
        all.push(stale);
        let foreign = Fixture::new(&format!("secrets.json the chain accepts, {rule}"))
            .with("AGENT_SECRETS_JSON", rule);
        secrets_json(&foreign, true);
        all.push(foreign);
    }

    for config_file in ["1", "0"] {
        let tier3 = Fixture::new(&format!("testnet without tier3, config file {config_file}"))
            .with("MPC_ENV", "testnet")
            .with(CONFIG_FILE_SWITCH, config_file);
        let mut chain = tier3.node.scenario();
        chain.chain_id = "testnet".to_string();
        tier3.node.chain.rpc.set_scenario(chain);
        all.push(tier3);
    }

    let locked = Fixture::new("locked by another agent");
    let holder = locked.command(&["run"]).start();
    holder.wait_until("/ready", WAIT, |r| r.status == 200);
    all.push(locked.keep(holder));
    all
}

/// What `agent run` made of the home: each check's status, and whether it refused.
struct RunVerdict {
    checks: BTreeMap<String, Verdict>,
    refused: bool,
    outcome: String,
}

fn run_verdict(fixture: &Fixture) -> RunVerdict {
    let mut agent: Agent = fixture
        .command(&["run"])
        .env("AGENT_ON_KEY_MISMATCH", "exit")
        .env("AGENT_FAIL_LINGER", "3s")
        .start();
    let deadline = Instant::now() + WAIT;
    loop {
        let status = agent.status();
        let phase = |p: Phase| status.phase == Reported::Known(p);
        let settled = (phase(Phase::Running) && status.ready.ready)
            || phase(Phase::Failed)
            || phase(Phase::WaitingForLock);
        if settled {
            let checks = statuses(&status);
            let refused = phase(Phase::Failed);
            if refused {
                assert_eq!(
                    agent.exit_code(),
                    78,
                    "{}: run refuses with 78",
                    fixture.name
                );
            }
            return RunVerdict {
                checks,
                refused,
                outcome: status.phase.to_string(),
            };
        }
        assert!(
            Instant::now() < deadline,
            "{}: agent run never settled: {status:#?}",
            fixture.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each check's status, by id.
fn statuses(document: &impl Checks) -> BTreeMap<String, Verdict> {
    document
        .all_checks()
        .into_iter()
        .map(|c| (c.id.clone(), c.status))
        .collect()
}

#[test]
fn doctor_and_run_reach_the_same_verdict_on_every_home() {
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for fixture in fixtures() {
        let doctor = fixture
            .command(&[
                "doctor", "--json", "--check", "secrets", "keys", "home", "launch",
            ])
            .run();
        let doctor_checks = statuses(&doctor_report(&doctor));
        let run = run_verdict(&fixture);
        for (id, status) in &run.checks {
            if let Some(seen) = doctor_checks.get(id) {
                compared += 1;
                if seen != status {
                    disagreements.push(format!(
                        "{}: {id} is {} for run, {} for doctor",
                        fixture.name,
                        status.as_str(),
                        seen.as_str()
                    ));
                }
            }
        }
        if (doctor.code == 1) != run.refused {
            disagreements.push(format!(
                "{}: doctor exits {} while run is {} ({})",
                fixture.name,
                doctor.code,
                run.outcome,
                if run.refused {
                    "refused"
                } else {
                    "not refused"
                }
            ));
        }
    }
    assert!(compared > 50, "only {compared} checks compared");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
