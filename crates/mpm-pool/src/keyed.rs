//! [`KeyedPool`]: objects per key (a client id and its connection), a maximum per key and in
//! total, eviction of another key's idle object at the total cap, fair waiters across keys,
//! idle objects and keys dropped by a background task, and statistics.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Stage};
use crate::metrics::{KeyedFigures, KeyedGauges, KeyedMetrics};
use crate::stats::CloseReason;
use crate::unwind;

mod builder;
mod fns;
pub use builder::KeyedBuilder;
pub use fns::from_fns;

/// Creates, validates and closes the objects of a [`KeyedPool`], given their key.
pub trait KeyedManager<K>: Send + Sync + 'static {
    /// The pooled object.
    type Object: Send + 'static;
    /// The error of [`create`](KeyedManager::create) and [`validate`](KeyedManager::validate).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates an object for `key`. Bounded by the pool's create timeout.
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send;

    /// Checks an idle object not used within the skip-validation window. The default accepts.
    fn validate(
        &self,
        key: &K,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (key, object);
        std::future::ready(Ok(()))
    }

    /// A cheap synchronous check on release: `true` closes the object. The default says no.
    fn is_broken(&self, key: &K, object: &mut Self::Object) -> bool {
        let _ = (key, object);
        false
    }

    /// Closes an object that leaves the pool. The default drops it.
    fn close(&self, key: &K, object: Self::Object) {
        let _ = key;
        drop(object);
    }
}

impl<K, M: KeyedManager<K> + ?Sized> KeyedManager<K> for Arc<M> {
    type Object = M::Object;
    type Error = M::Error;
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Object, Self::Error>> + Send {
        (**self).create(key)
    }
    fn validate(
        &self,
        key: &K,
        object: &mut Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).validate(key, object)
    }
    fn is_broken(&self, key: &K, object: &mut Self::Object) -> bool {
        (**self).is_broken(key, object)
    }
    fn close(&self, key: &K, object: Self::Object) {
        (**self).close(key, object)
    }
}

/// Settings of a [`KeyedPool`], set through its [`KeyedBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct KeyedConfig {
    /// The most objects for one key (default 1, as a connection per client).
    pub(crate) max_per_key: usize,
    /// The most objects in total (default 50, as the guide's Socket.IO pool).
    pub(crate) max_total: usize,
    /// The longest a `get` takes in total, creation and validation included (default 30 s);
    /// `None` waits for ever.
    pub(crate) acquire_timeout: Option<Duration>,
    /// The longest one creation may take (default 10 s), within the acquire timeout.
    pub(crate) create_timeout: Option<Duration>,
    /// The longest one validation may take (default 5 s), within the acquire timeout.
    pub(crate) validate_timeout: Option<Duration>,
    /// Idle objects used within this window are handed out unchecked (default 500 ms).
    pub(crate) skip_validation_within: Duration,
    /// The background maintenance task closes objects idle this long or longer, and drops
    /// keys left without objects (default 10 min). `None` keeps idle objects until they are
    /// evicted at the total cap or [`KeyedPool::evict_idle`] is called.
    pub(crate) idle_timeout: Option<Duration>,
    /// How often the background maintenance task runs (default 30 s; each period is
    /// shortened by a random 0-10%, as the plain pool's keepalive is, so that pools made
    /// together do not run their passes in step; zero is raised to 1 ms). `None` switches
    /// the task off. The task is started only when the pool is made inside a Tokio runtime
    /// (outside one, call [`KeyedPool::run_maintenance`] yourself). It holds the pool
    /// weakly and ends as soon as the pool is closed, or once the last pool handle and the
    /// last lent object are dropped.
    pub(crate) maintenance_interval: Option<Duration>,
}

impl Default for KeyedConfig {
    fn default() -> Self {
        KeyedConfig {
            max_per_key: 1,
            max_total: 50,
            acquire_timeout: Some(Duration::from_secs(30)),
            create_timeout: Some(Duration::from_secs(10)),
            validate_timeout: Some(Duration::from_secs(5)),
            skip_validation_within: Duration::from_millis(500),
            idle_timeout: Some(Duration::from_secs(600)),
            maintenance_interval: Some(Duration::from_secs(30)),
        }
    }
}

struct KEntry<T> {
    obj: T,
    last_used: Instant,
}

/// What a waiter is given: an idle object, or the right to create one (a reserved place).
enum Grant<T> {
    Object(KEntry<T>),
    Create,
}

struct Waiter<T> {
    /// The order of arrival across all keys.
    seq: u64,
    tx: oneshot::Sender<Grant<T>>,
}

