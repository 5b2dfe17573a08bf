//! The one judgment of a keyshare backup in the vault, for every caller:
//! `agent vault restore`, `agent vault verify` (the weekly drill), `agent
//! doctor --drill` and the self-healing boot of `agent run` and `agent init`
//! ([`heal`]). Which backup (the newest by epoch then domains, or the one
//! named), downloaded with its checksum checked ([`fetch`]); opened under
//! `MPC_SECRET_STORE_KEY` as the node opens `<home>/key`, and its epoch and
//! key ids judged against the contract's keyset ([`judge`]). The checks take
//! a stage's one shape: a stop only from a failed check. Nothing here writes
//! the home: [`crate::homes::restore`] does, under the lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use near_crypto::PublicKey;
use serde_json::json;
use zeroize::Zeroizing;

use crate::check::{Check, Rule};
use crate::clients::Clients;
use crate::config::{Node, RestorePolicy, VaultSettings};
use crate::homes::restore::{self as write, RestoreError, Restored};
use crate::homes::runner::{Stall, off_thread};
use crate::homes::{HomeError, HomeLock, Keep, Look, NodeUser, look};
use crate::keys::{ContractFinding, ContractState, KeyReport, Keyset, check_ids as keys_ids};
use crate::keyshare::{self, ContentsError, KeyshareContents, KeyshareName, OpenError};
use crate::secrets::Secret;
use crate::stage::{Stage, StageResult, StageStop, Staged, StopKind};
use crate::vault::{Download, Vault, VaultError, VaultErrorKind, VaultObject};

/// The ids of the judgment's checks, in the order [`judge`] makes them.
pub mod check_ids {
    /// Which backup, and what the vault holds.
    pub const BACKUP: &str = "restore.backup";
    /// Its bytes against the SHA-256 recorded with it.
    pub const DOWNLOAD: &str = "restore.download";
    /// Opened under the store key, and what its plaintext says it is.
    pub const STORE_KEY: &str = "restore.store_key";
    /// Its epoch against the contract's keyset.
    pub const EPOCH: &str = "restore.epoch";
    /// Each domain's attempt against the contract's.
    pub const ATTEMPTS: &str = "restore.attempts";
    /// The account among the keyset's participants.
    pub const PARTICIPANT: &str = "restore.participant";
    /// The home stage's verdict on a home without a keyshare ([`super::heal`]).
    pub const KEYSHARE: &str = "homes.keyshare";
}
use check_ids::*;

/// How long the boot waits for the vault's backup before it starts the node
/// without it (the gap named).
const BOOT_FETCH_LIMIT: Duration = Duration::from_secs(30);

/// Which backup to judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The newest: the highest epoch, then the most domains.
    Newest,
    /// The newest of this epoch (`--epoch`).
    Epoch(u64),
    /// This one (`--object`; the boot's, named by the contract's keyset).
    Named(KeyshareName),
}

impl Choice {
    /// `--object`: the object's key as the vault names it
    /// (`PREFIX/<account>/epoch_<E>_with_<D>_domains`), its `s3://` URL, or
    /// the file name alone.
    pub fn object(vault: &Vault, object: &str) -> Result<Choice, Rule> {
        let target = vault.target();
        let folder = target.location.account_prefix(&target.account);
        let bucket = format!("s3://{}/", target.location.bucket);
        let key = object.strip_prefix(&bucket).unwrap_or(object);
        let file = key.strip_prefix(&folder).unwrap_or(key);
        KeyshareName::parse(file).map(Choice::Named).ok_or_else(|| {
            Rule::new(
                format!(
                    "--object {object} is not a keyshare of {} in {}",
                    target.account, target.location
                ),
                format!(
                    "name an object of {}{folder} (…/epoch_<E>_with_<D>_domains), or its file name",
                    bucket
                ),
            )
        })
    }

    /// The newest of `names` (sorted oldest first) this choice takes.
    fn pick(self, names: &[KeyshareName]) -> Option<KeyshareName> {
        match self {
            Choice::Newest => names.last().copied(),
            Choice::Epoch(epoch) => names.iter().rev().find(|n| n.epoch == epoch).copied(),
            Choice::Named(name) => names.contains(&name).then_some(name),
        }
    }
}

