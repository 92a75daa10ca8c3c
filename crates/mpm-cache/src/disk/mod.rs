//! `DiskTier`: the durable L2, on [redb](https://docs.rs/redb).

mod buffer;
mod open;
mod series;
mod store;
mod writer;

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
pub use buffer::WriteBehind;
use buffer::{Admit, Batch, Buffer, Op, Write};
use open::Open;
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
/// file growth redb allows before a durable commit). With the write-behind buffer, the
/// background writer commits durably at half this, and a writer at twice this.
const AUTO_FLUSH_EVERY: u64 = 1024;

/// When writes reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// A write is durable once [`DiskTier::flush`] returns (and after every 1,024 writes, when
    /// the tier flushes by itself; with the [`WriteBehind`] buffer, its background writer
    /// flushes once 512 writes are not durable, and a writer waits for a flush of its own only
    /// if 2,048 are not). A crash loses at most the writes since then (those still in the
    /// buffer included), never corrupts anything. Removals and invalidations are always durable when they return (they commit
    /// the buffer with them).
    #[default]
    OnFlush,
    /// Every write is durable when it returns (one `fsync` per write: milliseconds each); the
    /// [`WriteBehind`] buffer is bypassed.
    EveryWrite,
}

/// Opens a [`DiskTier`].
#[derive(Clone, Debug)]
pub struct DiskTierBuilder {
    dir: PathBuf,
    max_bytes: u64,
    durability: Durability,
    verify_on_open: bool,
    write_behind: WriteBehind,
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

