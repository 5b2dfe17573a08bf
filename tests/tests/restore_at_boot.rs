//! The self-healing boot: `agent run` (and `agent init`) on a home with no
//! keyshare, for a participant of the contract's keyset by this node's p2p
//! key, restores the vault's keyshare of that keyset before the node
//! starts, and says so on `/status`. When none can be restored (a stale
//! vault, an empty one, `AGENT_KEYSHARE_RESTORE=off`) `homes.keyshare`
//! fails naming the gap and `/health` warns, but the node starts: it must
//! run to be reshared in. A node that is not the keyset's participant by its
//! p2p key (a migration destination) gets nothing restored.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use agent::views::Status;
use agent_tests::harness::{AgentCommand, NOBODY, WAIT, doctor_report, file_names};
use agent_tests::near_rpc::{ContractViews, DestinationNodeInfo, ParticipantInfo};
use agent_tests::node_fixture::{ACCOUNT, CONTRACT, Key};
use agent_tests::vault_fixture::{LOCATION, VaultFixture, bytes};
use agent_tests::views::Checks;
use entrypoint::check::Status as Verdict;
use serde_json::Value;

/// `/status` once the node is ready.
fn ready_status(agent: &agent_tests::harness::Agent) -> Status {
    agent.wait_until("/ready", WAIT, |r| r.status == 200);
    agent.status()
}

#[test]
fn a_participants_empty_home_gets_its_keyshare_back_before_the_node_starts() {
    let fx = VaultFixture::new();
    fx.keyset(3, &[0, 0]);
    fx.plant(2, 2, 0, &fx.node.store_key);
    let current = fx.plant(3, 2, 0, &fx.node.store_key);
    // A newer keyshare the contract has not adopted is not the one taken.
    fx.plant(4, 2, 0, &fx.node.store_key);

    let agent = fx.run().start();
    let status = ready_status(&agent);
    let check = status.check("homes.keyshare");
    assert_eq!(check.status, Verdict::Ok, "{check:?}");
    let cause = &check.cause;
    assert!(
        cause.starts_with(&format!("restored epoch 3 from {}", fx.url(current.name))),
        "{cause}"
    );
    let key = fx.home().join("key");
    assert_eq!(std::fs::read(&key).unwrap(), bytes(&current));
    assert_eq!(
        std::fs::metadata(&key).unwrap().ino(),
        std::fs::metadata(fx.home().join("permanent_keys/epoch_3_with_2_domains"))
            .unwrap()
            .ino()
    );
    // Before the node started: `key` was linked before the child's start.
    let linked = std::fs::metadata(&key).unwrap();
    let started = agent
        .status()
        .child
        .running
        .expect("the node runs")
        .started_at;
    let linked =
        SystemTime::UNIX_EPOCH + Duration::new(linked.ctime() as u64, linked.ctime_nsec() as u32);
    assert!(linked <= started, "{linked:?} after {started:?}");
    assert_eq!(status.check("homes.store_key").status, Verdict::Ok);
    assert_eq!(agent.get("/health").health().status, "pass");
    assert!(
        agent.logs().iter().any(|l| l["message"]
            == "restored the keyshare from the vault before the node starts"
            && l["epoch"] == 3),
        "logged"
    );
}

/// The gap, on `/status` and `/health`, with the node running.
fn gap(fx: &VaultFixture, agent: &agent_tests::harness::Agent) -> String {
    let status = ready_status(agent);
    let check = status.check("homes.keyshare");
    assert_eq!(check.status, Verdict::Fail, "{check:?}");
    assert!(status.child.running.is_some(), "the node runs: {status:?}");
    let health = agent.get("/health").health();
    assert_eq!(health.status, "warn", "{health:?}");
    let cause = check.cause.clone();
    assert!(health.output.contains(&cause), "{health:?}");
    assert!(!fx.home().join("key").exists(), "nothing restored");
    cause
}

#[test]
fn a_stale_vault_names_the_gap_and_the_node_still_starts() {
    let fx = VaultFixture::new();
    fx.keyset(4, &[0]);
    fx.plant(3, 1, 0, &fx.node.store_key);
    let agent = fx.run().start();
    let cause = gap(&fx, &agent);
    assert!(
        cause.starts_with("participant of epoch 4 with no keyshare on the home;")
            && cause.contains("the vault holds epoch 3 at most"),
        "{cause}"
    );
}

#[test]
fn an_empty_vault_names_the_gap_and_the_node_still_starts() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    let agent = fx.run().start();
    let cause = gap(&fx, &agent);
    assert!(
        cause.contains("the vault holds no keyshare of node0.test.near"),
        "{cause}"
    );
}

#[test]
fn restore_off_restores_nothing_and_names_the_gap() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    fx.plant(1, 1, 0, &fx.node.store_key);
    let agent = fx.run().env("AGENT_KEYSHARE_RESTORE", "off").start();
    let cause = gap(&fx, &agent);
    assert!(cause.contains("AGENT_KEYSHARE_RESTORE=off"), "{cause}");
}