/// The backup as the vault gave it: what it holds of the account (when it
/// was listed), the one chosen, and that one downloaded.
pub struct Fetched {
    pub choice: Choice,
    /// `s3://BUCKET/PREFIX/<account>/`, for messages.
    pub folder: String,
    pub account: String,
    /// The account's keyshares, oldest first; `None` when not listed (a
    /// named backup that downloaded).
    pub listed: Option<Result<Vec<KeyshareName>, VaultError>>,
    pub chosen: Option<KeyshareName>,
    pub download: Option<Result<Download, VaultError>>,
}

/// Takes the backup `choice` names from `vault`: a named one is downloaded
/// at once (one round), and the vault listed only when it is not there (to
/// say what it holds); otherwise the account's keyshares are listed and the
/// chosen one downloaded. Its bytes come back checked against their SHA-256.
pub async fn fetch(vault: &Vault, choice: Choice) -> Fetched {
    let target = vault.target();
    let folder = target
        .location
        .url_of(&target.location.account_prefix(&target.account));
    let names = || async { vault.names().await.map(|(names, _)| names) };
    let (listed, chosen, download) = match choice {
        Choice::Named(name) => {
            let download = vault.download(name, None).await;
            let listed = match &download {
                Err(e) if e.kind == VaultErrorKind::NotFound => Some(names().await),
                _ => None,
            };
            (listed, Some(name), Some(download))
        }
        Choice::Newest | Choice::Epoch(_) => {
            let listed = names().await;
            let chosen = listed.as_ref().ok().and_then(|names| choice.pick(names));
            let download = match chosen {
                Some(name) => Some(vault.download(name, None).await),
                None => None,
            };
            (Some(listed), chosen, download)
        }
    };
    Fetched {
        choice,
        folder,
        account: target.account.clone(),
        listed,
        chosen,
        download,
    }
}

/// What a backup is judged against beside itself.
pub struct Against<'a> {
    /// `MPC_SECRET_STORE_KEY`, when set anywhere.
    pub store_key: Option<&'a Secret>,
    /// The chain's answers on the node's account and contract, and the
    /// node's p2p public key.
    pub keys: &'a KeyReport,
    /// `--allow-stale`: a backup of an older epoch than the contract's is a
    /// warning, not a refusal.
    pub allow_stale: bool,
}

/// A backup the judgment took: the bytes to write, exactly as the vault
/// holds them, and what they are.
pub struct Backup {
    pub name: KeyshareName,
    pub object: VaultObject,
    /// `s3://BUCKET/KEY`.
    pub url: String,
    pub sha256: String,
    pub bytes: Zeroizing<Vec<u8>>,
    pub contents: KeyshareContents,
}

impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backup")
            .field("url", &self.url)
            .field("version_id", &self.object.version_id)
            .field("sha256", &self.sha256)
            .field("contents", &self.contents)
            .finish_non_exhaustive()
    }
}

/// Judges the fetched backup: the backup, its download, the store key, its
/// epoch and attempts against the contract's keyset, and the account among
/// the keyset's holders (a warning). The backup when no check failed; the
/// stop, naming the first failure, otherwise.
pub fn judge(mut fetched: Fetched, against: &Against<'_>) -> StageResult<Backup> {
    let mut checks = Vec::new();
    let contract = contract_keyset(against.keys);
    let download = match chosen(&fetched) {
        Ok(check) => {
            checks.push(check);
            fetched.download.take()
        }
        Err(check) => {
            checks.push(check);
            None
        }
    };
    let download = match download {
        Some(Ok(download)) => {
            checks.push(downloaded(&download));
            Some(download)
        }
        Some(Err(e)) => {
            checks.push(e.check(DOWNLOAD));
            None
        }
        None => {
            checks.push(Check::skipped(DOWNLOAD, "not downloaded: no backup chosen"));
            None
        }
    };
    let opened = download.and_then(|download| match opened(&download, against.store_key) {
        Ok((check, contents)) => {
            checks.push(check);
            Some((download, contents))
        }
        Err(check) => {
            checks.push(check);
            None
        }
    });
    match (&contract, &opened) {
        (Ok((_, keyset)), Some((_, contents))) => {
            let epoch = epoch(contents, keyset, against.allow_stale);
            let same_epoch = contents.epoch_id == keyset.epoch_id;
            checks.push(epoch);
            checks.push(match same_epoch {
                true => attempts(contents, keyset),
                false => Check::skipped(
                    ATTEMPTS,
                    format!(
                        "not compared: the backup is of epoch {}, the contract's keyset of epoch {}",
                        contents.epoch_id, keyset.epoch_id
                    ),
                ),
            });
        }
        (Err(unknown), _) => {
            checks.push(unknown.clone());
            checks.push(Check::skipped(
                ATTEMPTS,
                "not compared: the contract's keyset is not known",
            ));
        }
        (Ok(_), None) => {
            for id in [EPOCH, ATTEMPTS] {
                checks.push(Check::skipped(
                    id,
                    "not compared: the backup was not opened",
                ));
            }
        }
    }
    checks.push(match &contract {
        Ok((state, keyset)) => participant(against.keys, state, keyset),
        Err(_) => Check::skipped(
            PARTICIPANT,
            "not checked: the contract's keyset is not known",
        ),
    });
    // The stop is the home stage's: a backup is judged for a home.
    if let Some(stop) = StageStop::of(Stage::Home, StopKind::Blocking, checks.clone()) {
        return Err(stop);
    }
    let (download, contents) = opened.expect("a backup that passed every check was opened");
    let url = format!("{}{}", fetched.folder, download.object.name);
    let sha256 = download.object.sha256.clone().unwrap_or_default();
    let backup = Backup {
        name: download.object.name,
        url,
        sha256,
        object: download.object,
        bytes: download.bytes,
        contents,
    };
    Ok(Staged::new(backup, checks))
}

