//! `RedisInvalidationBus`: invalidations published on a Redis channel and applied to every
//! other instance's local caches.

mod listen;
pub(crate) mod local;
pub(crate) mod message;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mpm_metrics::{Registry, Scope};
use tokio::sync::oneshot;

use crate::server::{Failure, Redis};
use crate::stats::{self, BusCounters, BusSnapshot};
use crate::tier::scripts;
use crate::{Error, Invalidation, LocalCache};
use local::Mode;

/// The channel of the bus of `namespace`, unless the builder says otherwise.
pub(crate) fn default_channel(namespace: &str) -> String {
    format!("{{{namespace}}}:invalidations")
}

/// Publishes invalidations on a Redis channel and applies the other instances' to the caches
/// [`attach`](Self::attach)ed here.
///
/// A [`RedisTier`](crate::RedisTier) built with [`bus`](crate::RedisTierBuilder::bus)
/// publishes every removal it applies, so a `TieredCache` over it needs no call of its own:
/// `cache.invalidate_prefix("agent:42:")` removes the entries from this instance's L1, from
/// Redis, and from every other instance's L1. A cache without a Redis tier calls
/// [`publish`](Self::publish) after invalidating locally.
///
/// Clones share the bus; the subscriber stops when the last clone is dropped.
///
/// # Staleness bound
///
/// Once Redis has accepted an invalidation's `PUBLISH`, every other instance with a bus on the
/// channel has dropped the matching entries from its attached caches within
/// [`staleness_bound`](RedisInvalidationBus::staleness_bound) (plus the time to apply it):
///
/// - while its subscription holds, when the message arrives (about a millisecond on one host);
/// - if its subscription broke and the message was lost: the break is found at once when the
///   connection reports it (a killed connection, a restarted server), or by a heartbeat `PING`
///   that goes unanswered, at most `heartbeat + heartbeat_timeout` after the break; the
///   attached caches are cleared then, after every failed reconnection attempt (at most
///   `reconnect_max` apart), and once more when the subscription is back.
///
/// So the bound is `max(heartbeat + heartbeat_timeout, reconnect_max)`: 500 ms by default.
///
/// # Writes that raced an invalidation
///
/// A value loaded before another instance's invalidation and written to Redis after it would
/// bring the old value back for everyone. When this instance receives the invalidation, its
/// tier removes from Redis the entries it wrote lately that match it, each only if it still
/// holds the record this instance wrote (a value written by another instance, or after the
/// message, stays), and tells the others to drop them from their local caches. After a broken
/// subscription (messages may have been lost), the writes made since shortly before the break
/// was found are checked the same way when it is back. Both are counted in
/// [`BusSnapshot::writes_undone`] and [`BusSnapshot::writes_kept`].
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

/// The writes this instance's tiers made lately, with when and the value each stored (the
/// record's checksum), so that a write which raced an invalidation can be undone without ever
/// removing a newer value.
///
/// # Which writes are undone
///
/// A write races an invalidation when its value was loaded before another instance removed the
/// key (`DEL` and `PUBLISH`) and it reached Redis after that removal: Redis then holds the old
/// value again. The writer finds out when the message arrives:
///
/// - **A message received**: the bus applies it to the local caches, and the tier removes from
///   Redis only the entries this instance wrote within the journal's keep (below) that still
///   hold the record this instance wrote ([`scripts::UNDO_WRITE`](crate::tier::scripts)),
///   by key, prefix, glob, tag or all of its namespace alike, and publishes each removal as an
///   undo (`u`: the others drop the key from their local caches only). An entry written by
///   another instance, or rewritten since, holds a newer value and stays: a late message never
///   removes a value written after it was sent. Keys this instance did not write lately cost no
///   Redis call at all (the sender removed them).
/// - **A message lost** (the subscription broke): when the bus subscribes again, and once
///   more a window later (for writes still in flight), it undoes in the same way every write
///   made since shortly before the break was found (see `listen`). Writes wait (fail) while the
///   subscription is known to be broken.
///
/// # How long a write is kept
///
/// A write that raced a removal reached Redis after it, and began at most the tier's timeout
/// before it reached Redis (a longer call is abandoned and fails). The removal's message
/// reaches this instance within the staleness bound of the removal while the subscription
/// holds (a lost message is the second case), and a load of this instance that overlaps the
/// message's application is either finished before it (so journaled) or not stored at all
/// (`TieredCache`'s epoch and index lock). So a write must be kept for the tier's timeout and
/// the staleness bound after it began; it is kept that long plus the break window (`window`:
/// how far back a break may have started before it was found), which the second case needs.
/// A message applied later than that (an applier held up beyond the bound) finds no record and
/// only drops the local entries. If Redis fails the undo, the `TieredCache` owes the key's
/// removal and applies it later as a plain one (which may remove a newer value: a miss, never
/// a stale value). Keeping a write longer only means that this instance's own
/// fresh write of a key another instance invalidated soon after may be removed too: a miss,
/// never a stale value.
pub(crate) struct Journal {
    /// How far back a break may have started before it was found.
    window: Duration,
    /// The staleness bound and the window; each tier's timeout is added ([`Journal::cover`]).
    keep: Duration,
    /// The longest timeout of the tiers writing here, in nanoseconds.
    tier_timeout_ns: AtomicU64,
    log: Mutex<Log>,
}

