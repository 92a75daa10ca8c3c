//! `DiskTier`: the durable L2, on [redb](https://docs.rs/redb).

mod series;
mod store;

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use mpm_metrics::{Registry, Scope};

use crate::Error;
use crate::metrics::{self, Target};
use crate::pattern::Pattern;
use crate::record::{self, Header};
use crate::stats::{DiskStats, TierSnapshot};
use crate::tier::{Tier, TierEntry};
use series::DiskMetrics;
use store::{Fault, Store, Tables};

/// Every table maps bytes to bytes: redb's typed keys and values panic on bytes they cannot
/// read (a `&str` that is not UTF-8, a `u64` of the wrong length), so we decode them ourselves.
type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// key -> record (see [`crate::record`]).
const ENTRIES: Table = TableDefinition::new("entries");
/// write sequence (8 bytes, big endian, so byte order is number order) -> key: the write order,
/// oldest first (eviction order; newest are "hottest").
const ORDER: Table = TableDefinition::new("order");
/// `{tag length:08x}{tag}{key}` -> nothing: the keys carrying each tag.
const TAGS: Table = TableDefinition::new("tags");
/// key -> how often it was read (u64, little endian), as sampled by `TieredCache` and saved by
/// its `flush`: warming loads the hottest keys first.
const HEAT: Table = TableDefinition::new("heat");
/// "bytes", "seq" -> running totals (u64, little endian).
const META: Table = TableDefinition::new("meta");
const TABLES: &Tables = &[ENTRIES, ORDER, TAGS, HEAT, META];

/// The most keys the heat table keeps (the hottest).
const HEAT_ROWS: usize = 65_536;
const FILE: &str = "cache.redb";
/// Non-durable writes between automatic durable commits (bounds what a crash can lose and the
/// file growth redb allows before a durable commit).
const AUTO_FLUSH_EVERY: u64 = 1024;

/// When writes reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// A write is durable once [`DiskTier::flush`] returns (and after every 1,024 writes, when
    /// the tier flushes by itself). A crash loses at most the writes since then, never
    /// corrupts anything. Removals and invalidations are always durable when they return.
    #[default]
    OnFlush,
    /// Every write is durable when it returns (one `fsync` per write: milliseconds each).
    EveryWrite,
}

/// Opens a [`DiskTier`].
#[derive(Clone, Debug)]
pub struct DiskTierBuilder {
    dir: PathBuf,
    max_bytes: u64,
    durability: Durability,
    verify_on_open: bool,
    metrics: Target,
}

impl DiskTierBuilder {
    /// Bounds the bytes stored (keys and encoded values); the oldest writes go first. Default
    /// 1 GiB.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// When writes become durable (default [`Durability::OnFlush`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Whether `open` reads the whole store and checks every page's checksum before serving
    /// (default `false`). Without it a damaged page is found when a call meets it, and the
    /// store is then moved aside as at open; with it, the damage is found at open, at the
    /// cost of reading the file (see the crate docs for the figures).
    pub fn verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }

    /// Reports the tier's metrics (`mpm_cache_disk_*`, see the crate docs, "Metrics") into
    /// `registry` under the instance `name`; the name is claimed at [`open`](Self::open), which
    /// fails if another disk tier holds it. Not needed below a [`TieredCache`] given
    /// `.metrics(..)`: its build reports the disk tier under the cache's name.
    ///
    /// [`TieredCache`]: crate::TieredCache
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Creates the directory (mode 0700 on Unix) if needed and opens the store in it. A store
    /// file that is not a valid store (damaged, truncated, foreign, or of an older format) is
    /// moved aside (`cache.redb.corrupt-<time>`), counted in [`DiskStats::corrupt_files`], and
    /// replaced by an empty one. With [`metrics`](Self::metrics), fails if the name is taken.
    pub fn open<V>(self) -> Result<DiskTier<V>, Error> {
        let dir = &self.dir;
        let io = |op, source| Error::Io {
            op,
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create directory", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("set permissions", e))?;
        }
        let stats = DiskStats::default();
        let store = Store::open(dir.join(FILE), TABLES, stats.clone(), self.verify_on_open)?;
        let inner = Arc::new(DiskInner {
            store,
            max_bytes: self.max_bytes,
            durability: self.durability,
            stats,
            unflushed: AtomicU64::new(0),
            fail_writes: AtomicBool::new(false),
            scope: Mutex::default(),
        });
        if let Some((registry, name)) = &self.metrics {
            DiskInner::report(&inner, registry, name)?;
        }
        Ok(DiskTier {
            inner,
            _value: PhantomData,
        })
    }
}

