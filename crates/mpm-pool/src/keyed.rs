//! [`KeyedPool`]: objects per key (a client id and its connection), a maximum per key and in
//! total, eviction of another key's idle object at the total cap, fair waiters across keys,
//! idle objects and keys dropped by a background task, and statistics.

mod builder;
mod config;
mod fns;
mod guards;
mod inner;
mod locks;
mod manager;
mod object;
mod state;

pub use builder::KeyedBuilder;
pub use fns::from_fns;
pub use manager::KeyedManager;
pub use object::KeyedObject;

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::config::KeyedConfig;
use self::guards::OnKey;
use self::inner::Inner;
use self::state::{Got, Grant, KEntry, Table};
use crate::clock::{Clock, NEVER, Since, ms, tick_for};
use crate::deadline::{Deadline, Expired, bounded};
use crate::error::{Error, Stage};
use crate::guards::{Checking, Reservation};
use crate::metrics::{Figures, Gauges, PoolMetrics};
use crate::stats::CloseReason;
use crate::task::Maintained;
use crate::unwind;
use crate::waiters::Woken;

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
        metrics: Option<(PoolMetrics, Gauges)>,
    ) -> Self {
        config.max_per_key = config.max_per_key.max(1);
        config.max_total = config.max_total.max(1);
        let (metrics, gauges) = metrics.unzip();
        config.maintenance_interval = config
            .maintenance_interval
            .map(|d| d.max(Duration::from_millis(1)));
        let (max_per_key, max_total) = (config.max_per_key, config.max_total);
        let inner = Arc::new(Inner {
            manager,
            table: Table::new(max_per_key, max_total),
            metrics,
            wake: Arc::new(Notify::new()),
            ticking: AtomicBool::new(false),
            clock: Clock::new(
                config
                    .maintenance_interval
                    .map(|_| tick_for(config.skip_validation_within, None)),
            ),
            sweep_due: CachePadded::new(AtomicU64::new(NEVER)),
            skip_window: ms(config.skip_validation_within),
            config,
        });
        if let (Some(m), Some(g)) = (&inner.metrics, gauges) {
            m.collect(&inner, g, |inner| {
                let s = inner.status();
                Figures {
                    size: s.total,
                    idle: s.idle,
                    in_use: s.in_use,
                    waiters: s.waiting,
                    max_size: inner.config.max_total,
                    available: None,
                    keys: Some(s.keys),
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
    /// [`idle_timeout`](KeyedBuilder::idle_timeout) or longer, and idle objects that
    /// [`KeyedManager::is_broken`] says are broken, and drops keys left empty.
    /// Returns how many objects it closed.
    pub fn run_maintenance(&self) -> usize {
        self.inner.maintain_once()
    }

    /// Objects for `key`: idle, lent and being created.
    pub fn size_of(&self, key: &K) -> usize {
        self.inner.table.size_of(key)
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
        // Fixed the first time it is needed (a wait, or a step that does not finish at once),
        // as the plain pool's: a get served from an idle object never reads the clock for it.
        let mut deadline = Deadline::new(timeout);
        // Set when the caller had to wait (for an object or a creation), for the histogram.
        let mut waited_since: Option<Since> = None;
        loop {
            // A caller that must wait joins its key's line with the context's waker (this
            // `poll_fn` never suspends): its first look needs no lock.
            let mut evicted = Vec::new();
            let got = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(inner.table.get(&key, || cx.waker().clone(), &mut evicted))
            })
            .await;
            if !evicted.is_empty() {
                inner.close_all(evicted);
            }
            let (slot, grant) = match got {
                Got::Closed => return Err(Error::Closed),
                Got::Served(slot, grant) => (slot, grant),
                Got::Wait(slot, id) => {
                    match inner
                        .wait(&key, &slot, id, &mut deadline, timeout, &mut waited_since)
                        .await
                    {
                        Ok(grant) => (slot, grant),
                        Err(e) => {
                            if let (Error::Timeout { .. }, Some(m)) = (&e, &inner.metrics) {
                                m.timeout(Stage::Acquire);
                            }
                            return Err(e);
                        }
                    }
                }
            };
            match grant {
                Grant::Object(entry) => {
                    // The coarse clock may lag by `lag`: count that against the window.
                    let idle_for = inner
                        .now()
                        .saturating_add(inner.clock.lag)
                        .saturating_sub(entry.last_used);
                    if idle_for < inner.skip_window {
                        return Ok(inner.lend(key, slot, entry, waited_since));
                    }
                    // Held by a guard: a cancelled validation closes the object.
                    let mut hold = Checking {
                        place: OnKey {
                            inner,
                            key: &key,
                            slot: &slot,
                        },
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
                        &mut deadline,
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
                        return Ok(inner.lend(key, slot, entry, waited_since));
                    }
                    // Not ok: dropping `hold` closes the object, and the loop tries again.
                    drop(hold);
                }
                Grant::Create => {
                    let reservation = Reservation(OnKey {
                        inner,
                        key: &key,
                        slot: &slot,
                    });
                    if inner.metrics.is_some() {
                        waited_since.get_or_insert_with(|| Since::At(Instant::now()));
                    }
                    let started = Instant::now();
                    let created = bounded(
                        unwind::call_async("create", async { inner.manager.create(&key).await }),
                        inner.config.create_timeout,
                        &mut deadline,
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
                                m.create_time.record_duration(started.elapsed());
                            }
                            let entry = KEntry {
                                obj,
                                last_used: inner.clock.precise(),
                                order: inner.clock.raw(),
                            };
                            return Ok(inner.lend(key, slot, entry, waited_since));
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
            let now = Instant::now();
            if deadline.at(now).is_some_and(|d| now >= d) {
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
        self.inner.evict_idle(Some(idle_for), false)
    }

    /// Closes the pool: waiters get [`Error::Closed`], idle objects are closed now and lent
    /// ones when they come back.
    pub fn close(&self) {
        let mut evicted = Vec::new();
        let mut woken = Woken::default();
        self.inner.table.close(&mut evicted, &mut woken);
        woken.wake_all(std::task::Waker::wake);
        self.inner.wake.notify_one();
        self.inner.close_all(evicted);
    }
}
