//! `DiskTier`'s write-behind buffer: reads see every write at once, removals and flushes
//! commit it, dropping the tier drains it, it stays bounded, and a failure of the background
//! writer reaches a caller.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpm_cache::{DiskTier, Durability, Tier, WriteBehind};

fn n(v: usize) -> NonZeroUsize {
    NonZeroUsize::new(v).unwrap()
}

/// A buffer that the background writer commits only once it holds 2,048 writes, so that
/// whatever a test writes stays buffered until the test commits it.
fn held() -> WriteBehind {
    WriteBehind::default()
        .max_entries(n(4096))
        .delay(Duration::from_secs(3600))
}

fn open_with(dir: &Path, w: WriteBehind) -> DiskTier<String> {
    DiskTier::builder(dir).write_behind(w).open().unwrap()
}

/// What a tier opened on a copy of `t`'s file finds: what has reached the file.
fn on_file(t: &DiskTier<String>) -> (tempfile::TempDir, DiskTier<String>) {
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(t.path(), copy.path().join("cache.redb")).unwrap();
    let c = DiskTier::builder(copy.path())
        .write_behind(WriteBehind::off())
        .open()
        .unwrap();
    (copy, c)
}

#[test]
fn a_read_sees_the_last_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = open_with(dir.path(), held());
    t.put("a", &"1".into(), None, &[]).unwrap();
    t.put("a", &"2".into(), None, &[Arc::from("x")]).unwrap();
    t.put("b", &"3".into(), Some(Duration::from_secs(60)), &[])
        .unwrap();
    assert_eq!(t.buffered(), 2, "the latest write per key");
    assert_eq!(t.get("a").unwrap().as_deref(), Some("2"));
    let got = Tier::get_many(&t, &["b", "a", "c"]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().value, "3");
    assert!(got[0].as_ref().unwrap().ttl.is_some());
    assert_eq!(&*got[1].as_ref().unwrap().tags, &[Arc::<str>::from("x")]);
    assert!(got[2].is_none());
    // Nothing reached the file yet.
    let (_copy, c) = on_file(&t);
    assert_eq!(c.len().unwrap(), 0);
}

#[test]
fn a_buffered_write_hides_an_older_committed_value_and_a_removal_hides_both() {
    let dir = tempfile::tempdir().unwrap();
    let t = open_with(dir.path(), held());
    t.put("k", &"old".into(), None, &[Arc::from("t")]).unwrap();
    t.flush().unwrap();
    t.put("k", &"new".into(), None, &[]).unwrap();
    assert_eq!(t.get("k").unwrap().as_deref(), Some("new"));
    assert!(t.remove("k").unwrap());
    assert_eq!(t.get("k").unwrap(), None);
    // The removal was committed durably with the write before it.
    let (_copy, c) = on_file(&t);
    assert_eq!(c.get("k").unwrap(), None);
    // A buffered write caught by a prefix, tag or pattern removal is removed too.
    t.put("p:1", &"1".into(), None, &[]).unwrap();
    t.put("q:1", &"1".into(), None, &[Arc::from("t")]).unwrap();
    t.put("r:1", &"1".into(), None, &[]).unwrap();
    assert_eq!(t.remove_prefix("p:").unwrap(), 1);
    assert_eq!(t.remove_tag("t").unwrap(), 1);
    let glob = mpm_cache::Pattern::new("r:?").unwrap();
    assert_eq!(t.remove_matching(&glob).unwrap(), 1);
    for k in ["p:1", "q:1", "r:1"] {
        assert_eq!(t.get(k).unwrap(), None, "{k}");
    }
    t.put("s", &"1".into(), None, &[]).unwrap();
    t.clear().unwrap();
    assert_eq!(t.get("s").unwrap(), None);
    assert_eq!(t.buffered(), 0);
}