    /// How writes wait in memory to be committed in batches (default [`WriteBehind::default`];
    /// [`WriteBehind::off`] commits every write before it returns).
    pub fn write_behind(mut self, w: WriteBehind) -> Self {
        self.write_behind = w;
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
        let limits = match self.durability {
            Durability::EveryWrite => WriteBehind::off(),
            _ => self.write_behind,
        };
        let inner = Arc::new_cyclic(|tier| {
            let buffer = Arc::new(Buffer::new(limits));
            let thread = limits
                .is_on()
                .then(|| writer::spawn(Arc::clone(&buffer), tier.clone()))
                .flatten();
            // Without a thread (none could be started) every write commits by itself.
            let buffer = match thread {
                None if limits.is_on() => Arc::new(Buffer::new(WriteBehind::off())),
                _ => buffer,
            };
            DiskInner {
                store,
                max_bytes: self.max_bytes,
                durability: self.durability,
                stats,
                buffer,
                writer: Mutex::new(thread),
                fail_writes: AtomicBool::new(false),
                scope: Mutex::default(),
            }
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
    /// Writes not committed yet (see `buffer.rs`).
    buffer: Arc<Buffer>,
    /// The background writer, if the buffer is on.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    fail_writes: AtomicBool,
    /// The scope the tier reports into, once it has one: its claim and its collector.
    scope: Mutex<Option<Scope>>,
}

/// A batch begun in the buffer: if the commit does not end it (a panic), dropping this puts
/// the batch back, so that no write is lost and the next batch may begin.
struct Batching<'a> {
    buffer: &'a Buffer,
    ended: bool,
}

impl Batching<'_> {
    fn end(mut self, committed: bool, durable: bool, extra: u64, failure: Option<Error>) {
        self.ended = true;
        self.buffer.end(committed, durable, extra, failure);
    }
}

impl Drop for Batching<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.buffer.end(
                false,
                false,
                0,
                Some(Error::TierPanicked {
                    op: "commit",
                    message: "a batch commit panicked".to_owned(),
                }),
            );
        }
    }
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
        self.catch_up();
        self.store.run("count", |db| {
            let tx = db.begin_read()?;
            Ok(tx.open_table(ENTRIES)?.len()?)
        })
    }

    fn bytes(&self) -> Result<u64, Error> {
        self.catch_up();
        self.store.run("read", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(META)?;
            let v = t.get(b"bytes".as_slice())?;
            v.map_or(Ok(0), |v| number(v.value()))
        })
    }

    /// Commits the buffer (if it holds anything and the tier is not failing), so that what
    /// the store holds can be counted and listed; a failure is counted and left for the
    /// writes' own callers.
    fn catch_up(&self) {
        if self.buffer.needs_catch_up() {
            let _ = self.commit_with("write", false, 0, false, |_| Ok(()));
        }
    }

    /// Commits the buffer and, in the same transaction after it, `f` (with `extra` writes of
    /// its own): durably if `durable`, or by the tier's [`Durability`], or when the writes
    /// since the last durable commit reach 1,024. With `report`, a failure of the background
    /// writer that no caller was told of is returned instead (nothing is done). A failure is
    /// counted in [`DiskStats::write_errors`] and leaves the buffer as it was.
    fn commit_with<T>(
        &self,
        op: &'static str,
        durable: bool,
        extra: u64,
        report: bool,
        mut f: impl FnMut(&WriteTransaction) -> Result<T, Fault>,
    ) -> Result<T, Error> {
        let _turn = self.buffer.turn();
        if report && let Some(e) = self.buffer.take_failure() {
            return Err(e);
        }
        let (batch, due) = self.buffer.begin(extra, self.writer_flush_at());
        let durable = durable || due || self.durability == Durability::EveryWrite;
        let batching = Batching {
            buffer: &self.buffer,
            ended: false,
        };
        let r = self.store.run(op, |db| {
            let tx = db.begin_write()?;
            self.apply_in(&tx, &batch)?;
            let v = f(&tx)?;
            self.commit(tx, durable)?;
            Ok(v)
        });
        drop(batch);
        batching.end(r.is_ok(), durable, extra, None);
        if r.is_err() {
            self.stats.write_errors.inc();
        }
        r
    }

    /// The count of writes not yet durable at which a writer's own commit is made durable:
    /// every 1,024 without a buffer; with one, the background writer flushes at 512 and a
    /// writer only if the background fell 2,048 behind.
    fn writer_flush_at(&self) -> u64 {
        if self.buffer.is_on() {
            2 * AUTO_FLUSH_EVERY
        } else {
            AUTO_FLUSH_EVERY
        }
    }

    /// The background writer's turn: commits the buffer as one batch, durably once 512 writes
    /// are not durable yet. A failure is counted and kept for the next caller, and the batch
    /// stays buffered.
    fn commit_background(&self) {
        let _turn = self.buffer.turn();
        let (batch, due) = self.buffer.begin(0, AUTO_FLUSH_EVERY / 2);
        let batching = Batching {
            buffer: &self.buffer,
            ended: false,
        };
        if batch.is_empty() {
            drop(batch);
            batching.end(true, false, 0, None);
            return;
        }
        let r = self.store.run("write", |db| {
            let tx = db.begin_write()?;
            self.apply_in(&tx, &batch)?;
            self.commit(tx, due)?;
            Ok(())
        });
        drop(batch);
        match r {
            Ok(()) => batching.end(true, due, 0, None),
            Err(e) => {
                self.stats.write_errors.inc();
                batching.end(false, false, 0, Some(e));
            }
        }
    }

    fn commit(&self, mut tx: WriteTransaction, durable: bool) -> Result<(), Fault> {
        if self.fail_writes.load(Ordering::Relaxed) {
            tx.abort()?;
            return Err(Fault::Ours(Error::Io {
                op: "write",
                path: self.store.path().to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "injected write failure",
                ),
            }));
        }
        let level = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        tx.set_durability(level)?;
        tx.commit()?;
        Ok(())
    }

    /// Writes a batch of buffered operations inside `tx`: the removals, then the writes in
    /// the order they were made (one operation per key, so only the write order matters).
    fn apply_in(&self, tx: &WriteTransaction, batch: &Batch) -> Result<(), Fault> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut open = Open::new(tx)?;
        let mut puts = Vec::with_capacity(batch.len());
        for (key, op) in batch {
            match op {
                Op::Put(w) => puts.push((key.as_str(), w)),
                Op::Remove => {
                    open.delete(key)?;
                }
            }
        }
        puts.sort_unstable_by_key(|(_, w)| w.order);
        for (key, w) in puts {
            open.put(key, w, self.max_bytes, &self.stats)?;
        }
        open.close(tx)
    }

    /// Commits the buffer, then removes the keys `select` picks in the same transaction
    /// (durably); returns how many were stored.
    fn remove_where(
        &self,
        mut select: impl FnMut(&WriteTransaction) -> Result<Vec<String>, Fault>,
    ) -> Result<usize, Error> {
        // Removals are durable when they return, so an invalidated key never comes back.
        self.commit_with("remove", true, 0, true, |tx| {
            let keys = select(tx)?;
            let mut open = Open::new(tx)?;
            let n = open.delete_all(&keys)?;
            open.close(tx)?;
            Ok(n)
        })
    }

    /// Stops the background writer and waits for it (unless this is that thread).
    fn stop_writer(&mut self) {
        self.buffer.stop();
        let thread = self
            .writer
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// The keys in `t` starting with `prefix` that `keep` accepts.
fn keys_in(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Fault> {
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
}

/// The keys carrying `tag`, from the tag table `t`.
fn tagged_in(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tag: &str,
) -> Result<Vec<String>, Fault> {
    let prefix = tag_key(tag, "");
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
    /// Stops the background writer, commits what is buffered and makes every write durable.
    /// A failure is counted in [`DiskStats::write_errors`]; nothing here panics.
    fn drop(&mut self) {
        self.stop_writer();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if self.buffer.owes_anything() {
                let _ = self.buffer.take_failure();
                let _ = self.commit_with("flush", true, 0, false, |_| Ok(()));
            }
        }));
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
            write_behind: WriteBehind::default(),
            metrics: None,
        }
    }
}

