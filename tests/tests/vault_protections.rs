//! What protects the vault's bucket, read for `agent doctor`: versioning,
//! Object Lock with its default retention, default encryption; a bucket
//! without them is a warning that says how to add them.

use agent_tests::moto::{Moto, vault_target};
use entrypoint::check::Status;
use entrypoint::vault::{Encryption, ObjectLock, Retention, RetentionPeriod, Versioning};

#[test]
fn a_locked_bucket_shows_its_retention_versioning_and_kms_key() {
    let moto = Moto::start();
    let (_, key_arn) = moto.create_kms_key(None);
    moto.create_locked_bucket("locked-vault", 30);
    moto.default_encryption("locked-vault", &key_arn);
    let vault = moto.vault(vault_target("s3://locked-vault/mainnet", None));
    let protections = moto.block_on(vault.protections());
    assert_eq!(protections.versioning, Ok(Versioning::Enabled));
    assert_eq!(
        protections.object_lock,
        Ok(ObjectLock::On {
            default_retention: Some(Retention {
                mode: "GOVERNANCE".into(),
                period: RetentionPeriod::Days(30),
            })
        })
    );
    assert_eq!(
        protections.encryption,
        Ok(Encryption::SseKms {
            key: Some(key_arn.clone())
        })
    );
    let checks = protections.checks("locked-vault", None);
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    assert!(
        checks[1].cause.contains("30 days in GOVERNANCE mode"),
        "{checks:#?}"
    );
    assert!(checks[2].cause.contains(&key_arn), "{checks:#?}");
}

#[test]
fn an_unlocked_bucket_is_a_warning_with_the_fix() {
    let moto = Moto::start();
    moto.create_bucket("plain-vault");
    let vault = moto.vault(vault_target("s3://plain-vault", None));
    let protections = moto.block_on(vault.protections());
    assert_eq!(protections.object_lock, Ok(ObjectLock::Off));
    // moto 5.2.5 answers GetBucketVersioning under a root element the SDK
    // refuses (GetBucketVersioningResponse, not VersioningConfiguration):
    // read or not, versioning never turned on is no "ok".
    assert_ne!(protections.versioning, Ok(Versioning::Enabled));
    let checks = protections.checks("plain-vault", None);
    let (versioning, lock) = (&checks[0], &checks[1]);
    assert_eq!(versioning.status, Status::Warn, "{versioning:?}");
    assert_eq!(lock.status, Status::Warn, "{lock:?}");
    assert!(
        lock.fix
            .as_deref()
            .unwrap()
            .contains("put-object-lock-configuration --bucket plain-vault"),
        "{lock:?}"
    );
    assert!(lock.cause.contains("has no Object Lock"), "{lock:?}");
    // Whatever the bucket's default, a KMS key named for the uploads is what they use.
    assert_eq!(
        protections.checks("plain-vault", Some("alias/mpc-vault"))[2].status,
        Status::Ok
    );
}
