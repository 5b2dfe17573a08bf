//! The signals the agent handles. A handler is installed for each: as PID 1 a
//! signal without a handler is silently dropped by the kernel.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Forwarded to the child as they arrive.
const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Signals that begin the stop sequence instead of being passed on as is.
fn is_stop(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT)
}

pub struct Signals(mpsc::UnboundedReceiver<Signal>);

impl Signals {
    /// Installs the handlers; must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        let (tx, rx) = mpsc::unbounded_channel();
        for sig in FORWARDED {
            let mut stream = signal(SignalKind::from_raw(sig as i32))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Signals(rx))
    }

    /// Passes every signal on to `pid` until a stop signal arrives, and returns that one.
    pub async fn forward_until_stop(&mut self, pid: Pid) -> Signal {
        loop {
            let sig = self.recv().await;
            if is_stop(sig) {
                return sig;
            }
            tracing::debug!(
                signal = sig.as_str(),
                pid = pid.as_raw(),
                "forwarding signal"
            );
            if let Err(e) = kill(pid, sig) {
                tracing::debug!(signal = sig.as_str(), error = %e, "could not forward signal");
            }
        }
    }

    /// Waits for a stop signal while no child runs; other signals have no one to go to.
    pub async fn next_stop(&mut self) -> Signal {
        loop {
            let sig = self.recv().await;
            if is_stop(sig) {
                return sig;
            }
            tracing::debug!(signal = sig.as_str(), "no child to forward the signal to");
        }
    }

    /// Keeps a failure reported for `linger`, or until a stop signal asks
    /// for the exit sooner.
    pub async fn linger(&mut self, linger: std::time::Duration) {
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = self.next_stop() => {}
        }
    }

    async fn recv(&mut self) -> Signal {
        // The senders live as long as the runtime; a closed channel cannot happen
        // while the agent runs, so waiting forever is the honest answer.
        match self.0.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }
}
