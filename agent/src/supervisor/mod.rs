//! The child's whole life under the agent, as one loop: spawn it, forward
//! signals to it, wait for it; on exit clean up its process group and exit,
//! restart after a backoff, or fail on a crash loop; on SIGTERM/SIGINT stop it
//! (ready off, pre-stop delay, signal, grace, SIGKILL).
//!
//! Every way out is an exit code: the child's own, 128+n when it died of
//! signal n, 126/127 when it could not be executed or found, 128+n when the
//! agent was told to stop before a child ran.

mod output;
mod reaper;
mod restart;
mod signals;

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint::config::Supervision;
use entrypoint::secrets::Secret;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use tokio::sync::{mpsc, oneshot};

pub use reaper::{Reaper, Role};
use restart::{Next, RestartPlan};
pub use signals::Signals;

use crate::life::Event;
use crate::life::state::{LogTail, State};
use crate::life::views::{Exit, Reason, Stream};
use crate::{exit, memory};

/// What to run.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The child's whole environment; `None` inherits the agent's (`agent exec`).
    pub env: Option<Vec<(String, Secret)>>,
    /// `(uid, gid)` to run as, when the agent runs as root.
    pub user: Option<(u32, u32)>,
}

impl ChildSpec {
    fn display(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

/// How a supervision ended.
pub enum Outcome {
    /// The agent exits with this code.
    Exit(i32),
    /// The child was stopped on request, to be started again with a new plan
    /// (a rotated secret).
    Replace { reason: String },
}

/// Runs and watches one child.
pub struct Supervisor {
    pub spec: ChildSpec,
    pub settings: Supervision,
    pub state: State,
    pub reaper: Reaper,
    pub tail: Arc<LogTail>,
}

/// A running child: its pid (also its process group), its exit to come, and
/// the output thread that finishes when its pipes close.
struct Running {
    pid: Pid,
    exit: oneshot::Receiver<Exit>,
    drained: Option<oneshot::Receiver<()>>,
}

/// How long the last output of an exited child may take to reach the agent's
/// own: first before the exit is logged, then after its group is cleaned up.
const FIRST_DRAIN: Duration = Duration::from_millis(200);
const DRAIN_WAIT: Duration = Duration::from_secs(2);

impl Supervisor {
    /// Supervises until the agent should exit, or until `replace` asks for the
    /// child to be stopped and started again with a new plan.
    pub async fn run(
        self,
        signals: &mut Signals,
        mut replace: Option<&mut mpsc::Receiver<String>>,
    ) -> Outcome {
        let s = &self.settings;
        let mut plan = RestartPlan::new(
            s.restart,
            s.backoff,
            s.restart_reset,
            s.crash_loop,
            s.restartable_exit,
        );
        // What started the agent, and the child, has run by then.
        memory::release_after_settling();
        loop {
            self.state.apply(Event::Launch);
            let mut child = tokio::select! {
                // The spawn first: it is done at once unless out of file
                // descriptors, and a signal already pending goes to the child.
                biased;
                spawned = self.spawn() => match spawned {
                    Ok(child) => child,
                    Err(code) => return Outcome::Exit(code),
                },
                // Told to stop while waiting for file descriptors to start it.
                stop = signals.next_stop() => return Outcome::Exit(exit::by_signal(stop)),
            };
            let exit = tokio::select! {
                exit = &mut child.exit => exit.unwrap_or(Exit::Code(exit::NOT_FOUND)),
                stop = signals.forward_until_stop(child.pid) => {
                    return Outcome::Exit(self.stop(child, stop, signals).await);
                }
                Some(reason) = next_request(&mut replace) => {
                    tracing::info!(%reason, "stopping the child to start it again with a new plan");
                    self.stop(child, Signal::SIGTERM, signals).await;
                    return Outcome::Replace { reason };
                }
            };
            // Let the child's last lines through before the agent speaks of its exit.
            drain(&mut child.drained, FIRST_DRAIN).await;
            let uptime = self.state.child_exited(exit);
            tracing::info!(pid = child.pid.as_raw(), %exit, uptime_s = uptime.as_secs_f64(), "child exited");
            self.clean_up_group(child.pid).await;
            drain(&mut child.drained, DRAIN_WAIT).await;
            match plan.after_exit(exit, uptime, Instant::now()) {
                Next::Exit => return Outcome::Exit(exit.code()),
                Next::RestartAfter(delay) => {
                    let known = plan.is_restartable(exit);
                    let reason = if known {
                        Reason::new(
                            "restartable-exit",
                            format!(
                                "the node ended with {exit}, its known restartable exit (the indexer wedged after epoch sync); starting it again in {:.1}s, counted toward the crash loop once per window",
                                delay.as_secs_f64()
                            ),
                            Some("nothing to do if it runs on after the restart; if it keeps exiting 70, bump indexer.wipe_near_data_token in config.yaml".into()),
                        )
                    } else {
                        Reason::new(
                            "restarting",
                            format!(
                                "child ended with {exit}; starting it again in {:.1}s",
                                delay.as_secs_f64()
                            ),
                            None,
                        )
                    };
                    tracing::warn!(%exit, delay_ms = delay.as_millis() as u64, known_restartable = known, "restarting the child after a backoff");
                    if known {
                        self.state.note_reason(reason.clone());
                    }
                    self.state.apply(Event::Restart(reason));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => self.state.child_restarting(),
                        stop = signals.next_stop() => return Outcome::Exit(exit::by_signal(stop)),
                    }
                }
                Next::CrashLoop { exits, window } => {
                    let cause = format!(
                        "crash loop: the child exited {exits} times within {}s, last with {exit}",
                        window.as_secs()
                    );
                    tracing::error!(%exit, exits, window_s = window.as_secs(), "crash loop; giving up so the orchestrator replaces the task");
                    self.state.apply(Event::Fail(Reason::new(
                            "crash-loop",
                            cause,
                            Some("read the reasons and the log tail on /status; the orchestrator replaces the task".into()),
                        )));
                    signals.linger(s.fail_linger).await;
                    return Outcome::Exit(exit.code());
                }
            }
        }
    }

    /// Starts the child in its own process group with its output piped through
    /// the agent; a lack of file descriptors is waited out, named on `/status`.
    async fn spawn(&self) -> Result<Running, i32> {
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(env) = &self.spec.env {
            command.env_clear();
            command.envs(env.iter().map(|(k, v)| (k, v.expose())));
        }
        if let Some((uid, gid)) = self.spec.user
            && nix::unistd::geteuid().is_root()
        {
            command.uid(uid).gid(gid);
        }
        let program = self.spec.display();
        let waiting = |cause: &'static str, e: &io::Error, delay: Duration| {
            tracing::warn!(program, cause, error = %e, delay_ms = delay.as_millis() as u64, "cannot start the child yet; trying again after a backoff");
            self.state.note_reason(Reason::new(
                "out-of-file-descriptors",
                format!("cannot start {program}: {cause}"),
                Some("too many connections or open files; the agent tries again, raise the task's nofile ulimit if it lasts".into()),
            ));
        };
        let spawned = self
            .reaper
            .spawn_when_fds_allow(&mut command, waiting)
            .await;
        let (mut child, exit) = spawned.map_err(|e| {
            let code = match e.kind() {
                io::ErrorKind::NotFound => exit::NOT_FOUND,
                _ => exit::NOT_EXECUTABLE,
            };
            tracing::error!(program, error = %e, exit_code = code, "cannot start the child");
            code
        })?;
        let pid = Pid::from_raw(child.id() as i32);
        let sources: Vec<(OwnedFd, Stream)> = [
            child
                .stdout
                .take()
                .map(|p| (OwnedFd::from(p), Stream::Stdout)),
            child
                .stderr
                .take()
                .map(|p| (OwnedFd::from(p), Stream::Stderr)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let drained = output::pump(sources, self.tail.clone(), self.state.clone())
            .inspect_err(|e| tracing::error!(error = %e, "cannot start the output thread; the child's output is lost"))
            .ok();
        tracing::info!(pid = pid.as_raw(), program, "child started");
        self.state.child_started(pid.as_raw(), &program);
        Ok(Running { pid, exit, drained })
    }

    /// The stop sequence: not ready at once, pre-stop delay, forward `signal`,
    /// wait the grace, then SIGKILL the child's process group.
    async fn stop(&self, mut child: Running, signal: Signal, signals: &mut Signals) -> i32 {
        tracing::info!(
            signal = signal.as_str(),
            pid = child.pid.as_raw(),
            "stopping the child"
        );
        self.state.apply(Event::Stop);
        let s = &self.settings;
        if !s.prestop_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(s.prestop_delay) => {}
                exit = &mut child.exit => return self.stopped(child, exit).await,
                // A second stop signal cuts the delay short.
                _ = signals.forward_until_stop(child.pid) => {}
            }
        }
        send(child.pid, signal);
        let grace = tokio::time::sleep(s.stop_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                exit = &mut child.exit => return self.stopped(child, exit).await,
                // Further stop signals are forwarded too: the child may want them.
                again = signals.forward_until_stop(child.pid) => send(child.pid, again),
                _ = &mut grace => break,
            }
        }
        tracing::warn!(
            pid = child.pid.as_raw(),
            grace_s = s.stop_grace.as_secs_f64(),
            "the child did not exit within the stop grace after {}; sending SIGKILL to its process group",
            signal.as_str()
        );
        kill_group(child.pid, Signal::SIGKILL);
        let exit = (&mut child.exit).await;
        self.stopped(child, exit).await
    }

    async fn stopped(
        &self,
        mut child: Running,
        exit: Result<Exit, oneshot::error::RecvError>,
    ) -> i32 {
        let exit = exit.unwrap_or(Exit::Signal(Signal::SIGKILL as i32));
        drain(&mut child.drained, FIRST_DRAIN).await;
        self.state.child_exited(exit);
        tracing::info!(pid = child.pid.as_raw(), %exit, "child stopped");
        self.clean_up_group(child.pid).await;
        drain(&mut child.drained, DRAIN_WAIT).await;
        exit.code()
    }

    /// Whatever is left of the child's process group gets SIGTERM, then SIGKILL after the grace.
    async fn clean_up_group(&self, pgid: Pid) {
        if !group_alive(pgid) {
            return;
        }
        tracing::info!(
            pgid = pgid.as_raw(),
            "terminating what is left of the child's process group"
        );
        kill_group(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + self.settings.stop_grace;
        while group_alive(pgid) {
            if Instant::now() >= deadline {
                tracing::warn!(
                    pgid = pgid.as_raw(),
                    "process group outlived the grace; sending SIGKILL"
                );
                kill_group(pgid, Signal::SIGKILL);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The next replacement request, or never when there is no one to ask.
async fn next_request(replace: &mut Option<&mut mpsc::Receiver<String>>) -> Option<String> {
    match replace {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits, at most `limit`, until the child's last output went through; a
/// process that escaped the group may hold the pipes open for ever.
async fn drain(drained: &mut Option<oneshot::Receiver<()>>, limit: Duration) {
    // Kept until it completed: one cut short by the limit is awaited again next time.
    if let Some(done) = drained
        && tokio::time::timeout(limit, done).await.is_ok()
    {
        *drained = None;
    }
}

fn send(pid: Pid, signal: Signal) {
    if let Err(e) = kill(pid, signal) {
        tracing::debug!(pid = pid.as_raw(), signal = signal.as_str(), error = %e, "could not signal the child");
    }
}

fn kill_group(pgid: Pid, signal: Signal) {
    if let Err(e) = killpg(pgid, signal)
        && e != Errno::ESRCH
    {
        tracing::warn!(pgid = pgid.as_raw(), signal = signal.as_str(), error = %e, "could not signal the process group");
    }
}

fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}