#[test]
fn flush_puts_every_buffered_write_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = open_with(dir.path(), held());
    for i in 0..100 {
        t.put(&format!("k{i}"), &format!("v{i}"), None, &[])
            .unwrap();
    }
    assert_eq!(t.buffered(), 100);
    t.flush().unwrap();
    assert_eq!(t.buffered(), 0);
    let (_copy, c) = on_file(&t);
    for i in 0..100 {
        assert_eq!(c.get(&format!("k{i}")).unwrap(), Some(format!("v{i}")));
    }
    // The store's write order is the callers', not the keys' order.
    assert_eq!(c.newest_keys(3).unwrap(), ["k99", "k98", "k97"]);
}

#[test]
fn every_write_durability_bypasses_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let t: DiskTier<String> = DiskTier::builder(dir.path())
        .durability(Durability::EveryWrite)
        .write_behind(held())
        .open()
        .unwrap();
    t.put("k", &"v".into(), None, &[]).unwrap();
    assert_eq!(t.buffered(), 0);
    let (_copy, c) = on_file(&t);
    assert_eq!(c.get("k").unwrap().as_deref(), Some("v"));
}

#[test]
fn dropping_the_tier_commits_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let t = open_with(dir.path(), held());
    for i in 0..100 {
        t.put(&format!("k{i}"), &format!("v{i}"), None, &[])
            .unwrap();
    }
    let clone = t.clone();
    drop(t);
    assert_eq!(clone.buffered(), 100, "a clone keeps the tier open");
    drop(clone);
    let t = open_with(dir.path(), WriteBehind::off());
    assert_eq!(t.len().unwrap(), 100);
    assert_eq!(t.get("k42").unwrap().as_deref(), Some("v42"));
}

#[test]
fn a_full_buffer_is_committed_by_the_writer_itself() {
    let dir = tempfile::tempdir().unwrap();
    // The background writer would wait an hour: only the writers commit.
    let t: DiskTier<Vec<u8>> = DiskTier::builder(dir.path())
        .write_behind(
            WriteBehind::default()
                .max_entries(n(1000))
                .max_bytes(n(10_000))
                .delay(Duration::from_secs(3600)),
        )
        .open()
        .unwrap();
    let mut most = 0;
    for i in 0..200 {
        t.put(&format!("k{i:03}"), &vec![7u8; 1000], None, &[])
            .unwrap();
        most = most.max(t.buffered());
    }
    // 10,000 bytes hold 9 writes of 1,000 bytes and their keys, and as many may be being
    // committed from the buffer at the same time.
    assert!(most <= 18, "{most} writes buffered");
    for i in 0..200 {
        assert_eq!(t.get(&format!("k{i:03}")).unwrap(), Some(vec![7u8; 1000]));
    }
    assert_eq!(t.len().unwrap(), 200);
    assert_eq!(t.buffered(), 0);
}

