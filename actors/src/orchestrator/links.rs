//! `Links`: the orchestrator's open worker links and the segments it has in flight, for a
//! shutdown that closes the links as soon as no segment needs them.
//!
//! Each [`WorkerLink`] adds itself when it starts and leaves when it stops; whoever serves
//! segments counts each one with [`Links::segment_started`]. [`Links::drain`] waits for the
//! segments, then sends every link [`CloseLink`] and waits for them to be gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use actix::Addr;
use parking_lot::Mutex;

use super::worker_link::{CloseLink, WorkerLink};

#[derive(Clone, Default)]
pub struct Links(Arc<LinksState>);

#[derive(Default)]
struct LinksState {
    links: Mutex<HashMap<u64, Addr<WorkerLink>>>,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Woken whenever a link goes or a segment finishes.
    changed: tokio::sync::Notify,
}

/// A segment in flight; it finishes when dropped.
pub struct InFlight(Links);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.0.changed.notify_waiters();
    }
}

/// What [`Links::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Segments in flight when the drain began.
    pub in_flight: usize,
    /// Links that were open once those were done.
    pub links: usize,
    /// Whether everything finished before the deadline.
    pub complete: bool,
}

impl Links {
    pub(super) fn add(&self, addr: Addr<WorkerLink>) -> u64 {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        self.0.links.lock().insert(id, addr);
        id
    }

    pub(super) fn remove(&self, id: u64) {
        self.0.links.lock().remove(&id);
        self.0.changed.notify_waiters();
    }

    /// How many links are open.
    pub fn open(&self) -> usize {
        self.0.links.lock().len()
    }

    /// Count a segment as in flight until the answer is dropped.
    pub fn segment_started(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Whether [`Links::drain`] has begun: answers should close their connections.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// Wait (until `deadline`) for the segments in flight to finish, then close every link and
    /// wait for them to be gone.
    pub async fn drain(&self, deadline: Instant) -> Drained {
        self.0.draining.store(true, Ordering::SeqCst);
        let in_flight = self.0.in_flight.load(Ordering::SeqCst);
        let mut complete = self.wait(deadline, || self.0.in_flight.load(Ordering::SeqCst) == 0).await;
        let links: Vec<_> = self.0.links.lock().values().cloned().collect();
        for link in &links {
            link.do_send(CloseLink);
        }
        complete &= self.wait(deadline, || self.0.links.lock().is_empty()).await;
        Drained { in_flight, links: links.len(), complete }
    }

    /// Wait until `done` holds or `deadline` passes; answers whether it holds.
    async fn wait(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        loop {
            let changed = self.0.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if done() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changed).await.is_err() {
                return done();
            }
        }
    }
}
