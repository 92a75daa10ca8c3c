//! `DiskTier`: the durable L2, on [redb](https://docs.rs/redb).

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpm_metrics::Counter;
use redb::{
    Database, Key, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, Value, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::pattern::Pattern;
use crate::second::{L2Hit, SecondTier};

/// key -> crc32 (4 bytes, little endian) ++ postcard(header) ++ postcard(value).
const ENTRIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("entries");
/// write sequence -> key: the write order, oldest first (eviction order; newest are "hottest").
const ORDER: TableDefinition<'_, u64, &str> = TableDefinition::new("order");
/// `{tag length:08x}{tag}{key}` -> (): the keys carrying each tag.
const TAGS: TableDefinition<'_, &str, ()> = TableDefinition::new("tags");
/// key -> how often it was read, as sampled by `TieredCache` and saved by its `flush`: warming
/// loads the hottest keys first.
const HEAT: TableDefinition<'_, &str, u64> = TableDefinition::new("heat");
/// The most keys the heat table keeps (the hottest).
const HEAT_ROWS: usize = 65_536;
/// "bytes", "seq": running totals.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

const FILE: &str = "cache.redb";
/// Non-durable writes between automatic durable commits (bounds what a crash can lose and the
/// file growth redb allows before a durable commit).
const AUTO_FLUSH_EVERY: u64 = 1024;

#[derive(Serialize, serde::Deserialize)]
struct Header {
    /// Milliseconds since the Unix epoch; 0 means never.
    expires_ms: u64,
    seq: u64,
    tags: Vec<String>,
}

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

/// Counters of the disk tier.
#[derive(Clone, Default)]
pub struct DiskStats {
    /// Reads that found a live, intact entry.
    pub hits: Counter,
    /// Reads that found nothing usable.
    pub misses: Counter,
    /// Entries written.
    pub writes: Counter,
    /// Writes that failed (disk full, read-only, ...).
    pub write_errors: Counter,
    /// Entries whose checksum or encoding was wrong: counted, removed and treated as a miss.
    pub corrupt: Counter,
    /// Store files that could not be opened as a database and were moved aside.
    pub corrupt_files: Counter,
    /// Entries evicted by the size bound.
    pub evicted: Counter,
    /// Expired entries found on read.
    pub expired: Counter,
}

impl DiskStats {
    /// Counters registered in `registry` as `cache_disk_*_total` labelled `cache=<name>`.
    pub fn register(registry: &mpm_metrics::Registry, name: &str) -> Result<Self, Error> {
        let c =
            |what: &str| registry.counter(&format!("cache_disk_{what}_total"), &[("cache", name)]);
        Ok(Self {
            hits: c("hits")?,
            misses: c("misses")?,
            writes: c("writes")?,
            write_errors: c("write_errors")?,
            corrupt: c("corrupt_entries")?,
            corrupt_files: c("corrupt_files")?,
            evicted: c("evictions")?,
            expired: c("expired")?,
        })
    }
}

impl fmt::Debug for DiskStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStats")
            .field("hits", &self.hits.get())
            .field("misses", &self.misses.get())
            .field("corrupt", &self.corrupt.get())
            .finish_non_exhaustive()
    }
}

/// Opens a [`DiskTier`].
#[derive(Clone, Debug)]
pub struct DiskTierBuilder {
    dir: PathBuf,
    max_bytes: u64,
    durability: Durability,
    stats: DiskStats,
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

    /// Where the counters go.
    pub fn stats(mut self, stats: DiskStats) -> Self {
        self.stats = stats;
        self
    }