fn tag_key(tag: &str, key: &str) -> Vec<u8> {
    format!("{:08x}{tag}{key}", tag.len()).into_bytes()
}

/// A stored number; anything but 8 bytes is damage.
fn number(bytes: &[u8]) -> Result<u64, Fault> {
    let b: [u8; 8] = bytes.try_into().map_err(|_| {
        Fault::Redb(redb::Error::Corrupted(
            "a number of the wrong length".into(),
        ))
    })?;
    Ok(u64::from_le_bytes(b))
}

fn corrupt(what: &str) -> Fault {
    Fault::Redb(redb::Error::Corrupted(what.to_owned()))
}

struct DiskInner {
    store: Store,
    max_bytes: u64,
    durability: Durability,
    stats: DiskStats,
    unflushed: AtomicU64,
    fail_writes: AtomicBool,
    /// The scope the tier reports into, once it has one: its claim and its collector.
    scope: Mutex<Option<Scope>>,
}

impl DiskInner {
    /// Claims the scope (`cache_disk`, `name`), registers the tier's series in it and a
    /// collector that brings them up to date at every scrape, and keeps the scope for the
    /// tier's life. Does nothing if the tier reports already.
    fn report(inner: &Arc<Self>, registry: &Registry, name: &str) -> Result<(), Error> {
        let mut held = inner
            .scope
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let scope = registry.scope(metrics::DISK, name)?;
        let series = DiskMetrics::register(&scope, &inner.stats)?;
        scope.collector(inner, move |inner| {
            series.collect(inner.entries().ok().zip(inner.bytes().ok()));
        });
        *held = Some(scope);
        Ok(())
    }

    fn entries(&self) -> Result<u64, Error> {
        self.store.run("count", |db| {
            let tx = db.begin_read()?;
            Ok(tx.open_table(ENTRIES)?.len()?)
        })
    }

    fn bytes(&self) -> Result<u64, Error> {
        self.store.run("read", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(META)?;
            let v = t.get(b"bytes".as_slice())?;
            v.map_or(Ok(0), |v| number(v.value()))
        })
    }
}

/// The durable second tier: entries in one [redb](https://docs.rs/redb) file, each with a CRC32
/// checksum over its key and record, its tags and its expiry (wall-clock time, so it survives
/// restarts), bounded in bytes.
///
/// No content of the store file makes it panic or answer with another key's value: a damaged
/// entry is a miss counted in [`DiskStats::corrupt`], and a damaged store (found at open or
/// by any later call) is moved aside and replaced by an empty one, counted in
/// [`DiskStats::corrupt_files`]. Keys never become file names, so no key can escape the
/// directory. Clones share the store.
///
/// ```
/// use mpm_cache::DiskTier;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let tier: DiskTier<String> = DiskTier::builder(dir.path()).open()?;
/// tier.put("agent:1", &"profile".to_owned(), Some(Duration::from_secs(60)), &[])?;
/// tier.flush()?;
/// drop(tier);
/// let tier: DiskTier<String> = DiskTier::builder(dir.path()).open()?;
/// assert_eq!(tier.get("agent:1")?.as_deref(), Some("profile"));
/// # Ok::<(), mpm_cache::Error>(())
/// ```
pub struct DiskTier<V> {
    inner: Arc<DiskInner>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for DiskTier<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _value: PhantomData,
        }
    }
}