/// What the vault holds of the account, in words: `epoch 3 at most
/// (epoch_3_with_2_domains)`, or none.
fn holds(fetched: &Fetched) -> String {
    match &fetched.listed {
        Some(Ok(names)) => match names.last() {
            Some(newest) => format!(
                "the vault holds epoch {} at most ({} of {} keyshare(s) in {})",
                newest.epoch,
                newest,
                names.len(),
                fetched.folder
            ),
            None => format!(
                "the vault holds no keyshare of {} ({} is empty)",
                fetched.account, fetched.folder
            ),
        },
        Some(Err(e)) => format!("what the vault holds is not known ({})", e.cause),
        None => String::new(),
    }
}

/// `restore.backup`: which backup, and why; `Err` is the failed check when
/// there is none to judge.
fn chosen(fetched: &Fetched) -> Result<Check, Check> {
    let fix_empty = "the vault is filled while the node runs (agent run with AGENT_KEYSHARE_VAULT); a keyshare that was never vaulted is gone with its home, and the network must reshare this node in";
    if let Some(Err(e)) = &fetched.listed {
        return Err(e.check(BACKUP));
    }
    let (Some(name), Some(download)) = (fetched.chosen, &fetched.download) else {
        let cause = match fetched.choice {
            Choice::Epoch(epoch) => {
                format!(
                    "no keyshare of epoch {epoch} in the vault; {}",
                    holds(fetched)
                )
            }
            _ => holds(fetched),
        };
        return Err(Check::fail(BACKUP, cause, fix_empty));
    };
    let url = format!("{}{name}", fetched.folder);
    if let Err(e) = download
        && e.kind == VaultErrorKind::NotFound
    {
        return Err(Check::fail(
            BACKUP,
            format!("{url} is not in the vault; {}", holds(fetched)),
            fix_empty,
        ));
    }
    let why = match (fetched.choice, &fetched.listed) {
        (Choice::Newest, Some(Ok(names))) => format!(
            "the newest of {} keyshare(s) in {}",
            names.len(),
            fetched.folder
        ),
        (Choice::Epoch(epoch), Some(Ok(names))) => format!(
            "the newest of epoch {epoch} among {} keyshare(s) in {}",
            names.len(),
            fetched.folder
        ),
        (Choice::Named(_), _) => "the one named by the contract's keyset, or by --object".into(),
        _ => "as chosen".into(),
    };
    Ok(Check::ok(BACKUP, format!("{url}: {why}")).with_detail(json!({ "name": name, "url": url })))
}

/// `restore.download`: the bytes arrived as recorded.
fn downloaded(download: &Download) -> Check {
    let object = &download.object;
    Check::ok(
        DOWNLOAD,
        format!(
            "downloaded version {} ({} bytes); its SHA-256 {} is the one recorded with it",
            object.version_id.as_deref().unwrap_or("none"),
            download.bytes.len(),
            object.sha256.as_deref().unwrap_or("?")
        ),
    )
    .with_detail(json!({
        "key": object.key,
        "version_id": object.version_id,
        "sha256": object.sha256,
        "size": download.bytes.len(),
        "last_modified": object.last_modified.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    }))
}

