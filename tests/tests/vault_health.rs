//! A vault the agent cannot write to is a `warn` on `/health` once the
//! home's newest keyshare has lived only on the home for
//! `AGENT_KEYSHARE_VAULT_MAX_BEHIND`, naming the bucket, the object and the
//! cause (a bucket that does not exist, `s3:PutObject` denied to the task's
//! credentials); the node keeps running, and the warning clears once the
//! vault is fixed and the keyshare is in it.

use std::time::{Duration, Instant};

use agent_tests::harness::{Agent, WAIT};
use agent_tests::moto::Moto;
use agent_tests::vault_fixture::{BUCKET, FIRST, VaultFixture, object_key_of};
use nix::sys::signal::Signal;
use serde_json::json;

const MAX_BEHIND: Duration = Duration::from_secs(2);

/// The warning comes within the max-behind of the loop's first look (the
/// keyshare was written before the agent started), names the vault, the
/// object and `cause`, and the node runs on; then the agent is stopped.
fn warns_naming(agent: &Agent, cause: &str) {
    let first_look = agent.wait_status(WAIT, |s| s.vault.is_some());
    let looked = Instant::now();
    let warned = agent.wait_health_saying(WAIT, "warn", cause);
    // The max-behind, the upload's first try and the polls, with room for a
    // loaded machine.
    assert!(
        looked.elapsed() < MAX_BEHIND + Duration::from_secs(5),
        "warned {:?} after the first look",
        looked.elapsed()
    );
    let output = warned.output.as_str();
    for named in [
        "the keyshare of epoch 1 lives only on the home",
        "s3://mpc-vault/mainnet",
        &object_key_of(FIRST),
        cause,
    ] {
        assert!(output.contains(named), "{named:?} not in {output}");
    }
    let status = agent.status();
    assert!(status.child.running.is_some(), "{:?}", status.child);
    let vault = status.vault.unwrap();
    let error = vault.last_error.expect("the upload's failure");
    assert!(error.cause.contains(cause), "{}", error.cause);
    assert!(vault.off_home.fix.unwrap().contains("backup service"));
    assert!(first_look.vault.unwrap().newest.is_some());
}

fn clears(agent: &mut Agent) {
    let healed = agent.wait_health(WAIT, "pass");
    assert_eq!(healed.output, "running", "{healed:?}");
    let vault = agent.status().vault.unwrap();
    assert!(vault.vaulted.is_some(), "{vault:?}");
    assert!(vault.last_error.is_none(), "{vault:?}");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn a_missing_bucket_warns_within_the_max_behind_and_clears_once_it_exists() {
    let world = VaultFixture::on(Moto::start(), false).keyshare_on_home();
    let mut agent = world.run_vaulting("2s").start();
    warns_naming(&agent, "bucket mpc-vault does not exist");
    world.moto.create_locked_bucket(BUCKET, 1);
    clears(&mut agent);
    assert_eq!(world.versions(FIRST), 1);
}

#[test]
fn a_denied_upload_warns_naming_the_action_and_clears_once_granted() {
    // Unchecked: the key and its alias, the bucket and its lock (4), two users (6).
    let world = VaultFixture::on(Moto::with_iam_after(10), true).keyshare_on_home();
    let read_only = |actions: &[&str]| {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": actions,
                "Resource": ["arn:aws:s3:::mpc-vault", "arn:aws:s3:::mpc-vault/*"],
            }],
        })
    };
    let (_, task_key, task_secret) = world
        .moto
        .create_user_with_policy("node0-task", &read_only(&["s3:GetObject", "s3:ListBucket"]));
    let (_, admin_key, admin_secret) = world.moto.create_user_with_policy(
        "admin",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }),
    );
    let mut agent = world
        .run_vaulting("2s")
        .env("AWS_ACCESS_KEY_ID", &task_key)
        .env("AWS_SECRET_ACCESS_KEY", &task_secret)
        .start();
    warns_naming(
        &agent,
        "access denied: s3:PutObject on s3://mpc-vault/mainnet/",
    );
    let fix = agent.status().vault.unwrap().off_home.fix.unwrap();
    assert!(
        fix.starts_with("grant s3:PutObject on arn:aws:s3:::mpc-vault/mainnet/node0.test.near/* to the task role"),
        "{fix}"
    );

    world.moto.put_user_policy_as(
        (&admin_key, &admin_secret),
        "node0-task",
        &read_only(&["s3:GetObject", "s3:ListBucket", "s3:PutObject"]),
    );
    clears(&mut agent);
}