impl<V> fmt::Debug for DiskTier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.inner.store.path())
            .field("max_bytes", &self.inner.max_bytes)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl Drop for DiskInner {
    fn drop(&mut self) {
        if self.unflushed.load(Ordering::Relaxed) > 0 {
            let _ = self.store.run_once("flush", |db| {
                let mut tx = db.begin_write()?;
                tx.set_durability(redb::Durability::Immediate)?;
                tx.commit()?;
                Ok(())
            });
        }
    }
}

impl DiskTier<()> {
    /// A builder for a tier stored in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> DiskTierBuilder {
        DiskTierBuilder {
            dir: dir.into(),
            max_bytes: 1 << 30,
            durability: Durability::default(),
            verify_on_open: false,
            metrics: None,
        }
    }
}

impl<V> DiskTier<V> {
    /// Runs `f` in a write transaction and commits it (durably if `durable`). A failure is
    /// counted in [`DiskStats::write_errors`].
    fn write<T>(
        &self,
        op: &'static str,
        durable: bool,
        mut f: impl FnMut(&WriteTransaction) -> Result<T, Fault>,
    ) -> Result<T, Error> {
        let r = self.inner.store.run(op, |db| {
            let tx = db.begin_write()?;
            let v = f(&tx)?;
            self.commit(tx, durable)?;
            Ok(v)
        });
        if r.is_err() {
            self.inner.stats.write_errors.inc();
        }
        r
    }

    fn commit(&self, mut tx: WriteTransaction, durable: bool) -> Result<(), Fault> {
        let inner = &*self.inner;
        if inner.fail_writes.load(Ordering::Relaxed) {
            tx.abort()?;
            return Err(Fault::Ours(Error::Io {
                op: "write",
                path: inner.store.path().to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "injected write failure",
                ),
            }));
        }
        let durable = durable
            || inner.durability == Durability::EveryWrite
            || inner.unflushed.fetch_add(1, Ordering::Relaxed) + 1 >= AUTO_FLUSH_EVERY;
        let level = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        tx.set_durability(level)?;
        tx.commit()?;
        if durable {
            inner.unflushed.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes every write so far durable (one `fsync`).
    pub fn flush(&self) -> Result<(), Error> {
        self.write("flush", true, |_| Ok(()))
    }

    /// The counters.
    pub fn stats(&self) -> &DiskStats {
        &self.inner.stats
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// Makes every later write fail as a full disk would, or stops doing so: for testing how a
    /// service copes.
    pub fn inject_write_failure(&self, on: bool) {
        self.inner.fail_writes.store(on, Ordering::Relaxed);
    }

    /// Entries stored (live or expired but not yet removed).
    pub fn len(&self) -> Result<u64, Error> {
        self.inner.entries()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Bytes stored (keys and encoded values).
    pub fn bytes(&self) -> Result<u64, Error> {
        self.inner.bytes()
    }

    /// Up to `n` keys, most recently written first (the order warming uses).
    pub fn newest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        self.inner.store.run("scan", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ORDER)?;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for row in t.iter()?.rev() {
                if out.len() == n {
                    break;
                }
                let (_, k) = row?;
                if let Ok(k) = std::str::from_utf8(k.value()) {
                    out.push(k.to_owned());
                }
            }
            Ok(out)
        })
    }

