//! The chain watch: while the node runs, every `AGENT_CHAIN_WATCH`
//! (jittered) the keys it runs with are judged again by boot's own judgment
//! (the shared `verify::against_chain`: signer key and permission, allowance,
//! contract state, participant entry, the `secrets.json` rule), and the
//! account's available balance against `AGENT_MIN_BALANCE`, and the
//! contract's keyset against the home's newest keyshare. What got worse
//! than at boot becomes a reason on `/status`, a warning (a failure for the
//! signer key) on `/health`, a log line and a metric; it clears when the
//! chain heals. The node is never restarted for it: it may be mid-signature.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Instant, SystemTime};

use entrypoint::check::{Check, Status};
use entrypoint::clients::Clients;
use entrypoint::config::RunConfig;
use entrypoint::keys::{ContractFinding, ContractState, KeyReport, Standing, check_ids};
use entrypoint::secrets::NodeSecrets;
use entrypoint::stage::Stage;
use entrypoint::verify::{self, VerifyInputs};
use near_primitives::types::{AccountId, Balance};

use crate::every::{Every, Looping, Repeat};

use crate::life::off_home;
use crate::life::state::{KEY_GONE, State};
use crate::life::views::{Reason, Watch};

pub const BALANCE: &str = "watch.balance";

/// Watches the chain for the node running with `secrets`.
pub fn spawn(
    config: RunConfig,
    env: BTreeMap<String, String>,
    state: State,
    secrets: NodeSecrets,
    clients: Clients,
) -> Looping {
    let boot = state.stage_checks(Stage::Keys);
    Every::new(config.lifetime.chain_watch)
        .jittered(0.1)
        .spawn(ChainWatch {
            config,
            env,
            state,
            secrets,
            clients,
            previous: boot.clone(),
            boot,
            shown: Vec::new(),
            keyset_ahead_since: None,
        })
}

/// One pass of the watch every `AGENT_CHAIN_WATCH`, while a child runs.
struct ChainWatch {
    config: RunConfig,
    env: BTreeMap<String, String>,
    state: State,
    secrets: NodeSecrets,
    clients: Clients,
    /// The keys stage's checks at boot: what counts as worse.
    boot: Vec<Check>,
    previous: Vec<Check>,
    shown: Vec<Reason>,
    /// Since when the contract's keyset has been newer than the home's
    /// newest keyshare.
    keyset_ahead_since: Option<Instant>,
}

impl Repeat for ChainWatch {
    async fn once(&mut self) -> ControlFlow<()> {
        if self.state.child_pid().is_none() {
            return ControlFlow::Continue(());
        }
        let config = &self.config;
        let inputs = VerifyInputs::new(&config.node, &config.homes, &self.env, &self.clients);
        let verified = verify::against_chain(inputs, self.secrets.clone()).await;
        let account = &config.node.node.account_id;
        let (balance, available) =
            balance_check(&verified.keys, account, config.lifetime.min_balance);
        if let Some(available) = available {
            self.state
                .metrics()
                .account_balance_yocto
                .set(available.as_yoctonear() as f64);
        }
        let mut checks = verified.key_checks;
        if let Some(text) = entrypoint::keys::migration_concluded(&self.previous, &checks) {
            tracing::info!(check = check_ids::PARTICIPANT, "{text}");
        }
        self.previous.clone_from(&checks);
        checks.push(balance);
        checks.push(self.keyset_against_home(&verified.keys));
        let reasons = worse_than_boot(&checks, &self.boot);
        log_changes(&self.shown, &reasons);
        self.shown.clone_from(&reasons);
        self.state.set_watch(Watch {
            checked_at: SystemTime::now(),
            checks,
            reasons,
            available_balance: available.map(|b| b.as_yoctonear().to_string()),
        });
        ControlFlow::Continue(())
    }
}

