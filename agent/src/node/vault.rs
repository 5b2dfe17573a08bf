//! The vault loop of `agent run`: from the boot's home stage on, across the
//! node's restarts and rotations, one look at the home's `permanent_keys/`
//! every `AGENT_KEYSHARE_VAULT_INTERVAL` (on a thread of its own, under
//! `AGENT_HOME_IO_TIMEOUT`), and each complete keyshare the vault lacks
//! uploaded as the node's own sealed bytes: never decrypted, never over
//! other bytes. What it has vaulted it remembers, and a look reads only the
//! files whose `stat` moved, so a steady home costs a listing, a `stat` per
//! file and no S3 call; a failure is tried again on a later look, with a
//! backoff. Without a vault it still looks, for the off-home judgment. Its
//! record is `/status.vault`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use entrypoint::check::Check;
use entrypoint::clients::Clients;
use entrypoint::config::settings::Id;
use entrypoint::config::{KeyshareWatch, RunConfig};
use entrypoint::homes::{self, Keep, KeyLink, KeyshareFile, Look, Stall, runner};
use entrypoint::keyshare::KeyshareName;
use entrypoint::vault::{UploadOutcome, Vault};

use crate::every::{Every, Looping, Repeat};
use crate::life::metrics::UploadLabels;
use crate::life::off_home;
use crate::life::state::State;
use crate::life::views::{self, HomeKeyshare, RefusedEntry, VaultedObject};

/// The check a failed upload, or a keyshare changed under its vaulted name, is.
pub const UPLOAD: &str = "vault.upload";

/// A file no look found linked is taken once unchanged for this long: the
/// node writes a keyshare in one piece and links `key` to it at once, so
/// only a node stopped between the two leaves one so.
const QUIET: Duration = Duration::from_secs(10);
/// The longest wait between tries of a failing upload.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What the loop looks at and where it copies to.
pub struct Settings {
    pub home: PathBuf,
    pub io_timeout: Duration,
    pub watch: KeyshareWatch,
    /// `None`: no vault configured; the loop only looks.
    pub vault: Option<Vault>,
}

impl Settings {
    /// `agent run`'s: the node's home, and the vault on the process's one S3 client.
    pub async fn of(
        config: &RunConfig,
        env: &BTreeMap<String, String>,
        clients: &Clients,
    ) -> Settings {
        let vault = match &config.vault {
            Some(settings) => Some(Vault::open(clients, env, settings, &config.node.node).await),
            None => None,
        };
        Settings {
            home: config.node.node.home_dir.clone(),
            io_timeout: config.homes.io_timeout,
            watch: config.keyshares,
            vault,
        }
    }
}

/// Looks at once, then every interval, until the handle is dropped.
pub fn spawn(settings: Settings, state: State) -> Looping {
    let retry_cap = (settings.watch.max_behind / 4)
        .min(MAX_RETRY)
        .max(settings.watch.interval);
    Every::new(settings.watch.interval)
        .starting_now()
        .spawn(VaultLoop {
            settings,
            state,
            previous: None,
            vaulted: BTreeMap::new(),
            retry: Retry {
                failures: 0,
                not_before: None,
                cap: retry_cap,
            },
            last_error: None,
            reported: BTreeSet::new(),
            looking: Arc::default(),
        })
}

struct VaultLoop {
    settings: Settings,
    state: State,
    /// The last look that succeeded.
    previous: Option<Look>,
    /// What this agent has seen in the vault, by file.
    vaulted: BTreeMap<KeyshareName, Vaulted>,
    retry: Retry,
    last_error: Option<Check>,
    /// What was logged once: refused entries, changed files.
    reported: BTreeSet<String>,
    /// A look's thread is still in the file system: a hung mount is not
    /// given one more thread each interval.
    looking: Arc<AtomicBool>,
}

struct Vaulted {
    sha256: String,
    object: VaultedObject,
}

/// When a failed upload is tried again: the interval, doubling, up to a
/// quarter of the max-behind (so a fix shows well within it) and at most
/// [`MAX_RETRY`].
struct Retry {
    failures: u32,
    not_before: Option<Instant>,
    cap: Duration,
}

impl Retry {
    fn due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant, interval: Duration) {
        let delay = interval
            .saturating_mul(1 << self.failures.min(16))
            .min(self.cap);
        self.failures += 1;
        self.not_before = Some(now + delay);
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }
}

