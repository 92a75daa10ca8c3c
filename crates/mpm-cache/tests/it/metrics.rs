//! The cache's metrics follow `mpm_metrics::contract`: one `.metrics(&registry, name)` per
//! builder, errors at `build`, a lookup counted once whatever tiers it asked, gauges fresh at
//! scrape time, and the table in `src/metrics.md` true to the exposition.

use std::num::NonZeroUsize;
use std::time::Duration;

use mpm_cache::{Clock, DiskTier, EntryOptions, Error, MemoryTier, TieredCache};
use mpm_metrics::{Exposition, Registry, contract};

const TABLE: &str = include_str!("../../src/metrics.md");

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// The value of the series `name{labels}` in `text` (labels in the exposition's order).
#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

fn load(v: &str) -> impl std::future::Future<Output = Result<String, std::io::Error>> {
    let v = v.to_owned();
    async move { Ok(v) }
}

fn disk_cache(
    registry: &Registry,
    dir: &std::path::Path,
) -> (DiskTier<String>, TieredCache<String>) {
    let disk: DiskTier<String> = DiskTier::builder(dir).open().unwrap();
    let cache = TieredCache::builder()
        .l2(disk.clone())
        .metrics(registry, "profiles")
        .build()
        .unwrap();
    (disk, cache)
}

#[test]
fn one_lookup_on_an_empty_cache_is_one_miss_not_one_per_tier() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let (_disk, cache) = disk_cache(&registry, dir.path());
    block_on(cache.get_or_load("agent:1", || load("p"))).unwrap();
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_misses_total{name="profiles"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_hits_total{name="profiles",tier="l1"}"#),
        0.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_hits_total{name="profiles",tier="l2"}"#),
        0.0
    );
    assert_eq!(
        value(
            &text,
            r#"mpm_cache_loads_total{name="profiles",outcome="ok"}"#
        ),
        1.0
    );
    let s = cache.stats();
    assert_eq!((s.hits, s.l2_hits, s.misses), (0, 0, 1));
}

#[test]
fn a_lookup_that_misses_memory_and_hits_the_tier_below_is_one_l2_hit() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let (_disk, cache) = disk_cache(&registry, dir.path());
    cache.insert("a", "1".into());
    cache.insert("b", "2".into());
    cache.shrink_to(0.0).unwrap();
    assert_eq!(cache.get("a").as_deref(), Some("1"));
    let v = block_on(cache.get_or_load("b", || async { Err::<String, _>("not called") })).unwrap();
    assert_eq!(v, "2");
    assert_eq!(cache.get("a").as_deref(), Some("1"), "promoted");
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_hits_total{name="profiles",tier="l2"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_hits_total{name="profiles",tier="l1"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_misses_total{name="profiles"}"#),
        0.0
    );
    let s = cache.stats();
    assert_eq!((s.hits, s.l2_hits, s.misses), (1, 2, 0));
    assert!((s.hit_rate() - 1.0).abs() < f64::EPSILON);
}

#[test]
fn callers_waiting_on_one_load_each_count_one_miss() {
    let registry = Registry::default();
    let cache: TieredCache<u32> = TieredCache::builder()
        .metrics(&registry, "c")
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rx = std::sync::Mutex::new(Some(rx));
    block_on(async {
        let lead = cache.get_or_load("k", || async {
            let rx = rx.lock().unwrap().take().unwrap();
            rx.await.unwrap();
            Ok::<_, String>(7)
        });
        let waiters = futures::future::join_all(
            (0..4).map(|_| cache.get_or_load("k", || async { Ok::<_, String>(0) })),
        );
        let release = async {
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
        };
        let (a, b, ()) = futures::join!(lead, waiters, release);
        assert_eq!(a.unwrap(), 7);
        assert!(b.into_iter().all(|v| v.unwrap() == 7));
    });
    let s = cache.stats();
    assert_eq!(
        (s.hits, s.misses),
        (0, 5),
        "five lookups, none answered by a tier"
    );
    assert_eq!(cache.load_stats().ok, 1);
}

