//! How long the home stage has been waiting on the home's filesystem. On EFS a
//! stat, a read or a lock that the server never answers does not fail: an NFS
//! hard mount waits for the server forever, and the calling thread with it.
//! So the stage runs on a thread of its own and marks its file work here, and
//! whoever waits for it asks [`IoWatch::overdue`]: a piece of file work under
//! way longer than `AGENT_HOME_IO_TIMEOUT` is a stall, named by what it was
//! doing. What is no file work — the pause between tries of a held lock, the
//! node's own commands, Secrets Manager and EFS API calls, each bounded by its
//! own timeout — is run [`IoWatch::aside`] and never counts.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::check::Check;

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

/// Runs `work`, file work on the home, on a thread of its own, and waits for
/// it at most `limit`: past it the thread is left to its call (nothing can
/// cancel a thread inside a system call) and the answer is the stall. When no
/// thread can be started, `work` runs here.
pub async fn off_thread<T: Send + 'static>(
    limit: Duration,
    doing: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stall> {
    let work = Arc::new(Mutex::new(Some(work)));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let on_thread = work.clone();
    let spawned = std::thread::Builder::new()
        .name("home-io".into())
        .spawn(move || {
            let work = on_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(work) = work {
                let _ = tx.send(work());
            }
        });
    if spawned.is_err() {
        let work = work.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(work) = work {
            return Ok(work());
        }
    }
    let started = Instant::now();
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(done)) => Ok(done),
        // The thread ended without an answer: it panicked, which the panic
        // message already told; as seen from here, the work never returned.
        Ok(Err(_)) | Err(_) => Err(Stall {
            doing: doing.to_string(),
            waited: started.elapsed(),
        }),
    }
}

impl Stall {
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
}
