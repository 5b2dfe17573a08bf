//! One node per home: the lock on `<home>/.agent/lock` is exclusive across
//! open files (even within one process), a second agent waits and is told who
//! holds it, and proceeds as soon as it is released.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entrypoint::homes::lock::{Holder, HomeLock, acquire, is_held, read_holder};
use entrypoint::homes::{HomeError, IoWatch, NodeUser};

fn holder(hostname: &str) -> Holder {
    Holder {
        hostname: hostname.to_string(),
        ..Holder::this_process()
    }
}

fn user(home: &Path) -> NodeUser {
    NodeUser::resolve(None, home).unwrap()
}

async fn take(home: &Path, name: &str) -> HomeLock {
    acquire(
        home,
        holder(name),
        None,
        &user(home),
        &IoWatch::default(),
        |h| panic!("nobody else holds the lock: {h:?}"),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_second_agent_waits_sees_the_holder_and_proceeds_after_release() {
    let home = tempfile::tempdir().unwrap();
    let first = take(home.path(), "first-task").await;
    assert_eq!(first.holder().hostname, "first-task");

    let seen: Arc<Mutex<Vec<Option<Holder>>>> = Arc::default();
    let second = {
        let (home, seen, user) = (home.path().to_path_buf(), seen.clone(), user(home.path()));
        tokio::spawn(async move {
            acquire(
                &home,
                holder("second-task"),
                None,
                &user,
                &IoWatch::default(),
                |h| seen.lock().unwrap().push(h.cloned()),
            )
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the waiting agent reports the holder");
    assert_eq!(
        seen.lock().unwrap()[0]
            .as_ref()
            .map(|h| h.hostname.as_str()),
        Some("first-task")
    );
    assert!(
        !second.is_finished(),
        "still waiting while the lock is held"
    );

    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the lock is taken within a poll after release")
        .unwrap()
        .unwrap();
    assert_eq!(second.holder().hostname, "second-task");
    assert_eq!(
        read_holder(home.path()).unwrap().unwrap().hostname,
        "second-task"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "reported once: the holder did not change"
    );
}

#[tokio::test]
async fn a_bounded_wait_ends_with_an_error_that_names_the_holder() {
    let home = tempfile::tempdir().unwrap();
    let _first = take(home.path(), "ip-10-0-1-17").await;
    let started = std::time::Instant::now();
    let err = acquire(
        home.path(),
        holder("late"),
        Some(Duration::from_millis(700)),
        &user(home.path()),
        &IoWatch::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(started.elapsed() < Duration::from_secs(3));
    let HomeError::LockTimeout { holder, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(holder.as_ref().unwrap().hostname, "ip-10-0-1-17");
    let check = err.check();
    assert_eq!(check.id, "homes.lock");
    assert!(
        check
            .cause
            .contains(&format!("pid {} on ip-10-0-1-17", std::process::id())),
        "{}",
        check.cause
    );
    assert!(check.fix.unwrap().contains("AGENT_LOCK_WAIT"));
}

#[tokio::test]
async fn the_lock_holds_across_two_open_files_of_one_process() {
    let home = tempfile::tempdir().unwrap();
    let first = take(home.path(), "first").await;
    // A POSIX process lock would be dropped here: closing any descriptor of the
    // file releases it. An OFD lock stays with its own open file.
    drop(std::fs::File::open(home.path().join(".agent/lock")).unwrap());
    assert!(is_held(home.path()).unwrap());
    let again = acquire(
        home.path(),
        holder("same-process"),
        Some(Duration::from_millis(300)),
        &user(home.path()),
        &IoWatch::default(),
        |_| {},
    )
    .await;
    assert!(
        matches!(again, Err(HomeError::LockTimeout { .. })),
        "a second open file in the same process conflicts"
    );
    drop(first);
    assert!(!is_held(home.path()).unwrap());
    take(home.path(), "after").await;
}

#[tokio::test]
async fn waiting_can_be_given_up_at_any_point() {
    let home = tempfile::tempdir().unwrap();
    let first = take(home.path(), "first").await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        acquire(
            home.path(),
            holder("impatient"),
            None,
            &user(home.path()),
            &IoWatch::default(),
            |_| {},
        ),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "an unbounded wait is still a future that can be dropped"
    );
    drop(first);
    take(home.path(), "next").await;
}

#[tokio::test]
async fn the_holder_is_readable_without_the_lock_and_outlives_it() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(read_holder(home.path()).unwrap(), None);
    assert!(!is_held(home.path()).unwrap());
    let lock = take(home.path(), "first").await;
    let read = read_holder(home.path()).unwrap().unwrap();
    assert_eq!(&read, lock.holder());
    assert_eq!(read.pid, std::process::id());
    assert_eq!(read.agent_version, entrypoint::homes::AGENT_VERSION);
    drop(lock);
    assert_eq!(
        read_holder(home.path()).unwrap(),
        Some(read),
        "the last holder stays readable"
    );
}