/// `restore.store_key`: the backup opened under the store key, and its
/// plaintext a keyset of the epoch and domains its name says.
fn opened(
    download: &Download,
    store_key: Option<&Secret>,
) -> Result<(Check, KeyshareContents), Check> {
    let name = download.object.name;
    let Some(store_key) = store_key else {
        return Err(Check::fail(
            STORE_KEY,
            "MPC_SECRET_STORE_KEY is set nowhere: a backup opens only under the store key the node wrote it with",
            "set the node's store key where the agent reads it (its Secrets Manager secret, AGENT_SECRET_ID_MPC_SECRET_STORE_KEY or the template); a lost store key makes every backup unreadable",
        ));
    };
    let fingerprint = store_key.fingerprint();
    let contents = keyshare::contents(store_key, &download.bytes).map_err(|e| match e {
        ContentsError::Open(OpenError::AnotherKey) => Check::fail(
            STORE_KEY,
            format!(
                "this backup was made under another store key: {name} does not open under MPC_SECRET_STORE_KEY (sha256:{fingerprint}…), the AES-GCM tag does not verify (or its bytes changed after it was sealed)"
            ),
            "run with the store key the node had when it wrote this keyshare (an earlier version of its Secrets Manager secret: aws secretsmanager list-secret-version-ids); the agent never tries other keys",
        ),
        ContentsError::Open(e) => Check::fail(
            STORE_KEY,
            format!("{name} does not open: {e}"),
            "set MPC_SECRET_STORE_KEY to the node's store key: 32 hex characters",
        ),
        e @ (ContentsError::NotAKeyshare { .. } | ContentsError::Refused { .. }) => Check::fail(
            STORE_KEY,
            format!(
                "{name} opens under MPC_SECRET_STORE_KEY (sha256:{fingerprint}…) but is not a keyshare the node would load: {e}"
            ),
            "restore another backup (--object, --epoch); this one was not written by the node",
        ),
    })?;
    if contents.epoch_id != name.epoch || contents.key_ids.len() as u64 != name.domains {
        return Err(Check::fail(
            STORE_KEY,
            format!(
                "{name} holds a keyset of epoch {} with {} domain(s), not what its name says",
                contents.epoch_id,
                contents.key_ids.len()
            ),
            "restore another backup (--object, --epoch); the node names a keyshare after its keyset, so this object was renamed or is not the node's",
        ));
    }
    let check = Check::ok(
        STORE_KEY,
        format!(
            "opens under MPC_SECRET_STORE_KEY (sha256:{fingerprint}…) as the node opens <home>/key: a keyset of epoch {} with {} domain(s)",
            contents.epoch_id,
            contents.key_ids.len()
        ),
    )
    .with_detail(json!({ "fingerprint": fingerprint, "contents": contents }));
    Ok((check, contents))
}

/// The contract's state and keyset; `Err` is the failed `restore.epoch`
/// saying why no keyset can be judged against.
fn contract_keyset(keys: &KeyReport) -> Result<(&ContractState, &Keyset), Check> {
    let fail = |cause: String, fix: &str| Err(Check::fail(EPOCH, cause, fix.to_string()));
    let Some(on_chain) = &keys.on_chain else {
        let rpc = keys
            .checks()
            .into_iter()
            .find(|c| c.id == keys_ids::RPC)
            .expect("the key report checks the RPC");
        return fail(
            format!("the contract's keyset could not be read: {}", rpc.cause),
            rpc.fix.as_deref().unwrap_or("check AGENT_NEAR_RPC_URL"),
        );
    };
    let contract = &keys.node.contract_id;
    let ContractFinding::State { state } = &on_chain.contract else {
        let check = keys
            .checks()
            .into_iter()
            .find(|c| c.id == keys_ids::CONTRACT)
            .expect("the key report checks the contract");
        return fail(
            format!("the contract's keyset could not be read: {}", check.cause),
            check.fix.as_deref().unwrap_or("check MPC_CONTRACT_ID"),
        );
    };
    match state.keyset() {
        Some(keyset) => Ok((state, keyset)),
        None => fail(
            format!(
                "contract {contract} is {} and holds no keyset this agent reads: there is nothing a backup could rejoin",
                state.name()
            ),
            "restore once the contract runs with a keyset; a contract still generating its first keys has no keyshare to restore",
        ),
    }
}