    /// Adds read counts to the heat table, durably: the counts already stored are halved first,
    /// so that what was hot long ago fades, and only the 65,536 hottest keys are kept.
    /// [`TieredCache::flush`](crate::TieredCache::flush) calls it with the hits it sampled.
    pub fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        let mut merged: std::collections::HashMap<String, u64> = self
            .heat_rows()?
            .into_iter()
            .map(|(k, v)| (k, v / 2))
            .collect();
        merged.retain(|_, v| *v > 0);
        for (k, n) in reads {
            let e = merged.entry((*k).to_owned()).or_insert(0);
            *e = e.saturating_add(*n);
        }
        let mut rows: Vec<(String, u64)> = merged.into_iter().collect();
        if rows.len() > HEAT_ROWS {
            rows.select_nth_unstable_by(HEAT_ROWS, |a, b| b.1.cmp(&a.1));
            rows.truncate(HEAT_ROWS);
        }
        self.write("save heat", true, |tx| {
            tx.delete_table(HEAT)?;
            let mut t = tx.open_table(HEAT)?;
            for (k, n) in &rows {
                t.insert(k.as_bytes(), n.to_le_bytes().as_slice())?;
            }
            Ok(())
        })
    }

    fn heat_rows(&self) -> Result<Vec<(String, u64)>, Error> {
        self.inner.store.run("scan", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(HEAT)?;
            let mut rows = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if let Ok(k) = std::str::from_utf8(k.value()) {
                    rows.push((k.to_owned(), number(v.value())?));
                }
            }
            Ok(rows)
        })
    }

    /// Up to `n` keys with saved read counts, hottest first (ties in key order).
    pub fn hottest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let mut rows = self.heat_rows()?;
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(rows.into_iter().take(n).map(|(k, _)| k).collect())
    }

    /// Deletes `key` and its order and tag rows inside `tx`; returns the bytes freed.
    fn delete_in(tx: &WriteTransaction, key: &str) -> Result<Option<u64>, Fault> {
        let mut entries = tx.open_table(ENTRIES)?;
        let Some(old) = entries.remove(key.as_bytes())? else {
            return Ok(None);
        };
        let record = old.value().to_vec();
        drop(old);
        let freed = (key.len() + record.len()) as u64;
        if let Ok((h, _)) = record::decode_header(key, &record) {
            tx.open_table(ORDER)?
                .remove(h.seq.to_be_bytes().as_slice())?;
            let mut tags = tx.open_table(TAGS)?;
            for t in &h.tags {
                tags.remove(tag_key(t, key).as_slice())?;
            }
        }
        Ok(Some(freed))
    }

    fn meta(tx: &WriteTransaction, name: &str) -> Result<u64, Fault> {
        let meta = tx.open_table(META)?;
        let v = meta.get(name.as_bytes())?;
        v.map_or(Ok(0), |v| number(v.value()))
    }

    fn set_meta(tx: &WriteTransaction, name: &str, v: u64) -> Result<(), Fault> {
        tx.open_table(META)?
            .insert(name.as_bytes(), v.to_le_bytes().as_slice())?;
        Ok(())
    }

    fn add_bytes(tx: &WriteTransaction, delta: i128) -> Result<u64, Fault> {
        let cur = Self::meta(tx, "bytes")?;
        let new = u64::try_from((i128::from(cur) + delta).max(0)).unwrap_or(u64::MAX);
        Self::set_meta(tx, "bytes", new)?;
        Ok(new)
    }

    fn remove_keys(&self, keys: &[String]) -> Result<usize, Error> {
        // Removals are durable when they return, so an invalidated key never comes back.
        self.write("remove", true, |tx| {
            let mut freed = 0u64;
            let mut n = 0;
            for k in keys {
                if let Some(f) = Self::delete_in(tx, k)? {
                    freed += f;
                    n += 1;
                }
            }
            Self::add_bytes(tx, -i128::from(freed))?;
            Ok(n)
        })
    }

    /// Removes `key` (durably); returns whether it was stored.
    pub fn remove(&self, key: &str) -> Result<bool, Error> {
        Ok(self.remove_keys(&[key.to_owned()])? == 1)
    }

    fn keys_from(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, Error> {
        self.inner.store.run("scan", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ENTRIES)?;
            let mut out = Vec::new();
            for row in t.range(prefix.as_bytes()..)? {
                let (k, _) = row?;
                let k = k.value();
                if !k.starts_with(prefix.as_bytes()) {
                    break;
                }
                // A key that is not UTF-8 was damaged: it cannot match, and a read of it misses.
                if let Ok(k) = std::str::from_utf8(k)
                    && keep(k)
                {
                    out.push(k.to_owned());
                }
            }
            Ok(out)
        })
    }

    /// Removes every key starting with `prefix` (a range scan over those keys only).
    pub fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let keys = self.keys_from(prefix, |_| true)?;
        self.remove_keys(&keys)
    }

    /// Removes every key matching `pattern`; scans the keys sharing its literal prefix.
    pub fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
        let keys = self.keys_from(pattern.literal_prefix(), |k| pattern.matches(k))?;
        self.remove_keys(&keys)
    }

    /// Removes every entry carrying `tag`.
    pub fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
        let prefix = tag_key(tag, "");
        let keys = self.inner.store.run("scan", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(TAGS)?;
            let mut out = Vec::new();
            for row in t.range(prefix.as_slice()..)? {
                let (k, _) = row?;
                let Some(key) = k.value().strip_prefix(prefix.as_slice()) else {
                    break;
                };
                if let Ok(key) = std::str::from_utf8(key) {
                    out.push(key.to_owned());
                }
            }
            Ok(out)
        })?;
        self.remove_keys(&keys)
    }

    /// Removes everything (durably).
    pub fn clear(&self) -> Result<(), Error> {
        self.write("clear", true, |tx| {
            for t in TABLES {
                tx.delete_table(*t)?;
                tx.open_table(*t)?;
            }
            Ok(())
        })
    }
}

