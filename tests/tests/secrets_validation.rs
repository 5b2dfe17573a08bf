//! Secrets are validated fail-closed before anything starts, every problem named
//! at once with the secret, the rule it broke and a fix — and the likely
//! mistake behind it.

use agent_tests::harness::{
    AgentCommand, Output, backup_key, keypair, keys_report, node_env, store_key,
};
use agent_tests::views::secret;
use entrypoint::check::Status;

fn keys(env: &[(&str, String)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    AgentCommand::new(["keys", "--offline", "--json"])
        .envs(node_env(home.path()))
        .envs(env.iter().cloned())
        .run()
}

/// The cause of `name`'s problem when both keys are set from the environment.
fn cause_of(name: &str, env: &[(&str, String)]) -> String {
    let (account, _) = keypair();
    let (p2p, _) = keypair();
    let mut all = vec![("MPC_ACCOUNT_SK", account), ("MPC_P2P_PRIVATE_KEY", p2p)];
    all.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
    all.extend_from_slice(env);
    let out = keys(&all);
    assert_eq!(out.code, 1, "{out:?}");
    let report = keys_report(&out);
    let entry = secret(&report.secrets, name);
    assert_eq!(entry.status, Status::Fail, "{entry:?}");
    assert!(
        entry.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "no fix in {entry:?}"
    );
    entry.cause.clone()
}

#[test]
fn placeholders_are_refused() {
    for value in [
        "PLACEHOLDER",
        "changeme",
        "TODO",
        "<account key>",
        "xxxxxxxxxx",
        "dummy",
        " ",
    ] {
        let cause = cause_of("MPC_ACCOUNT_SK", &[("MPC_ACCOUNT_SK", value.into())]);
        assert!(
            cause.contains("placeholder")
                || cause.contains("run of x")
                || cause.contains("whitespace"),
            "{value:?}: {cause}"
        );
        assert!(
            cause.starts_with("MPC_ACCOUNT_SK from environment variable MPC_ACCOUNT_SK"),
            "{cause}"
        );
    }
}

#[test]
fn a_key_made_with_openssl_is_named_as_such() {
    let hex = "ab".repeat(32);
    assert!(
        cause_of("MPC_P2P_PRIVATE_KEY", &[("MPC_P2P_PRIVATE_KEY", hex)])
            .contains("openssl rand -hex")
    );
    let base64 = "q83vEjRWeJ+rze8SNFZ4kDzKTSyVPIZJ9uQlX0N6g1M=".to_string();
    assert!(cause_of("MPC_P2P_PRIVATE_KEY", &[("MPC_P2P_PRIVATE_KEY", base64)]).contains("base64"));
}

#[test]
fn a_public_key_where_the_secret_key_belongs_is_named() {
    let (_, public) = keypair();
    let cause = cause_of("MPC_ACCOUNT_SK", &[("MPC_ACCOUNT_SK", public)]);
    assert!(cause.contains("a public key or a bare seed"), "{cause}");
}

#[test]
fn a_key_without_prefix_or_on_another_curve_is_named() {
    let (sk, _) = keypair();
    let body = sk.strip_prefix("ed25519:").unwrap().to_string();
    assert!(
        cause_of("MPC_ACCOUNT_SK", &[("MPC_ACCOUNT_SK", body.clone())])
            .contains("without the ed25519: prefix")
    );
    assert!(
        cause_of(
            "MPC_ACCOUNT_SK",
            &[("MPC_ACCOUNT_SK", format!("secp256k1:{body}"))]
        )
        .contains("secp256k1")
    );
}

/// A malformed key is described by its shape (length, alphabet, prefix),
/// never by any of its characters: not in the report, not in the log.
#[test]
fn a_malformed_key_is_described_without_any_of_its_characters() {
    let (sk, _) = keypair();
    let body = sk.strip_prefix("ed25519:").unwrap().to_string();
    for (bad, shape) in [
        (
            format!("QXZKJQ:{body}"),
            "another prefix before `:` (6 characters, letters)",
        ),
        (
            // The body's first characters may all be letters: `7x` makes
            // the prefix hold both kinds whatever the key.
            format!("7x{}:{}", &body[..10], &body[10..]),
            "another prefix before `:` (12 characters, letters and digits)",
        ),
        (format!("ed25519:{}", &body[..40]), "decodes to"),
        (body[..50].to_string(), "decodes to"),
    ] {
        let (account, _) = keypair();
        let out = keys(&[
            ("MPC_ACCOUNT_SK", account),
            ("MPC_P2P_PRIVATE_KEY", bad.clone()),
        ]);
        assert_eq!(out.code, 1, "{out:?}");
        let said = format!("{}\n{}", out.stdout, out.stderr);
        assert!(said.contains(shape), "{shape}: {said}");
        // Only the secret part counts: a window that overlaps the public
        // prefix `ed25519:` may legitimately match a public key shown in
        // the report (`ed25519:2F…` against a body starting with `2`).
        let secret = bad.strip_prefix("ed25519:").unwrap_or(&bad);
        for start in 0..=secret.len().saturating_sub(6) {
            let window = &secret[start..start + 6];
            assert!(
                !said.contains(window),
                "{window:?} of the malformed key appears in: {said}"
            );
        }
    }
}

#[test]
fn a_spliced_key_is_refused() {
    let (a, _) = keypair();
    let (b, _) = keypair();
    let mut bytes = bs58(&a);
    bytes[32..].copy_from_slice(&bs58(&b)[32..]);
    let spliced = format!("ed25519:{}", near_crypto_bs58(&bytes));
    let cause = cause_of("MPC_ACCOUNT_SK", &[("MPC_ACCOUNT_SK", spliced)]);
    assert!(
        cause.contains("does not belong to its secret half"),
        "{cause}"
    );
}

#[test]
fn the_account_key_reused_as_p2p_key_is_refused() {
    let (same, _) = keypair();
    let cause = cause_of(
        "MPC_P2P_PRIVATE_KEY",
        &[
            ("MPC_ACCOUNT_SK", same.clone()),
            ("MPC_P2P_PRIVATE_KEY", same),
        ],
    );
    assert!(
        cause.contains("the account key reused as the p2p key"),
        "{cause}"
    );
}

#[test]
fn hex_keys_need_their_exact_length() {
    let too_long = cause_of(
        "MPC_SECRET_STORE_KEY",
        &[("MPC_SECRET_STORE_KEY", backup_key())],
    );
    assert!(
        too_long.contains("is 64 hex characters, not 32"),
        "{too_long}"
    );
    let prefixed = cause_of(
        "MPC_SECRET_STORE_KEY",
        &[("MPC_SECRET_STORE_KEY", format!("0x{}", store_key()))],
    );
    assert!(prefixed.contains("starts with 0x"), "{prefixed}");
    let short = cause_of(
        "MPC_BACKUP_ENCRYPTION_KEY_HEX",
        &[("MPC_BACKUP_ENCRYPTION_KEY_HEX", store_key())],
    );
    assert!(short.contains("is 32 hex characters, not 64"), "{short}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let out = keys(&[
        ("MPC_ACCOUNT_SK", "CHANGEME".into()),
        ("MPC_P2P_PRIVATE_KEY", "ab".repeat(32)),
        ("MPC_SECRET_STORE_KEY", "zz".into()),
        ("MPC_BACKUP_ENCRYPTION_KEY_HEX", "12".into()),
    ]);
    assert_eq!(out.code, 1);
    let report = keys_report(&out);
    let failed = report
        .secrets
        .iter()
        .filter(|s| s.status == Status::Fail)
        .count();
    assert_eq!(failed, 4, "{report:#?}");
}