struct KeySlots<T> {
    idle: VecDeque<KEntry<T>>,
    /// Idle, lent and being created.
    size: usize,
    /// The key's waiters, first come first. A key with waiters stays in the map even with
    /// no objects (its waiters wait for room in the total).
    waiters: VecDeque<Waiter<T>>,
}

impl<T> KeySlots<T> {
    fn new() -> Self {
        KeySlots {
            idle: VecDeque::new(),
            size: 0,
            waiters: VecDeque::new(),
        }
    }

    /// Drops the cancelled and timed-out waiters at the head of the line.
    fn purge(&mut self) {
        while self.waiters.front().is_some_and(|w| w.tx.is_closed()) {
            self.waiters.pop_front();
        }
    }

    /// The first waiter's arrival, if the key is under its own cap with nothing idle: the
    /// waiter waits only for room in the total.
    fn open_head(&self, max_per_key: usize) -> Option<u64> {
        if self.idle.is_empty() && self.size < max_per_key {
            self.waiters.front().map(|w| w.seq)
        } else {
            None
        }
    }
}

struct State<K, T> {
    keys: HashMap<K, KeySlots<T>>,
    total: usize,
    /// The next waiter's arrival number.
    seq: u64,
    /// Keys whose first waiter waits for room in the total, by that waiter's arrival: the
    /// order in which freed room is handed out across keys. Entries go stale (the waiter
    /// served or gone, the key at its own cap again) and are checked when read.
    open: VecDeque<(u64, K)>,
    closed: bool,
}

struct Inner<K, M: KeyedManager<K>> {
    manager: M,
    config: KeyedConfig,
    state: Mutex<State<K, M::Object>>,
    metrics: Option<KeyedMetrics>,
    /// Stops the maintenance task (on close, and when the pool is dropped).
    stop: Arc<Notify>,
    /// A maintenance task is running: set by whoever spawns one, cleared when it ends for
    /// any reason (its runtime shut down, the pool closed); a `get` that finds it clear
    /// starts a new one on its own runtime.
    ticking: AtomicBool,
}

impl<K, M: KeyedManager<K>> Drop for Inner<K, M> {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// A snapshot of a [`KeyedPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedStatus {
    /// Keys with at least one object.
    pub keys: usize,
    /// Objects in total: idle, lent and being created.
    pub total: usize,
    /// Idle objects.
    pub idle: usize,
    /// Objects lent out or being created (`total - idle`).
    pub in_use: usize,
    /// Waiting callers.
    pub waiting: usize,
}

/// A pool of objects per key: at most `max_per_key` for one key and `max_total` in all. At
/// the total cap, an idle object of another key is closed to make room; a key whose last
/// object closes is dropped; waiters are served first come, first served, and a waiter that
/// cannot be served yet (its key at its cap) does not hold up waiters on other keys.
/// A background maintenance task (on by default inside a Tokio runtime, see
/// [`KeyedBuilder::maintenance_interval`]) closes objects idle longer than
/// [`KeyedBuilder::idle_timeout`], so keys of clients that went away are dropped by
/// themselves.
///
/// ```
/// use mpm_pool::keyed::{KeyedManager, KeyedPool};
/// use std::num::NonZeroUsize;
///
/// struct Sockets;
///
/// impl KeyedManager<String> for Sockets {
///     type Object = String;
///     type Error = std::io::Error;
///     async fn create(&self, client: &String) -> Result<String, std::io::Error> {
///         Ok(format!("socket for {client}"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = KeyedPool::builder(Sockets).max_total(NonZeroUsize::new(2).unwrap()).build()?;
/// let a = pool.get("agent-a".to_owned()).await?;
/// assert_eq!(a.as_str(), "socket for agent-a");
/// drop(a);
/// drop(pool.get("agent-b".to_owned()).await?);
/// drop(pool.get("agent-c".to_owned()).await?); // evicts agent-a's idle socket
/// assert_eq!(pool.status().total, 2);
/// # Ok(())
/// # }
/// ```
pub struct KeyedPool<K, M: KeyedManager<K>> {
    inner: Arc<Inner<K, M>>,
}

impl<K, M: KeyedManager<K>> Clone for KeyedPool<K, M> {
    fn clone(&self) -> Self {
        KeyedPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, M: KeyedManager<K>> fmt::Debug for KeyedPool<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedPool").finish_non_exhaustive()
    }
}

/// Objects taken out of the state under the lock, to close after it, and why.
type Evicted<K, T> = Vec<(K, KEntry<T>, CloseReason)>;

