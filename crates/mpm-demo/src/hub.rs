//! The service's registry of WebSocket clients: a bounded queue per client, broadcast to all.
//!
//! A broadcast encodes its frame once and writes it to every client's socket in turn, without
//! waiting for any of them: what a socket cannot take at once (its kernel buffer is full) waits
//! in that client's queue, which the client's own task writes out as the socket drains. A
//! client whose queue is full (it reads slower than the service writes) is dropped and counted,
//! so one slow client can neither stall the others nor grow the service's memory. The number
//! of clients is capped; a client over the cap is refused before its upgrade.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::Bytes;
use mpm_core::metrics::{Counter, IntGauge, Registry};
use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::Error;
use crate::frame;

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
    clients: Mutex<HashMap<u64, Arc<Outlet>>>,
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

/// A connected client's side of the hub: the way out to its socket. Its owner runs
/// [`Client::write_out`] for as long as the connection lives.
pub struct Client {
    slot: Slot,
    outlet: Arc<Outlet>,
}

/// One client's way out: the writing half of its socket and the frames it could not take yet.
///
/// Every write to the socket happens under `pending`'s lock, and a frame goes straight to the
/// socket only while nothing waits before it, so frames leave whole and in order whoever
/// writes them (a broadcast, the client's reply path, or its task draining the queue).
struct Outlet {
    socket: OwnedWriteHalf,
    pending: Mutex<Pending>,
    /// Wakes the client's task when frames wait or the connection is closing.
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// Frames (or the rest of one) the socket could not take yet, in order.
    queue: VecDeque<Bytes>,
    /// No frame is taken any more; the queue (ending with the close frame, if any) is written
    /// out and the connection ends.
    closing: bool,
    /// The socket failed: nothing more can be written.
    broken: bool,
}

/// What became of a frame offered to one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offer {
    /// Written, or queued behind what waits.
    Taken,
    /// The queue was full: the client is too slow and is now closing.
    Full,
    /// The client is closing or its socket failed.
    Gone,
}

/// What the client's task found when it last wrote.
enum Drained {
    /// Everything is written; wait for more.
    Idle,
    /// The socket is full; wait until it can take more.
    Blocked,
    /// Done: closed after its last frame, or broken.
    Ended,
}

