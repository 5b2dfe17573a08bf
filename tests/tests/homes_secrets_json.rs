//! `secrets.json` on the home: written 0600 from the validated keys when
//! absent; when it differs, `AGENT_SECRETS_JSON` decides (by default the keys
//! the chain accepts win), a replaced file is not kept (no `secrets.json.bak.*`
//! holds old private keys), and the drift is reported with public keys only.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use near_crypto::PublicKeyHandle;

use entrypoint::check::Status;
use entrypoint::config::SecretsJsonPolicy::{self, Keep, Reconcile, Replace};
use entrypoint::homes::secrets_file::{SecretsJsonAction, SecretsJsonOutcome, update_secrets_json};
use entrypoint::homes::{NodeUser, Written};
use entrypoint::keys::ChainFacts;
use entrypoint::secrets::{NodeKey, Secret};

fn node_key() -> NodeKey {
    let secret = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
    NodeKey {
        secret: Secret::new(secret.to_string()),
        public: secret.public_key(),
    }
}

/// secrets.json as start.sh writes it (indent 2, mode from the umask).
fn start_sh_file(home: &Path, p2p: &NodeKey, signer: &NodeKey) {
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "p2p_private_key": p2p.secret.expose(),
        "near_signer_key": signer.secret.expose(),
        "near_responder_keys": [signer.secret.expose()],
    }))
    .unwrap();
    let path = home.join("secrets.json");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn file(home: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.join("secrets.json")).unwrap()).unwrap()
}

fn mode(home: &Path) -> u32 {
    std::fs::metadata(home.join("secrets.json")).unwrap().mode() & 0o777
}

fn run(
    home: &Path,
    p2p: &NodeKey,
    signer: &NodeKey,
    policy: SecretsJsonPolicy,
    chain: Option<&ChainFacts>,
) -> SecretsJsonOutcome {
    let user = NodeUser::resolve(None, home).unwrap();
    update_secrets_json(home, p2p, signer, policy, chain, &user).unwrap()
}

/// No private key of any of `keys` appears in the outcome or its check.
fn assert_no_secrets(outcome: &SecretsJsonOutcome, keys: &[&NodeKey]) {
    let shown = format!(
        "{} {outcome:?}",
        serde_json::to_string(&outcome.check()).unwrap()
    );
    for key in keys {
        let base58 = &key.secret.expose()["ed25519:".len()..];
        assert!(!shown.contains(base58), "a private key leaked: {shown}");
    }
}

/// The file was replaced and no copy of the old one is left on the home.
fn replaced_without_copy(outcome: &SecretsJsonOutcome, home: &Path) {
    assert_eq!(outcome.written, Written::Replaced { backup: None });
    let copies: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "secrets.json" && name.contains("secrets.json"))
        .collect();
    assert!(copies.is_empty(), "copies of secrets.json: {copies:?}");
}

#[test]
fn an_absent_secrets_json_is_written_0600_from_the_validated_keys() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, signer) = (node_key(), node_key());
    let outcome = run(home.path(), &p2p, &signer, Reconcile, None);
    assert_eq!(outcome.action, SecretsJsonAction::Created);
    assert_eq!(mode(home.path()), 0o600);
    assert_eq!(
        file(home.path()),
        serde_json::json!({
            "p2p_private_key": p2p.secret.expose(),
            "near_signer_key": signer.secret.expose(),
            "near_responder_keys": [signer.secret.expose()],
        })
    );
    assert_eq!(outcome.check().status, Status::Ok);
    assert_no_secrets(&outcome, &[&p2p, &signer]);

    let again = run(home.path(), &p2p, &signer, Reconcile, None);
    assert_eq!(again.action, SecretsJsonAction::Unchanged);
    assert_eq!(again.written, Written::Unchanged);
}

#[test]
fn a_start_sh_file_with_the_same_keys_is_left_alone_but_narrowed_to_0600() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, signer) = (node_key(), node_key());
    start_sh_file(home.path(), &p2p, &signer);
    let before = std::fs::read(home.path().join("secrets.json")).unwrap();
    let outcome = run(home.path(), &p2p, &signer, Reconcile, None);
    assert_eq!(outcome.action, SecretsJsonAction::Unchanged);
    assert_eq!(outcome.mode_was, Some(0o644));
    assert_eq!(mode(home.path()), 0o600);
    assert_eq!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        before
    );
}

#[test]
fn keys_from_secrets_manager_that_the_chain_accepts_replace_the_file_and_no_copy_is_kept() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, stale_signer, signer) = (node_key(), node_key(), node_key());
    start_sh_file(home.path(), &p2p, &stale_signer);
    let old = std::fs::read(home.path().join("secrets.json")).unwrap();
    let chain = ChainFacts {
        access_keys: vec![PublicKeyHandle::from(&signer.public)],
        participant_p2p_key: Some(p2p.public.clone()),
    };
    let outcome = run(home.path(), &p2p, &signer, Reconcile, Some(&chain));
    assert_eq!(outcome.action, SecretsJsonAction::Replaced);
    assert_eq!(file(home.path())["near_signer_key"], signer.secret.expose());
    assert_eq!(mode(home.path()), 0o600);
    assert_ne!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        old
    );
    replaced_without_copy(&outcome, home.path());

    let drift: Vec<&str> = outcome.drift.iter().map(|d| d.field).collect();
    assert_eq!(drift, ["near_signer_key", "near_responder_keys"]);
    assert_eq!(outcome.drift[0].file, [stale_signer.public.to_string()]);
    assert_eq!(outcome.drift[0].validated, [signer.public.to_string()]);
    let check = outcome.check();
    assert_eq!(check.status, Status::Warn);
    assert!(
        check.cause.contains("the chain accepts the validated keys"),
        "{}",
        check.cause
    );
    assert!(check.cause.contains(&stale_signer.public.to_string()));
    assert_no_secrets(&outcome, &[&p2p, &stale_signer, &signer]);
}

