//! `RedisInvalidationBus`: invalidations published on a Redis channel and applied to every
//! other instance's local caches.
//!
//! # Staleness bound
//!
//! Once Redis has accepted an invalidation's `PUBLISH`, every other instance with a bus on the
//! channel has dropped the matching entries from its attached caches within
//! [`staleness_bound`](RedisInvalidationBus::staleness_bound) (plus the time to apply it):
//!
//! - while its subscription holds, when the message arrives (about a millisecond on one host);
//! - if its subscription broke and the message was lost: the break is found at once when the
//!   connection reports it (a killed connection, a restarted server), or by a heartbeat `PING`
//!   that goes unanswered, at most `heartbeat + heartbeat_timeout` after the break; the
//!   attached caches are cleared then, after every failed reconnection attempt (at most
//!   `reconnect_max` apart), and once more when the subscription is back.
//!
//! So the bound is `max(heartbeat + heartbeat_timeout, reconnect_max)`: 500 ms by default.

mod listen;
pub(crate) mod local;
pub(crate) mod message;

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mpm_metrics::{Registry, Scope};
use tokio::sync::oneshot;

use crate::server::{Failure, Redis};
use crate::stats::{self, BusCounters, BusSnapshot};
use crate::{Error, Invalidation, LocalCache};
use local::Mode;

/// The channel of the bus of `namespace`, unless the builder says otherwise.
pub(crate) fn default_channel(namespace: &str) -> String {
    format!("{{{namespace}}}:invalidations")
}

/// Publishes invalidations on a Redis channel and applies the other instances' to the caches
/// [`attach`](Self::attach)ed here. See the [module docs](self) for the staleness bound.
///
/// A [`RedisTier`](crate::RedisTier) built with [`bus`](crate::RedisTierBuilder::bus)
/// publishes every removal it applies, so a `TieredCache` over it needs no call of its own:
/// `cache.invalidate_prefix("agent:42:")` removes the entries from this instance's L1, from
/// Redis, and from every other instance's L1. A cache without a Redis tier calls
/// [`publish`](Self::publish) after invalidating locally.
///
/// Clones share the bus; the subscriber stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisInvalidationBus {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    shared: Arc<Shared>,
    publish_timeout: Duration,
    bound: Duration,
    _stop: oneshot::Sender<()>,
    _scope: Option<Scope>,
}

/// What the subscriber and the bus's handles share.
pub(crate) struct Shared {
    pub(crate) channel: String,
    pub(crate) instance: String,
    pub(crate) client_name: String,
    targets: RwLock<Vec<Arc<dyn LocalCache>>>,
    subscribed: AtomicBool,
    /// Entries this instance's tiers wrote to Redis lately (see [`Journal`]).
    pub(crate) journal: Journal,
    pub(crate) counters: BusCounters,
    /// The applier thread's queue.
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

/// The Redis keys this instance wrote lately, with when. A write that raced an invalidation
/// (its value was loaded before the invalidation, and written after it) is undone by the
/// writer when it receives the message; if the message was lost, the bus removes every entry
/// written since shortly before it found the subscription broken, when it subscribes again
/// and once more a window later, each only if it still holds the value this instance wrote
/// (a newer write is never undone).
/// Writes wait (fail) while the subscription is known to be broken.
pub(crate) struct Journal {
    /// How far back a break may have started before it was found.
    window: Duration,
    /// When, and what was written.
    entries: Mutex<VecDeque<(Instant, Written)>>,
}

/// The length of the checksum that heads every record of the entry codec (a CRC-32 of the key
/// and the body): two writes of different values under a key almost never share it.
const CHECKSUM_BYTES: usize = 4;

/// One write in the [`Journal`]: the Redis key, the cache key, and the record's checksum (its
/// first bytes), by which an undo recognises the value this write stored.
#[derive(Clone, Debug)]
pub(crate) struct Written {
    pub(crate) redis_key: String,
    pub(crate) key: String,
    pub(crate) checksum: Vec<u8>,
}

impl Journal {
    /// Records a write of `record` under `redis_key` (cache key `key`).
    pub(crate) fn record(&self, redis_key: &str, key: &str, record: &[u8]) {
        let now = Instant::now();
        let mut e = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while e
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > self.window)
        {
            e.pop_front();
        }
        e.push_back((
            now,
            Written {
                redis_key: redis_key.to_owned(),
                key: key.to_owned(),
                checksum: record[..record.len().min(CHECKSUM_BYTES)].to_vec(),
            },
        ));
    }

