//! The public `Tier`: a tier written outside the crate sits below a `TieredCache`, and the path
//! a key takes through the tiers is straight (one L2 read per miss, loads decided before any
//! write).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpm_cache::{EntryOptions, Error, Tier, TierEntry, TierSnapshot, TieredCache};

/// A value and its tags.
type Row = (u32, Arc<[Arc<str>]>);

/// A tier on a map, counting its calls.
#[derive(Default)]
struct MapTier {
    map: Mutex<HashMap<String, Row>>,
    gets: AtomicUsize,
    puts: AtomicUsize,
    /// Calls of `get_many`, and the keys each asked for.
    batches: Mutex<Vec<Vec<String>>>,
}

impl Tier<u32> for MapTier {
    fn get(&self, key: &str) -> Result<Option<TierEntry<u32>>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .map
            .lock()
            .unwrap()
            .get(key)
            .map(|(v, tags)| TierEntry {
                value: *v,
                ttl: None,
                tags: tags.clone(),
            }))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<u32>>>, Error> {
        let batch = keys.iter().map(|k| (*k).to_owned()).collect();
        self.batches.lock().unwrap().push(batch);
        let map = self.map.lock().unwrap();
        Ok(keys
            .iter()
            .map(|k| {
                map.get(*k).map(|(v, tags)| TierEntry {
                    value: *v,
                    ttl: None,
                    tags: tags.clone(),
                })
            })
            .collect())
    }

    fn warm_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        let mut keys: Vec<String> = self.map.lock().unwrap().keys().cloned().collect();
        keys.sort();
        // One key the tier no longer holds, as a store's heat table may name.
        keys.insert(0, "gone".to_owned());
        let _ = n;
        Ok(keys)
    }

    fn put(
        &self,
        key: &str,
        value: &u32,
        _ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), (*value, tags.into()));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, Error> {
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }

    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let mut m = self.map.lock().unwrap();
        let before = m.len();
        m.retain(|k, _| !k.starts_with(prefix));
        Ok(before - m.len())
    }

    fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
        let mut m = self.map.lock().unwrap();
        let before = m.len();
        m.retain(|_, (_, tags)| !tags.iter().any(|t| &**t == tag));
        Ok(before - m.len())
    }

    fn clear(&self) -> Result<(), Error> {
        self.map.lock().unwrap().clear();
        Ok(())
    }

    fn stats(&self) -> TierSnapshot {
        TierSnapshot::default()
    }
}

fn cache() -> (Arc<MapTier>, TieredCache<u32>) {
    let l2 = Arc::new(MapTier::default());
    let c = TieredCache::builder().l2(Arc::clone(&l2)).build().unwrap();
    (l2, c)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_tier_from_outside_the_crate_takes_writes_reads_and_invalidations() {
    let (l2, c) = cache();
    c.insert_with("agent:1", 1, EntryOptions::new().tag("team"));
    c.insert("agent:2", 2);
    assert_eq!(l2.puts.load(Ordering::SeqCst), 2);
    c.shrink_to(0.0).unwrap();
    assert_eq!(c.get("agent:1"), Some(1), "an L1 miss is read from the L2");
    assert_eq!(c.invalidate_tag("team").unwrap(), 1);
    // The default `remove_matching` removes the pattern's literal prefix: more, never less.
    assert_eq!(c.invalidate_pattern("agent:?").unwrap(), 0);
    assert!(l2.map.lock().unwrap().is_empty());
}

#[test]
fn a_miss_reads_the_l1_once_and_the_l2_once() {
    let (l2, c) = cache();
    let v = block_on(c.get_or_load("k", || async { Ok::<_, String>(7) })).unwrap();
    assert_eq!(v, 7);
    assert_eq!(l2.gets.load(Ordering::SeqCst), 1, "L2 reads");
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (0, 1), "L1 lookups");
    assert_eq!(c.load_stats().ok, 1);
    // A value the L2 holds is found by that one read, and the loader does not run.
    l2.put("j", &9, None, &[]).unwrap();
    let v = block_on(c.get_or_load("j", || async { Err::<u32, _>("not called") })).unwrap();
    assert_eq!(v, 9);
    assert_eq!(l2.gets.load(Ordering::SeqCst), 2);
}

#[test]
fn a_load_that_races_an_invalidation_writes_no_tier() {
    let (l2, c) = cache();
    let c2 = c.clone();
    let v = block_on(c.get_or_load("k", || async move {
        c2.invalidate_prefix("zzz").unwrap();
        Ok::<_, String>(1)
    }))
    .unwrap();
    assert_eq!(v, 1);
    assert_eq!(
        l2.puts.load(Ordering::SeqCst),
        0,
        "decided before writing the L2"
    );
    assert!(!c.contains("k"));
}

#[test]
fn a_stale_file_dependency_leaves_other_loads_and_the_l2_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.md");
    std::fs::write(&path, "v1").unwrap();
    let (l2, c) = cache();
    c.insert_with("profile", 1, EntryOptions::new().depends_on(&path));
    assert_eq!(
        l2.puts.load(Ordering::SeqCst),
        0,
        "file-bound entries stay in memory"
    );
    l2.put("profile", &100, None, &[]).unwrap();
    let c2 = c.clone();
    let v = block_on(c.get_or_load("other", || async move {
        std::fs::write(&path, "v2, longer").unwrap();
        assert_eq!(
            c2.get("profile"),
            Some(100),
            "the L1 entry went stale: read through"
        );
        Ok::<_, String>(5)
    }))
    .unwrap();
    assert_eq!(v, 5);
    assert!(
        c.contains("other"),
        "a stale file dependency cancelled another key's load"
    );
    assert_eq!(
        l2.map.lock().unwrap()["profile"].0,
        100,
        "the L2 was touched"
    );
}

#[test]
fn a_loader_error_comes_back_typed_to_every_caller() {
    #[derive(Debug, PartialEq)]
    struct Missing(&'static str);
    impl std::fmt::Display for Missing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "missing {}", self.0)
        }
    }
    let (_l2, c) = cache();
    let err = block_on(c.get_or_load("k", || async { Err::<u32, _>(Missing("k")) })).unwrap_err();
    let Error::Load {
        failure, message, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(message, "missing k");
    assert_eq!(
        failure.downcast::<Missing>().as_deref(),
        Some(&Missing("k"))
    );
    assert!(failure.downcast::<String>().is_none());
    assert_eq!(c.load_stats().failed, 1);
    assert_eq!(c.stats().misses, 1, "the load is not an L1 statistic");
}

#[test]
fn warming_reads_the_l2_in_batches_of_what_is_still_wanted() {
    let (l2, c) = cache();
    for (i, k) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        l2.put(k, &(i as u32), None, &[]).unwrap();
    }
    c.insert("a", 0);
    // Warm keys: gone, a, b, c, d, e. "a" is in the L1 already, so the first batch asks for
    // three of the rest; "gone" misses, so a second batch asks for the one still wanted.
    assert_eq!(c.warm_from_l2(3).unwrap(), 3);
    let batches = l2.batches.lock().unwrap().clone();
    assert_eq!(batches, [vec!["gone", "b", "c"], vec!["d"]]);
    assert_eq!(l2.gets.load(Ordering::SeqCst), 0, "no single reads");
    assert!(c.contains("b") && c.contains("c") && c.contains("d"));
    assert!(!c.contains("e"));
}