impl ChainWatch {
    /// The contract's keyset epoch against the home's newest keyshare, as
    /// the vault loop last saw it.
    fn keyset_against_home(&mut self, keys: &KeyReport) -> Check {
        let on_chain = keys.on_chain.as_ref();
        // Running only: while resharing, the keyset stays the previous
        // epoch's, which a node joining in this resharing never held.
        let keyset_epoch = on_chain.and_then(|c| match &c.contract {
            ContractFinding::State {
                state: state @ ContractState::Running { .. },
            } => state.keyset().map(|k| k.epoch_id),
            _ => None,
        });
        let participant =
            on_chain.is_some_and(|c| matches!(c.standing, Some(Standing::Member { .. })));
        let Some(newest) = self.state.newest_keyshare() else {
            return Check::skipped(
                off_home::AGAINST_CONTRACT,
                "the home's keyshares have not been looked at yet",
            );
        };
        let newest = newest.as_ref();
        let ahead =
            participant && keyset_epoch.is_some_and(|epoch| newest.is_none_or(|n| n.epoch < epoch));
        if !ahead {
            self.keyset_ahead_since = None;
        } else {
            self.keyset_ahead_since.get_or_insert_with(Instant::now);
        }
        off_home::against_contract(
            keyset_epoch,
            participant,
            newest,
            self.keyset_ahead_since.map(|since| since.elapsed()),
            self.config.keyshares.max_behind,
        )
    }
}

/// The account's available balance against the minimum, and the balance.
fn balance_check(
    report: &KeyReport,
    account: &AccountId,
    min: Balance,
) -> (Check, Option<Balance>) {
    let Some(balance) = report.on_chain.as_ref().and_then(|c| c.account) else {
        return (
            Check::skipped(BALANCE, "not checked: the account was not read"),
            None,
        );
    };
    let available = balance.available();
    let shown = format!(
        "account {account} has {} available ({} yoctoNEAR)",
        available.exact_amount_display(),
        available.as_yoctonear()
    );
    let check = if available < min {
        Check::warn(
            BALANCE,
            format!(
                "{shown}, below AGENT_MIN_BALANCE {}: the node's transactions pay their gas from it and start failing when it runs out",
                min.exact_amount_display()
            ),
            format!("send NEAR to {account}"),
        )
    } else {
        Check::ok(
            BALANCE,
            format!(
                "{shown}, at least AGENT_MIN_BALANCE {}",
                min.exact_amount_display()
            ),
        )
    };
    (check, Some(available))
}

/// A reason for every check that warns or fails where boot's did not (or
/// less): what changed on chain since the node started.
fn worse_than_boot(checks: &[Check], boot: &[Check]) -> Vec<Reason> {
    checks
        .iter()
        .filter(|check| {
            let before = boot
                .iter()
                .find(|b| b.id == check.id)
                .map_or(0, |b| b.status.severity());
            check.status.severity() > before
        })
        .map(|check| {
            let kind = if check.id == check_ids::ACCESS_KEY && check.status == Status::Fail {
                KEY_GONE.to_string()
            } else {
                format!("watch.{}", check.id.trim_start_matches("watch."))
            };
            Reason::new(kind, check.cause.clone(), check.fix.clone())
        })
        .collect()
}

/// One line per reason that appears, one per reason that clears.
fn log_changes(before: &[Reason], now: &[Reason]) {
    for reason in now {
        if !before.iter().any(|r| r.kind == reason.kind) {
            tracing::warn!(kind = %reason.kind, cause = %reason.cause, fix = reason.fix.as_deref().unwrap_or(""), "the chain watch found a change; the node keeps running");
        }
    }
    for reason in before {
        if !now.iter().any(|r| r.kind == reason.kind) {
            tracing::info!(kind = %reason.kind, "the chain watch: healed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_got_worse_than_at_boot_is_a_reason() {
        let boot = vec![
            Check::ok(check_ids::ACCESS_KEY, "the key is there"),
            Check::warn(check_ids::PARTICIPANT, "not yet a participant", "wait"),
        ];
        let now = vec![
            Check::fail(check_ids::ACCESS_KEY, "the key is gone", "add it back"),
            Check::warn(check_ids::PARTICIPANT, "not yet a participant", "wait"),
            Check::warn(BALANCE, "low", "send NEAR"),
        ];
        let reasons = worse_than_boot(&now, &boot);
        let kinds: Vec<&str> = reasons.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, [KEY_GONE, "watch.balance"]);
        assert!(worse_than_boot(&boot, &boot).is_empty(), "healed: none");
    }
}
