//! The child's stdout and stderr: passed through to the agent's own, unchanged,
//! while the last lines are kept for `/status` and known fatal lines become reasons.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::oneshot;

use crate::life::state::{LogTail, State};
use crate::life::views::{LogLine, Reason, Stream};

/// A longer line is cut in the tail (never in the passthrough).
const MAX_LINE: usize = 2048;

/// Log lines of mpc-node that mean it cannot work, with what to do about them.
const KNOWN_FATAL: &[(&str, &str, &str)] = &[
    (
        "AccessKeyNotFound",
        "the node's signer key is not an access key of its account on chain; every transaction fails",
        "put the account's key into MPC_ACCOUNT_SK, or add the signer public key to the account (`agent keys` shows both)",
    ),
    (
        "Failed to decrypt key file",
        "MPC_SECRET_STORE_KEY does not decrypt the keyshare in the home",
        "restore the secret store key the shares were written with (its previous version, AWSPREVIOUS); never generate a new one while shares exist",
    ),
    (
        "invalid local storage aes key hex",
        "MPC_SECRET_STORE_KEY is not 32 hex characters",
        "set MPC_SECRET_STORE_KEY to the 16-byte key as 32 hex characters",
    ),
    (
        "not a participant",
        "the signer contract does not list this node (account and p2p key) as a participant",
        "compare the p2p public key of MPC_P2P_PRIVATE_KEY with the contract's tls_public_key for the account (`agent keys`)",
    ),
];

/// Copies each source to the agent's stream of the same name on one thread
/// of their own, so the child waits on the agent's output no longer than the
/// agent itself would (both streams reach the same log driver, so they would
/// wait on it together anyway). The receiver completes when every source
/// reached its end.
pub fn pump(
    sources: Vec<(OwnedFd, Stream)>,
    tail: Arc<LogTail>,
    state: State,
) -> std::io::Result<oneshot::Receiver<()>> {
    let (done, drained) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("output-pump".into())
        .spawn(move || {
            let _done = done;
            let mut buf = vec![0u8; 64 * 1024];
            let mut open: Vec<Source> = sources
                .into_iter()
                .map(|(fd, stream)| Source {
                    file: File::from(fd),
                    stream,
                    partial: Vec::new(),
                })
                .collect();
            while !open.is_empty() {
                let mut fds: Vec<PollFd> = open
                    .iter()
                    .map(|s| PollFd::new(s.file.as_fd(), PollFlags::POLLIN))
                    .collect();
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
                let ready: Vec<bool> = fds
                    .iter()
                    .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                let mut index = 0;
                open.retain_mut(|source| {
                    index += 1;
                    !ready[index - 1] || source.copy_once(&mut buf, &tail, &state)
                });
            }
        })?;
    Ok(drained)
}

/// One of the child's output pipes, with the line it has not finished yet.
struct Source {
    file: File,
    stream: Stream,
    partial: Vec<u8>,
}

impl Source {
    /// Copies what one read gives; `false` once the pipe reached its end.
    fn copy_once(&mut self, buf: &mut [u8], tail: &LogTail, state: &State) -> bool {
        let n = match self.file.read(buf) {
            Ok(0) => return self.finish(tail, state),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return self.finish(tail, state),
        };
        let chunk = &buf[..n];
        // A failed write (stdout closed) must not stop the child: keep draining.
        let _ = match self.stream {
            Stream::Stdout => write_through(&mut std::io::stdout().lock(), chunk),
            Stream::Stderr => write_through(&mut std::io::stderr().lock(), chunk),
        };
        self.partial.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(nl) = self.partial[start..].iter().position(|b| *b == b'\n') {
            observe(&self.partial[start..start + nl], self.stream, tail, state);
            start += nl + 1;
        }
        self.partial.drain(..start);
        if self.partial.len() > buf.len() {
            observe(&self.partial, self.stream, tail, state);
            self.partial.clear();
        }
        true
    }

    /// Keeps the last, unfinished line; always `false`.
    fn finish(&mut self, tail: &LogTail, state: &State) -> bool {
        if !self.partial.is_empty() {
            observe(&self.partial, self.stream, tail, state);
        }
        false
    }
}

fn write_through(out: &mut impl Write, chunk: &[u8]) -> std::io::Result<()> {
    out.write_all(chunk)?;
    out.flush()
}

/// Keeps one complete line, key-like strings redacted, and turns a known
/// fatal one into a reason. Redacted before it is cut, so no cut leaves part
/// of a key too short to be recognized.
fn observe(raw: &[u8], stream: Stream, tail: &LogTail, state: &State) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    let mut line = entrypoint::excerpt::redact(&text).into_owned();
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    if let Some((kind, cause, fix)) = KNOWN_FATAL.iter().find(|(p, _, _)| line.contains(p)) {
        let mut reason = Reason::new(*kind, *cause, Some(fix.to_string()));
        reason.line = Some(line.clone());
        state.note_reason(reason);
    }
    tail.push(LogLine {
        stream,
        at: SystemTime::now(),
        line,
    });
}