/// `restore.epoch`: the backup's epoch against the keyset's.
fn epoch(contents: &KeyshareContents, keyset: &Keyset, allow_stale: bool) -> Check {
    let (backup, network) = (contents.epoch_id, keyset.epoch_id);
    let detail = json!({ "backup_epoch": backup, "contract_epoch": network });
    let check = match backup.cmp(&network) {
        std::cmp::Ordering::Equal => Check::ok(
            EPOCH,
            format!("epoch {backup}, the epoch of the contract's keyset"),
        ),
        std::cmp::Ordering::Less if allow_stale => Check::warn(
            EPOCH,
            format!(
                "a keyshare of epoch {backup} taken though the network is at epoch {network} (--allow-stale): the node rejoins only a network that has not moved on"
            ),
            "if the network has moved on, it must reshare this node in; the stale keyshare does not sign with it",
        ),
        std::cmp::Ordering::Less => Check::fail(
            EPOCH,
            format!(
                "a keyshare of epoch {backup} cannot rejoin a network at epoch {network}; the network must reshare this node in"
            ),
            format!(
                "run the node without a keyshare (agent run starts it) and have the participants reshare it in; restore epoch {backup} only onto a network still at it (--allow-stale, e.g. a test network)"
            ),
        ),
        std::cmp::Ordering::Greater => Check::fail(
            EPOCH,
            format!(
                "the backup is of epoch {backup}, newer than the contract's keyset (epoch {network}): the network has not adopted it (a resharing under way, or a vault of another contract)"
            ),
            format!(
                "restore the contract's epoch (--epoch {network}), or wait until the resharing ends and run the restore again"
            ),
        ),
    };
    check.with_detail(detail)
}

/// `restore.attempts`: every domain of the keyset has a share of its attempt
/// in the backup, and the backup no other domain.
fn attempts(contents: &KeyshareContents, keyset: &Keyset) -> Check {
    let mut differ = Vec::new();
    for domain in &keyset.domains {
        match contents
            .key_ids
            .iter()
            .find(|k| k.domain_id == domain.domain_id)
        {
            None => differ.push(format!(
                "domain {} has no share in the backup",
                domain.domain_id
            )),
            Some(k) if k.attempt_id != domain.attempt => differ.push(format!(
                "domain {}: the backup's share is of attempt {}, the contract's key of attempt {} (a superseded attempt)",
                domain.domain_id, k.attempt_id, domain.attempt
            )),
            Some(_) => {}
        }
    }
    for k in &contents.key_ids {
        if !keyset.domains.iter().any(|d| d.domain_id == k.domain_id) {
            differ.push(format!(
                "domain {} is in the backup but not in the contract's keyset",
                k.domain_id
            ));
        }
    }
    let detail = json!({ "backup": contents.key_ids, "contract": keyset.domains });
    if differ.is_empty() {
        let listed: Vec<String> = keyset
            .domains
            .iter()
            .map(|d| format!("domain {} attempt {}", d.domain_id, d.attempt))
            .collect();
        return Check::ok(
            ATTEMPTS,
            format!(
                "every domain's share is of the contract's attempt ({})",
                listed.join(", ")
            ),
        )
        .with_detail(detail);
    }
    Check::fail(
        ATTEMPTS,
        format!(
            "the backup's key ids are not the contract's keyset of epoch {}: {}",
            keyset.epoch_id,
            differ.join("; ")
        ),
        "a share of another attempt does not sign with the network's key: restore a backup of the keyset's attempts (--object), or have the network reshare this node in",
    )
    .with_detail(detail)
}

/// Where this node stands toward the contract's keyset.
#[derive(Clone, Debug, PartialEq)]
pub enum Holding {
    /// Its account is in the set holding the keyset, by this node's p2p key.
    ThisNode,
    /// Its account is, by another p2p key.
    OtherKey { registered: PublicKey },
    /// Its account is not.
    NotMember,
    /// A node migration of its account names this node as the destination:
    /// its keyshares come from the migration.
    Destination,
}

/// Where the node of `keys` stands toward `state`'s keyset holders.
pub fn holding(keys: &KeyReport, state: &ContractState) -> Holding {
    let p2p = &keys.node.p2p_public_key;
    let destination = keys
        .on_chain
        .as_ref()
        .and_then(|c| c.migration.destination());
    if destination.is_some_and(|d| &d.tls_public_key == p2p) {
        return Holding::Destination;
    }
    match state
        .keyset_holders()
        .and_then(|set| set.find(&keys.node.account_id))
    {
        Some(entry) if &entry.tls_public_key == p2p => Holding::ThisNode,
        Some(entry) => Holding::OtherKey {
            registered: entry.tls_public_key.clone(),
        },
        None => Holding::NotMember,
    }
}

