//! Keys anyone can know — one byte repeated (near/mpc's templates use 32 × `A`
//! for the store key and 64 zeros for the backup key), a store key near/mpc
//! publishes, an ed25519 key whose secret half is one byte repeated — are
//! refused on testnet and mainnet, naming where the value came from, and only
//! warned about on mpc-localnet.

use agent_tests::harness::keys_report;
use agent_tests::harness::{AgentCommand, Output, backup_key, keypair, node_env, store_key};
use agent_tests::views::secret;
use entrypoint::check::Status;
use entrypoint::secrets::SecretReport;

/// An ed25519 key whose secret half is 32 bytes of `a`.
fn derivable_key() -> String {
    near_crypto::SecretKey::from_seed(near_crypto::KeyType::ED25519, &"a".repeat(32)).to_string()
}

fn keys(chain: &str, overrides: &[(&str, String)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("MPC_ACCOUNT_SK", keypair().0),
        ("MPC_P2P_PRIVATE_KEY", keypair().0),
        ("MPC_SECRET_STORE_KEY", store_key()),
        ("MPC_BACKUP_ENCRYPTION_KEY_HEX", backup_key()),
    ];
    env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
    env.extend(overrides.iter().cloned());
    AgentCommand::new(["keys", "--offline", "--json"])
        .envs(node_env(home.path()))
        .env("MPC_ENV", chain)
        .envs(env)
        .run()
}

fn entry(out: &Output, name: &str) -> SecretReport {
    secret(&keys_report(out).secrets, name).clone()
}

#[test]
fn each_key_anyone_can_know_is_refused_on_testnet_naming_its_source() {
    let cases = [
        (
            "MPC_SECRET_STORE_KEY",
            "A".repeat(32),
            "one byte repeated 16 times",
        ),
        (
            "MPC_SECRET_STORE_KEY",
            "1".repeat(32),
            "one byte repeated 16 times",
        ),
        (
            "MPC_SECRET_STORE_KEY",
            "BD399143F5B3126098B0EAA023A0E730".to_string(),
            "published in near/mpc's deployment/cvm-deployment/ci-config.toml",
        ),
        (
            "MPC_BACKUP_ENCRYPTION_KEY_HEX",
            "0".repeat(64),
            "one byte repeated 32 times",
        ),
        (
            "MPC_ACCOUNT_SK",
            derivable_key(),
            "secret half of one byte repeated",
        ),
        (
            "MPC_P2P_PRIVATE_KEY",
            derivable_key(),
            "secret half of one byte repeated",
        ),
    ];
    for (name, value, why) in cases {
        let out = keys("testnet", &[(name, value.clone())]);
        assert_eq!(out.code, 1, "{name}: {out:?}");
        let entry = entry(&out, name);
        assert_eq!(entry.status, Status::Fail, "{entry:?}");
        let cause = &entry.cause;
        assert!(
            cause.starts_with(&format!("{name} from environment variable {name}")),
            "the source is named: {cause}"
        );
        assert!(cause.contains(why), "{cause}");
        assert!(cause.contains("MPC_ENV=testnet"), "{cause}");
        let fix = entry.fix.as_deref().unwrap();
        assert!(fix.contains("generate a fresh key"), "{fix}");
        let body = value.strip_prefix("ed25519:").unwrap_or(&value);
        assert!(
            !out.stdout.contains(&body[..16]) && !out.stderr.contains(&body[..16]),
            "the value is never shown"
        );
    }
}

#[test]
fn on_mpc_localnet_a_key_anyone_can_know_is_a_warning() {
    let out = keys("mpc-localnet", &[("MPC_SECRET_STORE_KEY", "A".repeat(32))]);
    let entry = entry(&out, "MPC_SECRET_STORE_KEY");
    assert_eq!(entry.status, Status::Warn, "{entry:?}");
    assert!(entry.cause.contains("MPC_ENV=mpc-localnet"), "{entry:?}");
}