    /// The writes that started between `window` before `found` (when the break was found) and
    /// `until` (when the subscription was back).
    pub(crate) fn written(&self, found: Instant, until: Instant) -> Vec<Written> {
        let from = found.checked_sub(self.window).unwrap_or(found);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(t, ..)| (from..until).contains(t))
            .map(|(_, w)| w.clone())
            .collect()
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

impl Shared {
    fn targets(&self) -> Vec<Arc<dyn LocalCache>> {
        self.targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_subscribed(&self, on: bool) {
        self.subscribed.store(on, Ordering::Release);
    }

    /// Applies `what` to every attached cache in `mode`; returns whether every cache applied
    /// it (a cache that panics counts as failed).
    fn apply(&self, what: &Invalidation, mode: Mode) -> bool {
        let mut ok = true;
        for target in self.targets() {
            let done = catch_unwind(AssertUnwindSafe(|| {
                local::with_mode(mode, || target.invalidate(what))
            }));
            ok &= matches!(done, Ok(Ok(_)));
        }
        ok
    }

    /// Clears every attached cache: messages may have been lost.
    pub(crate) fn clear_local(&self) {
        self.send(Job::Clear);
    }

    fn send(&self, job: Job) {
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job);
    }

    /// Runs one job on the applier thread.
    fn run(&self, job: Job) {
        match job {
            Job::Clear => {
                self.counters.local_clears.inc();
                self.apply(&Invalidation::All, Mode::LocalOnly);
            }
            Job::Apply(what, sent_us) => {
                if self.apply(&what, Mode::Remote) {
                    self.counters.applied.inc();
                } else {
                    self.counters.failed.inc();
                }
                let delay_us = message::now_us().saturating_sub(sent_us);
                self.counters
                    .delivery_seconds
                    .record_duration(Duration::from_micros(delay_us));
            }
        }
    }

    /// Handles one message from the channel.
    pub(crate) fn receive(&self, payload: &[u8]) {
        let Some(m) = message::decode(payload) else {
            self.counters.malformed.inc();
            return;
        };
        if m.instance == self.instance {
            self.counters.own.inc();
            return;
        }
        self.send(Job::Apply(m.what, m.sent_us));
    }
}

/// Work for the applier thread. Invalidations are applied on a thread of the bus's own, not
/// on the runtime thread that reads them: applying one calls the Redis tier synchronously,
/// which waits for that runtime.
enum Job {
    Apply(Invalidation, u64),
    Clear,
}

/// Starts the applier thread; it ends when `shared` is gone.
fn start_applier(shared: &Arc<Shared>, jobs: std::sync::mpsc::Receiver<Job>) -> Result<(), Error> {
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("mpm-cache-bus".into())
        .spawn(move || {
            while let Ok(job) = jobs.recv() {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                shared.run(job);
            }
        })
        .map(drop)
        .map_err(|source| Error::Runtime { source })
}

/// What a tier needs to publish the removals it applies: the bus's channel and instance id.
#[derive(Clone)]
pub(crate) struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    pub(crate) fn channel(&self) -> &str {
        &self.shared.channel
    }

    pub(crate) fn message(&self, what: &Invalidation) -> String {
        message::encode(&self.shared.instance, what)
    }

