//! Tiers that fail are bypassed, not waited on: a tier that fails or is slow on command sits
//! below a cache; after N failures in a row the cache stops calling it, serves from the L1 and
//! the loader, probes it after the cool-down and puts it back in service, and no value the
//! tier held before an invalidation or an overwrite is served after it recovers.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mpm_cache::{
    BypassPolicy, Clock, EntryOptions, Error, ManualClock, MemoryTier, Tier, TierEntry,
    TierSnapshot, TieredCache,
};
use mpm_metrics::Registry;

/// What the tier does on its next calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Works,
    Fails,
    /// Tells `entered`, then waits for `release` before working.
    Blocks,
    Panics,
}

/// A tier on a map that fails, sleeps or panics on command, and counts its calls.
struct Flaky {
    map: Mutex<HashMap<String, String>>,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
    /// Whether `flush` blocks (as `Mode::Blocks`) while the other calls work.
    flush_blocks: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::default(),
            mode: Mutex::new(Mode::Works),
            calls: AtomicUsize::new(0),
            entered: Mutex::default(),
            release: Mutex::default(),
            flush_blocks: Default::default(),
        })
    }

    /// Makes the next calls block: returns a receiver told when a call has entered and a
    /// sender that lets one blocked call go on.
    fn block(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *self.entered.lock().unwrap() = Some(entered_tx);
        *self.release.lock().unwrap() = Some(release_rx);
        self.set(Mode::Blocks);
        (entered_rx, release_tx)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn enter(&self) -> Result<(), Error> {
        let mode = *self.mode.lock().unwrap();
        self.enter_as(mode)
    }

    fn enter_as(&self, mode: Mode) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match mode {
            Mode::Works => Ok(()),
            Mode::Fails => Err(Error::Storage {
                op: "test",
                path: "flaky".into(),
                message: "down on command".into(),
            }),
            Mode::Blocks => {
                if let Some(tx) = self.entered.lock().unwrap().as_ref() {
                    let _ = tx.send(());
                }
                let release = self.release.lock().unwrap();
                let _ = release.as_ref().map(mpsc::Receiver::recv);
                Ok(())
            }
            Mode::Panics => panic!("the tier panicked on command"),
        }
    }
}

impl Tier<String> for Flaky {
    fn get(&self, key: &str) -> Result<Option<TierEntry<String>>, Error> {
        self.enter()?;
        Ok(self.map.lock().unwrap().get(key).map(|v| TierEntry {
            value: v.clone(),
            ttl: None,
            tags: Arc::new([]),
        }))
    }

    fn put(
        &self,
        key: &str,
        value: &String,
        _ttl: Option<Duration>,
        _tags: &[Arc<str>],
    ) -> Result<(), Error> {
        self.enter()?;
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, Error> {
        self.enter()?;
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }

    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        self.enter()?;
        let mut m = self.map.lock().unwrap();
        let before = m.len();
        m.retain(|k, _| !k.starts_with(prefix));
        Ok(before - m.len())
    }

    fn remove_tag(&self, _tag: &str) -> Result<usize, Error> {
        self.enter()?;
        Ok(0)
    }

    fn clear(&self) -> Result<(), Error> {
        self.enter()?;
        self.map.lock().unwrap().clear();
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        if self.flush_blocks.load(Ordering::SeqCst) {
            return self.enter_as(Mode::Blocks);
        }
        self.enter()
    }

    fn stats(&self) -> TierSnapshot {
        TierSnapshot::default()
    }
}

const COOL_DOWN: Duration = Duration::from_secs(10);