#[test]
fn a_missing_required_key_says_where_to_set_it() {
    let (p2p, _) = keypair();
    let home = tempfile::tempdir().unwrap();
    let out = AgentCommand::new(["keys", "--offline"])
        .envs(node_env(home.path()))
        .env("MPC_P2P_PRIVATE_KEY", p2p)
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("MPC_ACCOUNT_SK is not set anywhere"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("fix: set AGENT_SECRET_ID_MPC_ACCOUNT_SK"),
        "{}",
        out.stdout
    );
}

#[test]
fn valid_keys_show_their_public_keys_and_fingerprints() {
    let (account, account_pk) = keypair();
    let (p2p, p2p_pk) = keypair();
    let home = tempfile::tempdir().unwrap();
    let out = AgentCommand::new(["keys", "--offline"])
        .envs(node_env(home.path()))
        .env("MPC_ACCOUNT_SK", account)
        .env("MPC_P2P_PRIVATE_KEY", p2p)
        .env("MPC_SECRET_STORE_KEY", store_key())
        .run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&account_pk));
    assert!(out.stdout.contains(&p2p_pk));
    assert!(out.stdout.contains("sha256:"));
    assert!(out.stdout.contains("no problems"));
}

fn bs58(key: &str) -> Vec<u8> {
    let sk: near_crypto::SecretKey = key.parse().unwrap();
    match sk {
        near_crypto::SecretKey::ED25519(k) => k.0.to_vec(),
        _ => unreachable!("ed25519 only"),
    }
}

fn near_crypto_bs58(bytes: &[u8]) -> String {
    let key =
        near_crypto::SecretKey::ED25519(near_crypto::ED25519SecretKey(bytes.try_into().unwrap()));
    key.to_string()
        .strip_prefix("ed25519:")
        .unwrap()
        .to_string()
}