#[test]
fn a_failed_background_commit_is_reported_and_its_writes_kept() {
    let dir = tempfile::tempdir().unwrap();
    // The background writer starts a batch once 4 writes are buffered.
    let t = open_with(
        dir.path(),
        WriteBehind::default()
            .max_entries(n(8))
            .delay(Duration::from_secs(3600)),
    );
    t.inject_commit_failure(true);
    for i in 0..4 {
        t.put(&format!("k{i}"), &format!("v{i}"), None, &[])
            .unwrap();
    }
    // Wait for the background writer's attempt (it has no other signal to give).
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.stats().write_errors.get() == 0 {
        assert!(Instant::now() < deadline, "the background writer never ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    t.inject_commit_failure(false);
    // The writes stay readable, then the failure reaches the next caller, once.
    assert_eq!(t.get("k3").unwrap().as_deref(), Some("v3"));
    let err = t.flush().unwrap_err();
    assert!(err.to_string().contains("injected write failure"), "{err}");
    assert_eq!(t.stats().write_errors.get(), 1);
    t.flush().unwrap();
    let (_copy, c) = on_file(&t);
    for i in 0..4 {
        assert_eq!(c.get(&format!("k{i}")).unwrap(), Some(format!("v{i}")));
    }
}

#[test]
fn while_the_disk_fails_each_write_reports_its_own_failure() {
    let dir = tempfile::tempdir().unwrap();
    let t = open_with(dir.path(), held());
    t.put("a", &"1".into(), None, &[]).unwrap();
    t.inject_write_failure(true);
    let err = t.put("b", &"2".into(), None, &[]).unwrap_err();
    assert!(err.to_string().contains("injected write failure"), "{err}");
    assert!(t.remove("a").is_err());
    // Nothing was lost: the buffered write is still there, the failed one never was.
    assert_eq!(t.get("a").unwrap().as_deref(), Some("1"));
    assert_eq!(t.get("b").unwrap(), None);
    t.inject_write_failure(false);
    t.put("c", &"3".into(), None, &[]).unwrap();
    t.flush().unwrap();
    let (_copy, c) = on_file(&t);
    assert_eq!(c.get("a").unwrap().as_deref(), Some("1"));
    assert_eq!(c.get("c").unwrap().as_deref(), Some("3"));
}

/// The owner's view of its keys: key -> the version written last (`None`: removed).
type Model = HashMap<String, Option<u64>>;

/// Threads write and remove their own keys and read everyone's: each sees its own writes
/// exactly, no reader sees a key go back to an older version, and after a flush the file
/// holds exactly what the owners last wrote.
#[test]
fn concurrent_writers_and_readers_agree_with_a_model() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 24;
    const OPS: u64 = 1500;
    let dir = tempfile::tempdir().unwrap();
    // A small buffer: the background writer, the writers' own commits and the removals' all
    // run at once.
    let t = open_with(
        dir.path(),
        WriteBehind::default()
            .max_entries(n(16))
            .delay(Duration::from_micros(200)),
    );
    let key = |owner: u64, k: u64| format!("t{owner}:k{k}");
    let version = |v: &str| -> u64 { v.rsplit(':').next().unwrap().parse().unwrap() };
    let models: Vec<Model> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|me| {
                let t = t.clone();
                s.spawn(move || {
                    let mut model = Model::new();
                    // The newest version each reader saw of every key.
                    let mut seen: HashMap<String, u64> = HashMap::new();
                    let mut rng = me.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut next = || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    for op in 1..=OPS {
                        let r = next();
                        let k = key(me, r % KEYS);
                        match (r >> 32) % 100 {
                            0..=44 => {
                                t.put(&k, &format!("{me}:{op}"), None, &[]).unwrap();
                                model.insert(k, Some(op));
                            }
                            45..=47 => {
                                t.remove(&k).unwrap();
                                model.insert(k, None);
                            }
                            48 => {
                                let prefix = key(me, 1);
                                t.remove_prefix(&prefix).unwrap();
                                for (mk, mv) in model.iter_mut() {
                                    if mk.starts_with(&prefix) {
                                        *mv = None;
                                    }
                                }
                            }
                            49..=74 => {
                                let got = t.get(&k).unwrap();
                                let want = model.get(&k).copied().flatten();
                                assert_eq!(got.as_deref().map(version), want, "own key {k}");
                            }
                            _ => {
                                let other = key(next() % THREADS, next() % KEYS);
                                if let Some(v) = t.get(&other).unwrap() {
                                    let v = version(&v);
                                    let last = seen.entry(other.clone()).or_insert(0);
                                    assert!(v >= *last, "{other} went back from {last} to {v}");
                                    *last = v;
                                }
                            }
                        }
                    }
                    model
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    t.flush().unwrap();
    let (_copy, c) = on_file(&t);
    for (owner, model) in models.iter().enumerate() {
        for (k, want) in model {
            let got = c.get(k).unwrap();
            let want = want.map(|v| format!("{owner}:{v}"));
            assert_eq!(got, want, "{k} in the file");
        }
    }
}

#[test]
fn a_writer_flushes_by_itself_when_2048_writes_are_not_durable() {
    let dir = tempfile::tempdir().unwrap();
    // The background writer would start only at 2,048 buffered writes, or in an hour.
    let t = open_with(dir.path(), held());
    for i in 0..2047 {
        t.put(&format!("k{i}"), &"v".into(), None, &[]).unwrap();
    }
    assert_eq!(t.buffered(), 2047);
    t.put("last", &"v".into(), None, &[]).unwrap();
    assert_eq!(t.buffered(), 0);
    let (_copy, c) = on_file(&t);
    assert_eq!(c.len().unwrap(), 2048);
}
