//! `cargo xtask trace`: replays cache access traces and prints, per trace and capacity, the
//! hit ratios of mpm-cache's L1 (`mpm`: its default, adaptive admission; `mpm-all`:
//! `Admission::All`, quick_cache's policy with mpm's options), quick_cache, moka, the adaptive
//! prototype and an exact LRU, then a summary against the goal of the adaptive policy.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::trace_format::{Format, read_trace};
use crate::trace_replay::{Policy, Settings, replay};

pub(crate) const USAGE: &str = "cargo xtask trace [--trace PATH]... [--dir DIR] \
[--filter TEXT[,TEXT...]] [--format cache2k|scarab|lirs|arc|csv[:COL]] \
[--capacity N|P%[,...]] [--quick] [--threads N] [--jobs N] [--json] \
[--hot-allocation F] [--ghost-allocation F] [--mpm-only] [--hash-seed N] [--seeds A-B|N,N...] \
[--adaptive KNOB=VALUE[,...]] (knobs: hot, ghost, shadow, window, margin, bar, modes=0:1:2, filter=auto|off|on|N)";

/// The shared traces the adaptive policy's knobs were tuned on (all six: the shadow size and
/// the hit sampling were chosen looking at every one). Any other trace (given with `--trace`
/// or `--dir`, such as the Caffeine simulator's) is held out: it confirms the choice.
const TUNING: [&str; 6] = [
    "lirs-loop",
    "lirs-multi1",
    "lirs-2_pools",
    "cache2k-orm-busy",
    "cache2k-web07",
    "arc-P3",
];

/// How many accesses of each trace `--quick` replays.
const QUICK_ACCESSES: usize = 500_000;

/// The goal: on every cell at least the better peer minus this many points...
const CELL_TOLERANCE: f64 = 0.3;
/// ...and a mean at least this many points above the better peer's mean.
const MEAN_LEAD: f64 = 1.0;

struct Trace {
    name: String,
    tuning: bool,
    keys: Vec<u64>,
    distinct: usize,
}

/// One trace at one capacity: the hit ratio of each policy, in `Policy::ALL` order.
struct Cell {
    trace: usize,
    label: String,
    capacity: usize,
    ratios: [f64; Policy::ALL.len()],
}

impl Cell {
    fn ratio(&self, p: Policy) -> f64 {
        self.ratios[index(p)]
    }

    /// The better of quick_cache (defaults) and moka.
    fn best_peer(&self) -> f64 {
        self.ratio(Policy::QuickCache).max(self.ratio(Policy::Moka))
    }

    /// `p`'s hit ratio minus the better peer's, in points.
    fn gap(&self, p: Policy) -> f64 {
        self.ratio(p) - self.best_peer()
    }
}

fn index(p: Policy) -> usize {
    Policy::ALL.iter().position(|&q| q == p).expect("listed")
}