impl<V> DiskTier<V> {
    /// Commits every buffered write and makes every write so far durable (one `fsync`). If
    /// the background writer failed since the last call that could say so, returns that
    /// failure instead (the writes it could not commit stay buffered: call again).
    pub fn flush(&self) -> Result<(), Error> {
        self.inner.commit_with("flush", true, 0, true, |_| Ok(()))
    }

    /// The counters.
    pub fn stats(&self) -> &DiskStats {
        &self.inner.stats
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// Writes waiting in the [`WriteBehind`] buffer (or being committed from it).
    pub fn buffered(&self) -> usize {
        self.inner.buffer.len()
    }

    /// Makes every later write fail as a full disk would, or stops doing so: for testing how a
    /// service copes. While it is on, writes are not buffered: each fails when made.
    pub fn inject_write_failure(&self, on: bool) {
        self.inner.fail_writes.store(on, Ordering::Relaxed);
        if on {
            self.inner.buffer.set_failing();
        }
    }

    /// Makes every later commit fail as a full disk would, or stops doing so, while writes
    /// are still buffered as usual: for testing how a failure of the background writer is
    /// reported (see [`WriteBehind`]). Hidden from the docs: a test hook, not part of the API.
    #[doc(hidden)]
    pub fn inject_commit_failure(&self, on: bool) {
        self.inner.fail_writes.store(on, Ordering::Relaxed);
    }

    /// Entries stored (live or expired but not yet removed); buffered writes are committed
    /// first.
    pub fn len(&self) -> Result<u64, Error> {
        self.inner.entries()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Bytes stored (keys and encoded values); buffered writes are committed first.
    pub fn bytes(&self) -> Result<u64, Error> {
        self.inner.bytes()
    }

    /// Up to `n` keys, most recently written first (the order warming uses).
    pub fn newest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        self.inner.catch_up();
        // Writes still buffered (if the commit failed) are the newest; removals hide keys.
        let buffered = self.inner.buffer.contents();
        let mut writes: Vec<(u64, &String)> = buffered
            .iter()
            .filter_map(|(k, op)| match op {
                Op::Put(w) => Some((w.order, k)),
                Op::Remove => None,
            })
            .collect();
        writes.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
        let mut out: Vec<String> = writes.into_iter().take(n).map(|(_, k)| k.clone()).collect();
        let stored = self.inner.store.run("scan", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ORDER)?;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for row in t.iter()?.rev() {
                if out.len() == n {
                    break;
                }
                let (_, k) = row?;
                if let Ok(k) = std::str::from_utf8(k.value())
                    && !buffered.contains_key(k)
                {
                    out.push(k.to_owned());
                }
            }
            Ok(out)
        })?;
        out.extend(stored);
        out.truncate(n);
        Ok(out)
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
        self.inner.commit_with("save heat", true, 0, true, |tx| {
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

    /// Removes `key` (durably, with every buffered write); returns whether it was stored.
    pub fn remove(&self, key: &str) -> Result<bool, Error> {
        Ok(self.inner.remove_where(|_| Ok(vec![key.to_owned()]))? == 1)
    }

    /// Removes every key starting with `prefix` (a range scan over those keys only).
    pub fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        self.inner
            .remove_where(|tx| keys_in(&tx.open_table(ENTRIES)?, prefix, |_| true))
    }

    /// Removes every key matching `pattern`; scans the keys sharing its literal prefix.
    pub fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
        self.inner.remove_where(|tx| {
            keys_in(&tx.open_table(ENTRIES)?, pattern.literal_prefix(), |k| {
                pattern.matches(k)
            })
        })
    }