    /// Creates the directory (mode 0700 on Unix) if needed and opens the store in it. A store
    /// file that is not a valid database is moved aside (`cache.redb.corrupt-<time>`), counted
    /// in [`DiskStats::corrupt_files`], and replaced by an empty one.
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
        let path = dir.join(FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::Storage(e))
                if matches!(e, redb::StorageError::Corrupted(_))
                    || (matches!(e, redb::StorageError::Io(_)) && !Self::readable_store(&path)) =>
            {
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let aside = dir.join(format!("{FILE}.corrupt-{stamp}"));
                std::fs::rename(&path, &aside).map_err(|e| io("move aside", e))?;
                self.stats.corrupt_files.inc();
                Database::create(&path).map_err(|e| storage("open", &path, e))?
            }
            Err(e) => return Err(storage("open", &path, e)),
        };
        let tier = DiskTier {
            inner: Arc::new(DiskInner {
                db,
                path,
                max_bytes: self.max_bytes,
                durability: self.durability,
                stats: self.stats,
                unflushed: AtomicU64::new(0),
                fail_writes: AtomicBool::new(false),
            }),
            _value: PhantomData,
        };
        // Create the tables so that readers never meet a missing table.
        let tx = tier.begin_write()?;
        tx.open_table(ENTRIES)
            .map_err(|e| tier.err("open table", e))?;
        tx.open_table(ORDER)
            .map_err(|e| tier.err("open table", e))?;
        tx.open_table(TAGS).map_err(|e| tier.err("open table", e))?;
        tx.open_table(META).map_err(|e| tier.err("open table", e))?;
        tx.open_table(HEAT).map_err(|e| tier.err("open table", e))?;
        tier.commit(tx, true)?;
        Ok(tier)
    }
}

impl DiskTierBuilder {
    /// Whether `path` starts like a redb file (its magic number) or is empty/absent. A store
    /// that fails to open for another reason (permissions, a full disk) is never moved aside.
    fn readable_store(path: &Path) -> bool {
        use std::io::Read;
        let Ok(mut f) = std::fs::File::open(path) else {
            return true;
        };
        const MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
        let mut magic = [0u8; 9];
        match f.read_exact(&mut magic) {
            Ok(()) => magic == MAGIC,
            Err(_) => false,
        }
    }
}

