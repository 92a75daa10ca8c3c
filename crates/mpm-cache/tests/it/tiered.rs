//! `TieredCache`: invalidation by key, prefix, tag and pattern; file dependencies; TTL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpm_cache::{Clock, EntryOptions, MemoryTier, TieredCache};

fn cache() -> TieredCache<u32> {
    TieredCache::builder().build().unwrap()
}

#[test]
fn insert_get_remove() {
    let c = cache();
    c.insert("a", 1);
    assert_eq!(c.get("a"), Some(1));
    assert!(c.remove("a").unwrap());
    assert_eq!(c.get("a"), None);
    assert!(!c.remove("a").unwrap());
}

#[test]
fn prefix_invalidation_hits_only_the_prefix() {
    let c = cache();
    for i in 0..100 {
        c.insert(&format!("agent:{}:k{i}", i % 3), i);
    }
    c.insert("agent:1", 1000);
    c.insert("agent;1:x", 1001);
    assert_eq!(c.invalidate_prefix("agent:1:").unwrap(), 33);
    assert_eq!(c.get("agent:1"), Some(1000));
    assert_eq!(c.get("agent;1:x"), Some(1001));
    assert_eq!(c.get("agent:1:k1"), None);
    assert_eq!(c.get("agent:0:k0"), Some(0));
    assert_eq!(c.invalidate_prefix("agent:1:").unwrap(), 0);
}

#[test]
fn tag_invalidation_and_retagging() {
    let c = cache();
    c.insert_with("p1", 1, EntryOptions::new().tag("team:a").tag("all"));
    c.insert_with("p2", 2, EntryOptions::new().tag("team:b").tag("all"));
    c.insert("p3", 3);
    // Re-inserting p2 without tags drops its old tags.
    c.insert("p2", 22);
    assert_eq!(c.invalidate_tag("all").unwrap(), 1);
    assert_eq!(c.get("p1"), None);
    assert_eq!(c.get("p2"), Some(22));
    assert_eq!(c.invalidate_tag("team:b").unwrap(), 0);
    assert_eq!(c.invalidate_tag("nope").unwrap(), 0);
}

#[test]
fn glob_invalidation() {
    let c = cache();
    for k in [
        "agent_profile:engineer:1",
        "agent_profile:engineer:22",
        "agent_profile:qa:1",
        "x:engineer:1",
    ] {
        c.insert(k, 0);
    }
    assert_eq!(c.invalidate_pattern("agent_profile:*:1").unwrap(), 2);
    assert_eq!(c.invalidate_pattern("*:engineer:??").unwrap(), 1);
    assert_eq!(c.invalidate_pattern("[x]:*").unwrap(), 1);
    assert!(c.is_empty() || c.get("x:engineer:1").is_none());
    assert!(c.invalidate_pattern("bad[").is_err());
}

#[test]
fn invalidation_callbacks_hear_every_key() {
    let c = cache();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&heard);
    c.on_invalidate(move |k| h.lock().unwrap().push(k.to_owned()));
    c.insert("a:1", 1);
    c.insert("a:2", 2);
    c.insert("b", 3);
    c.invalidate_prefix("a:").unwrap();
    c.remove("b").unwrap();
    let mut heard = heard.lock().unwrap().clone();
    heard.sort();
    assert_eq!(heard, ["a:1", "a:2", "b"]);
}

#[test]
fn evicted_keys_leave_the_index() {
    let c: TieredCache<u32> = TieredCache::builder()
        .l1(MemoryTier::builder().max_entries(std::num::NonZeroUsize::new(100).unwrap()))
        .build()
        .unwrap();
    for i in 0..10_000 {
        c.insert_with(&format!("k{i}"), i, EntryOptions::new().tag("t"));
    }
    // Only live entries are counted, although 9,900 were evicted.
    let n = c.invalidate_tag("t").unwrap();
    assert!(n <= 116, "{n}");
    assert!(c.is_empty());
}

#[test]
fn ttl_per_entry_default_and_never() {
    let (clock, hand) = Clock::manual();
    let c: TieredCache<u32> = TieredCache::builder()
        .l1(MemoryTier::builder()
            .clock(clock)
            .default_ttl(Some(Duration::from_secs(5))))
        .build()
        .unwrap();
    c.insert("default", 1);
    c.insert_with("never", 2, EntryOptions::new().ttl(None));
    c.insert_with(
        "long",
        3,
        EntryOptions::new().ttl(Some(Duration::from_secs(60))),
    );
    hand.advance(Duration::from_secs(6));
    assert_eq!(c.get("default"), None);
    assert_eq!(c.get("never"), Some(2));
    assert_eq!(c.get("long"), Some(3));
}

#[test]
fn file_dependencies_make_entries_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.md");
    std::fs::write(&path, "v1").unwrap();
    let c = cache();
    c.insert_with("profile", 1, EntryOptions::new().depends_on(&path));
    assert_eq!(c.get("profile"), Some(1));
    std::fs::write(&path, "v2 longer").unwrap();
    assert_eq!(c.get("profile"), None, "size changed");
    c.insert_with("profile", 2, EntryOptions::new().depends_on(&path));
    assert_eq!(c.get("profile"), Some(2));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(c.get("profile"), None, "file gone");
    c.insert_with(
        "ghost",
        3,
        EntryOptions::new().depends_on(dir.path().join("none")),
    );
    assert_eq!(c.get("ghost"), None, "missing at insert");
}

#[test]
fn concurrent_invalidation_never_leaves_a_stale_entry() {
    // Writers insert tagged keys while invalidators remove the tag; after a final invalidation
    // no tagged key may remain, which needs the index to never miss a live key.
    let c = cache();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let c = c.clone();
            s.spawn(move || {
                for i in 0..2_000u32 {
                    c.insert_with(
                        &format!("k{}", (i * 4 + t) % 500),
                        i,
                        EntryOptions::new().tag("x"),
                    );
                }
            });
        }
        let c2 = c.clone();
        s.spawn(move || {
            for _ in 0..200 {
                c2.invalidate_tag("x").unwrap();
                c2.invalidate_prefix("k1").unwrap();
            }
        });
    });
    c.invalidate_tag("x").unwrap();
    for i in 0..500 {
        assert_eq!(c.get(&format!("k{i}")), None, "k{i} survived");
    }
}

#[test]
fn pinned_entries_stay_under_pressure() {
    let c: TieredCache<u32> = TieredCache::builder()
        .l1(MemoryTier::builder().max_entries(std::num::NonZeroUsize::new(64).unwrap()))
        .build()
        .unwrap();
    c.insert_with("config", 1, EntryOptions::new().pinned());
    for i in 0..5_000 {
        c.insert(&format!("k{i}"), i);
    }
    c.shrink_to(0.0).unwrap();
    assert_eq!(c.get("config"), Some(1));
    assert_eq!(
        c.invalidate_prefix("config").unwrap(),
        1,
        "invalidation still removes it"
    );
}