struct Options {
    paths: Vec<PathBuf>,
    format: Option<Format>,
    capacities: String,
    filters: Vec<String>,
    limit: usize,
    threads: usize,
    jobs: usize,
    json: bool,
    mpm_only: bool,
    settings: Settings,
    /// Hash seeds to replay the adaptive policies with (`--seeds`); empty: only
    /// `settings.hash_seed`.
    seeds: Vec<u64>,
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut paths = Vec::new();
    let mut dir: Option<PathBuf> = None;
    let mut o = Options {
        paths: Vec::new(),
        format: None,
        capacities: "1%,5%,10%".into(),
        filters: Vec::new(),
        limit: usize::MAX,
        threads: 1,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
        json: false,
        mpm_only: false,
        settings: Settings::default(),
        seeds: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\nusage: {USAGE}"))
        };
        let fraction = |name: &str, v: String| -> Result<Option<f64>> {
            let v: f64 = v.parse().with_context(|| format!("bad {name} {v:?}"))?;
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be within [0, 1]");
            }
            Ok(Some(v))
        };
        match a.as_str() {
            "--trace" => paths.push(PathBuf::from(value(a)?)),
            "--dir" => dir = Some(PathBuf::from(value(a)?)),
            "--filter" => o
                .filters
                .extend(value(a)?.split(',').map(|f| f.trim().to_owned())),
            "--format" => o.format = Some(Format::parse(&value(a)?)?),
            "--capacity" => o.capacities = value(a)?,
            "--quick" => o.limit = QUICK_ACCESSES,
            "--threads" => o.threads = positive(a, &value(a)?)?,
            "--jobs" => o.jobs = positive(a, &value(a)?)?,
            "--hot-allocation" => o.settings.hot_allocation = fraction(a, value(a)?)?,
            "--ghost-allocation" => o.settings.ghost_allocation = fraction(a, value(a)?)?,
            "--adaptive" => {
                let seed = o.settings.adaptive.hash_seed;
                o.settings.adaptive = adaptive_config(&value(a)?)?;
                o.settings.adaptive.hash_seed = seed;
            }
            // Another draw of the hash collisions of the adaptive policies (mpm and the
            // prototype): how much of a cell's figure is luck. The peers keep theirs.
            "--hash-seed" => {
                let v = value(a)?;
                let seed: u64 = v.parse().with_context(|| format!("bad {a} {v:?}"))?;
                o.settings.hash_seed = seed;
                o.settings.adaptive.hash_seed = seed;
            }
            "--seeds" => o.seeds = seeds(&value(a)?)?,
            "--json" => o.json = true,
            "--mpm-only" => o.mpm_only = true,
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
        }
    }
    if paths.is_empty() || dir.is_some() {
        let dir = dir.unwrap_or_else(shared_traces);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("could not list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| Format::guess(p).is_ok())
            .collect();
        found.sort();
        paths.extend(found);
    }
    o.paths = paths
        .into_iter()
        .filter(|p| {
            let name = file_name(p);
            o.filters.is_empty() || o.filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    if o.paths.is_empty() {
        bail!("no trace to replay\nusage: {USAGE}");
    }
    Ok(Some(o))
}

/// Parses `--adaptive hot=0.9,ghost=1,shadow=1024,window=2,margin=0,bar=1,modes=0:1:2,filter=auto`.
fn adaptive_config(spec: &str) -> Result<crate::policy::Config> {
    use crate::policy::MAX_ADMISSION;
    let mut c = crate::policy::Config::default();
    for kv in spec.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--adaptive: {kv:?} is not KNOB=VALUE"))?;
        let bad = || format!("--adaptive: bad value in {kv:?}");
        match k.trim() {
            "hot" => c.hot_allocation = v.parse().with_context(bad)?,
            "ghost" => c.ghost_allocation = v.parse().with_context(bad)?,
            "shadow" => c.shadow_entries = v.parse().with_context(bad)?,
            "window" => c.window_per_entry = v.parse().with_context(bad)?,
            "margin" => c.margin_percent = v.parse().with_context(bad)?,
            "cold" => c.cold_victims_only = v.parse().with_context(bad)?,
            "memory" => c.memory_shift = v.parse().with_context(bad)?,
            "hits" => c.hit_sample_shift = v.parse().with_context(bad)?,
            "seed" => c.sample_seed = v.parse().with_context(bad)?,
            "thin" => c.thin_duel_hits = v.parse().with_context(bad)?,
            "sketch" => c.sketch_shrink = v.parse().with_context(bad)?,
            "bar" => c.bar_victims = v.parse().with_context(bad)?,
            "filter" => {
                c.forced = match v {
                    "auto" => None,
                    "off" => Some(0),
                    "on" => Some(1),
                    n => Some(
                        n.parse()
                            .ok()
                            .filter(|&m| m <= MAX_ADMISSION)
                            .with_context(bad)?,
                    ),
                }
            }
            "modes" => {
                c.modes = 0;
                for m in v.split(':') {
                    let m: u8 = m
                        .parse()
                        .ok()
                        .filter(|&m| m <= MAX_ADMISSION)
                        .with_context(bad)?;
                    c.modes |= 1 << m;
                }
            }
            other => bail!("--adaptive: unknown knob {other:?}"),
        }
    }
    if !(0.0..=1.0).contains(&c.hot_allocation) || !(0.0..=1.0).contains(&c.ghost_allocation) {
        bail!("--adaptive: hot and ghost must be within [0, 1]");
    }
    Ok(c)
}

/// Parses `--seeds`: a range `A-B` (inclusive) or a list `N,N,...`.
fn seeds(spec: &str) -> Result<Vec<u64>> {
    let bad = || format!("--seeds: {spec:?} is not A-B or N,N,...");
    let seeds: Vec<u64> = match spec.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u64, u64) = (
                a.trim().parse().with_context(bad)?,
                b.trim().parse().with_context(bad)?,
            );
            if a > b || b - a >= 64 {
                bail!("--seeds: {spec:?} must run upwards, 64 seeds at most");
            }
            (a..=b).collect()
        }
        None => spec
            .split(',')
            .map(|n| n.trim().parse().with_context(bad))
            .collect::<Result<_>>()?,
    };
    Ok(seeds)
}