/// `restore.participant`: a warning when the account holds no share of
/// the keyset by this node's p2p key.
fn participant(keys: &KeyReport, state: &ContractState, keyset: &Keyset) -> Check {
    let account = &keys.node.account_id;
    let p2p = &keys.node.p2p_public_key;
    let epoch = keyset.epoch_id;
    match holding(keys, state) {
        Holding::ThisNode => Check::ok(
            PARTICIPANT,
            format!(
                "{account} holds a share of epoch {epoch}: a participant by this node's p2p key {p2p}"
            ),
        ),
        Holding::OtherKey { registered } => Check::warn(
            PARTICIPANT,
            format!(
                "{account} is a participant of epoch {epoch} by another p2p key ({registered}), not this node's ({p2p}): the network does not take this node's part"
            ),
            "run the node with the p2p key the contract knows (MPC_P2P_PRIVATE_KEY), or finish the node migration under way",
        ),
        Holding::NotMember => Check::warn(
            PARTICIPANT,
            format!(
                "{account} is not a participant of the contract's keyset (epoch {epoch}): the network does not use this keyshare"
            ),
            "restore the node of a participant; a node that is to join is reshared in by the network",
        ),
        Holding::Destination => Check::warn(
            PARTICIPANT,
            format!(
                "this node ({p2p}) is the destination of a node migration of {account}: its keyshares come from the migration (the backup service's put-keyshares), not from the vault"
            ),
            "let the migration finish; restore only the node the contract lists",
        ),
    }
}

/// What the self-healing boot reads.
pub struct HealInputs<'a> {
    /// The home, locked by the pipeline.
    pub lock: Arc<HomeLock>,
    pub user: NodeUser,
    /// `AGENT_HOME_IO_TIMEOUT`, for each piece of file work.
    pub io_timeout: Duration,
    pub node: &'a Node,
    /// The keys stage's report: the chain's answers, the node's p2p key.
    pub keys: &'a KeyReport,
    pub store_key: Option<&'a Secret>,
    /// `None`: no vault configured.
    pub vault: Option<&'a VaultSettings>,
    pub policy: RestorePolicy,
    pub clients: &'a Clients,
    pub env: &'a BTreeMap<String, String>,
}

/// The self-healing boot: on a home that holds no keyshare, for a node
/// whose account holds a share of the contract's keyset by its p2p key,
/// restores the vault's keyshare of that keyset — by [`judge`], the backup
/// the contract's epoch and domains name — before the node starts. Its
/// verdict is `homes.keyshare`: the home's keyshare, none needed, restored,
/// or (`fail`) the gap, when nothing could be restored. The node starts
/// either way (it must run to be reshared in), so the caller appends this
/// check after the home stage's stop decision. `Err` is a home that did
/// not answer.
pub async fn heal(inputs: HealInputs<'_>) -> Result<Check, Stall> {
    let home = inputs.lock.home().to_path_buf();
    let limit = inputs.io_timeout;
    let seen = off_thread(
        limit,
        "looking at the home's keyshares (key, permanent_keys/)",
        move || look(&home, Keep::Digests),
    )
    .await?;
    let missing = match missing(seen.as_ref(), inputs.keys) {
        Ok(missing) => missing,
        Err(verdict) => return Ok(verdict),
    };
    let expected = missing.expected;
    let epoch = expected.epoch;
    let gap = |why: String| missing.gap(why);
    let settings = match missing.source(inputs.policy, inputs.vault) {
        Ok(settings) => settings,
        Err(gap) => return Ok(gap),
    };
    // The client's set-up (the region, the credentials) within the limit too.
    let opened_and_fetched = async {
        let vault = Vault::open(inputs.clients, inputs.env, settings, inputs.node).await;
        fetch(&vault, Choice::Named(expected)).await
    };
    let Ok(fetched) = tokio::time::timeout(BOOT_FETCH_LIMIT, opened_and_fetched).await else {
        return Ok(gap(format!(
            "the vault ({}) did not answer within {}s",
            settings.location,
            BOOT_FETCH_LIMIT.as_secs()
        )));
    };
    let against = Against {
        store_key: inputs.store_key,
        keys: inputs.keys,
        allow_stale: false,
    };
    let backup = match judge(fetched, &against) {
        Ok(judged) => judged.value,
        Err(stop) => {
            let reason = stop.reason();
            return Ok(gap(match reason.id.as_str() {
                BACKUP => reason.cause.clone(),
                _ => format!("the vault's {expected} was refused: {}", reason.cause),
            }));
        }
    };
    let (lock, user) = (inputs.lock.clone(), inputs.user.clone());
    let (name, bytes) = (backup.name, backup.bytes.clone());
    let written = off_thread(
        limit,
        "restoring the keyshare (permanent_keys/, key)",
        move || write::write(&lock, name, &bytes, &user),
    )
    .await?;
    match written {
        Ok(restored) => {
            tracing::info!(
                epoch,
                file = %restored.path.display(),
                from = %backup.url,
                version = backup.object.version_id.as_deref().unwrap_or("none"),
                sha256 = %restored.sha256,
                "restored the keyshare from the vault before the node starts"
            );
            Ok(restored_check(&restored, &backup))
        }
        Err(e @ RestoreError::Occupied { .. }) => {
            Ok(Check::ok(KEYSHARE, format!("not restored: {e}")))
        }
        Err(RestoreError::Home(e)) => Ok(gap(format!("the restore could not write it: {e}"))),
    }
}