impl<V: Serialize + DeserializeOwned> DiskTier<V> {
    /// Opens the tier for values of type `V` (the builder's `open` infers it too).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        DiskTier::builder(dir).open()
    }

    /// The live value for `key`. A record with a bad checksum or encoding is counted in
    /// [`DiskStats::corrupt`], removed, and reported as a miss; so is a read that finds the
    /// store damaged (the store is then moved aside and replaced by an empty one).
    pub fn get(&self, key: &str) -> Result<Option<V>, Error> {
        Ok(self.get_entry(key)?.map(|h| h.value))
    }

    fn get_entry(&self, key: &str) -> Result<Option<TierEntry<V>>, Error> {
        let read = self.inner.store.run_once("read", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ENTRIES)?;
            let got = t.get(key.as_bytes())?;
            Ok(got.map(|v| record::decode::<V>(key, v.value()).ok()))
        });
        match read {
            Ok(found) => Ok(self.settle(key, found)),
            // The store was damaged and replaced by an empty one: a damaged entry.
            Err(Error::Corrupt { .. }) => Ok(self.settle(key, Some(None))),
            Err(e) => Err(e),
        }
    }

    /// The entries for `keys`, read in one transaction.
    fn get_entries(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
        let read = self.inner.store.run_once("read", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ENTRIES)?;
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                let got = t.get(key.as_bytes())?;
                found.push(got.map(|v| record::decode::<V>(key, v.value()).ok()));
            }
            Ok(found)
        });
        match read {
            Ok(found) => Ok(keys
                .iter()
                .zip(found)
                .map(|(key, found)| self.settle(key, found))
                .collect()),
            // The store was damaged and replaced by an empty one: nothing is there.
            Err(Error::Corrupt { .. }) => {
                self.inner.stats.misses.add(keys.len() as u64);
                Ok(keys.iter().map(|_| None).collect())
            }
            Err(e) => Err(e),
        }
    }

    /// What a read found for `key` (nothing; an entry that did not decode; or a decoded
    /// one), counted, as the entry to return: a damaged entry is removed, an expired one
    /// misses.
    fn settle(&self, key: &str, found: Option<Option<(Header, V)>>) -> Option<TierEntry<V>> {
        let stats = &self.inner.stats;
        let Some(decoded) = found else {
            stats.misses.inc();
            return None;
        };
        let Some((h, value)) = decoded else {
            stats.corrupt.inc();
            let _ = self.remove(key);
            return None;
        };
        let Some(ttl) = h.ttl_at(record::now_ms()) else {
            stats.expired.inc();
            return None;
        };
        stats.hits.inc();
        Some(TierEntry {
            value,
            ttl,
            tags: h.tags.into_iter().map(Arc::from).collect(),
        })
    }

    /// Stores `value` for `key` with `ttl` (`None`: never expires) and `tags`, evicting the oldest
    /// writes beyond the size bound. Durable per the tier's [`Durability`].
    pub fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error> {
        let expires_ms = record::expiry_ms(ttl, record::now_ms());
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        self.write("write", false, |tx| {
            self.put_in(tx, key, value, expires_ms, &tags)
        })?;
        self.inner.stats.writes.inc();
        Ok(())
    }

    fn put_in(
        &self,
        tx: &WriteTransaction,
        key: &str,
        value: &V,
        expires_ms: u64,
        tags: &[String],
    ) -> Result<(), Fault> {
        let freed = Self::delete_in(tx, key)?.unwrap_or(0);
        let seq = Self::meta(tx, "seq")? + 1;
        Self::set_meta(tx, "seq", seq)?;
        let header = Header {
            expires_ms,
            seq,
            tags: tags.to_vec(),
        };
        let record = record::encode(key, &header, value).map_err(|e| {
            Fault::Ours(Error::Serialize {
                key: key.to_owned(),
                message: e.to_string(),
            })
        })?;
        tx.open_table(ENTRIES)?
            .insert(key.as_bytes(), record.as_slice())?;
        tx.open_table(ORDER)?
            .insert(seq.to_be_bytes().as_slice(), key.as_bytes())?;
        {
            let mut t = tx.open_table(TAGS)?;
            for tag in tags {
                t.insert(tag_key(tag, key).as_slice(), [].as_slice())?;
            }
        }
        let added = (key.len() + record.len()) as u64;
        let mut total = Self::add_bytes(tx, i128::from(added) - i128::from(freed))?;
        // Evict the oldest writes (never the one just made) until within the bound.
        while total > self.inner.max_bytes {
            let oldest = {
                let order = tx.open_table(ORDER)?;
                let first = order.first()?;
                first.map(|(s, k)| (s.value().to_vec(), k.value().to_vec()))
            };
            let Some((s, k)) = oldest else { break };
            if s == seq.to_be_bytes() {
                break;
            }
            // An order row without an entry (or with a damaged key) frees nothing; drop the row.
            let f = match std::str::from_utf8(&k) {
                Ok(k) => Self::delete_in(tx, k)?.unwrap_or(0),
                Err(_) => 0,
            };
            if f == 0 && tx.open_table(ORDER)?.remove(s.as_slice())?.is_none() {
                return Err(corrupt("the order table does not shrink"));
            }
            total = Self::add_bytes(tx, -i128::from(f))?;
            self.inner.stats.evicted.inc();
        }
        Ok(())
    }
}

