//! `RedisInvalidationBus` across instances: in one process, across processes, and with bad
//! input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpm_cache::EntryOptions;
use mpm_cache_redis::{Invalidation, LocalCache};

use crate::instance::{Instance, admin, instance, namespace};

/// Set to a namespace, the test binary runs as a peer process instead of running tests.
pub(crate) const PEER_ENV: &str = "MPM_CACHE_REDIS_TEST_PEER";

/// The bound holds "plus the time to apply": on a test machine shared with other builds, a
/// thread may wait this long to be scheduled.
pub(crate) const SCHEDULING: Duration = Duration::from_millis(100);

/// Waits for `inst` to remove `key` from its L1 (within `bound` and [`SCHEDULING`]); returns
/// how long after `since` it did.
#[track_caller]
fn removed_within(inst: &Instance, key: &str, since: Instant, bound: Duration) -> Duration {
    let bound = bound + SCHEDULING;
    loop {
        let left = bound.saturating_sub(since.elapsed());
        match inst.removed.recv_timeout(left) {
            Ok(k) if k == key => return since.elapsed(),
            Ok(_) => {}
            Err(_) => panic!("{key} was not removed within {bound:?}"),
        }
    }
}

pub(crate) fn three_instances_see_every_kind_of_invalidation_within_the_bound() {
    let ns = namespace("three");
    let all: Vec<Instance> = (0..3).map(|_| instance(&ns)).collect();
    let bound = all[0].bus.staleness_bound();
    assert_eq!(bound, Duration::from_millis(100));
    let key = "agent:1:profile";
    let mut slowest = Duration::ZERO;
    for (round, kind) in ["key", "prefix", "tag", "pattern"].into_iter().enumerate() {
        // The writer rotates; the others read the entry through Redis into their L1.
        let (writer, readers) = (round % 3, [(round + 1) % 3, (round + 2) % 3]);
        let value = format!("{kind}-value");
        all[writer]
            .cache
            .try_insert_with(key, value.clone(), EntryOptions::new().tag("team"))
            .unwrap();
        for &r in &readers {
            assert_eq!(all[r].cache.get(key).as_deref(), Some(value.as_str()));
            assert!(all[r].cache.contains(key), "{kind}: promoted to L1");
            all[r].drain();
        }
        let w = &all[writer].cache;
        let start = Instant::now();
        match kind {
            "key" => assert!(w.remove(key).unwrap()),
            "prefix" => assert_eq!(w.invalidate_prefix("agent:1:").unwrap(), 1),
            "tag" => assert_eq!(w.invalidate_tag("team").unwrap(), 1),
            _ => assert_eq!(w.invalidate_pattern("agent:*:profile").unwrap(), 1),
        }
        for &r in &readers {
            slowest = slowest.max(removed_within(&all[r], key, start, bound));
            assert!(!all[r].cache.contains(key), "{kind}");
            assert_eq!(all[r].cache.get(key), None, "{kind}: gone from Redis too");
        }
    }
    println!("slowest cross-instance invalidation: {slowest:?} (bound {bound:?})");
    // Each instance hears its own messages (ignored) and applies the others': 4 rounds, 2
    // readers each (the counts follow the application).
    crate::faults::within(Duration::from_secs(1), "8 messages applied", || {
        all.iter().map(|i| i.bus.stats().applied).sum::<u64>() == 8
    });
    for inst in &all {
        let s = inst.bus.stats();
        assert!(s.own >= 1, "{s:?}");
        assert_eq!((s.malformed, s.failed, s.disconnects), (0, 0, 0), "{s:?}");
        assert!(inst.bus.is_subscribed());
    }
    all[0].tier_clear();
}

impl Instance {
    pub(crate) fn tier_clear(&self) {
        mpm_cache::Tier::clear(&self.tier).unwrap();
    }
}

/// The peer process: reads the shared key through Redis into its L1, says `ready`, waits for
/// the invalidation, checks the key is gone, says `gone`.
pub(crate) fn peer(namespace: &str) -> ExitCode {
    let inst = instance(namespace);
    if inst.cache.get("shared").as_deref() != Some("from the parent") {
        println!("missing");
        return ExitCode::FAILURE;
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    match inst.removed.recv_timeout(Duration::from_secs(20)) {
        Ok(k) if k == "shared" && inst.cache.get("shared").is_none() => {
            println!("gone");
            ExitCode::SUCCESS
        }
        other => {
            println!("unexpected {other:?}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn separate_processes_see_an_invalidation_within_the_bound() {
    let ns = namespace("processes");
    let me = instance(&ns);
    me.cache
        .try_insert_with("shared", "from the parent".into(), EntryOptions::new())
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut peers: Vec<_> = (0..2)
        .map(|_| {
            let mut child = Command::new(&exe)
                .env(PEER_ENV, &ns)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(child.stdout.take().unwrap());
            (child, out.lines())
        })
        .collect();
    for (_, lines) in &mut peers {
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
    }
    let start = Instant::now();
    assert!(me.cache.remove("shared").unwrap());
    // The bound holds plus the time to apply, as in one process; here it also covers the
    // peer's check through Redis and its answer on the pipe.
    let bound = me.bus.staleness_bound() + SCHEDULING;
    for (child, lines) in &mut peers {
        assert_eq!(lines.next().unwrap().unwrap(), "gone");
        let took = start.elapsed();
        assert!(
            took <= bound,
            "a peer process took {took:?} (bound and scheduling {bound:?})"
        );
        assert!(child.wait().unwrap().success());
    }
    println!(
        "two peer processes dropped the key within {:?}",
        start.elapsed()
    );
    me.tier_clear();
}

/// A cache that panics on every invalidation.
struct Panics(Arc<AtomicUsize>);

impl LocalCache for Panics {
    fn invalidate(&self, _: &Invalidation) -> Result<usize, mpm_cache::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a cache that panics");
    }
}

pub(crate) fn malformed_messages_are_counted_and_a_panicking_cache_is_survived() {
    let ns = namespace("malformed");
    let (a, b) = (instance(&ns), instance(&ns));
    let calls = Arc::new(AtomicUsize::new(0));
    b.bus.attach(Panics(Arc::clone(&calls)));
    let mut admin = admin();
    for junk in [&b"hello"[..], b"mpm1 x 1 z y", b"\xff\xfe", b""] {
        redis::cmd("PUBLISH")
            .arg(b.bus.channel())
            .arg(junk)
            .exec(&mut admin)
            .unwrap();
    }
    // Then a real one, after the junk on the same channel: once it is applied, the junk was
    // read.
    b.cache.insert("k", "v".into());
    b.drain();
    a.bus.publish(&Invalidation::Key("k".into())).unwrap();
    let start = Instant::now();
    removed_within(&b, "k", start, b.bus.staleness_bound());
    // The counts follow the last attached cache.
    crate::faults::within(Duration::from_secs(1), "the message is counted", || {
        b.bus.stats().failed == 1
    });
    let s = b.bus.stats();
    assert_eq!(s.malformed, 4, "{s:?}");
    assert_eq!(s.failed, 1, "the panicking cache fails the message: {s:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The subscriber survived: the next message is applied too.
    b.cache.insert("k2", "v".into());
    a.bus.publish(&Invalidation::Key("k2".into())).unwrap();
    removed_within(&b, "k2", Instant::now(), b.bus.staleness_bound());
    assert_eq!(a.bus.stats().published, 2);
    a.tier_clear();
}
