//! File work on the home, on a thread of its own and watched ([`on_own_thread`]):
//! the one rule for the home stage of `agent run`, `agent doctor`'s home
//! group and every other read of the home. On EFS a stat, a read or a lock
//! that the server never answers does not fail: an NFS hard mount waits for
//! the server forever, and the calling thread with it. So the work runs on a
//! thread of its own and marks its file work on an [`IoWatch`], and the
//! waiter asks [`IoWatch::overdue`]: a piece of file work under way longer
//! than its limit (`AGENT_HOME_IO_TIMEOUT`, doctor's `--timeout`) is a stall,
//! named by what it was doing. What is no file work — the pause between tries
//! of a held lock, the node's own commands, Secrets Manager and EFS API
//! calls, each bounded by its own timeout — is run [`IoWatch::aside`] and
//! never counts.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::check::Check;
use crate::stage::Failure;

/// Shared by the stage (which marks) and its watcher (which asks).
#[derive(Clone, Debug, Default)]
pub struct IoWatch(Arc<Mutex<Option<Busy>>>);

#[derive(Clone, Debug)]
struct Busy {
    doing: String,
    since: Instant,
}

/// A piece of file work on the home that has not returned in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// What the stage was doing (`taking the home's lock (.agent/lock)`).
    pub doing: String,
    /// How long it has been at it.
    pub waited: Duration,
}

impl IoWatch {
    fn slot(&self) -> MutexGuard<'_, Option<Busy>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on the stage works on the home's files, doing `doing`.
    pub fn start(&self, doing: impl Into<String>) {
        *self.slot() = Some(Busy {
            doing: doing.into(),
            since: Instant::now(),
        });
    }

    /// The stage is done with the home's files.
    pub fn stop(&self) {
        *self.slot() = None;
    }

    /// Runs `wait`, which is no file work on the home, off the clock; the
    /// file work that was under way starts its clock again afterwards.
    pub async fn aside<F: Future>(&self, wait: F) -> F::Output {
        let was = self.slot().take();
        let out = wait.await;
        if let Some(busy) = was {
            self.start(busy.doing);
        }
        out
    }

    /// What the file work under way is, if any.
    fn doing(&self) -> Option<String> {
        self.slot().as_ref().map(|busy| busy.doing.clone())
    }

    /// The file work under way for `limit` or longer, if any.
    pub fn overdue(&self, limit: Duration) -> Option<Stall> {
        let slot = self.slot();
        let busy = slot.as_ref()?;
        let waited = busy.since.elapsed();
        (waited >= limit).then(|| Stall {
            doing: busy.doing.clone(),
            waited,
        })
    }
}

/// How often a waiter looks at the work's clock: often enough to see a stall
/// soon after `limit`, seldom enough to cost nothing.
fn watch_every(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The one way the agent does file work on the home: `work` runs on a thread
/// of its own, with a runtime of its own, marking on the [`IoWatch`] it is
/// given what it does; the caller's runtime (which serves `/health` and
/// signals) only waits, and gives up when a piece of that file work has been
/// under way for `limit` (nothing can cancel a thread inside a system call:
/// it is left to its call). Waits `work` runs [`IoWatch::aside`] never count.
/// A thread that cannot start, or ends without an answer (a panic, which the
/// panic hook already told), is a stall of what it was doing.
pub async fn on_own_thread<T, Fut>(
    limit: Duration,
    work: impl FnOnce(IoWatch) -> Fut + Send + 'static,
) -> Result<T, Stall>
where
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    watched(limit, move |io| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(work(io)))
    })
    .await
}

/// [`on_own_thread`] for file work that is all one piece, `doing`: run on
/// its thread as it is, no runtime needed.
pub async fn off_thread<T: Send + 'static>(
    limit: Duration,
    doing: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stall> {
    let doing = doing.to_string();
    watched(limit, move |io| {
        io.start(doing);
        let out = work();
        io.stop();
        Some(out)
    })
    .await
}