fn positive(name: &str, v: &str) -> Result<usize> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name} must be a positive integer, not {v:?}"),
    }
}

/// The shared trace folder, `../shared/data/traces` from the project root.
fn shared_traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/traces")
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("trace")
        .to_owned()
}

/// The trace's short name: the file name without `.trace`, `.lis` and compression suffixes.
fn short_name(p: &Path) -> String {
    let name = file_name(p);
    name.split(".trace")
        .next()
        .unwrap_or(&name)
        .split(".lis")
        .next()
        .unwrap_or(&name)
        .to_owned()
}

fn capacities(spec: &str, distinct: usize) -> Result<Vec<(String, usize)>> {
    let mut caps = Vec::new();
    for c in spec.split(',') {
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
        caps.push((c.to_owned(), n));
    }
    Ok(caps)
}

/// Runs `work` over `items` on `jobs` threads; results in the items' order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len()).max(1) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("no panics while held");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    results.lock().expect("no panics while held")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no panics while held")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(o) = parse(args)? else {
        return Ok(());
    };
    let traces = parallel(&o.paths, o.jobs, |p| {
        let format = match o.format {
            Some(f) => f,
            None => Format::guess(p)?,
        };
        let keys = read_trace(p, format, o.limit)?;
        let name = short_name(p);
        Ok(Trace {
            tuning: TUNING.contains(&name.as_str()),
            distinct: keys.iter().collect::<HashSet<_>>().len(),
            name,
            keys,
        })
    })?;
    let mut jobs = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        for (label, cap) in capacities(&o.capacities, trace.distinct)? {
            jobs.push((t, label, cap));
        }
    }
    if o.mpm_only {
        let ratios = parallel(&jobs, o.jobs, |(t, _, cap)| {
            replay(&traces[*t].keys, Policy::Mpm, *cap, o.threads, &o.settings)
        })?;
        for ((t, _, cap), r) in jobs.iter().zip(ratios) {
            println!("{} {cap} {r:.3}", traces[*t].name);
        }
        return Ok(());
    }
    let work: Vec<(usize, Policy)> = (0..jobs.len())
        .flat_map(|j| Policy::ALL.map(|p| (j, p)))
        .collect();
    // The peers' figures do not change with the adaptive knobs: they are kept between runs.
    let memo = Memo::load();
    let seeds = if o.seeds.is_empty() {
        vec![o.settings.hash_seed]
    } else {
        o.seeds.clone()
    };
    let mut runs = Vec::new();
    for seed in seeds {
        let mut settings = o.settings;
        settings.hash_seed = seed;
        settings.adaptive.hash_seed = seed;
        runs.push((seed, measure(&o, &settings, &traces, &jobs, &work, &memo)?));
    }
    memo.save()?;
    let (first, cells) = &runs[0];
    if o.json {
        return print_json(&traces, cells);
    }
    if runs.len() > 1 {
        println!("hash seed {first} (the others: see the closing lines)");
    }
    print_table(&traces, cells, o.threads);
    print_summary(&traces, cells);
    if runs.len() > 1 {
        print_seeds(&traces, &runs);
    }
    Ok(())
}