/// What a caller does after looking at the state.
enum Step<K, T> {
    Served(Grant<T>, Evicted<K, T>),
    Wait(oneshot::Receiver<Grant<T>>),
}

impl<K, M> KeyedPool<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    /// A builder for a keyed pool of objects made by `manager`.
    pub fn builder(manager: M) -> KeyedBuilder<K, M> {
        KeyedBuilder::new(manager)
    }

    /// Assembles the pool; `metrics` are registered already (by the builder).
    pub(crate) fn with_parts(
        manager: M,
        mut config: KeyedConfig,
        metrics: Option<(KeyedMetrics, KeyedGauges)>,
    ) -> Self {
        config.max_per_key = config.max_per_key.max(1);
        config.max_total = config.max_total.max(1);
        let (metrics, gauges) = metrics.unzip();
        config.maintenance_interval = config
            .maintenance_interval
            .map(|d| d.max(Duration::from_millis(1)));
        let stop = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            manager,
            config,
            state: Mutex::new(State {
                keys: HashMap::new(),
                total: 0,
                seq: 0,
                open: VecDeque::new(),
                closed: false,
            }),
            metrics,
            stop,
            ticking: AtomicBool::new(false),
        });
        if let (Some(m), Some(g)) = (&inner.metrics, gauges) {
            m.collect(&inner, g, |inner| {
                let s = inner.status();
                KeyedFigures {
                    keys: s.keys,
                    size: s.total,
                    idle: s.idle,
                    in_use: s.in_use,
                    waiters: s.waiting,
                    max_size: inner.config.max_total,
                }
            });
        }
        inner.ensure_maintenance();
        KeyedPool { inner }
    }

    /// The pool's state (the metrics' gauges read the same at every scrape).
    pub fn status(&self) -> KeyedStatus {
        self.inner.status()
    }

    /// Runs one maintenance pass now: closes objects idle for the
    /// [`idle_timeout`](KeyedBuilder::idle_timeout) or longer and drops keys left empty.
    /// Returns how many objects it closed.
    pub fn run_maintenance(&self) -> usize {
        self.inner.maintain_once()
    }

    /// Objects for `key`: idle, lent and being created.
    pub fn size_of(&self, key: &K) -> usize {
        self.inner.state.lock().keys.get(key).map_or(0, |k| k.size)
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Gets an object for `key`: an idle one, a new one, or a new one after closing another
    /// key's idle object at the total cap; otherwise waits in line.
    pub async fn get(&self, key: K) -> Result<KeyedObject<K, M>, Error<M::Error>> {
        self.get_timeout(key, self.inner.config.acquire_timeout)
            .await
    }

    /// Like [`KeyedPool::get`] with a timeout for this call instead of the pool's.
    pub async fn get_timeout(
        &self,
        key: K,
        timeout: Option<Duration>,
    ) -> Result<KeyedObject<K, M>, Error<M::Error>> {
        let inner = &self.inner;
        if !inner.ticking.load(Ordering::Relaxed) {
            inner.ensure_maintenance();
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let step = {
                let mut s = inner.state.lock();
                if s.closed {
                    return Err(Error::Closed);
                }
                let mut evicted = Vec::new();
                match try_serve(&mut s, &inner.config, &key, &mut evicted) {
                    Some(g) => Step::Served(g, evicted),
                    None => {
                        let (tx, rx) = oneshot::channel();
                        enqueue(&mut s, &inner.config, &key, tx);
                        Step::Wait(rx)
                    }
                }
            };
            let grant = match step {
                Step::Served(grant, evicted) => {
                    inner.close_all(evicted);
                    grant
                }
                Step::Wait(rx) => match inner.wait(&key, rx, deadline, timeout).await {
                    Ok(grant) => grant,
                    Err(e) => {
                        if let (Error::Timeout { .. }, Some(m)) = (&e, &inner.metrics) {
                            m.timeout(Stage::Acquire);
                        }
                        return Err(e);
                    }
                },
            };
            match grant {
                Grant::Object(entry) => {
                    if entry.last_used.elapsed() < inner.config.skip_validation_within {
                        return Ok(inner.lend(key, entry));
                    }
                    // Held by a guard: a cancelled validation closes the object.
                    let mut hold = Holding {
                        inner,
                        key: &key,
                        entry: Some(entry),
                        reason: CloseReason::Cancelled,
                    };
                    let Some(e) = hold.entry.as_mut() else {
                        continue;
                    };
                    let obj = &mut e.obj;
                    let checked = bounded(
                        unwind::call_async("validate", async {
                            inner.manager.validate(&key, obj).await
                        }),
                        inner.config.validate_timeout,
                        deadline,
                    )
                    .await;
                    let ok = match checked {
                        Ok(Ok(Ok(()))) => true,
                        Ok(Err(panicked)) => {
                            // Dropping `hold` closes the object and frees its place.
                            hold.reason = CloseReason::Panicked;
                            return Err(panicked.into());
                        }
                        Ok(Ok(Err(_))) => {
                            hold.reason = CloseReason::Invalid;
                            false
                        }
                        Err(Expired::Step) => {
                            hold.reason = CloseReason::Timeout;
                            if let Some(m) = &inner.metrics {
                                m.timeout(Stage::Validate);
                            }
                            false
                        }
                        Err(Expired::Deadline) => {
                            // Dropping `hold` closes the object, its check unfinished.
                            return Err(inner.acquire_timed_out(Stage::Validate, timeout));
                        }
                    };
                    if ok && let Some(entry) = hold.entry.take() {
                        drop(hold);
                        return Ok(inner.lend(key, entry));
                    }
                    // Not ok: dropping `hold` closes the object, and the loop tries again.
                    drop(hold);
                }
                Grant::Create => {
                    let reservation = Reservation { inner, key: &key };
                    let created = bounded(
                        unwind::call_async("create", async { inner.manager.create(&key).await }),
                        inner.config.create_timeout,
                        deadline,
                    );
                    let created = created.await;
                    match created {
                        Ok(Err(panicked)) => {
                            // Dropping the reservation frees the place.
                            if let Some(m) = &inner.metrics {
                                m.create_errors.inc();
                            }
                            return Err(panicked.into());
                        }
                        Ok(Ok(Ok(obj))) => {
                            std::mem::forget(reservation);
                            if let Some(m) = &inner.metrics {
                                m.created.inc();
                            }
                            let entry = KEntry {
                                obj,
                                last_used: Instant::now(),
                            };
                            return Ok(inner.lend(key, entry));
                        }
                        Ok(Ok(Err(e))) => {
                            if let Some(m) = &inner.metrics {
                                m.create_errors.inc();
                            }
                            return Err(Error::Create(e));
                        }
                        Err(Expired::Step) => {
                            if let Some(m) = &inner.metrics {
                                m.timeout(Stage::Create);
                            }
                            return Err(Error::CreateTimeout(
                                inner.config.create_timeout.unwrap_or_default(),
                            ));
                        }
                        Err(Expired::Deadline) => {
                            return Err(inner.acquire_timed_out(Stage::Create, timeout));
                        }
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if let Some(m) = &inner.metrics {
                    m.timeout(Stage::Acquire);
                }
                return Err(Error::Timeout {
                    stage: Stage::Acquire,
                    timeout: timeout.unwrap_or_default(),
                });
            }
        }
    }

    /// Closes idle objects unused for `idle_for` or longer, and drops keys left empty.
    /// Returns how many it closed.
    pub fn evict_idle(&self, idle_for: Duration) -> usize {
        self.inner.evict_idle(idle_for)
    }

    /// Closes the pool: waiters get [`Error::Closed`], idle objects are closed now and lent
    /// ones when they come back.
    pub fn close(&self) {
        let mut evicted = Vec::new();
        {
            let mut s = self.inner.state.lock();
            s.closed = true;
            s.open.clear();
            let mut removed = 0;
            for (key, slots) in s.keys.iter_mut() {
                slots.waiters.clear();
                while let Some(e) = slots.idle.pop_front() {
                    slots.size -= 1;
                    removed += 1;
                    evicted.push((key.clone(), e, CloseReason::Shutdown));
                }
            }
            s.total -= removed;
            s.keys.retain(|_, k| k.size > 0);
        }
        self.inner.stop.notify_one();
        self.inner.close_all(evicted);
    }
}

/// Serves `key` now if it can: its idle object, or a reserved place (after evicting another
/// key's idle object at the total cap).
fn serve_now<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> Option<Grant<T>> {
    if let Some(slots) = s.keys.get_mut(key) {
        if let Some(e) = slots.idle.pop_front() {
            return Some(Grant::Object(e));
        }
        if slots.size >= config.max_per_key {
            return None;
        }
    }
    if s.total >= config.max_total {
        // Evict the idle object unused longest among the other keys.
        let victim = s
            .keys
            .iter()
            .filter(|(k, v)| *k != key && !v.idle.is_empty())
            .min_by_key(|(_, v)| v.idle.front().map(|e| e.last_used))
            .map(|(k, _)| k.clone())?;
        let slots = s.keys.get_mut(&victim)?;
        let e = slots.idle.pop_front()?;
        slots.size -= 1;
        let gone = slots.size == 0 && slots.waiters.is_empty();
        s.total -= 1;
        if gone {
            s.keys.remove(&victim);
        } else {
            // The victim's own waiters (later than the one served) now wait for room.
            note_open(s, config, &victim);
        }
        evicted.push((victim, e, CloseReason::Evicted));
    }
    let slots = s.keys.entry(key.clone()).or_insert_with(KeySlots::new);
    slots.size += 1;
    s.total += 1;
    Some(Grant::Create)
}

/// Serves a new caller: only if nobody waiting could be served first.
fn try_serve<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> Option<Grant<T>> {
    // Every waiter left in line after a dispatch could not be served; a waiter on the same
    // key came first, so a new caller on that key queues behind it. Waiters on other keys
    // wait for room in the total only when there is neither room nor an idle object to
    // evict, and then the new caller cannot be served either.
    if let Some(slots) = s.keys.get_mut(key) {
        slots.purge();
        if !slots.waiters.is_empty() {
            return None;
        }
        if let Some(e) = slots.idle.pop_front() {
            return Some(Grant::Object(e));
        }
    }
    serve_now(s, config, key, evicted)
}

/// Puts a caller on `key` in line.
fn enqueue<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    tx: oneshot::Sender<Grant<T>>,
) {
    let seq = s.seq;
    s.seq += 1;
    let slots = s.keys.entry(key.clone()).or_insert_with(KeySlots::new);
    slots.waiters.push_back(Waiter { seq, tx });
    if slots.open_head(config.max_per_key) == Some(seq) {
        // The newest arrival: it goes at the back.
        s.open.push_back((seq, key.clone()));
    }
}

/// Notes `key`'s first waiter in the order of those waiting for room in the total, if it
/// waits only for that.
fn note_open<K: Clone + Eq + Hash, T>(s: &mut State<K, T>, config: &KeyedConfig, key: &K) {
    let Some(slots) = s.keys.get_mut(key) else {
        return;
    };
    slots.purge();
    if let Some(seq) = slots.open_head(config.max_per_key) {
        let at = s.open.partition_point(|(n, _)| *n < seq);
        if s.open.get(at).is_none_or(|(n, _)| *n != seq) {
            s.open.insert(at, (seq, key.clone()));
        }
    }
}

/// The earliest waiter that waits only for room in the total: its arrival and key. Drops
/// stale entries on the way.
fn first_open<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
) -> Option<(u64, K)> {
    loop {
        let (seq, key) = s.open.front()?;
        let (seq, head) = match s.keys.get_mut(key) {
            Some(slots) => {
                slots.purge();
                (*seq, slots.open_head(config.max_per_key))
            }
            None => (*seq, None),
        };
        match head {
            Some(h) if h == seq => return s.open.front().cloned(),
            Some(h) => {
                // The key's first waiter went away; the next one takes its place in order.
                if let Some((_, key)) = s.open.pop_front() {
                    let at = s.open.partition_point(|(n, _)| *n < h);
                    if s.open.get(at).is_none_or(|(n, _)| *n != h) {
                        s.open.insert(at, (h, key));
                    }
                }
            }
            None => {
                s.open.pop_front();
            }
        }
    }
}