fn cache(tier: &Arc<Flaky>, registry: &Registry) -> (TieredCache<String>, ManualClock) {
    let (clock, hand) = Clock::manual();
    let cache = TieredCache::builder()
        .l1(MemoryTier::builder().clock(clock))
        .l2(Arc::clone(tier))
        .l2_bypass(
            BypassPolicy::default()
                .after(NonZeroU32::new(3).unwrap())
                .cool_down(COOL_DOWN)
                .slow_call(Duration::from_millis(40)),
        )
        .metrics(registry, "c")
        .build()
        .unwrap();
    (cache, hand)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn load(cache: &TieredCache<String>, key: &str, v: &str) -> String {
    let v = v.to_owned();
    block_on(cache.get_or_load(key, || async move { Ok::<_, String>(v) })).unwrap()
}

#[track_caller]
fn series(registry: &Registry, line: &str) -> f64 {
    let text = registry.render_prometheus();
    let found = text
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {line} in\n{text}"));
    found.parse().unwrap()
}

#[test]
fn a_failing_tier_is_bypassed_after_n_failures_then_probed_and_back_in_service() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    tier.set(Mode::Fails);
    for i in 0..3 {
        assert_eq!(load(&c, &format!("k{i}"), "loaded"), "loaded");
    }
    // Each load read the tier once and failed to write it: the third failure started the
    // bypass, so the masking removal after it was not even tried.
    assert!(c.l2_bypassed());
    let calls = tier.calls();
    for i in 3..50 {
        assert_eq!(
            load(&c, &format!("k{i}"), "loaded"),
            "loaded",
            "served by the loader"
        );
        assert_eq!(c.get(&format!("absent{i}")), None);
    }
    assert_eq!(tier.calls(), calls, "no call reaches a bypassed tier");
    assert!(matches!(
        c.try_insert_with("w", "w".into(), EntryOptions::new()),
        Err(Error::TierBypassed { .. })
    ));
    assert_eq!(
        series(&registry, r#"mpm_cache_bypassed{name="c",tier="l2"}"#),
        1.0
    );
    assert_eq!(
        series(&registry, r#"mpm_cache_bypasses_total{name="c",tier="l2"}"#),
        1.0
    );
    assert!(
        series(
            &registry,
            r#"mpm_cache_errors_total{name="c",op="get",tier="l2"}"#
        ) >= 1.0
    );

    // The tier recovers; nothing calls it until the cool-down is over.
    tier.set(Mode::Works);
    hand.advance(COOL_DOWN - Duration::from_millis(1));
    assert_eq!(c.get("absent"), None);
    assert_eq!(tier.calls(), calls);
    hand.advance(Duration::from_millis(1));
    tier.map
        .lock()
        .unwrap()
        .insert("below".into(), "from l2".into());
    assert_eq!(
        c.get("below").as_deref(),
        Some("from l2"),
        "the probe read it"
    );
    assert!(!c.l2_bypassed());
    assert_eq!(
        series(&registry, r#"mpm_cache_bypassed{name="c",tier="l2"}"#),
        0.0
    );
    c.flush().unwrap();
    c.insert("after", "x".into());
    assert_eq!(
        tier.map.lock().unwrap()["after"],
        "x",
        "writes reach it again"
    );
}

#[test]
fn a_probe_that_fails_starts_another_cool_down() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    tier.set(Mode::Fails);
    for i in 0..3 {
        assert_eq!(c.get(&format!("k{i}")), None);
    }
    assert!(c.l2_bypassed());
    hand.advance(COOL_DOWN);
    let calls = tier.calls();
    assert_eq!(c.get("k"), None);
    assert_eq!(tier.calls(), calls + 1, "one probe");
    assert_eq!(c.get("k"), None);
    assert_eq!(
        tier.calls(),
        calls + 1,
        "bypassed again after the failed probe"
    );
    assert!(c.l2_bypassed());
    tier.set(Mode::Works);
    hand.advance(COOL_DOWN);
    assert_eq!(c.get("k"), None);
    assert!(!c.l2_bypassed());
    assert_eq!(
        series(&registry, r#"mpm_cache_bypasses_total{name="c",tier="l2"}"#),
        1.0
    );
}

#[test]
fn a_slow_tier_counts_as_failing_so_callers_stop_waiting_on_it() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    tier.map.lock().unwrap().insert("k".into(), "v".into());
    let (entered, release) = tier.block();
    std::thread::scope(|s| {
        for _ in 0..3 {
            // A call that answers, but after longer than `slow_call` on the cache's clock.
            let slow = s.spawn(|| c.get("k"));
            entered.recv().unwrap();
            hand.advance(Duration::from_millis(41));
            release.send(()).unwrap();
            assert_eq!(
                slow.join().unwrap().as_deref(),
                Some("v"),
                "slow but answering"
            );
            c.shrink_to(0.0).unwrap();
        }
    });
    assert!(c.l2_bypassed(), "three slow calls in a row");
    let calls = tier.calls();
    for _ in 0..20 {
        assert_eq!(c.get("k"), None, "a miss instead of a wait");
    }
    assert_eq!(tier.calls(), calls, "no caller waited on the slow tier");
}

#[test]
fn while_a_call_is_stuck_other_callers_skip_the_tier_without_waiting() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    tier.map.lock().unwrap().insert("k".into(), "v".into());
    let (entered, release) = tier.block();
    std::thread::scope(|s| {
        let stuck = s.spawn(|| c.get("k"));
        entered.recv().unwrap();
        let calls = tier.calls();
        // Not stuck yet: a second caller would call the tier (and block); after `slow_call`
        // with no call ending, callers skip it.
        hand.advance(Duration::from_millis(41));
        for _ in 0..10 {
            assert_eq!(c.get("other"), None);
            assert!(matches!(
                c.try_insert_with("w", "w".into(), EntryOptions::new()),
                Err(Error::TierBypassed { .. })
            ));
        }
        assert_eq!(tier.calls(), calls, "nobody else called the stuck tier");
        release.send(()).unwrap();
        assert_eq!(stuck.join().unwrap().as_deref(), Some("v"));
    });
    // The stuck call came back: the tier is called again (one slow call is not a bypass).
    tier.set(Mode::Works);
    assert!(!c.l2_bypassed());
    let calls = tier.calls();
    c.insert("after", "x".into());
    assert!(tier.calls() > calls);
    assert_eq!(tier.map.lock().unwrap()["after"], "x");
    // The write the tier missed while stuck is served from the L1.
    assert_eq!(c.get("w").as_deref(), Some("w"));
}

#[test]
fn a_long_flush_does_not_make_reads_skip_the_tier() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    tier.map.lock().unwrap().insert("k".into(), "v".into());
    let (entered, release) = tier.block();
    tier.set(Mode::Works);
    tier.flush_blocks.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        let flush = s.spawn(|| c.flush());
        entered.recv().unwrap();
        hand.advance(Duration::from_secs(2));
        assert_eq!(
            c.get("k").as_deref(),
            Some("v"),
            "read while the flush waits"
        );
        release.send(()).unwrap();
        flush.join().unwrap().unwrap();
    });
    assert!(!c.l2_bypassed(), "a slow flush is not a failure");
}

