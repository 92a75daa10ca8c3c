//! `cargo xtask trace`: replays a cache access trace and prints hit ratios of mpm-cache's L1,
//! bare quick_cache, moka and an exact LRU.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::io::{BufRead, BufReader, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub(crate) const USAGE: &str = "cargo xtask trace --trace PATH [--format cache2k|lirs|arc] \
--capacity N[,N...]|P%[,P%...] [--json] [--hot-allocation F] [--ghost-allocation F] [--mpm-only]";

/// The hasher every policy uses: SipHash with fixed keys, so the figures repeat. Every policy
/// also sees the same keys (the trace's numbers as decimal strings), so that they hash alike.
type Fixed = BuildHasherDefault<DefaultHasher>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Cache2k,
    Lirs,
    Arc,
}

impl Format {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "cache2k" => Self::Cache2k,
            "lirs" => Self::Lirs,
            "arc" => Self::Arc,
            other => bail!("unknown trace format {other:?} (cache2k, lirs or arc)"),
        })
    }

    fn guess(path: &Path) -> Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("cache2k") {
            Ok(Self::Cache2k)
        } else if name.starts_with("lirs") {
            Ok(Self::Lirs)
        } else if name.starts_with("arc") || name.contains(".lis") {
            Ok(Self::Arc)
        } else {
            bail!(
                "cannot tell the format of {}; pass --format",
                path.display()
            )
        }
    }
}

/// Opens `path`, decompressing by extension (`.xz`, `.gz`, `.zst`).
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let f = BufReader::with_capacity(1 << 16, f);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "xz" => Box::new(liblzma::read::XzDecoder::new(f)),
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(f)),
        "zst" => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
        _ => Box::new(f),
    })
}

/// Reads every key of the trace.
fn read_trace(path: &Path, format: Format) -> Result<Vec<u64>> {
    let mut r = open(path)?;
    let mut keys = Vec::new();
    match format {
        Format::Cache2k => {
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes)
                .with_context(|| format!("could not read {}", path.display()))?;
            for chunk in bytes.chunks_exact(4) {
                let k = i32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                keys.push(k as u32 as u64);
            }
        }
        Format::Lirs => {
            for (n, line) in BufReader::new(r).lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
                let line = line.trim();
                if line.is_empty() || line == "*" {
                    continue;
                }
                keys.push(line.parse::<u64>().with_context(|| {
                    format!("{}: line {}: not a key: {line:?}", path.display(), n + 1)
                })?);
            }
        }
        Format::Arc => {
            for (n, line) in BufReader::new(r).lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
                let mut f = line.split_whitespace();
                let (Some(start), Some(count)) = (f.next(), f.next()) else {
                    continue;
                };
                let bad = || format!("{}: line {}: {line:?}", path.display(), n + 1);
                let start: u64 = start.parse().with_context(bad)?;
                let count: u64 = count.parse().with_context(bad)?;
                keys.extend(start..start.saturating_add(count));
            }
        }
    }
    Ok(keys)
}

/// An exact LRU: a hash map into a doubly linked list kept in a vector.
struct Lru {
    map: HashMap<u64, usize, Fixed>,
    nodes: Vec<(u64, usize, usize)>, // key, prev, next
    head: usize,
    tail: usize,
    cap: usize,
}

const NIL: usize = usize::MAX;

impl Lru {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(cap, Fixed::default()),
            nodes: Vec::with_capacity(cap),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (_, p, n) = self.nodes[i];
        if p == NIL {
            self.head = n;
        } else {
            self.nodes[p].2 = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.nodes[n].1 = p;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].1 = NIL;
        self.nodes[i].2 = self.head;
        if self.head != NIL {
            self.nodes[self.head].1 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Returns whether `k` was a hit; inserts it on a miss.
    fn access(&mut self, k: u64) -> bool {
        if let Some(&i) = self.map.get(&k) {
            self.unlink(i);
            self.push_front(i);
            return true;
        }
        let i = if self.nodes.len() < self.cap {
            self.nodes.push((k, NIL, NIL));
            self.nodes.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            self.map.remove(&self.nodes[i].0);
            self.nodes[i].0 = k;
            i
        };
        self.map.insert(k, i);
        self.push_front(i);
        false
    }
}

struct Row {
    capacity: usize,
    accesses: usize,
    mpm: f64,
    quick_cache: f64,
    quick_cache_same: f64,
    moka: f64,
    lru: f64,
}

fn pct(hits: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        hits as f64 * 100.0 / n as f64
    }
}