#[test]
fn keys_in_the_file_that_the_chain_accepts_are_kept() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, registered_p2p, signer) = (node_key(), node_key(), node_key());
    start_sh_file(home.path(), &registered_p2p, &signer);
    let before = std::fs::read(home.path().join("secrets.json")).unwrap();
    let chain = ChainFacts {
        access_keys: vec![PublicKeyHandle::from(&signer.public)],
        participant_p2p_key: Some(registered_p2p.public.clone()),
    };
    let outcome = run(home.path(), &p2p, &signer, Reconcile, Some(&chain));
    assert_eq!(outcome.action, SecretsJsonAction::Kept);
    assert_eq!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        before
    );
    let check = outcome.check();
    assert_eq!(check.status, Status::Warn);
    assert!(
        check.cause.contains("the chain accepts the file's keys"),
        "{}",
        check.cause
    );
    assert!(check.fix.unwrap().contains("Secrets Manager"));
}

#[test]
fn when_the_chain_cannot_be_asked_the_file_is_kept() {
    let home = tempfile::tempdir().unwrap();
    let (p2p, signer, other) = (node_key(), node_key(), node_key());
    start_sh_file(home.path(), &p2p, &other);
    let before = std::fs::read(home.path().join("secrets.json")).unwrap();
    let outcome = run(home.path(), &p2p, &signer, Reconcile, None);
    assert_eq!(outcome.action, SecretsJsonAction::Kept);
    assert!(
        outcome.reason.contains("could not be asked"),
        "{}",
        outcome.reason
    );
    assert_eq!(
        std::fs::read(home.path().join("secrets.json")).unwrap(),
        before
    );
}

#[test]
fn keep_and_replace_do_what_they_say_whatever_the_chain() {
    let (p2p, signer, other) = (node_key(), node_key(), node_key());
    let chain = ChainFacts {
        access_keys: vec![PublicKeyHandle::from(&signer.public)],
        participant_p2p_key: None,
    };
    let home = tempfile::tempdir().unwrap();
    start_sh_file(home.path(), &p2p, &other);
    let kept = run(home.path(), &p2p, &signer, Keep, Some(&chain));
    assert_eq!(kept.action, SecretsJsonAction::Kept);
    assert_eq!(file(home.path())["near_signer_key"], other.secret.expose());

    let replaced = run(home.path(), &p2p, &signer, Replace, None);
    assert_eq!(replaced.action, SecretsJsonAction::Replaced);
    assert_eq!(file(home.path())["near_signer_key"], signer.secret.expose());
    replaced_without_copy(&replaced, home.path());
}

#[test]
fn an_unparsable_file_is_reported_kept_under_keep_and_replaced_otherwise() {
    let (p2p, signer) = (node_key(), node_key());
    let garbage = format!("{{\"p2p_private_key\": \"{}\"", p2p.secret.expose());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("secrets.json"), &garbage).unwrap();

    let kept = run(home.path(), &p2p, &signer, Keep, None);
    assert_eq!(kept.action, SecretsJsonAction::Kept);
    assert!(kept.unparsable.as_deref().unwrap().starts_with("not JSON"));
    assert_eq!(kept.check().status, Status::Fail);
    assert_no_secrets(&kept, &[&p2p, &signer]);
    assert_eq!(
        std::fs::read_to_string(home.path().join("secrets.json")).unwrap(),
        garbage
    );

    let replaced = run(home.path(), &p2p, &signer, Reconcile, None);
    assert_eq!(replaced.action, SecretsJsonAction::Replaced);
    replaced_without_copy(&replaced, home.path());
    assert_eq!(file(home.path())["p2p_private_key"], p2p.secret.expose());
    assert_eq!(replaced.check().status, Status::Warn);
}

#[test]
fn a_key_whose_halves_do_not_belong_together_makes_the_file_unusable() {
    let (p2p, signer, other) = (node_key(), node_key(), node_key());
    let home = tempfile::tempdir().unwrap();
    start_sh_file(home.path(), &p2p, &signer);
    let mut value = file(home.path());
    let a = bs58::decode(&signer.secret.expose()[8..])
        .into_vec()
        .unwrap();
    let b = bs58::decode(&other.secret.expose()[8..])
        .into_vec()
        .unwrap();
    value["near_signer_key"] = format!(
        "ed25519:{}",
        bs58::encode([&a[..32], &b[32..]].concat()).into_string()
    )
    .into();
    std::fs::write(home.path().join("secrets.json"), value.to_string()).unwrap();
    let outcome = run(home.path(), &p2p, &signer, Keep, None);
    assert_eq!(
        outcome.unparsable.as_deref(),
        Some("near_signer_key has a public half that does not belong to its secret half")
    );
}