#[test]
fn a_tier_that_panics_is_a_failing_tier_not_a_panicking_cache() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, _hand) = cache(&tier, &registry);
    tier.set(Mode::Panics);
    for i in 0..3 {
        assert_eq!(load(&c, &format!("k{i}"), "v"), "v");
    }
    assert!(c.l2_bypassed());
    assert!(matches!(c.remove("k0"), Err(Error::TierBypassed { .. })));
}

#[test]
fn nothing_the_tier_held_comes_back_after_invalidations_and_overwrites_during_a_bypass() {
    let tier = Flaky::new();
    let registry = Registry::default();
    let (c, hand) = cache(&tier, &registry);
    for k in ["gone", "agent:1", "agent:2", "over"] {
        c.insert(k, format!("old {k}"));
    }
    tier.set(Mode::Fails);
    for i in 0..3 {
        assert_eq!(c.get(&format!("absent{i}")), None);
    }
    assert!(c.l2_bypassed());
    // Invalidations report the bypass, and still hold.
    assert!(matches!(c.remove("gone"), Err(Error::TierBypassed { .. })));
    assert!(c.invalidate_prefix("agent:").is_err());
    // An overwrite reaches only the L1.
    assert!(
        c.try_insert_with("over", "new".into(), EntryOptions::new())
            .is_err()
    );
    c.shrink_to(0.0).unwrap();
    assert_eq!(
        series(
            &registry,
            r#"mpm_cache_pending_removals{name="c",tier="l2"}"#
        ),
        3.0
    );
    // The tier recovers with every old value still in it.
    tier.set(Mode::Works);
    hand.advance(COOL_DOWN);
    assert_eq!(tier.map.lock().unwrap().len(), 4);
    for k in ["gone", "agent:1", "agent:2", "over"] {
        assert_eq!(c.get(k), None, "{k} came back from the tier");
    }
    c.flush().unwrap();
    assert!(
        tier.map.lock().unwrap().is_empty(),
        "the owed removals were applied"
    );
    assert_eq!(
        series(
            &registry,
            r#"mpm_cache_pending_removals{name="c",tier="l2"}"#
        ),
        0.0
    );
}