/// Replays `keys` (as decimal strings, the same keys for every policy) through `access`, which
/// is given each number and its string, looks the key up, inserts it on a miss, and says whether it hit. Returns the hit ratio.
fn replay(keys: &[u64], mut access: impl FnMut(u64, &str) -> bool) -> Result<f64> {
    let mut key = String::new();
    let mut hits = 0;
    for &k in keys {
        key.clear();
        write!(key, "{k}")?;
        if access(k, &key) {
            hits += 1;
        }
    }
    Ok(pct(hits, keys.len()))
}

fn replay_mpm(keys: &[u64], cap: usize, hot: Option<f64>, ghost: Option<f64>) -> Result<f64> {
    // As a service would run it: the L1 of a `TieredCache` (no L2) with a default TTL,
    // statistics, and a tag on every entry (64 tags in all, so each tag holds many keys).
    let mut l1 = mpm_cache::MemoryTier::builder()
        .max_entries(NonZeroUsize::new(cap).context("capacity must be at least 1")?)
        .default_ttl(Some(Duration::from_secs(86_400)))
        .hasher(Fixed::default());
    if let Some(h) = hot {
        l1 = l1.hot_allocation(h);
    }
    if let Some(g) = ghost {
        l1 = l1.ghost_allocation(g);
    }
    let cache = mpm_cache::TieredCache::<()>::builder().l1(l1).build()?;
    let ratio = replay(keys, |k, key| {
        if cache.get(key).is_some() {
            return true;
        }
        let tag = format!("t{}", k % 64);
        cache.insert_with(key, (), mpm_cache::EntryOptions::new().tag(tag));
        false
    })?;
    debug_assert_eq!(pct(cache.stats().hits as usize, keys.len()), ratio);
    Ok(ratio)
}

fn replay_qc(keys: &[u64], cap: usize, options: Option<(f64, f64)>) -> Result<f64> {
    let mut opts = quick_cache::OptionsBuilder::new();
    opts.estimated_items_capacity(cap)
        .weight_capacity(cap as u64);
    if let Some((hot, ghost)) = options {
        opts.hot_allocation(hot).ghost_allocation(ghost);
    }
    let cache: quick_cache::sync::Cache<String, (), quick_cache::UnitWeighter, Fixed> =
        quick_cache::sync::Cache::with_options(
            opts.build()?,
            quick_cache::UnitWeighter,
            Fixed::default(),
            Default::default(),
        );
    replay(keys, |_, key| {
        let hit = cache.get(key).is_some();
        if !hit {
            cache.insert(key.to_owned(), ());
        }
        hit
    })
}

fn replay_moka(keys: &[u64], cap: usize) -> Result<f64> {
    let cache: moka::sync::Cache<String, (), Fixed> = moka::sync::Cache::builder()
        .max_capacity(cap as u64)
        .build_with_hasher(Fixed::default());
    replay(keys, |_, key| {
        let hit = cache.get(key).is_some();
        if !hit {
            cache.insert(key.to_owned(), ());
            // Apply the admission and eviction decisions now, as a busy cache eventually would.
            cache.run_pending_tasks();
        }
        hit
    })
}