impl Repeat for VaultLoop {
    async fn once(&mut self) -> ControlFlow<()> {
        let look = match self.look(Keep::Digests).await {
            Ok(look) => look,
            Err(check) => {
                if self.last_error.as_ref().map(|c| &c.cause) != Some(&check.cause) {
                    tracing::warn!(check = %check.id, cause = %check.cause, "the home's keyshares could not be looked at; trying again at each look");
                }
                self.last_error = Some(check);
                self.publish();
                return ControlFlow::Continue(());
            }
        };
        self.note_refused(&look);
        let complete = complete(&look, self.previous.as_ref(), SystemTime::now());
        let mut pending = Vec::new();
        let mut failed = None;
        for file in complete.iter().rev() {
            match self.vaulted.get(&file.name) {
                Some(v) if v.sha256 == file.sha256 => {}
                Some(v) => failed = Some(changed_since_vaulted(&mut self.reported, file, v)),
                None => pending.push((file.name, file.sha256.clone())),
            }
        }
        // Files still being written, or not yet linked, wait for a later look.
        let waiting = complete.len() < look.files.len();
        self.previous = Some(look);
        if let Some(vault) = self.settings.vault.clone()
            && !pending.is_empty()
        {
            if self.retry.due(Instant::now()) {
                if let Err(check) = self.upload(&vault, &pending).await {
                    failed = Some(check);
                }
            } else if failed.is_none() {
                failed = self.last_error.clone();
            }
        }
        let pending_left = self.settings.vault.is_some()
            && pending
                .iter()
                .any(|(name, _)| !self.vaulted.contains_key(name));
        match failed {
            Some(check) => self.last_error = Some(check),
            None if !pending_left && !waiting => self.last_error = None,
            None => {}
        }
        self.publish();
        ControlFlow::Continue(())
    }
}

impl VaultLoop {
    /// One look at the home, on its own thread, within `AGENT_HOME_IO_TIMEOUT`.
    /// While a stalled look's thread has not returned, no other is started.
    async fn look(&self, keep: Keep) -> Result<Look, Check> {
        let home = self.settings.home.clone();
        let limit = self.settings.io_timeout;
        let doing = "looking at permanent_keys/";
        if self.looking.swap(true, Ordering::AcqRel) {
            let stall = Stall {
                doing: format!("{doing} (the last look has not returned)"),
                waited: limit,
            };
            return Err(stall.check(&home, limit, Id::HomeIoTimeout.name()));
        }
        let looking = self.looking.clone();
        // Digests again: only the files whose stat moved are read.
        let previous = self.previous.clone().filter(|_| keep == Keep::Digests);
        let looked = runner::off_thread(limit, doing, move || {
            let look = match &previous {
                Some(previous) => homes::look_again(&home, previous),
                None => homes::look(&home, keep),
            };
            looking.store(false, Ordering::Release);
            look
        })
        .await;
        match looked {
            Ok(Ok(look)) => Ok(look),
            Ok(Err(e)) => Err(e.check()),
            Err(stall) => Err(stall.check(&self.settings.home, limit, Id::HomeIoTimeout.name())),
        }
    }