/// Hands what can be handed to the waiters, first come first served across keys: `key`'s
/// waiters if an object of `key` went idle, and those waiting for room in the total.
/// Waiters that cannot be served stay in line.
fn dispatch<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: Option<&K>,
    evicted: &mut Evicted<K, T>,
) {
    loop {
        // The released key's first waiter, if there is an idle object for it.
        let local = key.and_then(|k| {
            let slots = s.keys.get_mut(k)?;
            slots.purge();
            if slots.idle.is_empty() {
                return None;
            }
            slots.waiters.front().map(|w| w.seq)
        });
        let open = first_open(s, config);
        let served = match (local, open) {
            (Some(l), Some((o, okey))) if o < l => {
                serve_first(s, config, &okey, evicted)
                    || key.is_some_and(|k| serve_first(s, config, k, evicted))
            }
            (Some(_), _) => key.is_some_and(|k| serve_first(s, config, k, evicted)),
            (None, Some((_, okey))) => serve_first(s, config, &okey, evicted),
            (None, None) => false,
        };
        if !served {
            return;
        }
    }
}

/// Serves `key`'s first waiter if it can; says whether it did.
fn serve_first<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    evicted: &mut Evicted<K, T>,
) -> bool {
    let Some(grant) = serve_now(s, config, key, evicted) else {
        return false;
    };
    let waiter = s
        .keys
        .get_mut(key)
        .and_then(|slots| slots.waiters.pop_front());
    match waiter {
        Some(w) => {
            if let Err(grant) = w.tx.send(grant) {
                undo(s, config, key, grant);
            }
        }
        None => {
            // Not reached: the caller saw the waiter. Nothing was handed, so say so.
            undo(s, config, key, grant);
            return false;
        }
    }
    note_open(s, config, key);
    true
}

