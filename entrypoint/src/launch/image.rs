//! The image the node says it runs, and where it keeps the contract's list
//! of allowed images: the hash the node reports as its own (`[tee]
//! image_hash`: this container's image digest from the ECS container
//! metadata, else zeros), whether the signer contract's
//! `allowed_docker_image_hashes` holds it (`launch.image_hash`), and whether
//! the node can write the allowed-hashes file (`launch.allowed_hashes_file`):
//! it writes `<file>.tmp` there and renames it, and exits when it cannot.
//! `agent run` and `agent doctor` make both checks with these functions.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::start_config::ALLOWED_HASHES_FILE;
use crate::check::Check;
use crate::homes::NodeUser;
use crate::keys::{KeyReport, ViewFinding};
use crate::node_binary::Launch;

/// How long the ECS container metadata may take to say the image digest.
const METADATA_LIMIT: Duration = Duration::from_secs(2);

/// The image hash the node reports as its own: this container's digest for
/// `start-with-config-file` (its `[tee] image_hash`), or why there is none,
/// in which case the node reports zeros.
pub async fn node_image_hash(
    launch: Launch,
    env: &BTreeMap<String, String>,
) -> Result<String, &'static str> {
    if launch != Launch::StartWithConfigFile {
        return Err(
            "the node is started with `start`, which reports a zero image hash (only start-with-config-file takes [tee] image_hash)",
        );
    }
    crate::placement::image_digest(env, METADATA_LIMIT)
        .await
        .ok_or("no ECS container metadata (ECS_CONTAINER_METADATA_URI_V4) gave this container's image digest")
}

/// `launch.image_hash`: does the signer contract's
/// `allowed_docker_image_hashes` hold the hash the node reports (`image`,
/// from [`node_image_hash`])? Skipped when there is no digest, no answer from
/// the chain, or the contract has no such view (an older contract).
pub fn image_hash_check(keys: &KeyReport, image: &Result<String, &str>) -> Check {
    const ID: &str = "launch.image_hash";
    let digest = match image {
        Ok(digest) => digest,
        Err(why) => {
            return Check::skipped(
                ID,
                format!(
                    "not checked: {why}; the node logs that its image is NOT in the allowed hash list"
                ),
            );
        }
    };
    let contract = &keys.node.contract_id;
    let Some(on_chain) = &keys.on_chain else {
        return Check::skipped(ID, "not checked: no NEAR RPC answered");
    };
    let allowed = match &on_chain.tee.allowed_image_hashes {
        ViewFinding::Read(allowed) => allowed,
        ViewFinding::NoView => {
            return Check::skipped(
                ID,
                format!(
                    "not checked: contract {contract} has no allowed_docker_image_hashes view (an older contract)"
                ),
            );
        }
        ViewFinding::Unreadable { error } => {
            return Check::skipped(ID, format!("not checked: {error}"));
        }
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let detail = json!({ "image_hash": digest, "allowed": allowed });
    let check = match allowed.iter().find(|a| a.image_hash == hex) {
        Some(entry) => Check::ok(
            ID,
            format!(
                "contract {contract} allows this container's image {digest} ({})",
                match entry.expiry_timestamp_seconds {
                    Some(at) => format!(
                        "until {}",
                        crate::keys::rfc3339(i64::try_from(at).unwrap_or(i64::MAX))
                    ),
                    None => "no expiry set yet".to_string(),
                }
            ),
        ),
        None => Check::warn(
            ID,
            format!(
                "contract {contract}'s allowed_docker_image_hashes ({} allowed) does not hold this container's image {digest}: the node logs that its image is NOT in the allowed hash list, and its mpc_own_image_hash_allowed is 0",
                allowed.len()
            ),
            format!(
                "have the participants vote for this image: vote_code_hash on {contract} with {{\"code_hash\": \"{hex}\"}} from as many participants as the threshold; or run an image whose digest the contract allows"
            ),
        ),
    };
    check.with_detail(detail)
}

/// `launch.allowed_hashes_file`: the node (as `user`) can create files in
/// the directory of its allowed-hashes file. Probed with a file that has no
/// name (`O_TMPFILE`; where the filesystem lacks it, a probe created and
/// removed at once), so nothing is left behind.
pub fn allowed_hashes_dir_check(user: &NodeUser) -> Check {
    const ID: &str = "launch.allowed_hashes_file";
    let file = Path::new(ALLOWED_HASHES_FILE);
    let dir = file.parent().unwrap_or(Path::new("/"));
    let why = format!(
        "the node writes the contract's allowed image hashes to {} (through {}) and exits when it cannot",
        file.display(),
        file.with_extension("tmp").display()
    );
    let fix = format!(
        "give the container a writable {} (with readonlyRootFilesystem, a volume or tmpfs mounted there) that {} can write to",
        dir.display(),
        user.describe()
    );
    if let Err(e) = probe(dir) {
        return Check::fail(
            ID,
            format!("{} is not writable: {e}; {why}", dir.display()),
            fix,
        );
    }
    // The probe runs as the agent, which may be root: the node user's right
    // comes from the directory's owner and mode.
    let writable = std::fs::metadata(dir).map(|meta| {
        use std::os::unix::fs::MetadataExt;
        user.can_write(meta.uid(), meta.gid(), meta.mode())
    });
    match writable {
        Ok(true) => Check::ok(
            ID,
            format!(
                "{} is writable (probed without leaving a file) for the node's allowed-hashes file {}",
                dir.display(),
                file.display()
            ),
        ),
        Ok(false) => Check::fail(
            ID,
            format!(
                "{} does not let {} create files; {why}",
                dir.display(),
                user.describe()
            ),
            fix,
        ),
        Err(e) => Check::fail(ID, format!("cannot read {}: {e}", dir.display()), fix),
    }
}

/// Writes a byte to a file in `dir` that no one sees and nothing keeps.
fn probe(dir: &Path) -> std::io::Result<()> {
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir);
    let mut file = match unnamed {
        Ok(file) => file,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            let path = dir.join(crate::homes::scratch::probe_name());
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            file
        }
        Err(e) => return Err(e),
    };
    file.write_all(&[0])
}
