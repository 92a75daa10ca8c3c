//! `DiskTier`: persistence, tombstones, TTL, bounds, corruption and write errors.

use std::sync::Arc;
use std::time::Duration;

use mpm_cache::{DiskTier, Durability, EntryOptions, TieredCache};

fn open(dir: &std::path::Path) -> DiskTier<String> {
    DiskTier::builder(dir).open().unwrap()
}

#[test]
fn flushed_writes_survive_reopen_and_removals_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    for i in 0..100 {
        t.put(&format!("k{i}"), &format!("v{i}"), None, &[])
            .unwrap();
    }
    t.flush().unwrap();
    assert!(t.remove("k7").unwrap());
    assert_eq!(t.remove_prefix("k5").unwrap(), 11); // k5, k50..k59
    drop(t);
    let t = open(dir.path());
    assert_eq!(t.get("k1").unwrap().as_deref(), Some("v1"));
    assert_eq!(t.get("k7").unwrap(), None);
    assert_eq!(t.get("k55").unwrap(), None);
    assert_eq!(t.len().unwrap(), 88);
}

#[cfg(unix)]
#[test]
fn the_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("l2");
    let _t = open(&sub);
    let mode = std::fs::metadata(&sub).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn ttl_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    t.put("hour", &"h".into(), Some(Duration::from_secs(3600)), &[])
        .unwrap();
    t.put("gone", &"g".into(), Some(Duration::from_millis(1)), &[])
        .unwrap();
    drop(t);
    // Wall-clock expiry: wait until the 1 ms TTL has certainly passed.
    std::thread::sleep(Duration::from_millis(5));
    let t = open(dir.path());
    assert_eq!(t.get("gone").unwrap(), None);
    assert_eq!(t.stats().expired.get(), 1);
    // Promoted into a tiered cache, the remaining TTL comes along.
    let c: TieredCache<String> = TieredCache::builder().l2(t).build().unwrap();
    assert_eq!(c.get("hour").as_deref(), Some("h"));
}

#[test]
fn tags_prefixes_and_patterns_reach_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    let c: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    c.insert_with("agent:1:a", "1a".into(), EntryOptions::new().tag("team"));
    c.insert_with("agent:2:a", "2a".into(), EntryOptions::new().tag("team"));
    c.insert("agent:3:a", "3a".into());
    c.insert("agent:3:b", "3b".into());
    c.insert("profile:x", "x".into());
    assert_eq!(c.invalidate_tag("team").unwrap(), 2);
    assert_eq!(disk.get("agent:1:a").unwrap(), None);
    assert_eq!(c.invalidate_pattern("agent:?:b").unwrap(), 1);
    assert_eq!(disk.get("agent:3:b").unwrap(), None);
    assert_eq!(disk.get("agent:3:a").unwrap().as_deref(), Some("3a"));
    c.invalidate_prefix("profile:").unwrap();
    assert_eq!(disk.get("profile:x").unwrap(), None);
    // An L1 miss falls through to L2 and promotes.
    let c2: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    assert!(!c2.contains("agent:3:a"));
    assert_eq!(c2.get("agent:3:a").as_deref(), Some("3a"));
    assert!(c2.contains("agent:3:a"));
}

#[test]
fn the_size_bound_evicts_the_oldest_writes() {
    let dir = tempfile::tempdir().unwrap();
    let t: DiskTier<Vec<u8>> = DiskTier::builder(dir.path())
        .max_bytes(20_000)
        .open()
        .unwrap();
    for i in 0..100 {
        t.put(&format!("k{i:03}"), &vec![1u8; 1000], None, &[])
            .unwrap();
    }
    assert!(t.bytes().unwrap() <= 20_000, "{}", t.bytes().unwrap());
    assert_eq!(t.get("k000").unwrap(), None);
    assert!(t.get("k099").unwrap().is_some());
    assert!(t.stats().evicted.get() >= 80);
    assert_eq!(t.newest_keys(2).unwrap(), ["k099", "k098"]);
}

