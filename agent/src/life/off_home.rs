//! Whether the home's newest keyshare lives off the home: the one judgment
//! `/status`, `/health` and `agent doctor` make of it (in the vault, or
//! served to the node's backup service), and the contract's keyset against
//! the home's newest keyshare, for the chain watch.

use std::time::{Duration, SystemTime};

use entrypoint::check::Check;

use super::views::{HomeKeyshare, KeysetGauges, Vault};

/// The off-home judgment's check.
pub const ID: &str = "vault.off_home";
/// The chain watch's check of the contract's keyset against the home.
pub const AGAINST_CONTRACT: &str = "watch.keyshare_epoch";

/// The other way off the home, added to each fix.
const BACKUP_SERVICE: &str =
    "run a backup service (near/mpc backup-cli) that is served every new epoch's keyshare";

/// The verdict, and how long the newest keyshare has lived only on the home
/// (zero when it is off the home, or when there is none).
#[derive(Clone, Debug, PartialEq)]
pub struct OffHome {
    pub check: Check,
    pub behind: Duration,
}

/// The home's newest keyshare is off the home when the vault holds its
/// bytes, or when the node's backup service was served its epoch
/// (`mpc_last_backup_served_epoch` at least the keyshare's epoch and
/// `mpc_current_epoch_id`). Otherwise it is a warning once it has lived
/// only on the home for longer than the max-behind, with both ways out.
pub fn judge(vault: &Vault, now: SystemTime) -> OffHome {
    let Some(newest) = &vault.newest else {
        return OffHome {
            check: Check::skipped(ID, "the home holds no keyshare yet"),
            behind: Duration::ZERO,
        };
    };
    let file = format!("permanent_keys/{}", newest.file);
    if let Some(object) = &vault.vaulted {
        return OffHome {
            check: Check::ok(
                ID,
                format!(
                    "the keyshare of epoch {} ({file}) is in the vault: {} (version {}, stored {})",
                    newest.epoch,
                    object.url,
                    object.version_id.as_deref().unwrap_or("none"),
                    humantime::format_rfc3339_seconds(object.at)
                ),
            ),
            behind: Duration::ZERO,
        };
    }
    if let Some((served, current)) = served(newest, vault.backup_service.as_ref()) {
        return OffHome {
            check: Check::ok(
                ID,
                format!(
                    "the keyshare of epoch {} ({file}) was served to the node's backup service (mpc_last_backup_served_epoch {served}, mpc_current_epoch_id {current})",
                    newest.epoch
                ),
            ),
            behind: Duration::ZERO,
        };
    }
    let (behind, max_behind) = (behind(newest, now), max_behind(vault));
    let where_not = not_off_home(vault, newest);
    let check = if behind > max_behind {
        let fix = match (&vault.location, &vault.last_error) {
            (Some(_), Some(error)) => format!(
                "{}; or {BACKUP_SERVICE}",
                error
                    .fix
                    .as_deref()
                    .unwrap_or("see the vault's last error on /status")
            ),
            (Some(location), None) => {
                format!("read the agent's log for its uploads to {location}; or {BACKUP_SERVICE}")
            }
            (None, _) => format!(
                "configure AGENT_KEYSHARE_VAULT=s3://BUCKET[/PREFIX] (an Object Lock bucket; README: Keyshare vault), or {BACKUP_SERVICE}"
            ),
        };
        Check::warn(
            ID,
            format!(
                "the keyshare of epoch {} lives only on the home: {file} (SHA-256 {}), written {} ago, more than AGENT_KEYSHARE_VAULT_MAX_BEHIND {}; {where_not}",
                newest.epoch,
                newest.sha256,
                seconds(behind),
                seconds(max_behind)
            ),
            fix,
        )
    } else {
        Check::ok(
            ID,
            format!(
                "the keyshare of epoch {} ({file}) is not off the home yet, {} after it was written (AGENT_KEYSHARE_VAULT_MAX_BEHIND {}); {where_not}",
                newest.epoch,
                seconds(behind),
                seconds(max_behind)
            ),
        )
    };
    OffHome { check, behind }
}

/// Whether [`judge`] warns, without building its text (for `/health`, read
/// on every request): the newest keyshare neither in the vault nor served
/// to the backup service (`gauges`), for longer than the max-behind.
pub fn warns(vault: &Vault, gauges: Option<&KeysetGauges>, now: SystemTime) -> bool {
    vault.newest.as_ref().is_some_and(|newest| {
        vault.vaulted.is_none()
            && served(newest, gauges).is_none()
            && behind(newest, now) > max_behind(vault)
    })
}

/// The epochs (served, current) when the backup service was served the
/// newest keyshare's epoch and the node's current one.
fn served(newest: &HomeKeyshare, gauges: Option<&KeysetGauges>) -> Option<(u64, u64)> {
    let gauges = gauges?;
    let served = gauges.last_backup_served_epoch?;
    let current = gauges.current_epoch_id.unwrap_or(0);
    (served >= newest.epoch && served >= current).then_some((served, current))
}

