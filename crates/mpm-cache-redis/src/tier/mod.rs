//! `RedisTier`: a [`Tier`] on Redis, shared by every instance of a service.

mod keys;
pub(crate) mod scripts;

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mpm_cache::record::{self, Header};
use mpm_cache::{Pattern, Tier, TierEntry, TierSnapshot};
use mpm_metrics::{Histogram, Registry, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bus::local::{Mode, mode};
use crate::bus::{Publisher, UNDO_CHUNK, Written, default_channel, undo_pipeline};
use crate::server::{Failure, Redis};
use crate::stats::{self, TierCounters};
use crate::{Error, Invalidation, RedisInvalidationBus};
use keys::Keyspace;

/// A cache level on Redis, below a `TieredCache`'s L1: every instance of a service reads what
/// any of them wrote.
///
/// - Entries are stored with the same entry codec as the disk tier ([`mpm_cache::record`]): a
///   checksum over the Redis key (namespace included) and the body, so a damaged or foreign
///   value under the namespace is a counted miss ([`TierSnapshot::corrupt`]), never a panic or
///   another key's value.
/// - TTLs are Redis's own (`SET .. PX`); the TTL left is read from the record's header.
/// - Every call answers within the tier's timeout (the `SCAN`-based removals within the scan
///   timeout) and fails at once while the server is known to be down; see [`Redis`].
/// - With [`bus`](RedisTierBuilder::bus), every removal it applies is published to the other
///   instances, in the same round trip.
///
/// Clones share the tier.
///
/// # What each call costs
///
/// | call | Redis work | round trips |
/// |---|---|---|
/// | `get` | `GET` | 1 |
/// | `get_many` | one `MGET` for all keys | 1 |
/// | `put` without tags | `SET .. PX` | 1 |
/// | `put` with tags | a script: `SET .. PX`, then `SADD` and an expiry per tag set | 1 |
/// | `remove` | `DEL` (and the bus's `PUBLISH`) | 1 |
/// | `remove_tag` | a script: `SMEMBERS`, `UNLINK` of the members, `DEL` of the set: O(members) on the server, atomic (other clients wait) | 1 |
/// | `remove_prefix`, `remove_matching` | `SCAN MATCH` over the whole keyspace in steps of `scan_count`, `UNLINK` of what matches: O(keys in the database), never blocking the server for long | keys / `scan_count`, and one per batch removed |
/// | `clear` | as `remove_prefix`, over the namespace (entries, tag sets, read counts) | same |
/// | `warm_keys` | `ZREVRANGE` of the read counts, topped up by a `SCAN` | 1 or more |
///
/// An invalidation received from another instance through the bus (which removed the entries
/// already) costs no call, unless this instance wrote matching keys lately: then one script per
/// such key removes it if it still holds what this instance wrote (a write that raced the
/// invalidation), in one round trip per 200.
///
/// `KEYS` is never used. Tag sets may keep the keys of entries since removed or rewritten
/// without the tag: removing the tag then removes those keys' new entries too (more, never
/// less, as the [`Tier`] contract allows). A tag set expires with its longest-lived entry.
pub struct RedisTier<V> {
    inner: Arc<Inner>,
    _value: PhantomData<fn() -> V>,
}

struct Inner {
    redis: Redis,
    keys: Keyspace,
    /// The namespace as a path-like label for [`mpm_cache::Error`]s.
    label: PathBuf,
    timeout: Duration,
    scan_timeout: Duration,
    scan_count: usize,
    heat_max: usize,
    publisher: Option<Publisher>,
    counters: TierCounters,
    /// Whether the metrics are registered (else the calls are not timed: nobody would see it).
    timed: bool,
    /// Kept as long as the tier: dropping it unregisters the collector.
    scope: OnceLock<Scope>,
}

impl<V> Clone for RedisTier<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _value: PhantomData,
        }
    }
}