/// A home with no keyshare, of a node that holds a share of the contract's
/// keyset by its p2p key: the keyshare a restore must bring back.
pub struct Missing {
    /// The file the node would have written for the contract's keyset
    /// (its epoch, its domains).
    pub expected: KeyshareName,
}

/// Whether a home the agent looked at (`seen`) lacks a keyshare its node
/// needs, judged against the chain's answers in `keys`. `Err` is already
/// `homes.keyshare`'s verdict: the home holds one, none is needed (not a
/// participant, a migration's destination), or it cannot be told. Pure:
/// the boot restores what is missing, doctor only names it.
pub fn missing(seen: Result<&Look, &HomeError>, keys: &KeyReport) -> Result<Missing, Check> {
    let seen = seen.map_err(|e| {
        Check::skipped(
            KEYSHARE,
            format!("not judged: the home's keyshares cannot be read ({e})"),
        )
    })?;
    let found = write::found(seen);
    if !found.is_empty() {
        return Err(Check::ok(
            KEYSHARE,
            format!("the home holds {}", found.join(", ")),
        ));
    }
    let (state, keyset) = contract_keyset(keys).map_err(|unknown| {
        Check::skipped(
            KEYSHARE,
            format!(
                "no keyshare on the home; whether one is needed is not known: {}",
                unknown.cause
            ),
        )
    })?;
    let account = &keys.node.account_id;
    let epoch = keyset.epoch_id;
    match holding(keys, state) {
        Holding::ThisNode => Ok(Missing {
            expected: KeyshareName {
                epoch,
                domains: keyset.domains.len() as u64,
            },
        }),
        Holding::NotMember => Err(Check::ok(
            KEYSHARE,
            format!(
                "no keyshare on the home, and none is needed: {account} is not a participant of the contract's keyset (epoch {epoch})"
            ),
        )),
        Holding::Destination => Err(Check::ok(
            KEYSHARE,
            format!(
                "no keyshare on the home: this node is the destination of a node migration of {account}, and receives its keyshares from it"
            ),
        )),
        Holding::OtherKey { registered } => Err(Check::skipped(
            KEYSHARE,
            format!(
                "no keyshare on the home; not restored: the contract knows {account} by another p2p key ({registered}; see keys.participant)"
            ),
        )),
    }
}

impl Missing {
    /// `homes.keyshare` failing: the gap, and `why` nothing filled it.
    fn gap(&self, why: String) -> Check {
        let epoch = self.expected.epoch;
        Check::fail(
            KEYSHARE,
            format!("participant of epoch {epoch} with no keyshare on the home; {why}"),
            format!(
                "restore the keyshare of epoch {epoch} if a backup of it exists (agent vault restore; README: The home is lost); otherwise the node runs without it and cannot sign until the network reshares it in"
            ),
        )
        .with_detail(json!({ "contract_epoch": epoch }))
    }