fn storage(op: &'static str, path: &Path, e: impl fmt::Display) -> Error {
    Error::Storage {
        op,
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn tag_key(tag: &str, key: &str) -> String {
    format!("{:08x}{tag}{key}", tag.len())
}

/// Splits and checks a stored record: `None` when the checksum or the header is wrong.
fn decode_header(record: &[u8]) -> Option<(Header, &[u8])> {
    let (crc, body) = record.split_at_checked(4)?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    if crc32fast::hash(body) != crc {
        return None;
    }
    postcard::take_from_bytes::<Header>(body).ok()
}

struct DiskInner {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    durability: Durability,
    stats: DiskStats,
    unflushed: AtomicU64,
    fail_writes: AtomicBool,
}

/// The durable second tier: entries in one [redb](https://docs.rs/redb) file, each with a CRC32
/// checksum, its tags and its expiry (wall-clock time, so it survives restarts), bounded in
/// bytes.
///
/// Keys never become file names, so no key can escape the directory. Clones share the store.
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
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl Drop for DiskInner {
    fn drop(&mut self) {
        if self.unflushed.load(Ordering::Relaxed) > 0
            && let Ok(mut tx) = self.db.begin_write()
            && tx.set_durability(redb::Durability::Immediate).is_ok()
        {
            let _ = tx.commit();
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
            stats: DiskStats::default(),
        }
    }
}

impl<V> DiskTier<V> {
    fn err(&self, op: &'static str, e: impl fmt::Display) -> Error {
        storage(op, &self.inner.path, e)
    }

    fn begin_write(&self) -> Result<WriteTransaction, Error> {
        self.inner
            .db
            .begin_write()
            .map_err(|e| self.err("begin write", e))
    }

    fn commit(&self, mut tx: WriteTransaction, durable: bool) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.fail_writes.load(Ordering::Relaxed) {
            tx.abort().map_err(|e| self.err("abort", e))?;
            inner.stats.write_errors.inc();
            return Err(Error::Io {
                op: "write",
                path: inner.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "injected write failure",
                ),
            });
        }
        let durable = durable
            || inner.durability == Durability::EveryWrite
            || inner.unflushed.fetch_add(1, Ordering::Relaxed) + 1 >= AUTO_FLUSH_EVERY;
        let level = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        tx.set_durability(level)
            .map_err(|e| self.err("set durability", e))?;
        tx.commit().map_err(|e| {
            inner.stats.write_errors.inc();
            self.err("commit", e)
        })?;
        if durable {
            inner.unflushed.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes every write so far durable (one `fsync`).
    pub fn flush(&self) -> Result<(), Error> {
        let tx = self.begin_write()?;
        self.commit(tx, true)
    }

    /// The counters.
    pub fn stats(&self) -> &DiskStats {
        &self.inner.stats
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes every later write fail as a full disk would, or stops doing so: for testing how a
    /// service copes.
    pub fn inject_write_failure(&self, on: bool) {
        self.inner.fail_writes.store(on, Ordering::Relaxed);
    }

    /// Opens `table` in a new read transaction (the table keeps the transaction alive).
    fn read_table<TK: Key + 'static, TV: Value + 'static>(
        &self,
        table: TableDefinition<'static, TK, TV>,
    ) -> Result<ReadOnlyTable<TK, TV>, Error> {
        let tx = self
            .inner
            .db
            .begin_read()
            .map_err(|e| self.err("begin read", e))?;
        tx.open_table(table).map_err(|e| self.err("open table", e))
    }

    /// Entries stored (live or expired but not yet removed).
    pub fn len(&self) -> Result<u64, Error> {
        let t = self.read_table(ENTRIES)?;
        t.len().map_err(|e| self.err("count", e))
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Bytes stored (keys and encoded values).
    pub fn bytes(&self) -> Result<u64, Error> {
        let t = self.read_table(META)?;
        Ok(t.get("bytes")
            .map_err(|e| self.err("read", e))?
            .map_or(0, |v| v.value()))
    }

    /// Up to `n` keys, most recently written first (the order warming uses).
    pub fn newest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let t = self.read_table(ORDER)?;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for row in t.iter().map_err(|e| self.err("scan", e))?.rev().take(n) {
            let (_, k) = row.map_err(|e| self.err("scan", e))?;
            out.push(k.value().to_owned());
        }
        Ok(out)
    }

    /// Adds read counts to the heat table, durably: the counts already stored are halved first,
    /// so that what was hot long ago fades, and only the 65,536 hottest keys are kept.
    /// [`TieredCache::flush`](crate::TieredCache::flush) calls it with the hits it sampled.
    pub fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        let mut merged: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        {
            let t = self.read_table(HEAT)?;
            for row in t.iter().map_err(|e| self.err("scan", e))? {
                let (k, v) = row.map_err(|e| self.err("scan", e))?;
                let v = v.value() / 2;
                if v > 0 {
                    merged.insert(k.value().to_owned(), v);
                }
            }
        }
        for (k, n) in reads {
            let e = merged.entry((*k).to_owned()).or_insert(0);
            *e = e.saturating_add(*n);
        }
        let mut rows: Vec<(String, u64)> = merged.into_iter().collect();
        if rows.len() > HEAT_ROWS {
            rows.select_nth_unstable_by(HEAT_ROWS, |a, b| b.1.cmp(&a.1));
            rows.truncate(HEAT_ROWS);
        }
        let tx = self.begin_write()?;
        tx.delete_table(HEAT)
            .map_err(|e| self.err("save heat", e))?;
        {
            let mut t = tx.open_table(HEAT).map_err(|e| self.err("save heat", e))?;
            for (k, n) in &rows {
                t.insert(k.as_str(), n)
                    .map_err(|e| self.err("save heat", e))?;
            }
        }
        self.commit(tx, true)
    }

    /// Up to `n` keys with saved read counts, hottest first (ties in key order).
    pub fn hottest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let t = self.read_table(HEAT)?;
        let mut rows = Vec::new();
        for row in t.iter().map_err(|e| self.err("scan", e))? {
            let (k, v) = row.map_err(|e| self.err("scan", e))?;
            rows.push((v.value(), k.value().to_owned()));
        }
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(rows.into_iter().take(n).map(|(_, k)| k).collect())
    }

    /// Deletes `key` and its order and tag rows inside `tx`; returns the bytes freed.
    fn delete_in(tx: &WriteTransaction, key: &str) -> Result<Option<u64>, redb::Error> {
        let mut entries = tx.open_table(ENTRIES)?;
        let Some(old) = entries.remove(key)? else {
            return Ok(None);
        };
        let record = old.value().to_vec();
        drop(old);
        let freed = (key.len() + record.len()) as u64;
        if let Some((h, _)) = decode_header(&record) {
            tx.open_table(ORDER)?.remove(h.seq)?;
            let mut tags = tx.open_table(TAGS)?;
            for t in &h.tags {
                tags.remove(tag_key(t, key).as_str())?;
            }
        }
        Ok(Some(freed))
    }

    fn add_bytes(tx: &WriteTransaction, delta: i128) -> Result<u64, redb::Error> {
        let mut meta = tx.open_table(META)?;
        let cur = meta.get("bytes")?.map_or(0, |v| v.value());
        let new = u64::try_from((i128::from(cur) + delta).max(0)).unwrap_or(u64::MAX);
        meta.insert("bytes", new)?;
        Ok(new)
    }

    fn remove_keys(&self, keys: &[String]) -> Result<usize, Error> {
        let tx = self.begin_write()?;
        let mut freed = 0u64;
        let mut n = 0;
        for k in keys {
            if let Some(f) = Self::delete_in(&tx, k).map_err(|e| self.err("remove", e))? {
                freed += f;
                n += 1;
            }
        }
        Self::add_bytes(&tx, -i128::from(freed)).map_err(|e| self.err("remove", e))?;
        // Removals are durable when they return, so an invalidated key never comes back.
        self.commit(tx, true)?;
        Ok(n)
    }

    /// Removes `key` (durably); returns whether it was stored.
    pub fn remove(&self, key: &str) -> Result<bool, Error> {
        Ok(self.remove_keys(&[key.to_owned()])? == 1)
    }

    fn keys_from(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, Error> {
        let t = self.read_table(ENTRIES)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(|e| self.err("scan", e))? {
            let (k, _) = row.map_err(|e| self.err("scan", e))?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            if keep(k) {
                out.push(k.to_owned());
            }
        }
        Ok(out)
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
        let keys = {
            let t = self.read_table(TAGS)?;
            let mut out = Vec::new();
            for row in t
                .range(prefix.as_str()..)
                .map_err(|e| self.err("scan", e))?
            {
                let (k, _) = row.map_err(|e| self.err("scan", e))?;
                match k.value().strip_prefix(prefix.as_str()) {
                    Some(key) => out.push(key.to_owned()),
                    None => break,
                }
            }
            out
        };
        self.remove_keys(&keys)
    }

    /// Removes everything (durably).
    pub fn clear(&self) -> Result<(), Error> {
        let tx = self.begin_write()?;
        tx.delete_table(ENTRIES).map_err(|e| self.err("clear", e))?;
        tx.delete_table(TAGS).map_err(|e| self.err("clear", e))?;
        tx.delete_table(ORDER).map_err(|e| self.err("clear", e))?;
        tx.delete_table(META).map_err(|e| self.err("clear", e))?;
        tx.delete_table(HEAT).map_err(|e| self.err("clear", e))?;
        tx.open_table(HEAT).map_err(|e| self.err("clear", e))?;
        tx.open_table(ENTRIES).map_err(|e| self.err("clear", e))?;
        tx.open_table(ORDER).map_err(|e| self.err("clear", e))?;
        tx.open_table(TAGS).map_err(|e| self.err("clear", e))?;
        tx.open_table(META).map_err(|e| self.err("clear", e))?;
        self.commit(tx, true)
    }
}

impl<V: Serialize + DeserializeOwned> DiskTier<V> {
    /// Opens the tier for values of type `V` (the builder's `open` infers it too).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        DiskTier::builder(dir).open()
    }

    /// The live value for `key`. A record with a bad checksum or encoding is counted in
    /// [`DiskStats::corrupt`], removed, and reported as a miss.
    pub fn get(&self, key: &str) -> Result<Option<V>, Error> {
        Ok(self.get_entry(key)?.map(|h| h.value))
    }

    pub(crate) fn get_entry(&self, key: &str) -> Result<Option<L2Hit<V>>, Error> {
        let stats = &self.inner.stats;
        let record = {
            let t = self.read_table(ENTRIES)?;
            let got = t.get(key).map_err(|e| self.err("read", e))?;
            match got {
                Some(v) => v.value().to_vec(),
                None => {
                    stats.misses.inc();
                    return Ok(None);
                }
            }
        };
        let decoded = decode_header(&record)
            .and_then(|(h, rest)| postcard::from_bytes::<V>(rest).ok().map(|v| (h, v)));
        let Some((h, value)) = decoded else {
            stats.corrupt.inc();
            stats.misses.inc();
            let _ = self.remove(key);
            return Ok(None);
        };
        let ttl = if h.expires_ms == 0 {
            None
        } else {
            let now = now_ms();
            if now > h.expires_ms {
                stats.expired.inc();
                stats.misses.inc();
                return Ok(None);
            }
            Some(Duration::from_millis(h.expires_ms - now))
        };
        stats.hits.inc();
        Ok(Some(L2Hit {
            value,
            ttl,
            tags: h.tags.into_iter().map(Arc::from).collect(),
        }))
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
        let expires_ms = ttl.map_or(0, |t| {
            now_ms()
                .saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
                .max(1)
        });
        let tx = self.begin_write()?;
        let done = (|| -> Result<(), redb::Error> {
            let freed = Self::delete_in(&tx, key)?.unwrap_or(0);
            let seq = {
                let mut meta = tx.open_table(META)?;
                let seq = meta.get("seq")?.map_or(0, |v| v.value()) + 1;
                meta.insert("seq", seq)?;
                seq
            };
            let header = Header {
                expires_ms,
                seq,
                tags: tags.iter().map(|t| t.to_string()).collect(),
            };
            let mut body = postcard::to_stdvec(&header)
                .map_err(|e| redb::Error::Corrupted(format!("header: {e}")))?;
            postcard::to_io(value, &mut body)
                .map_err(|e| redb::Error::Corrupted(format!("value: {e}")))?;
            let mut record = Vec::with_capacity(body.len() + 4);
            record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            record.extend_from_slice(&body);
            tx.open_table(ENTRIES)?.insert(key, record.as_slice())?;
            tx.open_table(ORDER)?.insert(seq, key)?;
            {
                let mut t = tx.open_table(TAGS)?;
                for tag in tags {
                    t.insert(tag_key(tag, key).as_str(), ())?;
                }
            }
            let added = (key.len() + record.len()) as u64;
            let mut total = Self::add_bytes(&tx, i128::from(added) - i128::from(freed))?;
            // Evict the oldest writes (never the one just made) until within the bound.
            while total > self.inner.max_bytes {
                let oldest = {
                    let order = tx.open_table(ORDER)?;
                    let first = order.first()?;
                    first.map(|(s, k)| (s.value(), k.value().to_owned()))
                };
                let Some((s, k)) = oldest else { break };
                if s == seq {
                    break;
                }
                // An order row without an entry frees nothing; drop the row itself.
                let f = Self::delete_in(&tx, &k)?.unwrap_or(0);
                if f == 0 {
                    tx.open_table(ORDER)?.remove(s)?;
                }
                total = Self::add_bytes(&tx, -i128::from(f))?;
                self.inner.stats.evicted.inc();
            }
            Ok(())
        })();
        if let Err(e) = done {
            self.inner.stats.write_errors.inc();
            let _ = tx.abort();
            return Err(match e {
                redb::Error::Corrupted(m) if m.starts_with("value") => Error::Serialize {
                    key: key.to_owned(),
                    message: m,
                },
                e => self.err("write", e),
            });
        }
        self.commit(tx, false)?;
        self.inner.stats.writes.inc();
        Ok(())
    }
}

impl<V: Serialize + DeserializeOwned + Send + Sync> SecondTier<V> for DiskTier<V> {
    fn get(&self, key: &str) -> Result<Option<L2Hit<V>>, Error> {
        self.get_entry(key)
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

    fn newest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        DiskTier::newest_keys(self, n)
    }

    fn hottest_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        DiskTier::hottest_keys(self, n)
    }

    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        DiskTier::save_heat(self, reads)
    }

    fn flush(&self) -> Result<(), Error> {
        DiskTier::flush(self)
    }
}