#[test]
fn warm_from_l2_fills_l1_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    for i in 0..50 {
        disk.put(&format!("k{i}"), &format!("v{i}"), None, &[])
            .unwrap();
    }
    let c: TieredCache<String> = TieredCache::builder().l2(disk).build().unwrap();
    assert_eq!(c.warm_from_l2(10).unwrap(), 10);
    assert!(c.contains("k49") && c.contains("k40"));
    assert!(!c.contains("k39"));
}

#[test]
fn warm_from_l2_loads_the_most_read_keys_first_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c: TieredCache<String> = TieredCache::builder().l2(open(dir.path())).build().unwrap();
        for i in 0..100 {
            c.insert(&format!("k{i:02}"), format!("v{i}"));
        }
        // The first ten keys written are the ones read: newest-first warming would miss them.
        // 1,000 reads each: a key escapes a one-in-64 sample with probability 2e-7.
        for _ in 0..1_000 {
            for i in 0..10 {
                assert!(c.get(&format!("k{i:02}")).is_some());
            }
        }
        c.invalidate_prefix("k00").unwrap(); // read often, then removed: never warmed
        c.flush().unwrap();
    }
    let c: TieredCache<String> = TieredCache::builder().l2(open(dir.path())).build().unwrap();
    assert_eq!(c.warm_from_l2(10).unwrap(), 10);
    for i in 1..10 {
        assert!(
            c.contains(&format!("k{i:02}")),
            "hot key k{i:02} not warmed"
        );
    }
    assert!(!c.contains("k00"), "an invalidated key came back");
    // Nine hot keys, then the newest written.
    assert!(c.contains("k99"));
    assert_eq!(c.len(), 10);
}

#[test]
fn saved_heat_fades_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    for k in ["a", "b", "c"] {
        t.put(k, &k.to_owned(), None, &[]).unwrap();
    }
    t.save_heat(&[("a", 100), ("b", 10)]).unwrap();
    assert_eq!(t.hottest_keys(3).unwrap(), ["a", "b"]);
    // a: 100/2 = 50; b: 10/2 + 60 = 65; c: 1.
    t.save_heat(&[("b", 60), ("c", 1)]).unwrap();
    assert_eq!(t.hottest_keys(2).unwrap(), ["b", "a"]);
    drop(t);
    let t = open(dir.path());
    assert_eq!(t.hottest_keys(5).unwrap(), ["b", "a", "c"]);
    t.clear().unwrap();
    assert!(t.hottest_keys(5).unwrap().is_empty());
}

/// Flips one byte inside the stored value whose bytes are `marker`.
fn damage(path: &std::path::Path, marker: &[u8]) -> bool {
    let mut bytes = std::fs::read(path).unwrap();
    let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) else {
        return false;
    };
    bytes[at + marker.len() / 2] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
    true
}

#[test]
fn a_corrupt_entry_is_detected_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    let marker = "Z".repeat(600);
    t.put("bad", &marker, None, &[]).unwrap();
    t.put("good", &"fine".into(), None, &[]).unwrap();
    t.flush().unwrap();
    let path = t.path().to_owned();
    drop(t);
    assert!(
        damage(&path, marker.as_bytes()),
        "value bytes not found in the file"
    );
    let t = open(dir.path());
    assert_eq!(t.get("bad").unwrap(), None);
    assert_eq!(t.stats().corrupt.get(), 1);
    assert_eq!(t.get("good").unwrap().as_deref(), Some("fine"));
    assert_eq!(t.get("bad").unwrap(), None, "removed after detection");
}

#[test]
fn a_garbage_store_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cache.redb"), vec![0x5a; 10_000]).unwrap();
    let t = open(dir.path());
    assert_eq!(t.stats().corrupt_files.get(), 1);
    t.put("k", &"v".into(), None, &[]).unwrap();
    assert_eq!(t.get("k").unwrap().as_deref(), Some("v"));
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt")
        })
        .count();
    assert_eq!(aside, 1);
}