/// Counts a writer out when it ends, however it ends.
struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Threads write versioned values and remove keys while another flips the tier between
/// working and failing; afterwards no key may read back anything but its last write. Each key's
/// operations are serialized by its shard's lock (so "last" is defined); keys of different
/// shards run at once.
#[test]
fn stress_a_flapping_tier_never_serves_a_stale_value() {
    const SHARDS: usize = 8;
    const KEYS: u64 = 200;
    let tier = Flaky::new();
    let registry = Registry::default();
    let (clock, hand) = Clock::manual();
    let c: TieredCache<String> = TieredCache::builder()
        .l1(MemoryTier::builder()
            .clock(clock)
            .max_entries(std::num::NonZeroUsize::new(64).unwrap()))
        .l2(Arc::clone(&tier))
        .l2_bypass(
            BypassPolicy::default()
                .after(NonZeroU32::new(2).unwrap())
                .cool_down(Duration::from_millis(5)),
        )
        .metrics(&registry, "stress")
        .build()
        .unwrap();
    let version = AtomicU64::new(0);
    let last: Vec<Mutex<HashMap<String, Option<String>>>> =
        (0..SHARDS).map(|_| Mutex::default()).collect();
    let writers_left = AtomicUsize::new(4);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (c, last, version, writers_left) = (&c, &last, &version, &writers_left);
            s.spawn(move || {
                // Counted down however the writer ends, so a failed assertion fails the
                // test instead of leaving the flipper spinning.
                let _done = DecrementOnDrop(writers_left);
                for i in 0..3_000u64 {
                    let k = (i * 7 + t * 13) % KEYS;
                    let key = format!("k{k}");
                    let mut l = last[k as usize % SHARDS].lock().unwrap();
                    match i % 5 {
                        0 => {
                            let _ = c.remove(&key);
                            l.insert(key, None);
                        }
                        1 | 2 => {
                            let v = format!("v{}", version.fetch_add(1, Ordering::SeqCst));
                            let _ = c.try_insert_with(&key, v.clone(), EntryOptions::new());
                            l.insert(key, Some(v));
                        }
                        3 => {
                            let _ = c.invalidate_prefix(&format!("k{}", k / 10));
                            // Only this shard's keys are known to be gone; a prefix may
                            // reach other shards' keys, which then read as a miss (allowed).
                            for kk in (0..KEYS).filter(|kk| kk % SHARDS as u64 == k % SHARDS as u64)
                            {
                                let name = format!("k{kk}");
                                if name.starts_with(&format!("k{}", k / 10)) {
                                    l.insert(name, None);
                                }
                            }
                        }
                        _ => {
                            let got = c.get(&key);
                            let want = l.get(&key).cloned().flatten();
                            assert!(
                                got.is_none() || got == want,
                                "{key}: {got:?}, last {want:?}"
                            );
                        }
                    }
                    drop(l);
                    if i % 64 == 0 {
                        c.shrink_to(0.5).unwrap();
                    }
                }
            });
        }
        s.spawn(|| {
            let modes = [
                Mode::Fails,
                Mode::Works,
                Mode::Fails,
                Mode::Works,
                Mode::Works,
            ];
            let mut i = 0;
            while writers_left.load(Ordering::SeqCst) > 0 {
                tier.set(modes[i % modes.len()]);
                hand.advance(Duration::from_millis(2));
                std::thread::yield_now();
                i += 1;
            }
        });
    });
    tier.set(Mode::Works);
    hand.advance(Duration::from_secs(1));
    let _ = c.get("probe");
    c.flush().unwrap();
    c.shrink_to(0.0).unwrap();
    for shard in last {
        for (key, want) in shard.into_inner().unwrap() {
            let got = c.get(&key);
            assert!(
                got.is_none() || got == want,
                "{key}: {got:?}, last {want:?}"
            );
        }
    }
    assert!(
        series(
            &registry,
            r#"mpm_cache_bypasses_total{name="stress",tier="l2"}"#
        ) > 0.0
    );
}