impl<V: Serialize + DeserializeOwned> Tier<V> for DiskTier<V> {
    fn get(&self, key: &str) -> Result<Option<TierEntry<V>>, Error> {
        self.get_entry(key)
    }

    /// One read transaction for every key.
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
        self.get_entries(keys)
    }

    fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error> {
        DiskTier::put(self, key, value, ttl, tags)
    }

    fn remove(&self, key: &str) -> Result<bool, Error> {
        DiskTier::remove(self, key)
    }

    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        DiskTier::remove_prefix(self, prefix)
    }

    fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
        DiskTier::remove_tag(self, tag)
    }

    fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
        DiskTier::remove_matching(self, pattern)
    }

    fn clear(&self) -> Result<(), Error> {
        DiskTier::clear(self)
    }

    fn flush(&self) -> Result<(), Error> {
        DiskTier::flush(self)
    }

    fn stats(&self) -> TierSnapshot {
        self.inner.stats.snapshot()
    }

    /// The keys most read before the last `save_heat`, then the most recently written.
    fn warm_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let mut keys = self.hottest_keys(n)?;
        let mut seen: std::collections::HashSet<String> = keys.iter().cloned().collect();
        keys.extend(
            self.newest_keys(n)?
                .into_iter()
                .filter(|k| seen.insert(k.clone())),
        );
        Ok(keys)
    }

    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        DiskTier::save_heat(self, reads)
    }

    /// Reports `mpm_cache_disk_*` under `name`, unless the tier already reports.
    fn register_metrics(&self, registry: &Registry, name: &str) -> Result<(), Error> {
        DiskInner::report(&self.inner, registry, name)
    }
}