#[test]
fn a_migration_destinations_empty_home_gets_nothing_restored() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    fx.plant(1, 1, 0, &fx.node.store_key);
    // The contract lists the old node's p2p key; this node is the destination.
    let old = Key::random();
    let mut chain = fx.node.scenario();
    let participants = &mut chain
        .contracts
        .get_mut(
            &CONTRACT
                .parse::<near_primitives::types::AccountId>()
                .unwrap(),
        )
        .unwrap()["Running"]["parameters"]["participants"]["participants"];
    participants[0][2]["tls_public_key"] = Value::from(old.public.clone());
    chain.contract_views.insert(
        CONTRACT.parse().unwrap(),
        ContractViews {
            migration_info: Some(
                [(
                    ACCOUNT.parse().unwrap(),
                    (
                        None,
                        Some(DestinationNodeInfo {
                            signer_account_pk: fx.node.account.public_key(),
                            destination_node_info: ParticipantInfo {
                                url: "http://new-node.test:80".into(),
                                tls_public_key: fx.node.p2p.public_key(),
                            },
                        }),
                    ),
                )]
                .into(),
            ),
            ..ContractViews::default()
        },
    );
    fx.node.chain.rpc.set_scenario(chain);
    let agent = fx.run().start();
    let status = ready_status(&agent);
    let check = status.check("homes.keyshare");
    assert_eq!(check.status, Verdict::Ok, "{check:?}");
    assert!(
        check.cause.contains("the destination of a node migration"),
        "{check:?}"
    );
    assert!(!fx.home().join("key").exists());
    // The node made its key storage at start, and nothing was restored into it.
    assert_eq!(
        file_names(fx.home().join("permanent_keys")),
        Vec::<String>::new()
    );
}

#[test]
fn init_restores_the_keyshare_too() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    let current = fx.plant(1, 1, 0, &fx.node.store_key);
    let out = AgentCommand::new(["init"])
        .envs(fx.env())
        .envs(fx.node.secret_env())
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read(fx.home().join("key")).unwrap(),
        bytes(&current)
    );
}

#[test]
fn a_vault_that_cannot_be_read_names_the_gap_and_the_node_still_starts() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    let agent = fx
        .run()
        .env("AGENT_KEYSHARE_VAULT", "s3://no-such-vault/mainnet")
        .start();
    let cause = gap(&fx, &agent);
    assert!(
        cause.contains("no-such-vault") && cause.contains("does not exist"),
        "{cause}"
    );
}

#[test]
fn doctor_names_a_participants_missing_keyshare_as_the_boot_would_without_writing() {
    let fx = VaultFixture::new();
    fx.keyset(1, &[0]);
    let current = fx.plant(1, 1, 0, &fx.node.store_key);
    let doctor = |env: Vec<(&'static str, String)>| {
        let out = AgentCommand::new(["doctor", "--json", "--timeout", "10s"])
            .envs(env)
            .envs(fx.node.secret_env())
            .env("AGENT_LISTEN", NOBODY)
            .run();
        doctor_report(&out).check("homes.keyshare").clone()
    };

    // With the vault: the boot restores it; doctor says so, and writes nothing.
    let foreseen = doctor(fx.env());
    assert_eq!(foreseen.status, Verdict::Warn, "{foreseen:?}");
    assert!(
        foreseen.cause.starts_with(&format!(
            "participant of epoch 1 with no keyshare on the home; agent run restores epoch_1_with_1_domains from {LOCATION}"
        )),
        "{foreseen:?}"
    );
    assert!(!fx.home().join("key").exists() && !fx.home().join("permanent_keys").exists());

    // Without a vault, or with the restore off: the gap agent run names.
    let mut without_vault = fx.node.env();
    without_vault.extend(fx.moto.env());
    let mut off = fx.env();
    off.push(("AGENT_KEYSHARE_RESTORE", "off".into()));
    for (env, why) in [
        (
            without_vault,
            "no vault is configured (AGENT_KEYSHARE_VAULT)",
        ),
        (off, "AGENT_KEYSHARE_RESTORE=off"),
    ] {
        let gap = doctor(env);
        assert_eq!(gap.status, Verdict::Fail, "{gap:?}");
        assert!(
            gap.cause
                .starts_with("participant of epoch 1 with no keyshare on the home;")
                && gap.cause.contains(why),
            "{gap:?}"
        );
        assert!(gap.fix.as_deref().unwrap().contains("agent vault restore"));
    }

    // Restored by the boot: the home holds it.
    let agent = fx.run().start();
    ready_status(&agent);
    drop(agent);
    let held = doctor(fx.env());
    assert_eq!(held.status, Verdict::Ok, "{held:?}");
    assert!(
        held.cause
            .contains(&format!("permanent_keys/{}", current.name)),
        "{held:?}"
    );
}
