//! The externally tagged enums of upstream's `ConfigFile` (`indexer.sync_mode`,
//! `indexer.finality`) reach the node in either start mode: config.yaml holds
//! a variant as mpc-node's YAML parser reads it (a YAML tag, `!Block {height:
//! N}`, or a bare name, `Latest`) and keeps that form when the agent writes
//! it; the start file's `[node.indexer]` holds it as upstream's `StartConfig`
//! reads it (`sync_mode = { Block = { height = N } }`, `"Latest"`). The map
//! form `{Block: {height: N}}`, which mpc-node's YAML parser refuses, is named
//! with its fix: a hold for `mpc-node start`, a warning for
//! `start-with-config-file`; the operator's file is left as it is. The
//! stand-in node reads both files as upstream does and refuses what it refuses.

use std::path::Path;
use std::process::Command;

use agent::views::Phase;
use agent_tests::harness::{Agent, AgentCommand, WAIT, doctor_report, standin_node_bin, store_key};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::{
    BlockArgs, CONFIG_FILE_SWITCH, ENV_LOG, IndexerEnums, SyncMode, env_log,
};
use agent_tests::views::Checks;
use entrypoint::check::{Check, Status};
use entrypoint::config::Chain;
use entrypoint::homes::NodeUser;
use entrypoint::homes::config_yaml::{MpcConfigInputs, update_config_yaml};
use entrypoint::launch::start_config::{StartConfigInputs, render};
use entrypoint::secrets::Secret;

const HEIGHT: u64 = 123456;
/// `indexer.sync_mode: !Block {height: HEIGHT}` as mpc-node writes it back.
const BLOCK_TAG: &str = "sync_mode: !Block\n    height: 123456";
const BLOCK_MAP: &str = "sync_mode:\n    Block:\n      height: 123456";

fn block() -> SyncMode {
    SyncMode::Block(BlockArgs { height: HEIGHT })
}