fn behind(newest: &HomeKeyshare, now: SystemTime) -> Duration {
    now.duration_since(newest.since).unwrap_or_default()
}

fn max_behind(vault: &Vault) -> Duration {
    Duration::from_secs_f64(vault.max_behind_seconds.max(0.0))
}

/// Why the newest keyshare is neither in the vault nor with a backup service.
fn not_off_home(vault: &Vault, newest: &HomeKeyshare) -> String {
    let vault_part = match (&vault.location, &vault.last_error) {
        (None, _) => "no vault is configured (AGENT_KEYSHARE_VAULT is unset)".to_string(),
        (Some(location), Some(error)) => {
            format!("it is not in the vault {location}: {}", error.cause)
        }
        (Some(location), None) => format!("it is not in the vault {location} yet"),
    };
    let backup_part = match &vault.backup_service {
        None => "the node's metrics have not shown its backup service's epoch".to_string(),
        Some(gauges) => match (gauges.last_backup_served_epoch, gauges.current_epoch_id) {
            (None, _) => {
                "no backup service was served a keyset (mpc_last_backup_served_epoch is unset)"
                    .to_string()
            }
            (Some(served), current) => format!(
                "the backup service was last served epoch {served} (mpc_last_backup_served_epoch), behind epoch {}{}",
                newest.epoch,
                current
                    .map(|c| format!(" and mpc_current_epoch_id {c}"))
                    .unwrap_or_default()
            ),
        },
    };
    format!("{vault_part}; {backup_part}")
}

/// `watch.keyshare_epoch`: a participant's home should hold the contract's
/// keyset epoch; one newer on the contract than on the home for longer than
/// `max_behind` means the node has not committed the new epoch's share.
/// `ahead_for` is how long the contract has been ahead, when it is.
pub fn against_contract(
    keyset_epoch: Option<u64>,
    participant: bool,
    newest: Option<&HomeKeyshare>,
    ahead_for: Option<Duration>,
    max_behind: Duration,
) -> Check {
    let Some(epoch) = keyset_epoch else {
        return Check::skipped(
            AGAINST_CONTRACT,
            "the contract is not Running with a keyset this agent reads",
        );
    };
    if !participant {
        return Check::skipped(
            AGAINST_CONTRACT,
            format!(
                "the contract's keyset is at epoch {epoch}; this account is not in its participant set, so the home's keyshare does not follow it"
            ),
        );
    }
    let home = match newest {
        Some(n) if n.epoch >= epoch => {
            return Check::ok(
                AGAINST_CONTRACT,
                format!(
                    "the home's newest keyshare (permanent_keys/{}) is of the contract's keyset epoch {epoch}",
                    n.file
                ),
            );
        }
        Some(n) => format!("epoch {} (permanent_keys/{})", n.epoch, n.file),
        None => "none".to_string(),
    };
    let ahead_for = ahead_for.unwrap_or_default();
    if ahead_for <= max_behind {
        return Check::ok(
            AGAINST_CONTRACT,
            format!(
                "the contract's keyset is at epoch {epoch} and the home's newest keyshare is {home}, for {}: within AGENT_KEYSHARE_VAULT_MAX_BEHIND {}",
                seconds(ahead_for),
                seconds(max_behind)
            ),
        );
    }
    Check::warn(
        AGAINST_CONTRACT,
        format!(
            "the contract's keyset has been at epoch {epoch} for at least {} but the home's newest keyshare is {home}: the node has not committed the new epoch's share",
            seconds(ahead_for)
        ),
        "read the node's log for the resharing (the node must run, as a participant, to receive its share); a home restored from an older copy needs the newest keyshare back: agent vault restore from the vault, or a node migration through the backup service",
    )
}