/// Takes back a grant that could not be delivered.
fn undo<K: Clone + Eq + Hash, T>(
    s: &mut State<K, T>,
    config: &KeyedConfig,
    key: &K,
    grant: Grant<T>,
) {
    match grant {
        Grant::Object(e) => {
            if let Some(slots) = s.keys.get_mut(key) {
                slots.idle.push_front(e);
            }
        }
        Grant::Create => forget_one(s, config, key),
    }
}

/// One object of `key` (lent or reserved) left the pool. A count that would go below zero
/// is a bookkeeping bug: caught in debug builds (the tests), saturated in release builds.
fn forget_one<K: Clone + Eq + Hash, T>(s: &mut State<K, T>, config: &KeyedConfig, key: &K) {
    debug_assert!(s.total > 0, "keyed pool total underflow");
    debug_assert!(
        s.keys.get(key).is_some_and(|k| k.size > 0),
        "keyed pool: an object left a key that has none"
    );
    s.total = s.total.saturating_sub(1);
    if let Some(slots) = s.keys.get_mut(key) {
        slots.size = slots.size.saturating_sub(1);
        slots.purge();
        if slots.size == 0 && slots.waiters.is_empty() {
            s.keys.remove(key);
        } else {
            note_open(s, config, key);
        }
    }
}