    /// Uploads `pending` (newest first) with the bytes of a second look,
    /// each only if it still has the digest judged complete; stops at the
    /// first failure.
    async fn upload(
        &mut self,
        vault: &Vault,
        pending: &[(KeyshareName, String)],
    ) -> Result<(), Check> {
        let with_bytes = self.look(Keep::Bytes).await?;
        for (name, sha256) in pending {
            let Some(file) = with_bytes.file(*name) else {
                continue;
            };
            let Some(bytes) = file.bytes.as_deref().filter(|_| &file.sha256 == sha256) else {
                // Changed since the look that judged it complete: the next
                // look reads every file again and sees.
                self.previous = None;
                continue;
            };
            let object = vault.object_key(*name);
            let url = vault.target().location.url_of(&object);
            match vault.upload(*name, bytes).await {
                Ok(upload) => {
                    let result = match upload.outcome {
                        UploadOutcome::Stored => "stored",
                        UploadOutcome::AlreadyThere => "already-there",
                    };
                    self.count(result);
                    tracing::info!(
                        file = %name,
                        object = %url,
                        version_id = upload.version_id.as_deref().unwrap_or("none"),
                        sha256 = %upload.sha256,
                        result,
                        "keyshare in the vault: {name} at {url} ({result})"
                    );
                    self.vaulted.insert(
                        *name,
                        Vaulted {
                            sha256: upload.sha256.clone(),
                            object: VaultedObject {
                                key: upload.key,
                                url,
                                version_id: upload.version_id,
                                at: upload.at,
                                sha256: upload.sha256,
                            },
                        },
                    );
                    if let Some(epoch) = self.vaulted.keys().map(|n| n.epoch).max() {
                        self.state
                            .metrics()
                            .keyshare_vault_epoch
                            .set(epoch.min(i64::MAX as u64) as i64);
                    }
                }
                Err(e) => {
                    self.count("failed");
                    self.retry
                        .failed(Instant::now(), self.settings.watch.interval);
                    tracing::warn!(
                        file = %name,
                        object = %url,
                        kind = ?e.kind,
                        cause = %e.cause,
                        fix = %e.fix,
                        retry_in_s = self.retry.not_before.map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64()),
                        "a keyshare could not be put in the vault; it stays on the home and is tried again"
                    );
                    return Err(e.check(UPLOAD).with_detail(serde_json::json!({
                        "kind": e.kind,
                        "file": name.to_string(),
                        "object": url,
                        "at": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                    })));
                }
            }
        }
        self.retry.succeeded();
        Ok(())
    }

    /// One warning per entry of `permanent_keys/` that is not read.
    fn note_refused(&mut self, look: &Look) {
        for refused in &look.refused {
            if self
                .reported
                .insert(format!("refused {}", refused.path.display()))
            {
                tracing::warn!(path = %refused.path.display(), reason = %refused.reason, "an entry under permanent_keys/ is not read and not vaulted");
            }
        }
    }

    fn count(&self, result: &'static str) {
        self.state
            .metrics()
            .keyshare_vault_uploads
            .get_or_create(&UploadLabels { result })
            .inc();
    }

    /// The latest look (the last one that succeeded) and the latest failure,
    /// for `/status.vault`; the state judges it when it is read.
    fn publish(&self) {
        let look = self.previous.as_ref();
        let newest = look.and_then(Look::newest);
        let now = SystemTime::now();
        self.state.set_vault(views::Vault {
            location: self
                .settings
                .vault
                .as_ref()
                .map(|v| v.target().location.to_string()),
            looked_at: now,
            newest: newest.map(|file| HomeKeyshare::of(file, now)),
            vaulted: newest.and_then(|file| {
                self.vaulted
                    .get(&file.name)
                    .filter(|v| v.sha256 == file.sha256)
                    .map(|v| v.object.clone())
            }),
            behind_seconds: 0.0,
            max_behind_seconds: self.settings.watch.max_behind.as_secs_f64(),
            last_error: self.last_error.clone(),
            refused: look
                .map(|l| {
                    l.refused
                        .iter()
                        .map(|r| RefusedEntry {
                            path: r.path.clone(),
                            reason: r.reason.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            backup_service: None,
            off_home: Check::skipped(off_home::ID, "judged when read"),
        });
    }
}

/// A file whose bytes are not those this agent vaulted under its name:
/// reported, never uploaded over the vault's copy.
fn changed_since_vaulted(
    reported: &mut BTreeSet<String>,
    file: &KeyshareFile,
    vaulted: &Vaulted,
) -> Check {
    let cause = format!(
        "permanent_keys/{} changed on the home after it was vaulted: its SHA-256 is now {}, the vault's copy {} (version {}) holds {}; the vault's copy is kept, never overwritten",
        file.name,
        file.sha256,
        vaulted.object.url,
        vaulted.object.version_id.as_deref().unwrap_or("none"),
        vaulted.sha256
    );
    let fix = "the node writes a keyshare file once: find out what rewrote it (another node on this home, a restore from elsewhere) and keep both copies until you know which one the network holds";
    if reported.insert(format!("changed {} {}", file.name, file.sha256)) {
        tracing::warn!(file = %file.name, cause, fix, "a vaulted keyshare changed on the home");
    }
    Check::fail(UPLOAD, cause, fix).with_detail(serde_json::json!({
        "kind": "conflict",
        "file": file.name.to_string(),
        "object": vaulted.object.url,
    }))
}

/// The files of `look` the node has finished writing, oldest first: those
/// `key` links to, or older than the one it links to (the node links `key`
/// only after writing and syncing the file); and any other that two looks
/// found the same and that has not changed for [`QUIET`] (a node stopped
/// between writing and linking). A file still growing, or not yet linked,
/// waits; a moment without `key` is no error.
fn complete<'a>(look: &'a Look, previous: Option<&Look>, now: SystemTime) -> Vec<&'a KeyshareFile> {
    let linked = match look.key {
        KeyLink::Linked(name) => Some(name),
        KeyLink::Absent | KeyLink::Other => None,
    };
    let settled = previous.map(|p| look.settled(p)).unwrap_or_default();
    look.files
        .iter()
        .filter(|f| {
            linked.is_some_and(|linked| f.name <= linked)
                || (settled.iter().any(|s| s.name == f.name)
                    && now.duration_since(f.modified).unwrap_or_default() >= QUIET)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_upload_is_tried_again_later_each_time_up_to_the_cap() {
        let interval = Duration::from_secs(2);
        let mut retry = Retry {
            failures: 0,
            not_before: None,
            cap: Duration::from_secs(150),
        };
        let start = Instant::now();
        assert!(retry.due(start));
        let mut waits = Vec::new();
        for _ in 0..10 {
            retry.failed(start, interval);
            let next = retry.not_before.unwrap();
            assert!(!retry.due(start));
            assert!(retry.due(next));
            waits.push((next - start).as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 150, 150, 150]);
        retry.succeeded();
        assert!(retry.due(start));
        retry.failed(start, interval);
        assert_eq!(retry.not_before.unwrap() - start, interval);
    }
}