impl Outlet {
    fn new(socket: OwnedWriteHalf) -> Self {
        Self {
            socket,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    /// Writes `frame`, or queues what the socket cannot take now (at most `limit` frames wait).
    fn offer(&self, frame: &Bytes, limit: usize) -> Offer {
        let mut p = self.pending.lock();
        if p.closing || p.broken {
            return Offer::Gone;
        }
        if !p.queue.is_empty() {
            if p.queue.len() >= limit {
                p.closing = true;
                p.queue.push_back(frame::close(frame::POLICY, "too slow"));
                drop(p);
                self.wake.notify_one();
                return Offer::Full;
            }
            p.queue.push_back(frame.clone());
            return Offer::Taken;
        }
        match self.socket.try_write(frame) {
            Ok(n) if n == frame.len() => Offer::Taken,
            Ok(n) if n > 0 => {
                p.queue.push_back(frame.slice(n..));
                drop(p);
                self.wake.notify_one();
                Offer::Taken
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                p.queue.push_back(frame.clone());
                drop(p);
                self.wake.notify_one();
                Offer::Taken
            }
            _ => {
                p.broken = true;
                drop(p);
                self.wake.notify_one();
                Offer::Gone
            }
        }
    }

    /// Takes no more frames: what waits, then `last` (a close frame), is written and the
    /// connection ends.
    fn close(&self, last: Option<Bytes>) {
        let mut p = self.pending.lock();
        if !p.closing {
            p.closing = true;
            p.queue.extend(last);
        }
        drop(p);
        self.wake.notify_one();
    }

    /// Writes what waits until the socket is full or nothing waits.
    fn drain(&self) -> Drained {
        let mut p = self.pending.lock();
        loop {
            if p.broken {
                return Drained::Ended;
            }
            let Some(front) = p.queue.front_mut() else {
                return if p.closing {
                    Drained::Ended
                } else {
                    Drained::Idle
                };
            };
            match self.socket.try_write(front) {
                Ok(n) if n == front.len() => {
                    p.queue.pop_front();
                }
                Ok(n) if n > 0 => *front = front.slice(n..),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Blocked,
                _ => {
                    p.broken = true;
                    p.queue.clear();
                }
            }
        }
    }

    /// Writes out what the others could not, as the socket drains, until the connection ends.
    async fn write_out(&self) {
        loop {
            match self.drain() {
                // `notify_one` keeps a permit when nobody waits, so a frame queued between the
                // drain and this wait is not missed.
                Drained::Idle => self.wake.notified().await,
                Drained::Blocked => {
                    if self.socket.writable().await.is_err() {
                        return;
                    }
                }
                Drained::Ended => return,
            }
        }
    }
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

    /// Sends `text` to every client; returns how many took it. Never waits: the frame is
    /// encoded once and written to each socket that can take it, queued for each that cannot,
    /// and a client whose queue is full is dropped (its connection closes) and counted.
    pub fn broadcast(&self, text: impl AsRef<str>) -> usize {
        let frame = frame::text(text.as_ref());
        self.inner.stats.broadcasts.inc();
        let limit = self.inner.limits.queue.get();
        let mut clients = self.inner.clients.lock();
        let before = clients.len();
        let mut slow = 0;
        clients.retain(|_, outlet| match outlet.offer(&frame, limit) {
            Offer::Taken => true,
            Offer::Full => {
                slow += 1;
                false
            }
            Offer::Gone => false,
        });
        if slow > 0 {
            self.inner.stats.dropped_slow.add(slow);
        }
        if clients.len() != before {
            self.inner.stats.connected.set(clients.len() as i64);
        }
        clients.len()
    }

    /// Sends `text` to one client; false when that client is gone or was dropped as slow.
    pub fn send_to(&self, id: u64, text: &str) -> bool {
        self.send_frame(id, &frame::text(text))
    }

    /// Sends an encoded frame to one client (see [`send_to`](Self::send_to)).
    fn send_frame(&self, id: u64, frame: &Bytes) -> bool {
        let mut clients = self.inner.clients.lock();
        let Some(outlet) = clients.get(&id) else {
            return false;
        };
        let offer = outlet.offer(frame, self.inner.limits.queue.get());
        if offer == Offer::Taken {
            return true;
        }
        clients.remove(&id);
        if offer == Offer::Full {
            self.inner.stats.dropped_slow.inc();
        }
        self.inner.stats.connected.set(clients.len() as i64);
        false
    }
}

impl Slot {
    /// Connects the client that holds this place, writing to `socket`: from now on
    /// broadcasts reach it.
    pub fn connect(self, socket: OwnedWriteHalf) -> Client {
        let outlet = Arc::new(Outlet::new(socket));
        let inner = &self.hub.inner;
        let mut clients = inner.clients.lock();
        clients.insert(self.id, Arc::clone(&outlet));
        inner.stats.connected.set(clients.len() as i64);
        inner.stats.accepted.inc();
        drop(clients);
        Client { slot: self, outlet }
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

    /// Writes `bytes` (already framed, e.g. by a WebSocket library's own replies) in order with
    /// everything else; false when the client is gone or was dropped as slow.
    pub fn send_raw(&self, bytes: &[u8]) -> bool {
        self.hub()
            .send_frame(self.id(), &Bytes::copy_from_slice(bytes))
    }

    /// Takes no more messages: what waits is written, then a close frame with `code` and
    /// `reason` if given, and [`write_out`](Self::write_out) ends.
    pub fn close(&self, close: Option<(u16, &str)>) {
        self.outlet
            .close(close.map(|(code, reason)| frame::close(code, reason)));
    }

    /// Writes out, as the socket drains, what could not be written at once; ends when the
    /// connection is closed ([`close`](Self::close), or dropped as slow) or its socket fails.
    pub async fn write_out(&self) {
        self.outlet.write_out().await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use tokio::net::{TcpListener, TcpSocket};

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

    /// A loopback listener; `buffers` bounds the kernel buffers of the sockets it accepts.
    fn listener(buffers: Option<u32>) -> TcpListener {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = buffers {
            socket.set_send_buffer_size(size).unwrap();
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        socket.listen(64).unwrap()
    }

    /// A loopback connection: the service's writing half and the peer's blocking end.
    async fn pair(
        listener: &TcpListener,
        buffers: Option<u32>,
    ) -> (OwnedWriteHalf, std::net::TcpStream) {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = buffers {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let (peer, accepted) = tokio::join!(
            socket.connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let peer = peer.unwrap().into_std().unwrap();
        peer.set_nonblocking(false).unwrap();
        (accepted.unwrap().0.into_split().1, peer)
    }

    /// Reads one whole frame (as the service encodes them: unmasked) from `peer`, or `None` at
    /// the end of the stream.
    fn read_frame(peer: &mut std::net::TcpStream) -> Option<Vec<u8>> {
        let mut head = [0u8; 2];
        peer.read_exact(&mut head).ok()?;
        let mut frame = head.to_vec();
        let len = match head[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                peer.read_exact(&mut l).unwrap();
                frame.extend_from_slice(&l);
                u64::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                peer.read_exact(&mut l).unwrap();
                frame.extend_from_slice(&l);
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        let start = frame.len();
        frame.resize(start + len as usize, 0);
        peer.read_exact(&mut frame[start..]).unwrap();
        Some(frame)
    }

    #[tokio::test]
    async fn broadcast_reaches_every_client_in_order() {
        let (hub, _) = hub(8, 8);
        let listener = listener(None);
        let mut clients = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (socket, peer) = pair(&listener, None).await;
            clients.push(hub.reserve().unwrap().connect(socket));
            peers.push(peer);
        }
        assert_eq!(hub.broadcast("a"), 3);
        assert_eq!(hub.broadcast("b"), 3);
        assert!(hub.send_to(clients[1].id(), "c"));
        for (i, peer) in peers.iter_mut().enumerate() {
            assert_eq!(read_frame(peer).unwrap(), frame::text("a"));
            assert_eq!(read_frame(peer).unwrap(), frame::text("b"));
            if i == 1 {
                assert_eq!(read_frame(peer).unwrap(), frame::text("c"));
            }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_client_is_dropped_and_the_others_keep_their_messages() {
        const UPDATES: usize = 200;
        let (hub, _) = hub(8, 4);
        // Small kernel buffers, so that a peer that does not read fills them in a few frames,
        // and frames larger than the buffers, so that writes are cut and finished later.
        let listener = listener(Some(4096));
        let (slow_socket, mut slow_peer) = pair(&listener, Some(4096)).await;
        let (fast_socket, mut fast_peer) = pair(&listener, Some(4096)).await;
        let slow = hub.reserve().unwrap().connect(slow_socket);
        let fast = hub.reserve().unwrap().connect(fast_socket);
        let slow = tokio::spawn(async move { slow.write_out().await });
        let _fast = tokio::spawn(async move { fast.write_out().await });
        let update = |i: usize| format!("{i:05}{}", "x".repeat(16 * 1024));
        let (read_tx, read) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for _ in 0..UPDATES {
                read_tx.send(read_frame(&mut fast_peer).unwrap()).unwrap();
            }
        });
        for i in 0..UPDATES {
            hub.broadcast(update(i));
            // The fast client reads each update before the next is sent.
            let got = tokio::task::block_in_place(|| read.recv().unwrap());
            assert_eq!(got, frame::text(&update(i)), "update {i}");
        }
        reader.join().unwrap();
        assert_eq!(hub.dropped_slow(), 1);
        assert_eq!(hub.len(), 1);
        // Dropped, the slow client's task writes what it had queued, then a close frame, and
        // ends: the slow peer reads a prefix of the updates, in order, then the reason.
        let frames = tokio::task::spawn_blocking(move || {
            std::iter::from_fn(|| read_frame(&mut slow_peer)).collect::<Vec<_>>()
        });
        slow.await.unwrap();
        let frames = frames.await.unwrap();
        let (last, updates) = frames.split_last().unwrap();
        assert_eq!(*last, frame::close(frame::POLICY, "too slow"));
        assert!(updates.len() < UPDATES / 2, "{} updates", updates.len());
        for (i, got) in updates.iter().enumerate() {
            assert_eq!(*got, frame::text(&update(i)), "update {i}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_threads_joining_and_leaving_keep_the_count_exact() {
        let (hub, _) = hub(16, 4);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    let hub = hub.clone();
                    let listener = &listener;
                    let runtime = runtime.clone();
                    s.spawn(move || {
                        let _runtime = runtime.enter();
                        for _ in 0..200 {
                            if let Some(slot) = hub.reserve() {
                                // Any accepted socket will do as this client's.
                                let peer =
                                    std::net::TcpStream::connect(listener.local_addr().unwrap())
                                        .unwrap();
                                let (socket, _) = listener.accept().unwrap();
                                socket.set_nonblocking(true).unwrap();
                                let socket = tokio::net::TcpStream::from_std(socket).unwrap();
                                let c = slot.connect(socket.into_split().1);
                                hub.broadcast("x");
                                drop(c);
                                drop(peer);
                            } else {
                                hub.broadcast("y");
                            }
                        }
                    });
                }
            });
        });
        assert_eq!(hub.len(), 0);
        assert_eq!(hub.inner.live.load(Ordering::Acquire), 0);
        // Every place is free again.
        let all: Vec<Slot> = (0..16).map(|_| hub.reserve().unwrap()).collect();
        assert!(hub.reserve().is_none());
        drop(all);
    }
}
