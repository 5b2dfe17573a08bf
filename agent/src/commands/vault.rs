//! `agent vault restore` and `agent vault verify`: a lost home brought back
//! from the keyshare vault in one command, and the drill that shows each
//! week that it would be. Both run the config and secrets stages as `agent
//! run` does and read the contract's state while the backup downloads, then
//! judge the backup by the library's one judgment (`entrypoint::restore`).
//! `restore` writes it onto the home under the home's lock; `verify` takes
//! no lock and never touches the home.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use entrypoint::check::{Check, Status, worst};
use entrypoint::clients::Clients;
use entrypoint::config::settings::Id;
use entrypoint::config::{Layers, VaultConfig};
use entrypoint::homes::restore::{self as home_restore, RestoreError, RestoreOutcome, Restored};
use entrypoint::homes::runner::{off_thread, on_own_thread};
use entrypoint::homes::{self, HomeError, HomeInputs, Keep, Look, Stall, WriteTest, lock};
use entrypoint::keys::{self, ChainQuery, KeyReport, KeysInput};
use entrypoint::restore::{self, Against, Backup, Choice, Fetched};
use entrypoint::secrets;
use entrypoint::stage::StageResult;
use entrypoint::vault::Vault;

use crate::emf;
use crate::life::views::{BackupView, VaultReport};
use crate::{exit, logging, process, render};

/// The check naming another agent that holds the home.
const LOCK: &str = "restore.lock";

/// Which backup the operator asked for.
pub enum Requested {
    Newest,
    Epoch(u64),
    /// `--object`: a key, an `s3://` URL or a file name.
    Object(String),
}

pub enum Action {
    Restore {
        choice: Requested,
        allow_stale: bool,
    },
    Verify,
}

pub struct Options {
    pub action: Action,
    pub json: bool,
}

pub fn main(layers: Layers, options: Options) -> i32 {
    let (config, runtime) =
        match process::begin(&layers, VaultConfig::resolve, logging::Output::Stderr) {
            Ok(begun) => begun,
            Err(code) => return code,
        };
    let report = runtime.block_on(run(&config, &layers.env, &options.action));
    log(&report);
    if let (Action::Verify, Some(cloudwatch)) = (&options.action, &config.cloudwatch) {
        // The drill's verdict, for the stack's alarm: a line of the agent's log.
        let failed = emf::VAULT_DRILL_FAILED.at(if report.ok { 0.0 } else { 1.0 });
        eprintln!(
            "{}",
            emf::line(
                &cloudwatch.namespace,
                &cloudwatch.node,
                &[failed],
                SystemTime::now()
            )
        );
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        print(&report, &config);
    }
    report.exit_code
}

async fn run(config: &VaultConfig, env: &BTreeMap<String, String>, action: &Action) -> VaultReport {
    let clients = Clients::new();
    let vault = Vault::open(&clients, env, &config.vault, &config.node.node).await;
    let (requested, allow_stale, command) = match action {
        Action::Restore {
            choice,
            allow_stale,
        } => (choice, *allow_stale, "restore"),
        Action::Verify => (&Requested::Newest, false, "verify"),
    };
    let mut report = VaultReport {
        command: command.into(),
        ok: false,
        exit_code: exit::UNHEALTHY,
        backup: None,
        restored: None,
        checks: Vec::new(),
    };
    let choice = match requested {
        Requested::Newest => Choice::Newest,
        Requested::Epoch(epoch) => Choice::Epoch(*epoch),
        Requested::Object(object) => match Choice::object(&vault, object) {
            Ok(choice) => choice,
            Err(rule) => {
                report
                    .checks
                    .push(Check::fail(restore::check_ids::BACKUP, rule.rule, rule.fix));
                report.exit_code = exit::USAGE;
                return report;
            }
        },
    };
    let node = &config.node;
    let home = node.node.home_dir.clone();
    let limit = config.homes.io_timeout;
    // One round: the home looked at (restore), the secrets fetched, the
    // chain read and the backup downloaded, all at once.
    let preflight = async move {
        match action {
            Action::Restore { .. } => Some(
                off_thread(
                    limit,
                    "looking at the home (its lock, key, permanent_keys/)",
                    move || look_before_lock(&home),
                )
                .await,
            ),
            Action::Verify => None,
        }
    };
    let query = ChainQuery::of(&node.node);
    let (preflight, secrets, reading, fetched) = tokio::join!(
        preflight,
        secrets::load(&node.secrets, env, &clients),
        keys::read(&node.chain_rpc, &query, &clients),
        restore::fetch(&vault, choice)
    );
    let secrets = match secrets {
        Ok(staged) => {
            report.checks.extend(staged.checks);
            staged.value
        }
        Err(stop) => {
            report.checks.extend(stop.into_checks());
            report.checks.push(Check::skipped(
                restore::check_ids::BACKUP,
                "not judged: the secrets are not valid",
            ));
            return report;
        }
    };
    let keys = KeyReport::new(KeysInput::new(&node.node, &secrets), reading);
    let against = Against {
        store_key: secrets.store_key.as_ref(),
        keys: &keys,
        allow_stale,
    };
    let judged = judged(fetched, &against);
    let backup = match judged {
        Ok((backup, checks)) => {
            report.checks.extend(checks);
            report.backup = Some(BackupView::of(&backup));
            Some(backup)
        }
        Err(checks) => {
            report.checks.extend(checks);
            None
        }
    };
    let Some(preflight) = preflight else {
        report.ok = backup.is_some();
        report.exit_code = if report.ok { 0 } else { exit::UNHEALTHY };
        return report;
    };
    let seen = match preflight {
        Ok(Ok(seen)) => seen,
        Ok(Err(refused)) => return refused_home(report, refused),
        Err(stall) => return stalled(report, config, &stall),
    };
    let Some(backup) = backup else {
        // Nothing to write; say also what the home holds, if it would refuse.
        if let Some(occupied) = seen.occupied() {
            report.checks.push(occupied.check());
        }
        return report;
    };
    if let Err(e) =
        home_restore::to_do(&node.node.home_dir, &seen.look, backup.name, &backup.sha256)
    {
        report.checks.push(e.check());
        return report;
    }
    write(report, config, env, backup).await
}