/// Replays every (cell, policy) of `work` with `settings`: the hit ratios by cell.
fn measure(
    o: &Options,
    settings: &Settings,
    traces: &[Trace],
    jobs: &[(usize, String, usize)],
    work: &[(usize, Policy)],
    memo: &Memo,
) -> Result<Vec<Cell>> {
    let ratios = parallel(work, o.jobs, |&(j, p)| {
        let (t, _, cap) = &jobs[j];
        let trace = &traces[*t];
        let fixed = match p {
            // mpm's own columns follow its code, which may have changed: never kept.
            Policy::Adaptive | Policy::MpmAdaptive | Policy::Mpm => false,
            Policy::QuickCache | Policy::Moka | Policy::Lru => true,
        };
        // `v1`: how replays run; a change to them must change it, so old figures are not reused.
        let id = format!(
            "v1|{}|{}|{cap}|{}|{}",
            trace.name,
            trace.keys.len(),
            o.threads,
            p.name()
        );
        if fixed && let Some(r) = memo.get(&id) {
            return Ok(r);
        }
        let r = replay(&trace.keys, p, *cap, o.threads, settings)?;
        if fixed {
            memo.put(id, r);
        }
        Ok(r)
    })?;
    Ok(jobs
        .iter()
        .enumerate()
        .map(|(j, (t, label, cap))| {
            let mut r = [0.0; Policy::ALL.len()];
            r.copy_from_slice(&ratios[j * Policy::ALL.len()..(j + 1) * Policy::ALL.len()]);
            Cell {
                trace: *t,
                label: label.clone(),
                capacity: *cap,
                ratios: r,
            }
        })
        .collect())
}

/// Hit ratios of the policies whose figures do not depend on the command's options, by trace,
/// length, capacity, threads and policy, kept in `target/mpm-trace/peers.json`.
struct Memo {
    path: PathBuf,
    map: Mutex<std::collections::BTreeMap<String, f64>>,
}

impl Memo {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mpm-trace/peers.json");
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            map: Mutex::new(map),
        }
    }

    fn get(&self, id: &str) -> Option<f64> {
        self.map
            .lock()
            .expect("no panics while held")
            .get(id)
            .copied()
    }

    fn put(&self, id: String, ratio: f64) {
        self.map
            .lock()
            .expect("no panics while held")
            .insert(id, ratio);
    }

    /// Writes the file atomically (a temporary file renamed over it).
    fn save(&self) -> Result<()> {
        let dir = self.path.parent().context("a parent folder")?;
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let map = self.map.lock().expect("no panics while held");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&*map)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