    /// Removes every entry carrying `tag`.
    pub fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
        self.inner
            .remove_where(|tx| tagged_in(&tx.open_table(TAGS)?, tag))
    }

    /// Removes everything (durably, buffered writes included).
    pub fn clear(&self) -> Result<(), Error> {
        self.inner.commit_with("clear", true, 0, true, |tx| {
            for t in TABLES {
                tx.delete_table(*t)?;
                tx.open_table(*t)?;
            }
            Ok(())
        })
    }

    /// Removes a damaged entry found by a read: buffered (unless a newer write of the key
    /// is), or at once without a buffer.
    fn discard_damaged(&self, key: &str) {
        if self.inner.buffer.is_on() {
            self.inner.buffer.remove_damaged(key);
        } else {
            let _ = self.remove(key);
        }
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
        if let Some(op) = self.inner.buffer.lookup_one(key) {
            return Ok(self.settle_buffered(key, &op));
        }
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

    /// The entries for `keys`: the buffered ones from the buffer, the others read in one
    /// transaction.
    fn get_entries(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
        let buffered = self.inner.buffer.lookup(keys);
        let read = self.inner.store.run_once("read", |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ENTRIES)?;
            let mut found = Vec::with_capacity(keys.len());
            for (key, b) in keys.iter().zip(&buffered) {
                if b.is_some() {
                    found.push(None);
                    continue;
                }
                let got = t.get(key.as_bytes())?;
                found.push(got.map(|v| record::decode::<V>(key, v.value()).ok()));
            }
            Ok(found)
        });
        match read {
            Ok(found) => Ok(keys
                .iter()
                .zip(found)
                .zip(&buffered)
                .map(|((key, found), b)| match b {
                    Some(op) => self.settle_buffered(key, op),
                    None => self.settle(key, found),
                })
                .collect()),
            // The store was damaged and replaced by an empty one: nothing is there.
            Err(Error::Corrupt { .. }) => Ok(keys
                .iter()
                .zip(&buffered)
                .map(|(key, b)| match b {
                    Some(op) => self.settle_buffered(key, op),
                    None => {
                        self.inner.stats.misses.inc();
                        None
                    }
                })
                .collect()),
            Err(e) => Err(e),
        }
    }

    /// What the buffer holds for `key`, counted, as the entry to return.
    fn settle_buffered(&self, key: &str, op: &Op) -> Option<TierEntry<V>> {
        match op {
            Op::Put(w) => {
                let header = Header {
                    expires_ms: w.expires_ms,
                    seq: 0,
                    tags: w.tags.clone(),
                };
                // The bytes were encoded from a `V` by this tier: they decode unless `V`'s
                // serde implementations disagree, which is counted as damage.
                let value = postcard::from_bytes::<V>(&w.value).ok();
                self.settle(key, Some(value.map(|v| (header, v))))
            }
            Op::Remove => {
                self.inner.stats.misses.inc();
                None
            }
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
            self.discard_damaged(key);
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
    /// writes beyond the size bound. Durable per the tier's [`Durability`]. With the
    /// [`WriteBehind`] buffer on (the default), the write returns once buffered: reads see it
    /// at once, and a failure to commit it later is returned by a later call (see
    /// [`flush`](Self::flush)).
    pub fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error> {
        let inner = &*self.inner;
        let encoded = postcard::to_allocvec(value).map_err(|e| Error::Serialize {
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        let write = Write {
            value: encoded,
            expires_ms: record::expiry_ms(ttl, record::now_ms()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            order: 0,
        };
        match inner.buffer.admit(key, write, inner.writer_flush_at()) {
            Admit::Buffered => {}
            Admit::Direct(write) => {
                inner.commit_with("write", false, 1, true, |tx| {
                    let mut open = Open::new(tx)?;
                    open.put(key, &write, inner.max_bytes, &inner.stats)?;
                    open.close(tx)
                })?;
            }
        }
        inner.stats.writes.inc();
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