/// A config.yaml as start.sh writes it, its `indexer` section as given.
fn config_yaml(account: &str, indexer: &[&str]) -> String {
    let mut text = format!(
        "my_near_account_id: {account}\nnear_responder_account_id: {account}\nnumber_of_responder_keys: 50\nweb_ui: 0.0.0.0:8080\nmigration_web_ui: 0.0.0.0:8079\npprof_bind_address: 0.0.0.0:34001\ntriple:\n  concurrency: 2\n  desired_triples_to_buffer: 16384\n  timeout_sec: 120\n  parallel_triple_generation_stagger_time_sec: 1\npresignature:\n  concurrency: 16\n  desired_presignatures_to_buffer: 8192\n  timeout_sec: 60\nsignature:\n  timeout_sec: 60\nckd:\n  timeout_sec: 60\nindexer:\n  validate_genesis: false\n  concurrency: 1\n  mpc_contract_id: v1.signer-prod.testnet\n  port_override: 80\n"
    );
    for line in indexer {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str("cores: 12\n");
    text
}

/// The indexer's enums as mpc-node reads them from config.yaml (serde_yaml).
fn read_yaml(text: &str) -> Result<IndexerEnums, String> {
    #[derive(serde::Deserialize)]
    struct ConfigYaml {
        indexer: IndexerEnums,
    }
    serde_yaml::from_str::<ConfigYaml>(text)
        .map(|c| c.indexer)
        .map_err(|e| e.to_string())
}

/// config.yaml written on a home, updated by the agent for another account
/// (so that it writes the file), and rendered into the start file: the
/// text the agent left in config.yaml and the start file's `[node.indexer]`.
fn through_the_agent(yaml: &str) -> (String, toml::Table) {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.yaml"), yaml).unwrap();
    let user = NodeUser::resolve(None, home.path()).unwrap();
    let inputs = MpcConfigInputs {
        chain: Chain::Testnet,
        account_id: "node1.testnet".parse().unwrap(),
        responder_id: "node1.testnet".parse().unwrap(),
        contract_id: "v1.signer-prod.testnet".parse().unwrap(),
    };
    let updated = update_config_yaml(home.path(), &inputs, &user).unwrap();
    let written = std::fs::read_to_string(home.path().join("config.yaml")).unwrap();
    assert_ne!(written, yaml, "the agent wrote config.yaml");
    let store_key = Secret::new(store_key());
    let rendered = render(&StartConfigInputs {
        home: home.path(),
        store_key: &store_key,
        backup_key: None,
        chain: Chain::Testnet,
        boot_nodes: None,
        genesis_path: None,
        tier3_public_addr: Some("203.0.113.5:24567".parse().unwrap()),
        log_format: None,
        log_filter: None,
        node: &updated.config,
        image_hash: None,
    })
    .unwrap();
    let parsed: toml::Table = rendered.expose().parse().unwrap();
    let indexer = parsed["node"]["indexer"].as_table().unwrap().clone();
    (written, indexer)
}

#[test]
fn every_enum_field_in_config_yaml_form_renders_as_upstream_s_toml_and_stays_as_written() {
    // (the config.yaml line, the start file's line as upstream's StartConfig reads it)
    let cases = [
        (BLOCK_TAG, "sync_mode = { Block = { height = 123456 } }"),
        (
            "sync_mode: !Block {height: 123456}",
            "sync_mode = { Block = { height = 123456 } }",
        ),
        ("sync_mode: Latest", r#"sync_mode = "Latest""#),
        ("sync_mode: Interruption", r#"sync_mode = "Interruption""#),
        ("sync_mode: !Latest", r#"sync_mode = "Latest""#),
        ("finality: optimistic", r#"finality = "optimistic""#),
        ("finality: near-final", r#"finality = "near-final""#),
        ("finality: final", r#"finality = "final""#),
        ("finality: !final", r#"finality = "final""#),
    ];
    for (yaml_line, toml_line) in cases {
        let (field, _) = toml_line.split_once(" = ").unwrap();
        let other = if field == "sync_mode" {
            "finality: optimistic"
        } else {
            "sync_mode: Latest"
        };
        let yaml = config_yaml("node0.testnet", &[yaml_line, other]);
        let (written, indexer) = through_the_agent(&yaml);

        let expected: toml::Table = toml_line.parse().unwrap();
        assert_eq!(
            indexer.get(field),
            expected.get(field),
            "{yaml_line}: {indexer:?}"
        );
        // Both of upstream's parsers read the same value from the two files.
        let from_toml: IndexerEnums = toml::Value::Table(indexer.clone()).try_into().unwrap();
        let from_yaml = read_yaml(&written).unwrap_or_else(|e| panic!("{yaml_line}: {e}"));
        assert_eq!(from_toml, from_yaml, "{yaml_line}");
        assert_eq!(from_yaml, read_yaml(&yaml).unwrap(), "{yaml_line}");
        // A tag stays a tag in config.yaml.
        if let Some((_, value)) = yaml_line.split_once(": !") {
            let tag = value.split_whitespace().next().unwrap();
            assert!(
                written.contains(&format!("{field}: !{tag}")),
                "{yaml_line} kept as a tag:\n{written}"
            );
        }
    }
    let (written, _) = through_the_agent(&config_yaml(
        "node0.testnet",
        &[BLOCK_TAG, "finality: optimistic"],
    ));
    assert!(written.contains(BLOCK_TAG), "{written}");
    assert_eq!(read_yaml(&written).unwrap().sync_mode, Some(block()));
}

/// `agent run` of `node` with its config.yaml's `sync_mode` line replaced by
/// `sync_mode`, the image `config_file` or not, the node's starts logged to
/// `log`.
fn run_with(node: &NodeFixture, sync_mode: &str, config_file: bool, log: &Path) -> Agent {
    let path = node.path("config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("sync_mode: Latest"), "{text}");
    std::fs::write(&path, text.replace("sync_mode: Latest", sync_mode)).unwrap();
    let mut command = node.run();
    for (name, value) in image(node, config_file, log) {
        command = command.env(name, value);
    }
    command.start()
}

/// The image's binary (logging its starts to `log`) and the start mode.
fn image(node: &NodeFixture, config_file: bool, log: &Path) -> [(&'static str, String); 2] {
    let log = log.to_str().unwrap();
    let (bin, mode) = if config_file {
        (
            node.standin_with(&[(CONFIG_FILE_SWITCH, "1"), (ENV_LOG, log)]),
            "config-file",
        )
    } else {
        (node.standin_with(&[(ENV_LOG, log)]), "legacy")
    };
    [
        ("AGENT_NODE_BIN", bin.to_string_lossy().into_owned()),
        ("AGENT_START_MODE", mode.to_string()),
    ]
}

/// `homes.config.yaml.enums` as `agent doctor` sees it.
fn doctor_check(node: &NodeFixture, config_file: bool, log: &Path) -> Check {
    let doctor = AgentCommand::new(["doctor", "--json", "--check", "home"])
        .envs(node.env())
        .envs(node.secret_env())
        .envs(image(node, config_file, log))
        .run();
    doctor_report(&doctor)
        .check("homes.config.yaml.enums")
        .clone()
}

/// The indexer's enums of the node's last start.
fn started_with(log: &Path) -> IndexerEnums {
    env_log(log)
        .into_iter()
        .rev()
        .find(|l| l.command.starts_with("start"))
        .and_then(|l| l.indexer)
        .expect("the node started")
}

#[test]
fn a_tagged_sync_mode_reaches_the_node_in_either_start_mode() {
    for config_file in [true, false] {
        let node = NodeFixture::new();
        let log = node.path("standin-env.log");
        let agent = run_with(&node, BLOCK_TAG, config_file, &log);
        agent.wait_until("/ready", WAIT, |r| r.status == 200);

        let indexer = started_with(&log);
        assert_eq!(
            indexer.sync_mode,
            Some(block()),
            "config file {config_file}"
        );
        let yaml = std::fs::read_to_string(node.path("config.yaml")).unwrap();
        assert!(
            yaml.contains(BLOCK_TAG),
            "config file {config_file}:\n{yaml}"
        );
        let status = agent.get("/status").body;
        assert!(!status.contains("homes.config.yaml.enums"), "{status}");
    }
}

#[test]
fn the_map_form_holds_a_legacy_start_and_warns_a_config_file_start_naming_the_fix() {
    let fix = format!(r#"sync_mode: !Block {{"height":{HEIGHT}}}"#);

    let node = NodeFixture::new();
    let log = node.path("standin-env.log");
    let agent = run_with(&node, BLOCK_MAP, false, &log);
    let before = std::fs::read(node.path("config.yaml")).unwrap();
    let status = agent.wait_phase(WAIT, Phase::Holding);
    let reason = status.reason.as_ref().expect("a hold has a reason");
    assert_eq!(reason.kind, "homes.config.yaml.enums", "{status:#?}");
    let check = status.check("homes.config.yaml.enums");
    assert_eq!(check.status, Status::Fail, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.contains("indexer.sync_mode") && cause.contains("map form"),
        "{cause}"
    );
    assert!(check.fix.as_deref().unwrap().contains(&fix), "{check:?}");
    assert!(status.child.running.is_none(), "the node is not started");
    assert_eq!(std::fs::read(node.path("config.yaml")).unwrap(), before);
    let by_doctor = doctor_check(&node, false, &log);
    assert_eq!(by_doctor.status, check.status, "{by_doctor:?}");
    assert_eq!(by_doctor.cause, check.cause);

    let node = NodeFixture::new();
    let log = node.path("standin-env.log");
    let agent = run_with(&node, BLOCK_MAP, true, &log);
    let before = std::fs::read(node.path("config.yaml")).unwrap();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    assert_eq!(started_with(&log).sync_mode, Some(block()));
    let status = agent.status();
    let check = status.check("homes.config.yaml.enums");
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(check.cause.contains("AGENT_START_MODE=legacy"), "{check:?}");
    assert!(check.fix.as_deref().unwrap().contains(&fix), "{check:?}");
    assert_eq!(std::fs::read(node.path("config.yaml")).unwrap(), before);
    let by_doctor = doctor_check(&node, true, &log);
    assert_eq!(by_doctor.status, check.status, "{by_doctor:?}");
    assert_eq!(by_doctor.cause, check.cause);
}

/// The stand-in's `start` (config.yaml in `home`) or `start-with-config-file`.
fn standin_start(home: &Path, config_file: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(standin_node_bin());
    command.env_clear();
    std::fs::write(home.join("standin-behavior.json"), r#"{"exit_code": 0}"#).unwrap();
    match config_file {
        Some(file) => {
            command
                .arg("start-with-config-file")
                .arg(file)
                .env(CONFIG_FILE_SWITCH, "1");
        }
        None => {
            command
                .arg("start")
                .env("MPC_HOME_DIR", home)
                .env("MPC_SECRET_STORE_KEY", store_key());
        }
    }
    command.output().unwrap()
}

#[test]
fn the_standin_node_refuses_the_forms_upstream_s_parsers_refuse() {
    let home = tempfile::tempdir().unwrap();
    for (line, accepted) in [
        (BLOCK_TAG, true),
        ("sync_mode: !Latest null", true),
        ("sync_mode: Latest", true),
        (BLOCK_MAP, false),
        ("sync_mode: {Latest: null}", false),
        ("sync_mode: Block", false),
    ] {
        let yaml = config_yaml("node0.testnet", &[line, "finality: optimistic"]);
        assert_eq!(read_yaml(&yaml).is_ok(), accepted, "{line}");
        std::fs::write(home.path().join("config.yaml"), &yaml).unwrap();
        let out = standin_start(home.path(), None);
        assert_eq!(out.status.success(), accepted, "start with {line}: {out:?}");
        if !accepted {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Load config.yaml"),
                "{out:?}"
            );
        }
    }

    let (_, rendered_indexer) = through_the_agent(&config_yaml(
        "node0.testnet",
        &[BLOCK_TAG, "finality: optimistic"],
    ));
    let start_file = |sync_mode: &str| {
        let mut indexer = rendered_indexer.clone();
        let line: toml::Table = format!("sync_mode = {sync_mode}").parse().unwrap();
        indexer.insert("sync_mode".to_string(), line["sync_mode"].clone());
        let mut file: toml::Table = format!(
            "home_dir = {:?}\n[secrets]\nsecret_store_key_hex = \"{}\"\n[tee]\nimage_hash = \"sha256:{}\"\nlatest_allowed_hash_file_path = \"/tmp/allowed\"\nauthority = {{ type = \"local\" }}\n[log]\nformat = \"plain\"\n[node]\nmy_near_account_id = \"node0.testnet\"\n",
            home.path().to_str().unwrap(),
            store_key(),
            "0".repeat(64),
        )
        .parse()
        .unwrap();
        file["node"]
            .as_table_mut()
            .unwrap()
            .insert("indexer".to_string(), toml::Value::Table(indexer));
        let path = home.path().join("start.toml");
        std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
        path
    };
    for (sync_mode, accepted) in [
        ("{ Block = { height = 123456 } }", true),
        (r#""Latest""#, true),
        (r#""!Block {height: 123456}""#, false),
        ("{ Block = 123456 }", false),
        (r#""Block""#, false),
    ] {
        let out = standin_start(home.path(), Some(&start_file(sync_mode)));
        assert_eq!(
            out.status.success(),
            accepted,
            "start-with-config-file with {sync_mode}: {out:?}"
        );
    }
}