/// Drops the keys left with neither objects nor waiters (and the gone waiters).
fn retain_keys<K, T>(s: &mut State<K, T>) {
    s.keys.retain(|_, k| {
        k.waiters.retain(|w| !w.tx.is_closed());
        k.size > 0 || !k.waiters.is_empty()
    });
}

/// The maintenance task: a pass every `interval` until the pool is closed or dropped. It
/// holds the pool only weakly (and only during a pass), and `stop` wakes it at once on
/// either.
async fn maintain<K, M>(
    weak: Weak<Inner<K, M>>,
    stop: Arc<Notify>,
    interval: Duration,
    ended: MaintenanceEnded<K, M>,
) where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    let _ended = ended;
    loop {
        // Each period is shortened by a random 0-10%, so that pools made together do not
        // run their passes in step.
        if tokio::time::timeout(crate::backoff::jitter(interval, 10), stop.notified())
            .await
            .is_ok()
        {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.lock().closed {
            return;
        }
        inner.maintain_once();
    }
}

/// Runs when the maintenance task ends for any reason (returned, or dropped with its
/// runtime): marks it gone, so that the next `get` starts another on its own runtime.
struct MaintenanceEnded<K, M: KeyedManager<K>>(Weak<Inner<K, M>>);

impl<K, M: KeyedManager<K>> Drop for MaintenanceEnded<K, M> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.ticking.store(false, Ordering::Release);
        }
    }
}

/// Where a bounded step of a `get` ran out of time.
enum Expired {
    /// The step's own timeout.
    Step,
    /// The acquire deadline, which came first.
    Deadline,
}

