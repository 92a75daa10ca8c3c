//! The service's registry of WebSocket clients: a bounded queue per client, broadcast to all.
//!
//! A broadcast never waits for a client: each message is offered to every client's queue, and a
//! client whose queue is full (it reads slower than the service writes) is dropped and counted,
//! so one slow client can neither stall the others nor grow the service's memory. The number
//! of clients is capped; a client over the cap is refused before its upgrade.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::extract::ws::{Message, Utf8Bytes};
use mpm_core::metrics::{Counter, IntGauge, Registry};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::Error;

/// The hub's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Clients connected at once; one more is refused.
    pub max_clients: NonZeroUsize,
    /// Messages queued for one client; a client whose queue is full is dropped.
    pub queue: NonZeroUsize,
    /// The largest message a client may send, in bytes.
    pub max_message_bytes: NonZeroUsize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: NonZeroUsize::new(256).expect("non-zero"),
            queue: NonZeroUsize::new(256).expect("non-zero"),
            max_message_bytes: NonZeroUsize::new(4096).expect("non-zero"),
        }
    }
}

/// What the hub counts, as `mpm_demo_ws_*` metrics.
#[derive(Clone)]
struct Stats {
    connected: IntGauge,
    accepted: Counter,
    refused_full: Counter,
    refused_origin: Counter,
    dropped_slow: Counter,
    malformed: Counter,
    broadcasts: Counter,
}

impl Stats {
    fn register(registry: &Registry) -> Result<Self, Error> {
        let counter = |what: &str| registry.counter(&format!("mpm_demo_ws_{what}_total"), &[]);
        Ok(Self {
            connected: registry.int_gauge("mpm_demo_ws_clients", &[])?,
            accepted: counter("accepted")?,
            refused_full: registry.counter("mpm_demo_ws_refused_total", &[("reason", "full")])?,
            refused_origin: registry
                .counter("mpm_demo_ws_refused_total", &[("reason", "origin")])?,
            dropped_slow: counter("dropped_slow")?,
            malformed: counter("malformed")?,
            broadcasts: counter("broadcasts")?,
        })
    }
}

struct Inner {
    limits: Limits,
    clients: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    live: AtomicUsize,
    next_id: AtomicU64,
    stats: Stats,
}

/// The registry of connected clients. Cheap to clone: clones share the same clients.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// A place for one client, reserved before its WebSocket upgrade; dropping it frees the place.
pub struct Slot {
    hub: Hub,
    id: u64,
}

/// A connected client's side of the hub: its queue of outgoing messages.
pub struct Client {
    slot: Slot,
    /// Messages for this client, in order; `None` once the hub dropped it.
    pub outbox: mpsc::Receiver<Message>,
}

impl Hub {
    /// A hub with these limits, counting into `registry`.
    pub fn new(limits: Limits, registry: &Registry) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                limits,
                clients: Mutex::new(HashMap::new()),
                live: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                stats: Stats::register(registry)?,
            }),
        })
    }

    /// The hub's limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Reserves a place for a new client, or `None` when the hub is full (counted).
    pub fn reserve(&self) -> Option<Slot> {
        let max = self.inner.limits.max_clients.get();
        let reserved = self
            .inner
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if reserved.is_err() {
            self.inner.stats.refused_full.inc();
            return None;
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            hub: self.clone(),
            id,
        })
    }

    /// Counts a request refused because its `Origin` is not the service's own.
    pub fn refuse_origin(&self) {
        self.inner.stats.refused_origin.inc();
    }

    /// Counts a malformed or oversized message from a client (which is then closed).
    pub fn count_malformed(&self) {
        self.inner.stats.malformed.inc();
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.inner.clients.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clients dropped so far because they read too slowly.
    pub fn dropped_slow(&self) -> u64 {
        self.inner.stats.dropped_slow.get()
    }

    /// Offers `text` to every client; returns how many queued it. Never waits: a client whose
    /// queue is full is dropped (its connection closes) and counted.
    pub fn broadcast(&self, text: impl Into<Utf8Bytes>) -> usize {
        let message = Message::Text(text.into());
        self.inner.stats.broadcasts.inc();
        let mut clients = self.inner.clients.lock();
        let before = clients.len();
        clients.retain(|_, tx| tx.try_send(message.clone()).is_ok());
        let dropped = before - clients.len();
        if dropped > 0 {
            self.inner.stats.dropped_slow.add(dropped as u64);
            self.inner.stats.connected.set(clients.len() as i64);
        }
        clients.len()
    }

    /// Queues `message` for one client; false when that client is gone or was dropped as slow.
    pub fn send_to(&self, id: u64, message: Message) -> bool {
        let mut clients = self.inner.clients.lock();
        let Some(tx) = clients.get(&id) else {
            return false;
        };
        if tx.try_send(message).is_ok() {
            return true;
        }
        clients.remove(&id);
        self.inner.stats.dropped_slow.inc();
        self.inner.stats.connected.set(clients.len() as i64);
        false
    }
}