    /// Where the boot restores it from: the vault, or (`Err`) the gap when
    /// `AGENT_KEYSHARE_RESTORE=off` or no vault is configured.
    fn source<'v>(
        &self,
        policy: RestorePolicy,
        vault: Option<&'v VaultSettings>,
    ) -> Result<&'v VaultSettings, Check> {
        match (policy, vault) {
            (RestorePolicy::Off, _) => {
                Err(self.gap("AGENT_KEYSHARE_RESTORE=off, so none is restored".into()))
            }
            (RestorePolicy::Auto, None) => {
                Err(self
                    .gap("no vault is configured (AGENT_KEYSHARE_VAULT) to restore it from".into()))
            }
            (RestorePolicy::Auto, Some(settings)) => Ok(settings),
        }
    }

    /// `homes.keyshare` as doctor sees it, without a download: the gap the
    /// boot would name, or a warning that the boot restores it from the vault.
    pub fn foreseen(&self, policy: RestorePolicy, vault: Option<&VaultSettings>) -> Check {
        let settings = match self.source(policy, vault) {
            Ok(settings) => settings,
            Err(gap) => return gap,
        };
        Check::warn(
            KEYSHARE,
            format!(
                "participant of epoch {} with no keyshare on the home; agent run restores {} from {} before the node starts, if it is there and opens under the store key",
                self.expected.epoch, self.expected, settings.location
            ),
            "run agent doctor --drill or agent vault verify to judge the vault's backup now; agent vault restore writes it",
        )
        .with_detail(json!({ "contract_epoch": self.expected.epoch }))
    }
}

/// `homes.keyshare` after a restore: `restored epoch 3 from s3://…`.
fn restored_check(restored: &Restored, backup: &Backup) -> Check {
    Check::ok(
        KEYSHARE,
        format!(
            "restored epoch {} from {} (version {}) as {}",
            backup.contents.epoch_id,
            backup.url,
            backup.object.version_id.as_deref().unwrap_or("none"),
            restored.path.display()
        ),
    )
    .with_detail(json!({ "restored": restored, "from": backup.url }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::keys::KeysetDomain;
    use crate::keyshare::{KeyId, KeyshareFormat};

    fn contents(epoch_id: u64, attempts: &[u64]) -> KeyshareContents {
        KeyshareContents {
            format: KeyshareFormat::Permanent,
            epoch_id,
            key_ids: attempts
                .iter()
                .enumerate()
                .map(|(domain, attempt)| KeyId {
                    epoch_id,
                    domain_id: domain as u64,
                    attempt_id: *attempt,
                })
                .collect(),
        }
    }

    fn keyset(epoch_id: u64, attempts: &[u64]) -> Keyset {
        Keyset {
            epoch_id,
            domains: attempts
                .iter()
                .enumerate()
                .map(|(domain, attempt)| KeysetDomain {
                    domain_id: domain as u64,
                    attempt: *attempt,
                })
                .collect(),
        }
    }

    #[test]
    fn an_older_epoch_is_refused_naming_both_unless_stale_is_allowed_and_a_newer_one_always() {
        let stale = epoch(&contents(3, &[0]), &keyset(4, &[0]), false);
        assert_eq!(stale.status, Status::Fail);
        assert!(
            stale
                .cause
                .contains("a keyshare of epoch 3 cannot rejoin a network at epoch 4"),
            "{}",
            stale.cause
        );
        assert_eq!(
            epoch(&contents(3, &[0]), &keyset(4, &[0]), true).status,
            Status::Warn
        );
        assert_eq!(
            epoch(&contents(5, &[0]), &keyset(4, &[0]), true).status,
            Status::Fail,
            "a keyset the network has not adopted is never taken"
        );
        assert_eq!(
            epoch(&contents(4, &[0]), &keyset(4, &[0]), false).status,
            Status::Ok
        );
    }

    #[test]
    fn every_domain_must_be_of_the_contracts_attempt_and_no_domain_missing_or_extra() {
        assert_eq!(
            attempts(&contents(2, &[0, 1]), &keyset(2, &[0, 1])).status,
            Status::Ok
        );
        for (backup, contract, says) in [
            (
                &[0, 0][..],
                &[0, 1][..],
                "domain 1: the backup's share is of attempt 0, the contract's key of attempt 1",
            ),
            (&[0], &[0, 0], "domain 1 has no share in the backup"),
            (
                &[0, 0],
                &[0],
                "domain 1 is in the backup but not in the contract's keyset",
            ),
        ] {
            let check = attempts(&contents(2, backup), &keyset(2, contract));
            assert_eq!(check.status, Status::Fail, "{says}");
            assert!(check.cause.contains(says), "{}", check.cause);
        }
    }
}
