//! `agent doctor`'s vault group: a bucket without Object Lock (or
//! versioning) is a warning, every keyshare of the home is compared with
//! the vault's copy by checksum (other bytes fail), a keyshare on a home
//! without a vault is a warning, and the off-home judgment is the running
//! agent's when one answers (it knows the node's backup service), else the
//! doctor's own from the home and the vault.

use agent::views::DoctorReport;
use agent_tests::harness::{AgentCommand, NOBODY, WAIT, doctor_report};
use agent_tests::moto::{Moto, vault_target};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::KeysetMetrics;
use agent_tests::vault_fixture::{BUCKET, FIRST, LOCATION, VaultFixture, object_key_of};
use entrypoint::keyshare::KeyshareName;
use nix::sys::signal::Signal;

/// `agent doctor --json` with the node's environment and `env`, asking the
/// running agent at `listen` (none answers there unless a test started one).
fn doctor(node: &NodeFixture, env: Vec<(&'static str, String)>, listen: &str) -> DoctorReport {
    let out = AgentCommand::new(["doctor", "--json", "--timeout", "10s"])
        .envs(node.env())
        .envs(node.secret_env())
        .env("AGENT_LISTEN", listen)
        .envs(env)
        .run();
    doctor_report(&out)
}

/// The status and cause of the vault group's check `id`.
fn check<'a>(report: &'a DoctorReport, id: &str) -> (&'static str, &'a str) {
    let entry = report
        .checks
        .iter()
        .find(|e| e.check.id == id)
        .unwrap_or_else(|| panic!("no {id} in {report:?}"));
    assert_eq!(entry.group, "vault", "{entry:?}");
    (entry.check.status.as_str(), &entry.check.cause)
}

fn vault_env(world: &VaultFixture) -> Vec<(&'static str, String)> {
    let mut env = world.moto.env();
    env.push(("AGENT_KEYSHARE_VAULT", LOCATION.into()));
    env
}

#[test]
fn a_bucket_without_object_lock_is_a_warning_and_the_homes_keyshare_is_compared() {
    let world = VaultFixture::on(Moto::start(), false).keyshare_on_home();
    world.moto.create_bucket(BUCKET);
    world.moto.default_encryption(BUCKET, &world.kms_key);
    let vault = world.moto.vault(vault_target(LOCATION, None));
    let bytes = world.home_bytes(FIRST);
    world
        .moto
        .block_on(vault.upload(KeyshareName::parse(FIRST).unwrap(), &bytes))
        .unwrap();
    let report = doctor(&world.node, vault_env(&world), NOBODY);

    let (status, cause) = check(&report, "vault.object_lock");
    assert_eq!(status, "warn");
    assert!(cause.contains("has no Object Lock"), "{cause}");
    assert_eq!(check(&report, "vault.versioning").0, "warn");
    let (status, cause) = check(&report, "vault.encryption");
    assert_eq!(status, "ok", "{cause}");
    assert_eq!(check(&report, "vault.configured").0, "ok");
    let (status, cause) = check(&report, &format!("vault.keyshare.{FIRST}"));
    assert_eq!(status, "ok", "{cause}");
    assert!(cause.contains("with the same SHA-256"), "{cause}");
    let (status, cause) = check(&report, "vault.off_home");
    assert_eq!(status, "ok", "{cause}");
    assert!(cause.contains("is in the vault"), "{cause}");
    assert_eq!(report.status.as_str(), "warn", "{report:?}");
}

#[test]
fn other_bytes_in_the_vault_fail_and_a_locked_bucket_passes() {
    let world = VaultFixture::new().keyshare_on_home();
    world
        .moto
        .put_object(BUCKET, &object_key_of(FIRST), b"another home's keyshare");
    let report = doctor(&world.node, vault_env(&world), NOBODY);
    let (status, cause) = check(&report, "vault.object_lock");
    assert_eq!(status, "ok", "{cause}");
    let (status, cause) = check(&report, &format!("vault.keyshare.{FIRST}"));
    assert_eq!(status, "fail");
    assert!(cause.contains("holds other bytes"), "{cause}");
    assert_eq!(report.status.as_str(), "fail");
}

#[test]
fn a_keyshare_without_a_vault_warns_and_a_running_agents_judgment_is_taken() {
    let node = NodeFixture::new();
    node.plant_share(&node.store_key);
    let past = vec![("AGENT_KEYSHARE_VAULT_MAX_BEHIND", "1s".to_string())];
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let report = doctor(&node, past.clone(), NOBODY);
    let (status, cause) = check(&report, "vault.configured");
    assert_eq!(status, "warn");
    assert!(cause.contains("no vault is configured"), "{cause}");
    let (status, cause) = check(&report, "vault.off_home");
    assert_eq!(status, "warn");
    assert!(
        cause.contains("the keyshare of epoch 1 lives only on the home"),
        "{cause}"
    );

    // The running agent sees the node's backup service was served epoch 1.
    node.keyset_metrics(&KeysetMetrics {
        current_epoch_id: Some(1),
        last_backup_served_epoch: Some(1),
        last_backup_served_timestamp_seconds: Some(1_790_000_000),
    });
    let mut agent = node.run().envs(past.clone()).start();
    agent.wait_status(WAIT, |s| {
        s.vault
            .as_ref()
            .is_some_and(|v| v.off_home.status == entrypoint::check::Status::Ok)
    });
    let report = doctor(&node, past, &agent.addr().to_string());
    let (status, cause) = check(&report, "vault.off_home");
    assert_eq!(status, "ok", "{cause}");
    assert!(
        cause.contains("served to the node's backup service")
            && cause.ends_with("(as the running agent judged it)"),
        "{cause}"
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}