fn print_json(traces: &[Trace], cells: &[Cell]) -> Result<()> {
    let out: Vec<_> = cells
        .iter()
        .map(|c| {
            let t = &traces[c.trace];
            let mut row = serde_json::json!({
                "trace": t.name,
                "set": if t.tuning { "tuning" } else { "held-out" },
                "accesses": t.keys.len(),
                "distinct": t.distinct,
                "capacity": c.capacity,
                "capacity_spec": c.label,
            });
            for p in Policy::ALL {
                row[p.name()] = serde_json::json!(c.ratio(p));
            }
            row
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_table(traces: &[Trace], cells: &[Cell], threads: usize) {
    if threads > 1 {
        println!("hit ratios with {threads} threads sharing each cache");
    }
    for (t, trace) in traces.iter().enumerate() {
        println!(
            "\n{} ({}; {} accesses, {} distinct keys)",
            trace.name,
            if trace.tuning { "tuning" } else { "held out" },
            trace.keys.len(),
            trace.distinct
        );
        print!("{:>14}", "capacity");
        for p in Policy::ALL {
            print!(" {:>11}", p.name());
        }
        println!(" {:>9} {:>9} {:>9}", "all-peer", "mpm-peer", "adap-peer");
        for c in cells.iter().filter(|c| c.trace == t) {
            print!("{:>14}", format!("{} {}", c.label, c.capacity));
            for p in Policy::ALL {
                print!(" {:>10.2}%", c.ratio(p));
            }
            println!(
                " {:>+9.2} {:>+9.2} {:>+9.2}",
                c.gap(Policy::Mpm),
                c.gap(Policy::MpmAdaptive),
                c.gap(Policy::Adaptive)
            );
        }
    }
}

fn mean(cells: &[&Cell], f: impl Fn(&Cell) -> f64) -> f64 {
    if cells.is_empty() {
        0.0
    } else {
        cells.iter().map(|c| f(c)).sum::<f64>() / cells.len() as f64
    }
}

fn print_summary(traces: &[Trace], cells: &[Cell]) {
    let all: Vec<&Cell> = cells.iter().collect();
    let tuning: Vec<&Cell> = cells.iter().filter(|c| traces[c.trace].tuning).collect();
    let held: Vec<&Cell> = cells.iter().filter(|c| !traces[c.trace].tuning).collect();
    println!("\nsummary (mean hit ratio over cells; best peer = better of quick_cache and moka)");
    print!("{:>22}", "set");
    for p in Policy::ALL {
        print!(" {:>11}", p.name());
    }
    println!();
    for (name, set) in [("tuning", &tuning), ("held out", &held), ("all", &all)] {
        if set.is_empty() {
            continue;
        }
        print!("{:>22}", format!("{name} ({} cells)", set.len()));
        for p in Policy::ALL {
            print!(" {:>10.2}%", mean(set, |c| c.ratio(p)));
        }
        println!();
    }
    for p in [Policy::MpmAdaptive, Policy::Mpm, Policy::Adaptive] {
        let worst = Verdict::of(&all, p).worst.expect("at least one cell");
        println!(
            "\n{}: worst gap to the best peer {:+.2} points ({} at {})",
            p.name(),
            worst.gap(p),
            traces[worst.trace].name,
            worst.label
        );
        let behind: Vec<String> = cells
            .iter()
            .filter(|c| c.gap(p) < 0.0)
            .map(|c| {
                let mark = if c.gap(p) < -CELL_TOLERANCE { "!" } else { "" };
                format!(
                    "{} {} {:+.2}{mark}",
                    traces[c.trace].name,
                    c.label,
                    c.gap(p)
                )
            })
            .collect();
        println!(
            "  behind the best peer in {} of {} cells{}{}",
            behind.len(),
            cells.len(),
            if behind.is_empty() { "" } else { ": " },
            behind.join(", ")
        );
        for (name, set) in [("tuning", &tuning), ("held out", &held), ("all", &all)] {
            if set.is_empty() {
                continue;
            }
            let v = Verdict::of(set, p);
            println!(
                "  goal on {name}: {} cells below best peer - {CELL_TOLERANCE}, \
                 mean {:+.2} points over the better peer's mean (needs +{MEAN_LEAD}): {}",
                v.below,
                v.lead,
                v.word()
            );
        }
    }
}

/// A policy against the goal over a set of cells.
struct Verdict<'a> {
    /// Cells below the better peer minus [`CELL_TOLERANCE`].
    below: usize,
    /// The policy's mean over the better peer's mean, in points.
    lead: f64,
    /// The cell with the largest gap to the better peer (none in an empty set).
    worst: Option<&'a Cell>,
}

impl<'a> Verdict<'a> {
    fn of(set: &[&'a Cell], p: Policy) -> Self {
        Verdict {
            below: set.iter().filter(|c| c.gap(p) < -CELL_TOLERANCE).count(),
            lead: mean(set, |c| c.ratio(p))
                - mean(set, |c| c.ratio(Policy::QuickCache))
                    .max(mean(set, |c| c.ratio(Policy::Moka))),
            worst: set
                .iter()
                .copied()
                .min_by(|a, b| a.gap(p).total_cmp(&b.gap(p))),
        }
    }

    fn met(&self) -> bool {
        self.below == 0 && self.lead >= MEAN_LEAD
    }

    fn word(&self) -> &'static str {
        if self.met() { "MET" } else { "NOT MET" }
    }
}

/// The goal per hash seed for the policies whose figures depend on it (`--seeds`): how much
/// of a verdict is the draw of the hash collisions.
fn print_seeds(traces: &[Trace], runs: &[(u64, Vec<Cell>)]) {
    println!(
        "\nthe goal per hash seed (cells below best peer - {CELL_TOLERANCE}; mean lead, needs +{MEAN_LEAD}; worst cell)"
    );
    for p in [Policy::MpmAdaptive, Policy::Adaptive] {
        let mut failed = 0;
        for (seed, cells) in runs {
            let all: Vec<&Cell> = cells.iter().collect();
            let v = Verdict::of(&all, p);
            failed += usize::from(!v.met());
            let worst = v.worst.map_or(String::new(), |c| {
                format!("{} {} {:+.2}", traces[c.trace].name, c.label, c.gap(p))
            });
            println!(
                "  {:<9} seed {seed:>3}: {:>2} below, mean {:+.2}, worst {worst}: {}",
                p.name(),
                v.below,
                v.lead,
                v.word()
            );
        }
        println!(
            "  {}: the goal held for {} of {} seeds",
            p.name(),
            runs.len() - failed,
            runs.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_replay::{Lru, pct};

    /// A skewed synthetic trace: key i*i/1000 of a 64-bit LCG stream, 4,000 distinct keys.
    fn skewed() -> Vec<u64> {
        let mut x = 12345u64;
        (0..60_000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (x >> 33) % 2_000;
                i * i / 1_000
            })
            .collect()
    }

    #[test]
    fn exact_lru_evicts_the_least_recent() {
        let mut l = Lru::new(2);
        assert!(!l.access(1));
        assert!(!l.access(2));
        assert!(l.access(1));
        assert!(!l.access(3)); // evicts 2
        assert!(l.access(1));
        assert!(!l.access(2));
    }

    #[test]
    fn capacities_are_entries_or_shares_of_the_distinct_keys() {
        let caps = capacities("1%, 10%,7", 2_000).unwrap();
        let n: Vec<usize> = caps.iter().map(|c| c.1).collect();
        assert_eq!(n, [20, 200, 7]);
        assert!(capacities("0.01%", 2_000).is_err());
        assert!(capacities("x", 2_000).is_err());
    }

    #[test]
    fn short_names_drop_the_suffixes() {
        assert_eq!(short_name(Path::new("a/lirs-loop.trace.gz")), "lirs-loop");
        assert_eq!(short_name(Path::new("arc-P3.lis.zst")), "arc-P3");
    }

    #[test]
    fn filters_pick_traces_and_unknown_arguments_fail() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dir = tempfile::tempdir().unwrap();
        for f in ["lirs-a.trace", "cache2k-b.trace", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let d = dir.path().to_str().unwrap();
        let o = parse(&args(&["--dir", d, "--filter", "lirs"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.paths.len(), 1);
        let o = parse(&args(&["--dir", d])).unwrap().unwrap();
        assert_eq!(o.paths.len(), 2, "notes.txt has no known format");
        assert!(parse(&args(&["--dir", d, "--filter", "none"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
        assert!(parse(&args(&["--dir", d, "--threads", "0"])).is_err());
    }

    #[test]
    fn seeds_are_a_range_or_a_list_and_bad_ones_are_refused() {
        assert_eq!(seeds("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(seeds("5").unwrap(), vec![5]);
        assert_eq!(seeds("1, 5,9").unwrap(), vec![1, 5, 9]);
        for bad in ["3-1", "0-100", "x", "1,,2", "-", ""] {
            assert!(seeds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_goal_counts_cells_below_the_tolerance_and_the_mean_lead() {
        // Two cells: mpm 0.2 below the better peer on one (within the tolerance), 0.5 below on
        // the other; the mean lead is their mean gap to the better peer's mean.
        let cell = |mpm: f64, qc: f64, moka: f64| {
            let mut ratios = [0.0; Policy::ALL.len()];
            ratios[index(Policy::MpmAdaptive)] = mpm;
            ratios[index(Policy::QuickCache)] = qc;
            ratios[index(Policy::Moka)] = moka;
            Cell {
                trace: 0,
                label: "1%".into(),
                capacity: 1,
                ratios,
            }
        };
        let (a, b) = (cell(49.8, 50.0, 40.0), cell(29.5, 20.0, 30.0));
        let v = Verdict::of(&[&a, &b], Policy::MpmAdaptive);
        assert_eq!(v.below, 1);
        assert!((v.lead - (39.65 - 35.0)).abs() < 1e-9, "{}", v.lead);
        assert!(std::ptr::eq(v.worst.unwrap(), &b));
    }

    #[test]
    fn a_hash_seed_reaches_both_adaptive_policies_and_seed_zero_is_the_fixed_hasher() {
        use std::hash::BuildHasher;
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lirs-a.trace"), "").unwrap();
        let d = dir.path().to_str().unwrap();
        let o = parse(&args(&[
            "--dir",
            d,
            "--hash-seed",
            "3",
            "--adaptive",
            "window=4",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.settings.hash_seed, 3);
        assert_eq!(o.settings.adaptive.hash_seed, 3);
        assert_eq!(o.settings.adaptive.window_per_entry, 4);
        assert!(parse(&args(&["--dir", d, "--hash-seed", "x"])).is_err());
        let fixed = crate::policy::Fixed::default();
        let seeded = crate::trace_replay::Seeded;
        assert_eq!(seeded(0).hash_one(42u64), fixed.hash_one(42u64));
        assert_ne!(seeded(1).hash_one(42u64), fixed.hash_one(42u64));
        // Another seed is another replay of the adaptive policies (the trace is a skewed one,
        // where the prototype's figure moves with its sketch's collisions).
        let keys = skewed();
        let mut settings = Settings::default();
        let base = replay(&keys, Policy::Adaptive, 40, 1, &settings).unwrap();
        settings.adaptive.hash_seed = 7;
        let other = replay(&keys, Policy::Adaptive, 40, 1, &settings).unwrap();
        assert_ne!(base, other);
    }

    /// Hits of `keys` (as strings) replayed through a cache whose `access` looks a key up and
    /// inserts it on a miss.
    fn hits_of(keys: &[u64], mut access: impl FnMut(String) -> bool) -> f64 {
        let hits = keys.iter().filter(|k| access(k.to_string())).count();
        pct(hits, keys.len())
    }

    #[test]
    fn ttl_tags_and_statistics_leave_the_policy_as_the_bare_tier_has_it() {
        let keys = skewed();
        for cap in [40, 200, 400] {
            let mpm = replay(&keys, Policy::Mpm, cap, 1, &Settings::default()).unwrap();
            // The bare L1 with the same hasher and string keys: no TTL, no tags, no L2.
            let tier: mpm_cache::MemoryTier<String, (), crate::policy::Fixed> =
                mpm_cache::MemoryTier::builder()
                    .admission(mpm_cache::Admission::All)
                    .max_entries(std::num::NonZeroUsize::new(cap).unwrap())
                    .hasher(crate::policy::Fixed::default())
                    .build()
                    .unwrap();
            let bare = hits_of(&keys, |s| {
                let hit = tier.get(&s).is_some();
                if !hit {
                    tier.insert(s, ());
                }
                hit
            });
            assert_eq!(mpm, bare, "capacity {cap}");
            // quick_cache with the same options: the same policy but for the ghost records,
            // which the L1 keeps lossy (two bytes each) where quick_cache keeps them exact.
            let mut opts = quick_cache::OptionsBuilder::new();
            opts.estimated_items_capacity(cap)
                .weight_capacity(cap as u64)
                .hot_allocation(mpm_cache::DEFAULT_HOT_ALLOCATION)
                .ghost_allocation(mpm_cache::DEFAULT_GHOST_ALLOCATION);
            let qc: quick_cache::sync::Cache<String, (), _, crate::policy::Fixed> =
                quick_cache::sync::Cache::with_options(
                    opts.build().unwrap(),
                    quick_cache::UnitWeighter,
                    Default::default(),
                    Default::default(),
                );
            let qc = hits_of(&keys, |s| {
                let hit = qc.get(&s).is_some();
                if !hit {
                    qc.insert(s, ());
                }
                hit
            });
            assert!(
                (mpm - qc).abs() < 1.0,
                "capacity {cap}: {mpm:.2} against {qc:.2}"
            );
        }
    }

    #[test]
    fn two_threads_sharing_a_cache_keep_its_hit_ratio() {
        let keys = skewed();
        for p in Policy::ALL {
            let one = replay(&keys, p, 200, 1, &Settings::default()).unwrap();
            let two = replay(&keys, p, 200, 2, &Settings::default()).unwrap();
            assert!(
                two > one - 5.0,
                "{}: {one:.2} alone, {two:.2} shared",
                p.name()
            );
        }
    }

    #[test]
    fn the_shared_traces_replay_when_present() {
        let path = shared_traces().join("lirs-loop.trace.gz");
        if !path.exists() {
            eprintln!("skipped: {} is absent", path.display());
            return;
        }
        let keys = read_trace(&path, Format::Lirs, 10_000).unwrap();
        assert_eq!(keys.len(), 10_000);
    }
}