/// Runs `fut` for at most `step` and no later than `deadline`.
async fn bounded<F: Future>(
    fut: F,
    step: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<F::Output, Expired> {
    let step_end = step.map(|d| Instant::now() + d);
    let (end, which) = match (step_end, deadline) {
        (None, None) => return Ok(fut.await),
        (Some(s), None) => (s, Expired::Step),
        (None, Some(d)) => (d, Expired::Deadline),
        (Some(s), Some(d)) if d <= s => (d, Expired::Deadline),
        (Some(s), Some(_)) => (s, Expired::Step),
    };
    tokio::time::timeout_at(end, fut).await.map_err(|_| which)
}

impl<K, M> Inner<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    /// Starts the maintenance task on the caller's runtime unless one is running (or the
    /// pool is closed, or maintenance is off, or there is no runtime): at build, and from a
    /// `get` that finds the task gone, so that a pool built in one runtime and used from
    /// another after the first shut down gets its maintenance back.
    fn ensure_maintenance(self: &Arc<Self>) {
        let Some(interval) = self.config.maintenance_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.state.lock().closed {
            return;
        }
        if self
            .ticking
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // Made here, not in the task: a task dropped before its first poll (its runtime
            // shut down first) still clears the flag.
            let ended = MaintenanceEnded(Arc::downgrade(self));
            let stop = Arc::clone(&self.stop);
            runtime.spawn(maintain(Arc::downgrade(self), stop, interval, ended));
        }
    }

    /// The acquire deadline passed during `stage`: counted as an acquire timeout.
    fn acquire_timed_out(&self, stage: Stage, timeout: Option<Duration>) -> Error<M::Error> {
        if let Some(m) = &self.metrics {
            m.timeout(Stage::Acquire);
        }
        Error::Timeout {
            stage,
            timeout: timeout.unwrap_or_default(),
        }
    }

    fn status(&self) -> KeyedStatus {
        let s = self.state.lock();
        let idle = s.keys.values().map(|k| k.idle.len()).sum();
        KeyedStatus {
            keys: s.keys.values().filter(|k| k.size > 0).count(),
            total: s.total,
            idle,
            in_use: s.total.saturating_sub(idle),
            // A waiter that timed out or was cancelled leaves its entry until it reaches
            // the head of its key's line or a maintenance pass; it is not counted.
            waiting: s
                .keys
                .values()
                .flat_map(|k| k.waiters.iter())
                .filter(|w| !w.tx.is_closed())
                .count(),
        }
    }

    fn evict_idle(&self, idle_for: Duration) -> usize {
        let now = Instant::now();
        let mut evicted = Vec::new();
        {
            let mut s = self.state.lock();
            let mut removed = 0;
            for (key, slots) in s.keys.iter_mut() {
                while slots
                    .idle
                    .front()
                    .is_some_and(|e| now.saturating_duration_since(e.last_used) >= idle_for)
                {
                    if let Some(e) = slots.idle.pop_front() {
                        slots.size -= 1;
                        removed += 1;
                        evicted.push((key.clone(), e, CloseReason::Idle));
                    }
                }
            }
            s.total -= removed;
            retain_keys(&mut s);
            dispatch(&mut s, &self.config, None, &mut evicted);
        }
        let n = evicted
            .iter()
            .filter(|(_, _, r)| *r == CloseReason::Idle)
            .count();
        self.close_all(evicted);
        n
    }

    /// One maintenance pass: idle objects past the idle timeout, then empty keys.
    fn maintain_once(&self) -> usize {
        match self.config.idle_timeout {
            Some(idle_for) => self.evict_idle(idle_for),
            None => {
                {
                    let mut s = self.state.lock();
                    retain_keys(&mut s);
                }
                self.status();
                0
            }
        }
    }

    async fn wait(
        &self,
        key: &K,
        rx: oneshot::Receiver<Grant<M::Object>>,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<Grant<M::Object>, Error<M::Error>> {
        let mut waiting = Waiting {
            inner: self,
            key,
            rx: Some(rx),
        };
        let rx = waiting.rx.as_mut().ok_or(Error::Closed)?;
        let got = match deadline {
            None => rx.await.ok(),
            Some(d) => match tokio::time::timeout_at(d, rx).await {
                Ok(r) => r.ok(),
                Err(_) => {
                    return Err(Error::Timeout {
                        stage: Stage::Acquire,
                        timeout: timeout.unwrap_or_default(),
                    });
                }
            },
        };
        waiting.rx = None;
        got.ok_or(Error::Closed)
    }

    fn lend(self: &Arc<Self>, key: K, entry: KEntry<M::Object>) -> KeyedObject<K, M> {
        KeyedObject {
            key,
            entry: Some(entry),
            pool: Arc::clone(self),
            discard: false,
        }
    }

    fn release(&self, key: &K, mut entry: KEntry<M::Object>, discard: bool) {
        let broken_reason = if discard {
            Some(CloseReason::Discarded)
        } else {
            match unwind::call("is_broken", || self.manager.is_broken(key, &mut entry.obj)) {
                Ok(false) => None,
                Ok(true) => Some(CloseReason::Broken),
                Err(_) => Some(CloseReason::Panicked),
            }
        };
        let broken = broken_reason.is_some();
        let mut evicted = Vec::new();
        {
            let mut s = self.state.lock();
            let mut local = None;
            if broken || s.closed {
                forget_one(&mut s, &self.config, key);
                let reason = broken_reason.unwrap_or(CloseReason::Shutdown);
                evicted.push((key.clone(), entry, reason));
            } else {
                entry.last_used = Instant::now();
                match s.keys.get_mut(key) {
                    Some(slots) => {
                        slots.idle.push_back(entry);
                        slots.purge();
                        if !slots.waiters.is_empty() {
                            local = Some(key);
                        }
                    }
                    None => evicted.push((key.clone(), entry, CloseReason::Shutdown)),
                }
            }
            dispatch(&mut s, &self.config, local, &mut evicted);
        }
        self.close_all(evicted);
    }

    fn close_lent(&self, key: &K, entry: KEntry<M::Object>, reason: CloseReason) {
        let mut evicted = vec![(key.clone(), entry, reason)];
        {
            let mut s = self.state.lock();
            forget_one(&mut s, &self.config, key);
            dispatch(&mut s, &self.config, None, &mut evicted);
        }
        self.close_all(evicted);
    }

    fn close_all(&self, evicted: Evicted<K, M::Object>) {
        for (key, e, reason) in evicted {
            if let Some(m) = &self.metrics {
                m.closed(reason);
            }
            // A panic in `close` has already dropped the object: nothing more to do.
            let _ = unwind::call("close", || self.manager.close(&key, e.obj));
        }
    }
}