#[test]
fn gauges_are_fresh_at_scrape_without_a_stats_call() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let (_disk, cache) = disk_cache(&registry, dir.path());
    for i in 0..20 {
        cache.insert(&format!("agent:{i}"), "p".into());
    }
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_entries{name="profiles",tier="l1"}"#),
        20.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_weight{name="profiles",tier="l1"}"#),
        20.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_disk_entries{name="profiles"}"#),
        20.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_disk_writes_total{name="profiles"}"#),
        20.0
    );
    cache.invalidate_prefix("agent:1").unwrap(); // agent:1, agent:10..19
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_entries{name="profiles",tier="l1"}"#),
        9.0
    );
    assert_eq!(
        value(&text, r#"mpm_cache_disk_entries{name="profiles"}"#),
        9.0
    );
}

#[test]
fn a_bare_memory_tier_counts_its_own_hits_and_misses() {
    let registry = Registry::default();
    let t: MemoryTier<u32, u32> = MemoryTier::builder()
        .metrics(&registry, "ids")
        .build()
        .unwrap();
    t.insert(1, 1);
    t.get(&1);
    t.get(&2);
    t.remove(&1);
    let s = t.stats_snapshot();
    assert_eq!((s.hits, s.misses, s.inserts, s.invalidated), (1, 1, 1, 1));
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_hits_total{name="ids",tier="l1"}"#),
        1.0
    );
    assert_eq!(value(&text, r#"mpm_cache_misses_total{name="ids"}"#), 1.0);
    assert_eq!(
        value(
            &text,
            r#"mpm_cache_removals_total{cause="invalidated",name="ids",tier="l1"}"#
        ),
        1.0
    );
    drop(t);
    assert_eq!(registry.collectors(), 0, "the collector ends with the tier");
    // The name is free again.
    MemoryTier::<u32, u32>::builder()
        .metrics(&registry, "ids")
        .build()
        .unwrap();
}

#[test]
fn a_taken_name_fails_at_build_not_mid_chain() {
    let registry = Registry::default();
    let _first: TieredCache<u32> = TieredCache::builder()
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    let second = TieredCache::<u32>::builder()
        .metrics(&registry, "profiles")
        .build();
    assert!(matches!(second, Err(Error::Metrics(_))), "{second:?}");
    let bare = MemoryTier::<u32, u32>::builder()
        .metrics(&registry, "profiles")
        .build();
    assert!(matches!(bare, Err(Error::Metrics(_))));
    let dir = tempfile::tempdir().unwrap();
    let _disk: DiskTier<u32> = DiskTier::builder(dir.path())
        .metrics(&registry, "profiles")
        .open()
        .unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let disk = DiskTier::builder(dir2.path())
        .metrics(&registry, "profiles")
        .open::<u32>();
    assert!(matches!(disk, Err(Error::Metrics(_))));
}

#[test]
fn a_disk_tier_that_reports_already_keeps_its_name_below_a_cache() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let disk: DiskTier<u32> = DiskTier::builder(dir.path())
        .metrics(&registry, "store")
        .open()
        .unwrap();
    let cache: TieredCache<u32> = TieredCache::builder()
        .l2(disk)
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    cache.insert("a", 1);
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_disk_writes_total{name="store"}"#),
        1.0
    );
    assert!(!text.contains(r#"mpm_cache_disk_writes_total{name="profiles"}"#));
    assert_eq!(
        value(
            &text,
            r#"mpm_cache_inserts_total{name="profiles",tier="l2"}"#
        ),
        1.0
    );
}

#[test]
fn the_l1_builders_metrics_name_the_cache_when_the_cache_has_none() {
    let registry = Registry::default();
    let cache: TieredCache<u32> = TieredCache::builder()
        .l1(MemoryTier::builder().metrics(&registry, "l1-named"))
        .build()
        .unwrap();
    cache.insert("a", 1);
    let text = registry.render_prometheus();
    assert_eq!(
        value(&text, r#"mpm_cache_entries{name="l1-named",tier="l1"}"#),
        1.0
    );
}

/// Drives every metric of the table, then checks the table against the exposition.
#[test]
fn the_table_in_the_docs_matches_the_exposition() {
    let registry = Registry::default();
    let dir = tempfile::tempdir().unwrap();
    let disk: DiskTier<String> = DiskTier::builder(dir.path()).max_bytes(400).open().unwrap();
    let (clock, hand) = Clock::manual();
    let cache: TieredCache<String> = TieredCache::builder()
        .l1(MemoryTier::builder()
            .max_entries(NonZeroUsize::new(4).unwrap())
            .shards(NonZeroUsize::new(1).unwrap())
            .clock(clock))
        .l2(disk.clone())
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    block_on(async {
        cache.get_or_load("a", || load("1")).await.unwrap(); // miss, load ok
        cache.get_or_load("a", || load("x")).await.unwrap(); // L1 hit
        let err = cache
            .get_or_load("b", || async { Err::<String, _>("no") })
            .await;
        assert!(err.is_err()); // load error
    });
    cache.insert("a", "2".into()); // replaced
    cache.insert_with(
        "t",
        "t".into(),
        EntryOptions::new().ttl(Some(Duration::from_secs(1))),
    );
    hand.advance(Duration::from_secs(2));
    // Expired in the L1 (the disk's TTL is wall-clock time, so the L2 still answers).
    assert_eq!(cache.get("t").as_deref(), Some("t"));
    for i in 0..30 {
        cache.insert(&format!("fill:{i:02}"), "x".repeat(20)); // L1 capacity, disk evictions
    }
    cache.shrink_to(0.0).unwrap();
    assert!(cache.get("fill:29").is_some()); // L2 hit
    disk.inject_write_failure(true);
    assert!(
        cache
            .try_insert_with("w", "w".into(), EntryOptions::new())
            .is_err()
    ); // put error
    assert!(cache.remove("fill:29").is_err()); // remove error, pending
    // The failed write's key (the disk may hold an older value) and the failed removal.
    let text = registry.render_prometheus();
    assert_eq!(
        value(
            &text,
            r#"mpm_cache_pending_removals{name="profiles",tier="l2"}"#
        ),
        2.0
    );
    assert!(cache.flush().is_err()); // remove still owed
    disk.inject_write_failure(false);
    cache.flush().unwrap();
    let text = registry.render_prometheus();
    assert_eq!(
        value(
            &text,
            r#"mpm_cache_pending_removals{name="profiles",tier="l2"}"#
        ),
        0.0
    );
    assert!(value(&text, r#"mpm_cache_disk_evictions_total{name="profiles"}"#) > 0.0);
    assert!(
        value(
            &text,
            r#"mpm_cache_disk_write_errors_total{name="profiles"}"#
        ) >= 2.0
    );
    assert!(
        value(
            &text,
            r#"mpm_cache_errors_total{name="profiles",op="put",tier="l2"}"#
        ) == 1.0
    );
    assert!(
        value(
            &text,
            r#"mpm_cache_removals_total{cause="capacity",name="profiles",tier="l1"}"#
        ) > 0.0
    );
    for cause in ["expired", "replaced", "invalidated"] {
        let series =
            format!(r#"mpm_cache_removals_total{{cause="{cause}",name="profiles",tier="l1"}}"#);
        assert!(value(&text, &series) > 0.0, "{series}");
    }
    assert!(value(&text, r#"mpm_cache_load_seconds_count{name="profiles"}"#) == 2.0);
    contract::check_metric_table(TABLE, &text, "mpm_cache_").unwrap();
    // Every family has its HELP text, and the exposition parses.
    Exposition::parse(&text).unwrap();
}