impl Slot {
    /// Connects the client that holds this place: from now on broadcasts reach its outbox.
    pub fn connect(self) -> Client {
        let (tx, outbox) = mpsc::channel(self.hub.inner.limits.queue.get());
        let inner = &self.hub.inner;
        let mut clients = inner.clients.lock();
        clients.insert(self.id, tx);
        inner.stats.connected.set(clients.len() as i64);
        inner.stats.accepted.inc();
        drop(clients);
        Client { slot: self, outbox }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.hub.inner;
        let mut clients = inner.clients.lock();
        if clients.remove(&self.id).is_some() {
            inner.stats.connected.set(clients.len() as i64);
        }
        drop(clients);
        inner.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Client {
    /// This client's id in the hub.
    pub fn id(&self) -> u64 {
        self.slot.id
    }

    /// The hub this client belongs to.
    pub fn hub(&self) -> &Hub {
        &self.slot.hub
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(max_clients: usize, queue: usize) -> (Hub, Registry) {
        let registry = Registry::default();
        let limits = Limits {
            max_clients: NonZeroUsize::new(max_clients).unwrap(),
            queue: NonZeroUsize::new(queue).unwrap(),
            ..Limits::default()
        };
        (Hub::new(limits, &registry).unwrap(), registry)
    }

    fn text(m: Message) -> String {
        match m {
            Message::Text(t) => t.as_str().to_owned(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn broadcast_reaches_every_client_in_order() {
        let (hub, _) = hub(8, 8);
        let mut clients: Vec<Client> = (0..3).map(|_| hub.reserve().unwrap().connect()).collect();
        assert_eq!(hub.broadcast("a"), 3);
        assert_eq!(hub.broadcast("b"), 3);
        for c in &mut clients {
            assert_eq!(text(c.outbox.try_recv().unwrap()), "a");
            assert_eq!(text(c.outbox.try_recv().unwrap()), "b");
        }
    }

    #[test]
    fn the_cap_refuses_one_more_and_frees_on_drop() {
        let (hub, registry) = hub(2, 8);
        let a = hub.reserve().unwrap();
        let _b = hub.reserve().unwrap();
        assert!(hub.reserve().is_none());
        drop(a);
        assert!(hub.reserve().is_some());
        let snap = registry.snapshot();
        let refused = snap
            .get("mpm_demo_ws_refused_total", &[("reason", "full")])
            .unwrap()
            .as_f64();
        assert_eq!(refused, 1.0);
    }

    #[test]
    fn a_slow_client_is_dropped_and_the_others_keep_their_messages() {
        let (hub, _) = hub(8, 2);
        let slow = hub.reserve().unwrap().connect();
        let mut fast = hub.reserve().unwrap().connect();
        for i in 0..10 {
            hub.broadcast(format!("{i}"));
            assert_eq!(text(fast.outbox.try_recv().unwrap()), format!("{i}"));
        }
        assert_eq!(hub.dropped_slow(), 1);
        assert_eq!(hub.len(), 1);
        // The slow client's queue holds what it had room for, then ends.
        let mut slow = slow;
        assert_eq!(text(slow.outbox.try_recv().unwrap()), "0");
        assert_eq!(text(slow.outbox.try_recv().unwrap()), "1");
        assert!(matches!(
            slow.outbox.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn many_threads_joining_and_leaving_keep_the_count_exact() {
        let (hub, _) = hub(16, 4);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let hub = hub.clone();
                s.spawn(move || {
                    for _ in 0..2_000 {
                        if let Some(slot) = hub.reserve() {
                            let c = slot.connect();
                            hub.broadcast("x");
                            drop(c);
                        }
                    }
                });
            }
        });
        assert_eq!(hub.len(), 0);
        assert_eq!(hub.inner.live.load(Ordering::Acquire), 0);
        // Every place is free again.
        let all: Vec<Slot> = (0..16).map(|_| hub.reserve().unwrap()).collect();
        assert!(hub.reserve().is_none());
        drop(all);
    }
}