impl<V> fmt::Debug for RedisTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("namespace", &self.inner.label)
            .field("timeout", &self.inner.timeout)
            .field("publishes", &self.inner.publisher.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisTier`]: [`RedisTier::builder`].
pub struct RedisTierBuilder<V> {
    redis: Redis,
    namespace: String,
    timeout: Duration,
    scan_timeout: Duration,
    scan_count: usize,
    heat_max: usize,
    publisher: Option<Publisher>,
    metrics: Option<(Registry, String)>,
    _value: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for RedisTierBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTierBuilder")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<V> RedisTierBuilder<V> {
    /// How long a call may wait for Redis. Default: 100 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a `SCAN`-based removal (`remove_prefix`, `remove_matching`, `clear`) may take
    /// in all. Default: 5 s.
    pub fn scan_timeout(mut self, timeout: Duration) -> Self {
        self.scan_timeout = timeout;
        self
    }

    /// The `COUNT` hint of each `SCAN` step. Default: 1,000.
    pub fn scan_count(mut self, count: usize) -> Self {
        self.scan_count = count;
        self
    }

    /// How many keys the read counts kept for warming may hold. Default: 10,000.
    pub fn heat_capacity(mut self, keys: usize) -> Self {
        self.heat_max = keys;
        self
    }

    /// Publishes every removal the tier applies on `bus`, so the other instances drop their
    /// local copies (the bus must be on the same server).
    pub fn bus(mut self, bus: &RedisInvalidationBus) -> Self {
        self.publisher = Some(bus.publisher());
        self
    }

    /// Registers the tier's metrics (`mpm_cache_redis_*`, see the crate docs) in `registry`
    /// under the instance name `name`, at [`build`](Self::build).
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// The tier. Errors: an empty namespace or one with braces, a zero timeout or scan count,
    /// or metrics that cannot be registered. A server that is down is not an error.
    pub fn build(self) -> Result<RedisTier<V>, Error> {
        let keys = Keyspace::new(&self.namespace)?;
        if self.timeout.is_zero() || self.scan_timeout.is_zero() || self.scan_count == 0 {
            return Err(Error::InvalidConfig {
                what: "the timeouts and the scan count must be above zero".into(),
            });
        }
        let scope = stats::scope(self.metrics.as_ref(), "cache_redis")?;
        let counters = match &scope {
            Some(scope) => TierCounters::register(scope)?,
            None => TierCounters::default(),
        };
        if let Some(p) = &self.publisher {
            p.journal().cover(self.timeout);
        }
        let inner = Arc::new(Inner {
            redis: self.redis,
            keys,
            label: PathBuf::from(format!("redis:{}", self.namespace)),
            timeout: self.timeout,
            scan_timeout: self.scan_timeout,
            scan_count: self.scan_count,
            heat_max: self.heat_max,
            publisher: self.publisher,
            counters,
            timed: scope.is_some(),
            scope: OnceLock::new(),
        });
        if let Some(scope) = scope {
            let up = scope.int_gauge(
                "up",
                "1 while the server answers, 0 while it is known to be down, at scrape time.",
                &[],
            )?;
            scope.collector(&inner, move |i| up.set(i64::from(!i.redis.is_down())));
            let _ = inner.scope.set(scope);
        }
        Ok(RedisTier {
            inner,
            _value: PhantomData,
        })
    }
}

impl<V> RedisTier<V> {
    /// A builder for the tier of `namespace` on `redis` (its keys start with `{namespace}:`).
    pub fn builder(redis: &Redis, namespace: &str) -> RedisTierBuilder<V> {
        RedisTierBuilder {
            redis: redis.clone(),
            namespace: namespace.to_owned(),
            timeout: Duration::from_millis(100),
            scan_timeout: Duration::from_secs(5),
            scan_count: 1000,
            heat_max: 10_000,
            publisher: None,
            metrics: None,
            _value: PhantomData,
        }
    }

    /// The channel a bus for the same namespace uses by default.
    pub fn default_channel(namespace: &str) -> String {
        default_channel(namespace)
    }

    /// The Redis key under which the entry `key` is stored.
    pub fn redis_key(&self, key: &str) -> String {
        self.inner.keys.entry(key)
    }
}

impl Inner {
    fn error(&self, op: &'static str, f: &Failure) -> mpm_cache::Error {
        self.counters.failed(f);
        mpm_cache::Error::Storage {
            op,
            path: self.label.clone(),
            message: f.to_string(),
        }
    }

    /// One request within the tier's timeout, timed into `seconds`.
    fn run<T, F, Fut>(
        &self,
        op: &'static str,
        seconds: &Histogram,
        call: F,
    ) -> Result<T, mpm_cache::Error>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let start = Instant::now();
        let out = self.redis.run_until(start + self.timeout, call);
        self.timed_since(seconds, start);
        out.map_err(|f| self.error(op, &f))
    }

    /// Records the time since `start` in `seconds`, if the metrics are registered.
    fn timed_since(&self, seconds: &Histogram, start: Instant) {
        if self.timed {
            seconds.record_duration(start.elapsed());
        }
    }

    /// Decodes what Redis held at `rkey`: a hit, or a counted miss.
    fn decode<V: DeserializeOwned>(
        &self,
        rkey: &str,
        bytes: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Option<TierEntry<V>> {
        let found = match bytes {
            None => None,
            Some(bytes) => match record::decode_entry::<V>(rkey, &bytes, now_ms) {
                Ok(entry) => entry,
                Err(_) => {
                    self.counters.corrupt.inc();
                    None
                }
            },
        };
        match found {
            Some(_) => self.counters.hits.inc(),
            None => self.counters.misses.inc(),
        }
        found
    }

    /// Whether a removal is skipped: the bus is clearing local caches only.
    fn local_only(&self) -> bool {
        mode() == Mode::LocalOnly
    }

    /// The bus to publish on, unless this removal came from the bus.
    fn publisher(&self) -> Option<&Publisher> {
        self.publisher.as_ref().filter(|_| mode() == Mode::Own)
    }

    /// `PUBLISH`es `what` if the tier has a bus.
    fn publish(&self, what: &Invalidation) -> Result<(), mpm_cache::Error> {
        let Some(p) = self.publisher() else {
            return Ok(());
        };
        let text = p.message(what);
        let channel = p.channel();
        let sent = self.run(
            "publish",
            &self.counters.remove_seconds,
            |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(text)
                    .query_async::<i64>(&mut c)
                    .await
            },
        );
        p.counted(sent.is_ok());
        sent.map(drop)
    }

    /// A pipeline with `what`'s `PUBLISH` appended (ignored in the reply), if the tier has a
    /// bus.
    fn with_publish(&self, pipe: &mut redis::Pipeline, what: &Invalidation) {
        if let Some(p) = self.publisher() {
            pipe.cmd("PUBLISH")
                .arg(p.channel())
                .arg(p.message(what))
                .ignore();
        }
    }

    /// The bus, while this removal is another instance's invalidation applied by it: then only
    /// this instance's own recent writes that raced it are removed (see [`Journal`]).
    ///
    /// [`Journal`]: crate::bus::Journal
    fn remote(&self) -> Option<&Publisher> {
        self.publisher.as_ref().filter(|_| mode() == Mode::Remote)
    }

    /// Removes each of `writes` that still holds the record this instance wrote, publishing
    /// an undo for each (the other instances drop it from their local caches); returns how
    /// many were removed. No call when there is nothing to undo.
    fn undo(&self, p: &Publisher, writes: &[Arc<Written>]) -> Result<usize, mpm_cache::Error> {
        let mut removed = 0;
        for chunk in writes.chunks(UNDO_CHUNK) {
            let pipe = undo_pipeline(p.shared(), chunk);
            let pipe = &pipe;
            let replies: Vec<i64> = self.run(
                "remove",
                &self.counters.remove_seconds,
                |mut c| async move { pipe.query_async(&mut c).await },
            )?;
            p.shared().count_undone(&replies);
            removed += replies.iter().filter(|&&r| r == 1).count();
        }
        Ok(removed)
    }

    /// [`undo`](Self::undo) of this instance's kept writes in the namespace that `select`
    /// picks.
    fn undo_matching(
        &self,
        p: &Publisher,
        select: impl Fn(&Written) -> bool,
    ) -> Result<usize, mpm_cache::Error> {
        let writes = p.journal().latest_matching(self.keys.entry_root(), select);
        self.undo(p, &writes)
    }

    fn count_publish(&self, ok: bool) {
        if let Some(p) = self.publisher() {
            p.counted(ok);
        }
    }

    /// Removes the keys a `SCAN MATCH pattern` finds (those `keep` accepts, by cache key),
    /// within the scan timeout; returns how many were removed.
    fn scan_remove(
        &self,
        op: &'static str,
        pattern: &str,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<usize, mpm_cache::Error> {
        let start = Instant::now();
        let deadline = start + self.scan_timeout;
        let mut cursor = 0u64;
        let mut removed = 0usize;
        loop {
            let count = self.scan_count;
            let (next, found): (u64, Vec<Vec<u8>>) = self
                .redis
                .run_until(deadline, |mut c| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut c)
                        .await
                })
                .map_err(|f| self.error(op, &f))?;
            let doomed: Vec<&Vec<u8>> = found.iter().filter(|k| keep(k)).collect();
            if !doomed.is_empty() {
                let n: usize = self
                    .redis
                    .run_until(deadline, |mut c| async move {
                        redis::cmd("UNLINK").arg(doomed).query_async(&mut c).await
                    })
                    .map_err(|f| self.error(op, &f))?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.timed_since(&self.counters.remove_seconds, start);
        Ok(removed)
    }
}

impl<V: Serialize + DeserializeOwned> Tier<V> for RedisTier<V> {
    /// The live entries for `keys`, in order, in one `MGET` (one round trip however many).
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, mpm_cache::Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &*self.inner;
        // Each Redis key is written into one buffer, and copied from it into the command (and
        // again for its checksum): no allocation per key.
        let root = inner.keys.entry_root();
        let mut rkey = String::with_capacity(root.len() + 64);
        let at = |rkey: &mut String, key: &str| {
            rkey.clear();
            rkey.push_str(root);
            rkey.push_str(key);
        };
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            at(&mut rkey, k);
            cmd.arg(rkey.as_str());
        }
        let cmd = &cmd;
        let values: Vec<Option<Vec<u8>>> = inner.run(
            "get_many",
            &inner.counters.get_many_seconds,
            |mut c| async move { cmd.query_async(&mut c).await },
        )?;
        let now = record::now_ms();
        Ok(keys
            .iter()
            .zip(values)
            .map(|(k, bytes)| {
                at(&mut rkey, k);
                inner.decode(&rkey, bytes, now)
            })
            .collect())
    }
    fn get(&self, key: &str) -> Result<Option<TierEntry<V>>, mpm_cache::Error> {
        let inner = &*self.inner;
        let rkey = inner.keys.entry(key);
        let k = rkey.as_str();
        let start = Instant::now();
        let bytes = inner
            .redis
            .run_until(start + inner.timeout, |mut c| async move {
                redis::cmd("GET")
                    .arg(k)
                    .query_async::<Option<Vec<u8>>>(&mut c)
                    .await
            });
        inner.timed_since(&inner.counters.get_seconds, start);
        let bytes = match bytes {
            Ok(b) => b,
            // A key of another type under the namespace: foreign data, a counted miss.
            Err(Failure::Command(e)) if e.code() == Some("WRONGTYPE") => {
                inner.counters.corrupt.inc();
                inner.counters.misses.inc();
                return Ok(None);
            }
            Err(f) => return Err(inner.error("get", &f)),
        };
        Ok(inner.decode(&rkey, bytes, record::now_ms()))
    }

    fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), mpm_cache::Error> {
        let inner = &*self.inner;
        let rkey = inner.keys.entry(key);
        let bytes = record::encode(&rkey, &Header::new(ttl, 0, tags), value).map_err(|e| {
            mpm_cache::Error::Serialize {
                key: key.to_owned(),
                message: e.to_string(),
            }
        })?;
        let px = ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
        let mut cmd = if tags.is_empty() {
            let mut c = redis::cmd("SET");
            c.arg(&rkey).arg(&bytes);
            if let Some(px) = px {
                c.arg("PX").arg(px);
            }
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(scripts::PUT_TAGGED).arg(1 + tags.len()).arg(&rkey);
            for t in tags {
                c.arg(inner.keys.tag(t));
            }
            c.arg(&bytes).arg(px.unwrap_or(0));
            c
        };
        if let Some(p) = inner.publisher() {
            // A write while invalidations may be missed could bring back a removed value.
            if !p.subscribed() {
                let f = Failure::Unsubscribed;
                return Err(inner.error("put", &f));
            }
            p.journal().record(&rkey, key, tags, &bytes);
        }
        let cmd = &mut cmd;
        inner.run("put", &inner.counters.put_seconds, |mut c| async move {
            cmd.query_async::<redis::Value>(&mut c).await
        })?;
        inner.counters.writes.inc();
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, mpm_cache::Error> {
        let inner = &*self.inner;
        if inner.local_only() {
            return Ok(false);
        }
        let rkey = inner.keys.entry(key);
        if let Some(p) = inner.remote() {
            let mine: Vec<_> = p.journal().latest(&rkey).into_iter().collect();
            return inner.undo(p, &mine).map(|n| n > 0);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(rkey);
        inner.with_publish(&mut pipe, &Invalidation::Key(key.to_owned()));
        let pipe = &pipe;
        let removed = inner.run(
            "remove",
            &inner.counters.remove_seconds,
            |mut c| async move { pipe.query_async::<(i64,)>(&mut c).await },
        );
        inner.count_publish(removed.is_ok());
        removed.map(|(n,)| n > 0)
    }

    fn remove_prefix(&self, prefix: &str) -> Result<usize, mpm_cache::Error> {
        let inner = &*self.inner;
        if inner.local_only() {
            return Ok(0);
        }
        if let Some(p) = inner.remote() {
            return inner.undo_matching(p, |w| w.key.starts_with(prefix));
        }
        inner
            .scan_remove("remove_prefix", &inner.keys.scan_prefix(prefix), |_| true)
            .and_then(|n| {
                inner.publish(&Invalidation::Prefix(prefix.to_owned()))?;
                Ok(n)
            })
    }

    fn remove_tag(&self, tag: &str) -> Result<usize, mpm_cache::Error> {
        let inner = &*self.inner;
        if inner.local_only() {
            return Ok(0);
        }
        if let Some(p) = inner.remote() {
            return inner.undo_matching(p, |w| w.tags.iter().any(|t| &**t == tag));
        }
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(scripts::REMOVE_TAG)
            .arg(1)
            .arg(inner.keys.tag(tag));
        inner.with_publish(&mut pipe, &Invalidation::Tag(tag.to_owned()));
        let pipe = &pipe;
        let removed = inner.run(
            "remove_tag",
            &inner.counters.remove_seconds,
            |mut c| async move { pipe.query_async::<(usize,)>(&mut c).await },
        );
        inner.count_publish(removed.is_ok());
        removed.map(|(n,)| n)
    }

    fn remove_matching(&self, pattern: &Pattern) -> Result<usize, mpm_cache::Error> {
        let inner = &*self.inner;
        if inner.local_only() {
            return Ok(0);
        }
        if let Some(p) = inner.remote() {
            return inner.undo_matching(p, |w| pattern.matches(&w.key));
        }
        let keys = &inner.keys;
        inner
            .scan_remove(
                "remove_matching",
                &keys.scan_prefix(pattern.literal_prefix()),
                |rkey| keys.key_of(rkey).is_some_and(|k| pattern.matches(k)),
            )
            .and_then(|n| {
                inner.publish(&Invalidation::Pattern(pattern.as_str().to_owned()))?;
                Ok(n)
            })
    }

    fn clear(&self) -> Result<(), mpm_cache::Error> {
        let inner = &*self.inner;
        if inner.local_only() {
            return Ok(());
        }
        if let Some(p) = inner.remote() {
            return inner.undo_matching(p, |_| true).map(drop);
        }
        inner
            .scan_remove("clear", &inner.keys.scan_all(), |_| true)
            .and_then(|_| inner.publish(&Invalidation::All))
    }

    fn stats(&self) -> TierSnapshot {
        let c = &self.inner.counters;
        TierSnapshot::new(
            c.hits.get(),
            c.misses.get(),
            c.writes.get(),
            c.errors(),
            c.corrupt.get(),
        )
    }

    /// The keys most read across every instance (the read counts each saves on
    /// [`flush`](mpm_cache::TieredCache::flush)), topped up with keys a `SCAN` finds.
    fn warm_keys(&self, n: usize) -> Result<Vec<String>, mpm_cache::Error> {
        let inner = &*self.inner;
        if n == 0 {
            return Ok(Vec::new());
        }
        let heat = inner.keys.heat();
        let heat = heat.as_str();
        let last = isize::try_from(n).unwrap_or(isize::MAX) - 1;
        let mut keys: Vec<String> = inner.run(
            "warm_keys",
            &inner.counters.get_many_seconds,
            |mut c| async move {
                redis::cmd("ZREVRANGE")
                    .arg(heat)
                    .arg(0)
                    .arg(last)
                    .query_async(&mut c)
                    .await
            },
        )?;
        if keys.len() < n {
            let deadline = Instant::now() + inner.timeout;
            let pattern = inner.keys.scan_prefix("");
            let pattern = pattern.as_str();
            let mut cursor = 0u64;
            let mut seen: std::collections::HashSet<String> = keys.iter().cloned().collect();
            loop {
                let count = inner.scan_count;
                let (next, found): (u64, Vec<Vec<u8>>) = inner
                    .redis
                    .run_until(deadline, |mut c| async move {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(count)
                            .query_async(&mut c)
                            .await
                    })
                    .map_err(|f| inner.error("warm_keys", &f))?;
                for rkey in &found {
                    if keys.len() == n {
                        break;
                    }
                    if let Some(k) = inner.keys.key_of(rkey)
                        && seen.insert(k.to_owned())
                    {
                        keys.push(k.to_owned());
                    }
                }
                if next == 0 || keys.len() == n {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// Adds the sampled read counts to the namespace's sorted set (shared by every instance),
    /// trimmed to the heat capacity.
    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), mpm_cache::Error> {
        let inner = &*self.inner;
        if reads.is_empty() {
            return Ok(());
        }
        let heat = inner.keys.heat();
        let mut pipe = redis::pipe();
        for (key, n) in reads {
            pipe.cmd("ZINCRBY").arg(&heat).arg(*n).arg(*key).ignore();
        }
        let keep = isize::try_from(inner.heat_max).unwrap_or(isize::MAX);
        pipe.cmd("ZREMRANGEBYRANK")
            .arg(&heat)
            .arg(0)
            .arg(-keep - 1)
            .ignore();
        let pipe = &pipe;
        inner.run(
            "save_heat",
            &inner.counters.put_seconds,
            |mut c| async move { pipe.query_async::<()>(&mut c).await },
        )
    }
}