/// Gives a grant back if the waiting caller goes away (cancelled or timed out).
struct Waiting<'a, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    inner: &'a Inner<K, M>,
    key: &'a K,
    rx: Option<oneshot::Receiver<Grant<M::Object>>>,
}

impl<K, M> Drop for Waiting<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        // After `close`, no grant can arrive; one that arrived before is taken back. The
        // waiter's entry goes when it reaches the head of its key's line (its sender
        // reports closed) or at a maintenance pass.
        rx.close();
        let Ok(grant) = rx.try_recv() else { return };
        let mut evicted = Vec::new();
        {
            let mut s = self.inner.state.lock();
            let mut local = None;
            match grant {
                Grant::Object(e) => match s.keys.get_mut(self.key) {
                    Some(slots) => {
                        slots.idle.push_front(e);
                        local = Some(self.key);
                    }
                    None => evicted.push((self.key.clone(), e, CloseReason::Shutdown)),
                },
                Grant::Create => forget_one(&mut s, &self.inner.config, self.key),
            }
            dispatch(&mut s, &self.inner.config, local, &mut evicted);
        }
        self.inner.close_all(evicted);
    }
}

/// Holds a lent entry being validated; closes it if dropped while still holding it.
struct Holding<'a, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    inner: &'a Inner<K, M>,
    key: &'a K,
    entry: Option<KEntry<M::Object>>,
    /// Why the entry is closed if the guard still holds it when dropped.
    reason: CloseReason,
}

impl<K, M> Drop for Holding<'_, K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.close_lent(self.key, entry, self.reason);
        }
    }
}

/// Frees a reserved place if the creation fails or is cancelled.
struct Reservation<'a, K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> {
    inner: &'a Inner<K, M>,
    key: &'a K,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Drop
    for Reservation<'_, K, M>
{
    fn drop(&mut self) {
        let mut evicted = Vec::new();
        {
            let mut s = self.inner.state.lock();
            forget_one(&mut s, &self.inner.config, self.key);
            dispatch(&mut s, &self.inner.config, None, &mut evicted);
        }
        self.inner.close_all(evicted);
    }
}

impl<K, M> fmt::Debug for KeyedObject<K, M>
where
    K: Clone + Eq + Hash + Send + Sync + 'static + fmt::Debug,
    M: KeyedManager<K>,
    M::Object: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedObject")
            .field("key", &self.key)
            .field("object", &**self)
            .finish_non_exhaustive()
    }
}

/// An object lent by a [`KeyedPool`]; it goes back when dropped.
pub struct KeyedObject<K, M: KeyedManager<K>>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    key: K,
    entry: Option<KEntry<M::Object>>,
    pool: Arc<Inner<K, M>>,
    discard: bool,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> KeyedObject<K, M> {
    /// The object's key.
    pub fn key(this: &Self) -> &K {
        &this.key
    }

    /// Marks the object broken: it is closed instead of returned.
    pub fn discard(this: &mut Self) {
        this.discard = true;
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Drop for KeyedObject<K, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.pool.release(&self.key, entry, self.discard);
        }
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> Deref for KeyedObject<K, M> {
    type Target = M::Object;
    fn deref(&self) -> &M::Object {
        match &self.entry {
            Some(e) => &e.obj,
            None => unreachable!("a KeyedObject holds its entry until dropped"),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static, M: KeyedManager<K>> DerefMut
    for KeyedObject<K, M>
{
    fn deref_mut(&mut self) -> &mut M::Object {
        match &mut self.entry {
            Some(e) => &mut e.obj,
            None => unreachable!("a KeyedObject holds its entry until dropped"),
        }
    }
}