    /// Whether the subscription holds (writes wait while it does not).
    pub(crate) fn subscribed(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    pub(crate) fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    pub(crate) fn counted(&self, ok: bool) {
        if ok {
            self.shared.counters.published.inc();
        } else {
            self.shared.counters.publish_errors.inc();
        }
    }
}

impl fmt::Debug for RedisInvalidationBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInvalidationBus")
            .field("channel", &self.inner.shared.channel)
            .field("instance", &self.inner.shared.instance)
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisInvalidationBus`]: [`RedisInvalidationBus::builder`].
#[derive(Debug)]
pub struct RedisInvalidationBusBuilder {
    redis: Redis,
    channel: String,
    publish_timeout: Duration,
    timing: listen::Timing,
    metrics: Option<(Registry, String)>,
}

impl RedisInvalidationBusBuilder {
    /// The channel, instead of `{namespace}:invalidations`.
    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = channel.to_owned();
        self
    }

    /// How long a publish may wait for Redis. Default: 100 ms.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// How long subscribing may take, and [`build`](Self::build) waits for the first
    /// subscription. Default: 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timing.connect_timeout = timeout;
        self
    }

    /// How often the subscription is checked with a `PING`, and how long the answer may take.
    /// Defaults: 250 ms and 250 ms.
    pub fn heartbeat(mut self, every: Duration, timeout: Duration) -> Self {
        self.timing.heartbeat = every;
        self.timing.heartbeat_timeout = timeout;
        self
    }

    /// The longest wait between two reconnection attempts (they start at 5 ms and double).
    /// Default: 250 ms.
    pub fn reconnect_max(mut self, wait: Duration) -> Self {
        self.timing.reconnect_max = wait;
        self
    }

    /// Registers the bus's metrics (`mpm_cache_bus_*`, see the crate docs) in `registry` under
    /// the instance name `name`, at [`build`](Self::build).
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Starts the subscriber and waits up to the connect timeout for the first subscription.
    /// A server that does not answer is not an error: the subscriber keeps trying (see
    /// [`is_subscribed`](RedisInvalidationBus::is_subscribed)). Errors: a zero timing, or
    /// metrics that cannot be registered.
    pub fn build(self) -> Result<RedisInvalidationBus, Error> {
        let t = self.timing;
        if [
            t.connect_timeout,
            t.heartbeat,
            t.heartbeat_timeout,
            t.reconnect_max,
            self.publish_timeout,
        ]
        .iter()
        .any(Duration::is_zero)
        {
            return Err(Error::InvalidConfig {
                what: "every bus timeout and interval must be above zero".into(),
            });
        }
        let scope = stats::scope(self.metrics.as_ref(), "cache_bus")?;
        let counters = match &scope {
            Some(scope) => BusCounters::register(scope)?,
            None => BusCounters::default(),
        };
        let instance = format!("{:016x}", fastrand::u64(..));
        let (jobs, queue) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            channel: self.channel,
            client_name: format!("mpm-cache-bus:{instance}"),
            instance,
            targets: RwLock::new(Vec::new()),
            subscribed: AtomicBool::new(false),
            journal: Journal {
                window: t.heartbeat + t.heartbeat_timeout + self.publish_timeout,
                entries: Mutex::new(VecDeque::new()),
            },
            counters,
            jobs: Mutex::new(jobs),
        });
        start_applier(&shared, queue)?;
        if let Some(scope) = &scope {
            let subscribed = scope.int_gauge(
                "subscribed",
                "1 while the subscription holds, else 0, at scrape time.",
                &[],
            )?;
            scope.collector(&shared, move |s| {
                subscribed.set(i64::from(s.subscribed.load(Ordering::Acquire)));
            });
        }
        let (stop, stopped) = oneshot::channel();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        self.redis.handle().spawn(listen::run(
            Arc::clone(&shared),
            self.redis.client().clone(),
            t,
            stopped,
            first_tx,
        ));
        let _ = first_rx.recv_timeout(t.connect_timeout);
        Ok(RedisInvalidationBus {
            inner: Arc::new(Inner {
                redis: self.redis,
                shared,
                publish_timeout: self.publish_timeout,
                bound: (t.heartbeat + t.heartbeat_timeout).max(t.reconnect_max),
                _stop: stop,
                _scope: scope,
            }),
        })
    }
}

impl RedisInvalidationBus {
    /// A builder for the bus of `namespace` (the channel `{namespace}:invalidations`) on
    /// `redis`.
    pub fn builder(redis: &Redis, namespace: &str) -> RedisInvalidationBusBuilder {
        RedisInvalidationBusBuilder {
            redis: redis.clone(),
            channel: default_channel(namespace),
            publish_timeout: Duration::from_millis(100),
            timing: listen::Timing {
                connect_timeout: Duration::from_secs(1),
                heartbeat: Duration::from_millis(250),
                heartbeat_timeout: Duration::from_millis(250),
                reconnect_max: Duration::from_millis(250),
            },
            metrics: None,
        }
    }

    /// Applies the other instances' invalidations to `cache` from now on (and clears it when
    /// messages may have been lost). A `TieredCache` is attached by a clone of it.
    pub fn attach(&self, cache: impl LocalCache + 'static) {
        self.inner
            .shared
            .targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(cache));
    }

    /// Publishes `what` to the other instances (this instance ignores it: invalidate locally
    /// first). Waits at most the publish timeout.
    pub fn publish(&self, what: &Invalidation) -> Result<(), Error> {
        let inner = &*self.inner;
        let text = message::encode(&inner.shared.instance, what);
        let channel = inner.shared.channel.as_str();
        let sent = inner.redis.run(inner.publish_timeout, |mut c| async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(text)
                .query_async::<i64>(&mut c)
                .await
        });
        let publisher = self.publisher();
        publisher.counted(sent.is_ok());
        sent.map(drop).map_err(|f| match f {
            Failure::Command(source) | Failure::Connection(source) => Error::Redis {
                op: "publish",
                source,
            },
            _ => Error::Timeout {
                op: "publish",
                timeout: inner.publish_timeout,
            },
        })
    }

    /// Whether the subscription holds now.
    pub fn is_subscribed(&self) -> bool {
        self.inner.shared.subscribed.load(Ordering::Acquire)
    }

    /// How long after an invalidation was published another instance may still serve an
    /// entry it removes (see the [module docs](self)).
    pub fn staleness_bound(&self) -> Duration {
        self.inner.bound
    }

    /// This instance's id, as written in its messages.
    pub fn instance_id(&self) -> &str {
        &self.inner.shared.instance
    }

    /// The name of the subscriber's connection (`CLIENT SETNAME`, shown by `CLIENT LIST`).
    pub fn client_name(&self) -> &str {
        &self.inner.shared.client_name
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.inner.shared.channel
    }

    /// What the bus has done so far.
    pub fn stats(&self) -> BusSnapshot {
        self.inner.shared.counters.snapshot()
    }

    pub(crate) fn publisher(&self) -> Publisher {
        Publisher {
            shared: Arc::clone(&self.inner.shared),
        }
    }
}

/// The handle's state is dropped with the last clone; the subscriber ends with it.
impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.set_subscribed(false);
    }
}