/// Runs `work` on a thread of its own and waits for its answer, giving up
/// when the file work it marks on its [`IoWatch`] has been under way for
/// `limit`. `None` from `work` is an end without an answer.
async fn watched<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce(IoWatch) -> Option<T> + Send + 'static,
) -> Result<T, Stall> {
    let io = IoWatch::default();
    let on_thread = io.clone();
    let (tx, mut answer) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name("home-io".into())
        .spawn(move || {
            if let Some(out) = work(on_thread) {
                let _ = tx.send(out);
            }
        });
    if let Err(e) = spawned {
        return Err(Stall {
            doing: format!("starting a thread for its file work ({e})"),
            waited: started.elapsed(),
        });
    }
    let mut watchdog = tokio::time::interval(watch_every(limit));
    loop {
        tokio::select! {
            done = &mut answer => {
                return done.map_err(|_| Stall {
                    doing: io.doing().unwrap_or_else(|| "its file work".into())
                        + " (the work ended without an answer)",
                    waited: started.elapsed(),
                });
            }
            _ = watchdog.tick() => {
                if let Some(stall) = io.overdue(limit) {
                    return Err(stall);
                }
            }
        }
    }
}

impl Stall {
    /// [`Stall::check`] as the failure a stage stops on.
    pub fn failure(&self, home: &Path, limit: Duration, setting: &str) -> Failure {
        Failure::refusal(self.check(home, limit, setting))
    }

    /// `homes.stalled`: the home, what hung, for how long, and what to look
    /// at; `setting` names where `limit` came from.
    pub fn check(&self, home: &Path, limit: Duration, setting: &str) -> Check {
        Check::fail(
            "homes.stalled",
            format!(
                "MPC_HOME_DIR {} has not answered for {}s while {} ({setting} {}s): the file system is unreachable or hung; an NFS (EFS) hard mount waits for its server forever",
                home.display(),
                self.waited.as_secs(),
                self.doing,
                limit.as_secs_f64(),
            ),
            "check the EFS: the file system's state (aws efs describe-file-systems), a mount target in this availability zone, its security group allowing NFS (TCP 2049) from the task; on the host, dmesg shows 'nfs: server … not responding'; then replace the task",
        )
        .with_detail(serde_json::json!({
            "home": home,
            "doing": self.doing,
            "waited_s": self.waited.as_secs_f64(),
            "limit_s": limit.as_secs_f64(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_work_is_overdue_past_the_limit_and_waits_aside_do_not_count() {
        let watch = IoWatch::default();
        let limit = Duration::from_secs(10);
        assert_eq!(watch.overdue(limit), None, "nothing under way");
        watch.start("reading config.json");
        assert_eq!(watch.overdue(limit), None);
        watch.0.lock().unwrap().as_mut().unwrap().since -= limit;
        let stall = watch.overdue(limit).expect("overdue");
        assert_eq!(stall.doing, "reading config.json");
        assert!(stall.waited >= limit);

        watch
            .aside(async {
                assert_eq!(watch.overdue(limit), None, "a wait aside is off the clock");
            })
            .await;
        assert_eq!(
            watch.overdue(limit),
            None,
            "the clock starts again after the wait"
        );
        assert!(watch.0.lock().unwrap().is_some(), "and the work goes on");
        watch.stop();
        assert!(watch.0.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn work_off_thread_answers_or_is_a_stall_past_the_limit() {
        let limit = Duration::from_millis(50);
        assert_eq!(off_thread(limit, "reading", || 7).await, Ok(7));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stall = off_thread(limit, "reading secrets.json", move || wait.recv())
            .await
            .unwrap_err();
        assert_eq!(stall.doing, "reading secrets.json");
        assert!(stall.waited >= limit);
        drop(release);
    }

    #[tokio::test]
    async fn a_long_wait_aside_on_its_own_thread_is_no_stall() {
        let limit = Duration::from_millis(50);
        let answer = on_own_thread(limit, move |io| async move {
            io.start("taking the home's lock");
            io.aside(tokio::time::sleep(limit * 4)).await;
            io.stop();
            "locked"
        })
        .await;
        assert_eq!(answer, Ok("locked"));
    }

    #[tokio::test]
    async fn work_that_ends_without_an_answer_is_named_by_what_it_was_doing() {
        let stall = on_own_thread(Duration::from_secs(5), |io| async move {
            io.start("reading key");
            if io.doing().is_some() {
                panic!("the work broke");
            }
        })
        .await
        .unwrap_err();
        assert_eq!(
            stall.doing,
            "reading key (the work ended without an answer)"
        );
    }
}