/// The writes in order (for the undo after a break), and the latest of each Redis key (for a
/// message received).
#[derive(Default)]
struct Log {
    order: VecDeque<(Instant, Arc<Written>)>,
    latest: HashMap<Arc<str>, (Instant, Arc<Written>)>,
}

/// The length of the checksum that heads every record of the entry codec (a CRC-32 of the key
/// and the body): two writes of different values under a key almost never share it.
const CHECKSUM_BYTES: usize = 4;

/// One write in the [`Journal`]: the Redis key, the cache key, its tags, and the record's
/// checksum (its first bytes), by which an undo recognises the value this write stored.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) redis_key: Arc<str>,
    pub(crate) key: String,
    pub(crate) tags: Box<[Arc<str>]>,
    pub(crate) checksum: Vec<u8>,
}

impl Journal {
    fn new(window: Duration, bound: Duration) -> Self {
        Self {
            window,
            keep: window + bound,
            tier_timeout_ns: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        }
    }

    /// Keeps writes long enough for a tier whose calls wait up to `timeout`.
    pub(crate) fn cover(&self, timeout: Duration) {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.tier_timeout_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// How long a write is kept.
    pub(crate) fn keep(&self) -> Duration {
        self.keep.saturating_add(Duration::from_nanos(
            self.tier_timeout_ns.load(Ordering::Relaxed),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The log, without the writes older than the keep at `now`.
    fn trimmed(&self, now: Instant) -> std::sync::MutexGuard<'_, Log> {
        let keep = self.keep();
        let mut log = self.lock();
        while let Some((t, w)) = log.order.front() {
            if now.saturating_duration_since(*t) <= keep {
                break;
            }
            let w = Arc::clone(w);
            log.order.pop_front();
            if log
                .latest
                .get(&w.redis_key)
                .is_some_and(|(_, l)| Arc::ptr_eq(l, &w))
            {
                log.latest.remove(&w.redis_key);
            }
        }
        log
    }

    /// Records a write of `record` under `redis_key` (cache key `key`, tagged `tags`).
    pub(crate) fn record(&self, redis_key: &str, key: &str, tags: &[Arc<str>], record: &[u8]) {
        self.record_at(Instant::now(), redis_key, key, tags, record);
    }

    fn record_at(
        &self,
        now: Instant,
        redis_key: &str,
        key: &str,
        tags: &[Arc<str>],
        record: &[u8],
    ) {
        let redis_key: Arc<str> = redis_key.into();
        let w = Arc::new(Written {
            redis_key: Arc::clone(&redis_key),
            key: key.to_owned(),
            tags: tags.into(),
            checksum: record[..record.len().min(CHECKSUM_BYTES)].to_vec(),
        });
        let mut log = self.trimmed(now);
        log.order.push_back((now, Arc::clone(&w)));
        log.latest.insert(redis_key, (now, w));
    }

    /// The writes that started between `window` before `found` (when the break was found) and
    /// `until` (when the subscription was back).
    pub(crate) fn written(&self, found: Instant, until: Instant) -> Vec<Arc<Written>> {
        let from = found.checked_sub(self.window).unwrap_or(found);
        self.lock()
            .order
            .iter()
            .filter(|(t, ..)| (from..until).contains(t))
            .map(|(_, w)| Arc::clone(w))
            .collect()
    }

    /// This instance's latest write of `redis_key`, if it is still kept.
    pub(crate) fn latest(&self, redis_key: &str) -> Option<Arc<Written>> {
        self.trimmed(Instant::now())
            .latest
            .get(redis_key)
            .map(|(_, w)| Arc::clone(w))
    }

    /// This instance's latest kept writes whose Redis key starts with `root` (a tier's
    /// namespace) and which `select` picks. Costs in proportion to the writes kept.
    pub(crate) fn latest_matching(
        &self,
        root: &str,
        select: impl Fn(&Written) -> bool,
    ) -> Vec<Arc<Written>> {
        self.trimmed(Instant::now())
            .latest
            .values()
            .filter(|(_, w)| w.redis_key.starts_with(root) && select(w))
            .map(|(_, w)| Arc::clone(w))
            .collect()
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

/// Up to this many undos go in one pipeline.
pub(crate) const UNDO_CHUNK: usize = 200;

/// The pipeline that undoes `writes` (at most [`UNDO_CHUNK`]): for each, removes the entry
/// and publishes an undo if it still holds the record written; the reply is one 1 (removed)
/// or 0 (kept) per write.
pub(crate) fn undo_pipeline(shared: &Shared, writes: &[Arc<Written>]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for w in writes {
        pipe.cmd("EVAL")
            .arg(scripts::UNDO_WRITE)
            .arg(1)
            .arg(&*w.redis_key)
            .arg(&w.checksum)
            .arg(&shared.channel)
            .arg(message::encode_undo(&shared.instance, &w.key));
    }
    pipe
}

impl Shared {
    /// Counts the replies of an [`undo_pipeline`].
    pub(crate) fn count_undone(&self, replies: &[i64]) {
        let n = replies.iter().filter(|&&r| r == 1).count() as u64;
        self.counters.undo_removed.add(n);
        self.counters.undo_kept.add(replies.len() as u64 - n);
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
            Job::Apply(what, sent_us, mode) => {
                if self.apply(&what, mode) {
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
        // An undo only drops local copies: the sender removed its own write from Redis.
        let mode = if m.undo {
            Mode::LocalOnly
        } else {
            Mode::Remote
        };
        self.send(Job::Apply(m.what, m.sent_us, mode));
    }
}

/// Work for the applier thread. Invalidations are applied on a thread of the bus's own, not
/// on the runtime thread that reads them: applying one calls the Redis tier synchronously,
/// which waits for that runtime.
enum Job {
    /// Another instance's invalidation, its sending time, and how the tiers apply it.
    Apply(Invalidation, u64, Mode),
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

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
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
        let bound = (t.heartbeat + t.heartbeat_timeout).max(t.reconnect_max);
        let instance = format!("{:016x}", fastrand::u64(..));
        let (jobs, queue) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            channel: self.channel,
            client_name: format!("mpm-cache-bus:{instance}"),
            instance,
            targets: RwLock::new(Vec::new()),
            subscribed: AtomicBool::new(false),
            journal: Journal::new(
                t.heartbeat + t.heartbeat_timeout + self.publish_timeout,
                bound,
            ),
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
                bound,
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
    /// entry it removes (see [Staleness bound](Self#staleness-bound)).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_the_latest_write_of_each_key_for_its_keep() {
        let j = Journal::new(Duration::from_millis(20), Duration::from_millis(10));
        j.cover(Duration::from_millis(5));
        j.cover(Duration::from_millis(1));
        assert_eq!(j.keep(), Duration::from_millis(35));
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(30);
        j.record_at(t0, "{n}:e:a", "a", &[], b"1111 old");
        j.record_at(t0, "{n}:e:b", "b", &["t".into()], b"2222 b");
        j.record_at(t1, "{n}:e:a", "a", &[], b"3333 new");
        j.record_at(t1, "{m}:e:a", "a", &["t".into()], b"4444 other namespace");
        let log = j.trimmed(t1);
        assert_eq!(log.order.len(), 4);
        assert_eq!(log.latest["{n}:e:a"].1.checksum, b"3333");
        drop(log);
        let tagged = j.latest_matching("{n}:e:", |w| w.tags.iter().any(|t| &**t == "t"));
        assert_eq!(tagged.len(), 1);
        assert_eq!(tagged[0].key, "b");
        assert_eq!(j.latest_matching("{n}:e:", |_| true).len(), 2);
        // A break found at t1 reaches back a window: t1's writes only; found 20 ms after t0,
        // all of them.
        let until = t1 + Duration::from_millis(1);
        assert_eq!(j.written(t1, until).len(), 2);
        assert_eq!(j.written(t0 + Duration::from_millis(20), until).len(), 4);
        // Past t0's keep: a's older write goes, its newer one stays the latest; b goes.
        let log = j.trimmed(t0 + Duration::from_millis(36));
        assert_eq!(log.order.len(), 2);
        assert_eq!(log.latest.len(), 2);
        assert_eq!(log.latest["{n}:e:a"].1.checksum, b"3333");
        assert!(!log.latest.contains_key("{n}:e:b"));
        drop(log);
        let log = j.trimmed(t1 + Duration::from_millis(36));
        assert!(log.order.is_empty() && log.latest.is_empty());
    }
}