/// The judgment's backup and checks, or its checks when it took none.
fn judged(fetched: Fetched, against: &Against<'_>) -> Result<(Backup, Vec<Check>), Vec<Check>> {
    let result: StageResult<Backup> = restore::judge(fetched, against);
    match result {
        Ok(staged) => Ok((staged.value, staged.checks)),
        Err(stop) => Err(stop.into_checks()),
    }
}

/// The home before the lock, read-only: its keyshares and who holds it.
struct Preflight {
    look: Look,
    home: std::path::PathBuf,
}

impl Preflight {
    /// The refusal an occupied home makes, whatever the backup.
    fn occupied(&self) -> Option<RestoreError> {
        let found = home_restore::found(&self.look);
        (!found.is_empty()).then(|| RestoreError::Occupied {
            home: self.home.clone(),
            found,
        })
    }
}

/// Why the home refuses before anything is written.
enum Refused {
    /// Another agent holds its lock.
    Held(Option<lock::Holder>),
    Home(HomeError),
}

fn look_before_lock(home: &std::path::Path) -> Result<Preflight, Refused> {
    if lock::is_held(home).map_err(Refused::Home)? {
        return Err(Refused::Held(lock::read_holder(home).ok().flatten()));
    }
    let look = homes::look(home, Keep::Digests).map_err(Refused::Home)?;
    Ok(Preflight {
        look,
        home: home.to_path_buf(),
    })
}

/// `restore.lock`: a running agent holds the home.
fn held(holder: Option<&lock::Holder>) -> Check {
    let who = holder.map_or_else(
        || "an agent that left no holder record".to_string(),
        ToString::to_string,
    );
    Check::fail(
        LOCK,
        format!(
            "the home's lock is held by {who}: an agent runs a node on this home, and a restore goes only onto a home no agent runs"
        ),
        "stop that task first (ECS: set the service's desired count to 0 and wait for the task to stop), then run agent vault restore again",
    )
    .with_detail(serde_json::json!({ "holder": holder }))
}

fn refused_home(mut report: VaultReport, refused: Refused) -> VaultReport {
    match refused {
        Refused::Held(holder) => {
            report.checks.push(held(holder.as_ref()));
            report.exit_code = exit::TEMPFAIL;
        }
        Refused::Home(e) => report.checks.push(e.check()),
    }
    report
}

fn stalled(mut report: VaultReport, config: &VaultConfig, stall: &Stall) -> VaultReport {
    report.checks.push(stall.check(
        &config.node.node.home_dir,
        config.homes.io_timeout,
        Id::HomeIoTimeout.name(),
    ));
    report.exit_code = exit::IOERR;
    report
}

/// What the write on its thread came to.
enum Wrote {
    Restored(Vec<Check>, Restored),
    Refused(Vec<Check>, i32),
}