/// `2.4s` under a minute, `600s` beyond.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(60) {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}s", duration.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use entrypoint::check::Status;

    use super::*;
    use crate::life::views::{KeysetGauges, VaultedObject};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn vault(location: Option<&str>) -> Vault {
        Vault {
            location: location.map(str::to_string),
            looked_at: at(0),
            newest: Some(HomeKeyshare {
                file: "epoch_4_with_1_domains".into(),
                epoch: 4,
                domains: 1,
                size: 200,
                sha256: "ab".repeat(32),
                since: at(0),
            }),
            vaulted: None,
            behind_seconds: 0.0,
            max_behind_seconds: 600.0,
            last_error: None,
            refused: Vec::new(),
            backup_service: None,
            off_home: Check::skipped(ID, "not judged"),
        }
    }

    fn gauges(current: Option<u64>, served: Option<u64>) -> Option<KeysetGauges> {
        Some(KeysetGauges {
            current_epoch_id: current,
            last_backup_served_epoch: served,
            scraped_at: at(0),
        })
    }

    #[test]
    fn only_the_home_past_the_max_behind_warns_with_both_fixes() {
        let alone = vault(None);
        let within = judge(&alone, at(599));
        assert_eq!(within.check.status, Status::Ok, "{:?}", within.check);
        assert_eq!(within.behind, Duration::from_secs(599));
        let past = judge(&alone, at(601));
        assert_eq!(past.check.status, Status::Warn);
        assert!(
            past.check
                .cause
                .starts_with("the keyshare of epoch 4 lives only on the home"),
            "{}",
            past.check.cause
        );
        let fix = past.check.fix.unwrap();
        assert!(fix.contains("AGENT_KEYSHARE_VAULT") && fix.contains("backup service"));
    }

    #[test]
    fn the_vault_or_a_backup_service_served_the_epoch_keeps_it_off_the_home() {
        let mut vaulted = vault(Some("s3://mpc-vault"));
        vaulted.vaulted = Some(VaultedObject {
            key: "node0/epoch_4_with_1_domains".into(),
            url: "s3://mpc-vault/node0/epoch_4_with_1_domains".into(),
            version_id: Some("v1".into()),
            at: at(1),
            sha256: "ab".repeat(32),
        });
        let judged = judge(&vaulted, at(10_000));
        assert_eq!(judged.check.status, Status::Ok);
        assert_eq!(judged.behind, Duration::ZERO);

        let mut served = vault(None);
        served.backup_service = gauges(Some(4), Some(4));
        assert_eq!(judge(&served, at(10_000)).check.status, Status::Ok);
        // Served an older epoch than the home's newest, or the node's current: not off the home.
        served.backup_service = gauges(Some(4), Some(3));
        let behind = judge(&served, at(10_000));
        assert_eq!(behind.check.status, Status::Warn);
        assert!(
            behind.check.cause.contains("last served epoch 3"),
            "{}",
            behind.check.cause
        );
        served.backup_service = gauges(Some(5), Some(4));
        assert_eq!(judge(&served, at(10_000)).check.status, Status::Warn);
    }

    #[test]
    fn warns_says_what_the_judgment_says_without_its_text() {
        let mut cases = vec![(vault(None), at(599)), (vault(None), at(601))];
        let mut none = vault(None);
        none.newest = None;
        cases.push((none, at(10_000)));
        let mut vaulted = vault(Some("s3://mpc-vault"));
        vaulted.vaulted = Some(VaultedObject {
            key: "node0/epoch_4_with_1_domains".into(),
            url: "s3://mpc-vault/node0/epoch_4_with_1_domains".into(),
            version_id: None,
            at: at(1),
            sha256: "ab".repeat(32),
        });
        cases.push((vaulted, at(10_000)));
        for (current, served) in [(4, 4), (4, 3), (5, 4)] {
            let mut judged = vault(None);
            judged.backup_service = gauges(Some(current), Some(served));
            cases.push((judged, at(10_000)));
        }
        for (vault, now) in &cases {
            assert_eq!(
                warns(vault, vault.backup_service.as_ref(), *now),
                judge(vault, *now).check.status == Status::Warn,
                "{vault:?} at {now:?}"
            );
        }
        assert!(
            cases
                .iter()
                .any(|(v, t)| warns(v, v.backup_service.as_ref(), *t))
        );
    }

    #[test]
    fn a_failing_vault_is_named_with_its_own_fix() {
        let mut failing = vault(Some("s3://mpc-vault"));
        failing.last_error = Some(Check::fail(
            "vault.upload",
            "bucket mpc-vault does not exist",
            "create the vault's bucket mpc-vault",
        ));
        let judged = judge(&failing, at(601)).check;
        assert!(
            judged.cause.contains("bucket mpc-vault does not exist"),
            "{}",
            judged.cause
        );
        assert!(
            judged
                .fix
                .unwrap()
                .starts_with("create the vault's bucket mpc-vault")
        );
    }

    #[test]
    fn a_contract_ahead_of_a_participants_home_warns_after_the_max_behind() {
        let home = vault(None).newest;
        let max = Duration::from_secs(600);
        let long = Some(Duration::from_secs(601));
        let check = |epoch, participant, ahead_for| {
            against_contract(Some(epoch), participant, home.as_ref(), ahead_for, max).status
        };
        assert_eq!(check(4, true, long), Status::Ok);
        assert_eq!(check(5, true, Some(Duration::from_secs(10))), Status::Ok);
        assert_eq!(check(5, true, long), Status::Warn);
        assert_eq!(check(5, false, long), Status::Skipped);
        let none = against_contract(Some(1), true, None, long, max);
        assert_eq!(none.status, Status::Warn);
        assert!(none.cause.contains("has not committed"), "{}", none.cause);
    }
}
