//! Which connections the HTTP server keeps: at most a cap that leaves file
//! descriptors for the rest of the agent; at the cap, the connection that has
//! been quiet the longest is closed to make room for the new one, so a pile of
//! idle sockets cannot keep the health checker out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

/// The most connections served at once, whatever the file-descriptor limit.
pub const MAX_CONNECTIONS: usize = 256;
/// The fewest, however low the limit.
pub const MIN_CONNECTIONS: usize = 8;
/// Descriptors kept out of the connections' reach: the agent's own (listener,
/// runtime, signal and log pipes), the child's output pipes, the node's short
/// commands and the files of the home stages.
pub const RESERVED_FDS: u64 = 64;

/// The cap for a soft `RLIMIT_NOFILE` of `fd_limit`: the limit less
/// [`RESERVED_FDS`], between [`MIN_CONNECTIONS`] and [`MAX_CONNECTIONS`].
pub fn cap_for(fd_limit: u64) -> usize {
    let room = fd_limit.saturating_sub(RESERVED_FDS);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The table of admitted connections. Clones share it.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    cap: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    slots: HashMap<u64, Slot>,
}

struct Slot {
    activity: Activity,
    close: oneshot::Sender<()>,
}

/// When a connection last began a request (or was accepted), in milliseconds
/// since the table was made.
#[derive(Clone)]
pub struct Activity {
    at: Arc<AtomicU64>,
    epoch: Instant,
}

impl Activity {
    /// Marks the connection active now.
    pub fn touch(&self) {
        self.at
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn millis(&self) -> u64 {
        self.at.load(Ordering::Relaxed)
    }
}

/// An admitted connection's place in the table; dropping it frees the place.
pub struct Ticket {
    id: u64,
    admission: Admission,
    pub activity: Activity,
    /// Resolves when the connection is closed to make room for a newer one.
    pub evicted: oneshot::Receiver<()>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.admission.lock();
        table.slots.remove(&self.id);
        let last = table.slots.is_empty();
        drop(table);
        // The buffers of a burst of connections are free again now.
        if last {
            crate::memory::trim_heap();
        }
    }
}

/// What admitting a connection did.
pub struct Admitted {
    pub ticket: Ticket,
    /// The table was full and its quietest connection was closed.
    pub evicted_one: bool,
}

impl Admission {
    pub fn new(cap: usize) -> Admission {
        Admission {
            inner: Arc::new(Inner {
                cap,
                epoch: Instant::now(),
                table: Mutex::default(),
            }),
        }
    }

    pub fn cap(&self) -> usize {
        self.inner.cap
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, closing the quietest one when the table is full.
    pub fn admit(&self) -> Admitted {
        let mut table = self.lock();
        let mut evicted_one = false;
        while table.slots.len() >= self.inner.cap {
            let Some(quietest) = table
                .slots
                .iter()
                .min_by_key(|(id, slot)| (slot.activity.millis(), **id))
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(slot) = table.slots.remove(&quietest) {
                // The connection may be finishing by itself; then nobody listens.
                let _ = slot.close.send(());
                evicted_one = true;
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Activity {
            at: Arc::default(),
            epoch: self.inner.epoch,
        };
        activity.touch();
        let (close, evicted) = oneshot::channel();
        table.slots.insert(
            id,
            Slot {
                activity: activity.clone(),
                close,
            },
        );
        Admitted {
            ticket: Ticket {
                id,
                admission: self.clone(),
                activity,
                evicted,
            },
            evicted_one,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_and_stays_within_its_bounds() {
        assert_eq!(cap_for(256), 192);
        assert_eq!(cap_for(1 << 20), MAX_CONNECTIONS);
        assert_eq!(cap_for(20), MIN_CONNECTIONS);
        assert_eq!(cap_for(0), MIN_CONNECTIONS);
    }

    #[test]
    fn a_full_table_closes_its_quietest_connection_for_a_new_one() {
        let admission = Admission::new(2);
        let mut first = admission.admit().ticket;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut second = admission.admit().ticket;
        std::thread::sleep(std::time::Duration::from_millis(5));
        // The first one speaks again: the second is now the quietest.
        first.activity.touch();
        let third = admission.admit();
        assert!(third.evicted_one);
        assert_eq!(admission.lock().slots.len(), 2);
        assert!(second.evicted.try_recv().is_ok());
        assert!(first.evicted.try_recv().is_err());
    }

    #[test]
    fn a_closed_connection_frees_its_place() {
        let admission = Admission::new(1);
        let ticket = admission.admit().ticket;
        drop(ticket);
        assert_eq!(admission.lock().slots.len(), 0);
        assert!(!admission.admit().evicted_one);
    }
}