/// The home inspected as `agent run` inspects it, locked (refused at once
/// when another agent holds it), and the backup written under the lock.
async fn write(
    mut report: VaultReport,
    config: &VaultConfig,
    env: &BTreeMap<String, String>,
    backup: Backup,
) -> VaultReport {
    let limit = config.homes.io_timeout;
    let (owned, env) = (config.clone(), env.clone());
    let (name, bytes) = (backup.name, backup.bytes.clone());
    let wrote = on_own_thread(limit, move |io| async move {
        let node = &owned.node;
        let inputs = HomeInputs {
            node: &node.node,
            homes: &owned.homes,
            secrets: &node.secrets,
            efs_file_system_id: None,
            env: &env,
            io: io.clone(),
        };
        let inspection = match homes::inspect(&inputs, WriteTest::Probe).await {
            Ok(inspection) => inspection,
            Err(stop) => return Wrote::Refused(stop.into_checks(), exit::UNHEALTHY),
        };
        let mut checks = inspection.checks;
        let taken = lock::acquire(
            &node.node.home_dir,
            lock::Holder::this_process(),
            Some(Duration::ZERO),
            &inspection.user,
            &io,
            |_| {},
        )
        .await;
        let lock = match taken {
            Ok(lock) => lock,
            Err(HomeError::LockTimeout { holder, .. }) => {
                checks.push(held(holder.as_ref()));
                return Wrote::Refused(checks, exit::TEMPFAIL);
            }
            Err(e) => {
                checks.push(e.check());
                return Wrote::Refused(checks, exit::UNHEALTHY);
            }
        };
        io.start("restoring the keyshare (permanent_keys/, key)");
        let written = home_restore::write(&lock, name, &bytes, &inspection.user);
        io.stop();
        match written {
            Ok(restored) => Wrote::Restored(checks, restored),
            Err(e) => {
                checks.push(e.check());
                Wrote::Refused(checks, exit::UNHEALTHY)
            }
        }
    })
    .await;
    match wrote {
        Ok(Wrote::Restored(checks, restored)) => {
            report.checks.extend(checks);
            report.checks.push(restored.check());
            report.restored = Some(restored);
            report.ok = true;
            report.exit_code = 0;
        }
        Ok(Wrote::Refused(checks, code)) => {
            report.checks.extend(checks);
            report.exit_code = code;
        }
        Err(stall) => return stalled(report, config, &stall),
    }
    report
}

/// One log line with the verdict: the drill's result in the task's log.
fn log(report: &VaultReport) {
    let failed = report.checks.iter().find(|c| c.status == Status::Fail);
    let from = report.backup.as_ref().map_or("", |b| b.url.as_str());
    match (report.command.as_str(), failed) {
        ("verify", None) => {
            tracing::info!(
                backup = from,
                "the restore drill passed: the vault's newest backup would restore this node"
            )
        }
        ("verify", Some(failed)) => {
            tracing::error!(check = %failed.id, cause = %failed.cause, fix = failed.fix.as_deref().unwrap_or(""), "the restore drill failed")
        }
        (_, None) => {
            tracing::info!(backup = from, "the keyshare is restored onto the home")
        }
        (_, Some(failed)) => {
            tracing::error!(check = %failed.id, cause = %failed.cause, fix = failed.fix.as_deref().unwrap_or(""), exit_code = report.exit_code, "nothing restored")
        }
    }
}

/// Where a check is shown: the secrets, the vault's backup, the home.
fn section(check: &Check) -> &'static str {
    let id = check.id.as_str();
    if id.starts_with("secrets") {
        "secrets"
    } else if id.starts_with("homes.")
        || [
            LOCK,
            home_restore::check_ids::HOME,
            home_restore::check_ids::WRITE,
        ]
        .contains(&id)
    {
        "home"
    } else {
        "vault"
    }
}

/// The report for a person: the checks as doctor shows them, then one line.
fn print(report: &VaultReport, config: &VaultConfig) {
    let mut first = true;
    for title in ["secrets", "vault", "home"] {
        let checks: Vec<Check> = report
            .checks
            .iter()
            .filter(|c| section(c) == title)
            .cloned()
            .collect();
        if checks.is_empty() {
            continue;
        }
        if !first {
            println!();
        }
        first = false;
        render::print_section(title, &checks);
    }
    render::print_problems(&report.checks);
    println!("\n{}", summary(report, config));
}

fn summary(report: &VaultReport, config: &VaultConfig) -> String {
    let home = config.node.node.home_dir.display();
    let reason = || {
        report
            .checks
            .iter()
            .find(|c| c.status == Status::Fail)
            .map_or_else(|| "see the checks above".to_string(), |c| c.cause.clone())
    };
    match (report.command.as_str(), &report.backup, &report.restored) {
        ("verify", Some(backup), _) if report.ok => format!(
            "the drill passed: {} (epoch {}) would restore this node",
            backup.url, backup.epoch
        ),
        ("verify", ..) => format!("the drill failed: {}", reason()),
        (_, Some(backup), Some(restored)) => match restored.outcome {
            RestoreOutcome::AlreadyThere => format!(
                "{home} already holds epoch {} from {}: nothing written",
                backup.epoch, backup.url
            ),
            RestoreOutcome::Written | RestoreOutcome::Finished => format!(
                "restored epoch {} from {} onto {home}: agent run starts the node with it",
                backup.epoch, backup.url
            ),
        },
        _ => format!(
            "nothing restored ({}): {}",
            match worst(&report.checks) {
                Status::Fail => "refused",
                _ => "stopped",
            },
            reason()
        ),
    }
}