fn replay_lru(keys: &[u64], cap: usize) -> f64 {
    let mut lru = Lru::new(cap);
    let hits = keys.iter().filter(|&&k| lru.access(k)).count();
    pct(hits, keys.len())
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut trace: Option<PathBuf> = None;
    let mut format = None;
    let mut capacities: Option<String> = None;
    let mut json = false;
    let mut hot = None;
    let mut mpm_only = false;
    let mut ghost = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\nusage: {USAGE}"))
        };
        match a.as_str() {
            "--trace" => trace = Some(PathBuf::from(value("--trace")?)),
            "--format" => format = Some(Format::parse(&value("--format")?)?),
            "--capacity" => capacities = Some(value("--capacity")?),
            "--hot-allocation" => {
                let v: f64 = value("--hot-allocation")?.parse()?;
                if !(0.0..=1.0).contains(&v) {
                    bail!("--hot-allocation must be within [0, 1]");
                }
                hot = Some(v);
            }
            "--ghost-allocation" => {
                let v: f64 = value("--ghost-allocation")?.parse()?;
                if !(0.0..=1.0).contains(&v) {
                    bail!("--ghost-allocation must be within [0, 1]");
                }
                ghost = Some(v);
            }
            "--json" => json = true,
            "--mpm-only" => mpm_only = true,
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
        }
    }
    let trace = trace.with_context(|| format!("--trace is required\nusage: {USAGE}"))?;
    let capacities =
        capacities.with_context(|| format!("--capacity is required\nusage: {USAGE}"))?;
    let format = match format {
        Some(f) => f,
        None => Format::guess(&trace)?,
    };
    let keys = read_trace(&trace, format)?;
    let distinct = keys.iter().collect::<HashSet<_>>().len();
    let mut caps = Vec::new();
    for c in capacities.split(',') {
        let c = c.trim();
        let n = if let Some(p) = c.strip_suffix('%') {
            let p: f64 = p.parse().with_context(|| format!("bad capacity {c:?}"))?;
            (distinct as f64 * p / 100.0).round() as usize
        } else {
            c.parse().with_context(|| format!("bad capacity {c:?}"))?
        };
        if n == 0 {
            bail!("capacity {c:?} is zero entries ({distinct} distinct keys)");
        }
        caps.push(n);
    }
    if mpm_only {
        for cap in caps {
            let r = replay_mpm(&keys, cap, hot, ghost)?;
            println!("{cap} {r:.3}");
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for cap in caps {
        rows.push(Row {
            capacity: cap,
            accesses: keys.len(),
            mpm: replay_mpm(&keys, cap, hot, ghost)?,
            quick_cache: replay_qc(&keys, cap, None)?,
            quick_cache_same: replay_qc(
                &keys,
                cap,
                Some((
                    hot.unwrap_or(mpm_cache::DEFAULT_HOT_ALLOCATION),
                    ghost.unwrap_or(mpm_cache::DEFAULT_GHOST_ALLOCATION),
                )),
            )?,
            moka: replay_moka(&keys, cap)?,
            lru: replay_lru(&keys, cap),
        });
    }
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "capacity": r.capacity,
                    "accesses": r.accesses,
                    "mpm": r.mpm,
                    "quick_cache": r.quick_cache,
                    "quick_cache_same_options": r.quick_cache_same,
                    "moka": r.moka,
                    "lru": r.lru,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} ({} accesses, {distinct} distinct keys)",
            trace
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("trace"),
            keys.len()
        );
        println!(
            "{:>10} {:>8} {:>12} {:>15} {:>8} {:>8}",
            "capacity", "mpm", "quick_cache", "qc_same_opts", "moka", "lru"
        );
        for r in &rows {
            println!(
                "{:>10} {:>7.2}% {:>11.2}% {:>14.2}% {:>7.2}% {:>7.2}%",
                r.capacity, r.mpm, r.quick_cache, r.quick_cache_same, r.moka, r.lru
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lru_evicts_the_least_recent() {
        let mut l = Lru::new(2);
        assert!(!l.access(1));
        assert!(!l.access(2));
        assert!(l.access(1));
        assert!(!l.access(3)); // evicts 2
        assert!(l.access(1));
        assert!(!l.access(2));
        assert!(!l.access(3) || l.access(1));
    }

    #[test]
    fn format_is_guessed_from_the_name() {
        assert_eq!(
            Format::guess(Path::new("x/cache2k-web07.trace.xz")).unwrap(),
            Format::Cache2k
        );
        assert_eq!(
            Format::guess(Path::new("lirs-loop.trace.gz")).unwrap(),
            Format::Lirs
        );
        assert_eq!(
            Format::guess(Path::new("arc-P3.lis.zst")).unwrap(),
            Format::Arc
        );
        assert!(Format::guess(Path::new("other.bin")).is_err());
    }

    #[test]
    fn the_shared_traces_replay_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/traces");
        let path = dir.join("lirs-loop.trace.gz");
        if !path.exists() {
            eprintln!("skipped: {} is absent", path.display());
            return;
        }
        let keys = read_trace(&path, Format::Lirs).unwrap();
        assert!(!keys.is_empty());
    }

    #[test]
    fn ttl_tags_and_statistics_leave_the_policy_as_bare_quick_cache_has_it() {
        // A skewed synthetic trace: key i*i/1000 of a 64-bit LCG stream, 4,000 distinct keys.
        let mut x = 12345u64;
        let keys: Vec<u64> = (0..60_000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (x >> 33) % 2_000;
                i * i / 1_000
            })
            .collect();
        let same = Some((
            mpm_cache::DEFAULT_HOT_ALLOCATION,
            mpm_cache::DEFAULT_GHOST_ALLOCATION,
        ));
        for cap in [40, 200, 400] {
            let mpm = replay_mpm(&keys, cap, None, None).unwrap();
            let qc = replay_qc(&keys, cap, same).unwrap();
            assert_eq!(mpm, qc, "capacity {cap}");
            assert!(
                mpm > replay_lru(&keys, cap) - 10.0 && mpm > 0.0,
                "capacity {cap}: {mpm}"
            );
        }
    }
}