#[test]
fn a_truncated_store_file_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    for i in 0..200 {
        t.put(&format!("k{i}"), &"x".repeat(500), None, &[])
            .unwrap();
    }
    t.flush().unwrap();
    let path = t.path().to_owned();
    drop(t);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // Either it opens (then every read is intact or a miss) or it is a typed error.
    match DiskTier::builder(dir.path()).open::<String>() {
        Ok(t) => {
            for i in 0..200 {
                if let Ok(Some(v)) = t.get(&format!("k{i}")) {
                    assert_eq!(v, "x".repeat(500));
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn a_write_error_is_typed_and_l1_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    let c: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    disk.inject_write_failure(true);
    let err = c
        .try_insert_with("k", "v".into(), EntryOptions::new())
        .unwrap_err();
    assert!(err.to_string().contains("injected write failure"), "{err}");
    assert_eq!(c.get("k").as_deref(), Some("v"), "L1 still serves");
    // The write, and the removal of whatever older value the disk held for the key.
    assert_eq!(disk.stats().write_errors.get(), 2);
    disk.inject_write_failure(false);
    c.insert("k2", "v2".into());
    assert_eq!(disk.get("k2").unwrap().as_deref(), Some("v2"));
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_is_a_typed_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(ro.join("probe"), b"x").is_ok() {
        eprintln!("skipped: running with privileges that ignore directory permissions");
        return;
    }
    let err = DiskTier::builder(ro.join("l2"))
        .open::<String>()
        .unwrap_err();
    assert!(err.to_string().contains("create directory"), "{err}");
}

#[test]
fn every_write_durability_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let t: DiskTier<u32> = DiskTier::builder(dir.path())
        .durability(Durability::EveryWrite)
        .open()
        .unwrap();
    t.put("a", &1, None, &[Arc::from("t")]).unwrap();
    t.clear().unwrap();
    assert!(t.is_empty().unwrap());
    assert_eq!(t.bytes().unwrap(), 0);
    assert_eq!(t.remove_tag("t").unwrap(), 0);
}

/// A disk whose writes fail, below a cache: every invalidation must hold while it fails and
/// after it recovers.
fn failing_disk() -> (tempfile::TempDir, DiskTier<String>, TieredCache<String>) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    let c: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    for k in ["agent:1:a", "agent:1:b", "agent:2:a", "other"] {
        c.insert_with(k, format!("old {k}"), EntryOptions::new().tag("team"));
    }
    disk.inject_write_failure(true);
    (dir, disk, c)
}

/// After `invalidate` ran with the disk failing, `gone` must miss: while it fails, after it
/// recovers, in a fresh cache over the same disk once the cache flushed, and `kept` still hits.
#[track_caller]
fn check_invalidation_holds(
    invalidate: impl FnOnce(&TieredCache<String>) -> Result<usize, mpm_cache::Error>,
    gone: &[&str],
    kept: &[&str],
) {
    let (_dir, disk, c) = failing_disk();
    let err = invalidate(&c).unwrap_err();
    assert!(err.to_string().contains("injected write failure"), "{err}");
    for k in gone {
        assert_eq!(c.get(k), None, "{k} served while the disk fails");
    }
    disk.inject_write_failure(false);
    for k in gone {
        assert_eq!(c.get(k), None, "{k} came back after the disk recovered");
    }
    for k in kept {
        assert_eq!(c.get(k), Some(format!("old {k}")), "{k} lost");
    }
    c.flush().unwrap();
    let fresh: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    for k in gone {
        assert_eq!(fresh.get(k), None, "{k} still on disk after a flush");
    }
}

#[test]
fn a_key_removed_while_the_disk_fails_never_comes_back() {
    check_invalidation_holds(
        |c| c.remove("agent:1:a").map(usize::from),
        &["agent:1:a"],
        &["agent:1:b", "other"],
    );
}

#[test]
fn a_prefix_invalidated_while_the_disk_fails_never_comes_back() {
    check_invalidation_holds(
        |c| c.invalidate_prefix("agent:1:"),
        &["agent:1:a", "agent:1:b"],
        &["agent:2:a", "other"],
    );
}

#[test]
fn a_tag_invalidated_while_the_disk_fails_never_comes_back() {
    check_invalidation_holds(
        |c| c.invalidate_tag("team"),
        &["agent:1:a", "agent:1:b", "agent:2:a", "other"],
        &[],
    );
}

#[test]
fn a_glob_invalidated_while_the_disk_fails_never_comes_back() {
    check_invalidation_holds(
        |c| c.invalidate_pattern("agent:?:a"),
        &["agent:1:a", "agent:2:a"],
        &["agent:1:b", "other"],
    );
}

#[test]
fn an_event_invalidated_while_the_disk_fails_never_comes_back() {
    check_invalidation_holds(
        |c| {
            let bus = mpm_cache::InvalidationBus::default();
            bus.subscribe("agent_updated", "agent:{id}:*", Arc::new(c.clone()))?;
            bus.publish("agent_updated", &[("id", "2")])
        },
        &["agent:2:a"],
        &["agent:1:a", "agent:1:b", "other"],
    );
}

#[test]
fn a_clear_while_the_disk_fails_never_brings_anything_back() {
    check_invalidation_holds(
        |c| c.clear().map(|()| 0),
        &["agent:1:a", "agent:1:b", "agent:2:a", "other"],
        &[],
    );
}

#[test]
fn warming_skips_what_the_disk_still_owes() {
    let (_dir, disk, c) = failing_disk();
    assert!(c.invalidate_prefix("agent:").is_err());
    disk.inject_write_failure(false);
    // The L1 lets go of everything; warming from the disk must not bring the removals back.
    c.shrink_to(0.0).unwrap();
    assert!(c.is_empty());
    assert_eq!(c.warm_from_l2(10).unwrap(), 1);
    assert!(c.contains("other") && !c.contains("agent:1:a"));
}

#[test]
fn a_write_after_a_failed_removal_is_served_and_the_removal_applied_later() {
    let (_dir, disk, c) = failing_disk();
    assert!(c.remove("agent:1:a").is_err());
    disk.inject_write_failure(false);
    c.insert("agent:1:a", "new".into());
    assert_eq!(c.get("agent:1:a").as_deref(), Some("new"));
    // The removal was applied before the new write: the disk holds the new value.
    assert_eq!(disk.get("agent:1:a").unwrap().as_deref(), Some("new"));
}

#[test]
fn a_batched_read_answers_each_key_in_order_and_counts_each() {
    use mpm_cache::Tier;
    let dir = tempfile::tempdir().unwrap();
    let t = open(dir.path());
    t.put("a", &"1".to_owned(), None, &[Arc::from("x")])
        .unwrap();
    t.put("c", &"3".to_owned(), Some(Duration::from_secs(60)), &[])
        .unwrap();
    let got = Tier::get_many(&t, &["c", "b", "a", "a"]).unwrap();
    let values: Vec<Option<&str>> = got
        .iter()
        .map(|e| e.as_ref().map(|e| e.value.as_str()))
        .collect();
    assert_eq!(values, [Some("3"), None, Some("1"), Some("1")]);
    assert_eq!(&*got[2].as_ref().unwrap().tags, &[Arc::<str>::from("x")]);
    assert!(got[0].as_ref().unwrap().ttl.is_some());
    let s = Tier::stats(&t);
    assert_eq!((s.hits, s.misses), (3, 1));
}

#[test]
fn clear_local_drops_the_l1_keeps_the_l2_and_a_load_in_flight_out() {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    let c: TieredCache<String> = TieredCache::builder().l2(disk.clone()).build().unwrap();
    c.insert("kept", "on disk".into());
    c.insert_with("pinned", "p".into(), EntryOptions::new().pinned());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (loaded, dropped) = rt.block_on(async {
        let load = c.get_or_load("k", || async move {
            started_tx.send(()).unwrap();
            go_rx.await.unwrap();
            Ok::<_, std::convert::Infallible>("loaded before the clear".to_owned())
        });
        let clear = async {
            started_rx.await.unwrap();
            let dropped = c.clear_local();
            go_tx.send(()).unwrap();
            dropped
        };
        tokio::join!(load, clear)
    });
    assert_eq!(
        loaded.unwrap(),
        "loaded before the clear",
        "returned to its caller"
    );
    assert_eq!(dropped, 1, "kept; the pinned entry stays");
    assert!(
        !c.contains("k"),
        "a load in flight across the clear was cached"
    );
    assert_eq!(disk.get("k").unwrap(), None);
    assert!(c.contains("pinned") && !c.contains("kept"));
    // The L2 kept its entry and owes nothing.
    assert_eq!(c.get("kept").as_deref(), Some("on disk"));
    assert_eq!(disk.len().unwrap(), 2, "kept and pinned");
}
