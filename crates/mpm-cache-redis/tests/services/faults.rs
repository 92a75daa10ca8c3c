//! Faults: subscriptions and connections killed with `CLIENT KILL` (only this test's own,
//! found by their names), under load, and a server of the test's own restarted.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpm_cache::{Tier, TieredCache};

use crate::bus::SCHEDULING;
use crate::instance::{Instance, TIMEOUT, admin, admin_at, instance, instance_at, kill_clients};

/// Waits up to `limit` for `cond`, checking every millisecond; returns how long it took.
#[track_caller]
pub(crate) fn within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

pub(crate) fn killed_subscriptions_clear_local_entries_and_recover() {
    let ns = crate::instance::namespace("killed-sub");
    let (a, b) = (instance(&ns), instance(&ns));
    let bound = b.bus.staleness_bound();
    let mut admin = admin();
    for round in 0..3 {
        b.cache.insert("k", format!("v{round}"));
        assert!(b.cache.contains("k"));
        // Kill B's subscription, and invalidate at once: B may miss the message.
        assert_eq!(
            kill_clients(&mut admin, &[b.bus.client_name().to_owned()]),
            1
        );
        let start = Instant::now();
        a.cache.remove("k").unwrap();
        within(bound + SCHEDULING, "B drops its local entry", || {
            !b.cache.contains("k")
        });
        assert_eq!(b.cache.get("k"), None);
        within(Duration::from_secs(2), "B subscribes again", || {
            b.bus.is_subscribed()
        });
        println!(
            "round {round}: resubscribed {:?} after the kill",
            start.elapsed()
        );
    }
    let s = b.bus.stats();
    assert_eq!(s.disconnects, 3, "{s:?}");
    assert!(
        s.local_clears >= 6,
        "cleared when found and when back: {s:?}"
    );
    // The new subscription carries messages again.
    b.cache.insert("after", "v".into());
    b.drain();
    let start = Instant::now();
    a.cache.remove("after").unwrap();
    within(
        bound + SCHEDULING,
        "B applies a message after resubscribing",
        || b.removed.try_recv().is_ok_and(|k| k == "after"),
    );
    println!(
        "message after resubscribing applied in {:?}",
        start.elapsed()
    );
    a.tier_clear();
}

/// After a broken subscription, an instance undoes the writes that may have raced a lost
/// message, at once and again a little later (for writes still in flight): the later pass
/// must not remove a value written after the subscription came back.
pub(crate) fn a_write_after_resubscribing_is_not_undone() {
    let ns = crate::instance::namespace("undo");
    let (a, b) = (instance(&ns), instance(&ns));
    let mut admin = admin();
    a.cache.insert("raced", "v1".into());
    a.cache.insert("rewritten", "v1".into());
    assert_eq!(
        kill_clients(&mut admin, &[a.bus.client_name().to_owned()]),
        1
    );
    within(Duration::from_secs(2), "A subscribes again", || {
        a.bus.stats().disconnects == 1 && a.bus.is_subscribed()
    });
    // Both writes were undone when A came back, and B was told.
    assert_eq!(a.bus.stats().writes_undone, 2, "{:?}", a.bus.stats());
    assert_eq!(a.tier.get("raced").unwrap(), None);
    within(Duration::from_secs(2), "B applies both undos", || {
        b.bus.stats().applied >= 2
    });
    // A newer value, written once A's subscription holds again.
    a.cache
        .try_insert_with("rewritten", "v2".into(), mpm_cache::EntryOptions::new())
        .unwrap();
    within(Duration::from_secs(2), "A's later undo pass runs", || {
        a.bus.stats().writes_kept == 2
    });
    let s = a.bus.stats();
    assert_eq!((s.writes_undone, s.writes_kept), (2, 2), "{s:?}");
    assert_eq!(
        b.tier.get("rewritten").unwrap().map(|e| e.value).as_deref(),
        Some("v2"),
        "the newer value is still in Redis"
    );
    assert_eq!(b.cache.get("rewritten").as_deref(), Some("v2"));
    assert_eq!(b.cache.get("raced"), None);
    a.tier_clear();
}

/// One read's start, end and answer.
type Read = (Instant, Instant, u64);

pub(crate) fn clients_killed_under_load_serve_nothing_stale_beyond_the_bound() {
    let ns = crate::instance::namespace("killed-load");
    let all: Vec<Instance> = (0..3).map(|_| instance(&ns)).collect();
    let caches: Vec<TieredCache<String>> = all.iter().map(|i| i.cache.clone()).collect();
    let bound = all[0].bus.staleness_bound();
    let names: Vec<String> = all.iter().flat_map(|i| i.client_names()).collect();
    // The source of truth: the version the loaders read.
    let source = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let reads: Arc<Mutex<Vec<Read>>> = Arc::default();

    let mut threads = Vec::new();
    for r in 0..6 {
        let (cache, source, stop, reads) = (
            caches[r % 3].clone(),
            Arc::clone(&source),
            Arc::clone(&stop),
            Arc::clone(&reads),
        );
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut mine = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let start = Instant::now();
                let v = rt
                    .block_on(cache.get_or_load("k", || async {
                        Ok::<_, std::io::Error>(source.load(Ordering::SeqCst).to_string())
                    }))
                    .unwrap();
                mine.push((start, Instant::now(), v.parse().unwrap()));
                // Load, not synchronisation: keeps the record of reads small.
                std::thread::sleep(Duration::from_micros(200));
            }
            reads.lock().unwrap().extend(mine);
        }));
    }
    let killer = {
        let (stop, names) = (Arc::clone(&stop), names.clone());
        std::thread::spawn(move || {
            let mut admin = admin();
            let mut killed = 0;
            while !stop.load(Ordering::Acquire) {
                killed += kill_clients(&mut admin, &names);
                std::thread::sleep(Duration::from_millis(25));
            }
            killed
        })
    };
    // The writer: a new version, then its invalidation, retried until Redis takes it.
    let mut published: Vec<(Instant, u64)> = Vec::new();
    let mut failed_attempts = 0;
    for round in 0..40u64 {
        let v = source.fetch_add(1, Ordering::SeqCst) + 1;
        let cache = &all[(round % 3) as usize].cache;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match cache.remove("k") {
                Ok(_) => break,
                Err(e) => {
                    failed_attempts += 1;
                    assert!(
                        Instant::now() < deadline,
                        "Redis never took the invalidation: {e}; down: {}, subscribed: {}",
                        all[(round % 3) as usize].redis.is_down(),
                        all[(round % 3) as usize].bus.is_subscribed()
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        published.push((Instant::now(), v));
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("a reader panicked");
    }
    let killed = killer.join().unwrap();
    let reads = std::mem::take(&mut *reads.lock().unwrap());

    // Every read that started a bound after an invalidation was taken saw its version.
    let mut stale = Vec::new();
    let mut slowest = Duration::ZERO;
    for &(start, end, v) in &reads {
        slowest = slowest.max(end - start);
        if let Some(&(at, newer)) = published
            .iter()
            .rev()
            .find(|(at, _)| *at + bound + SCHEDULING < start)
            && v < newer
        {
            stale.push((start - at, v, newer));
        }
    }
    println!(
        "{} reads, {killed} connections killed, {failed_attempts} failed invalidation attempts, slowest read {slowest:?}",
        reads.len()
    );
    assert!(
        stale.is_empty(),
        "stale beyond the bound: {:?}",
        &stale[..stale.len().min(10)]
    );
    assert!(killed >= 10, "the killer killed {killed}");
    assert!(reads.len() > 100);
    // A read is an L1 hit, or at most an L2 get and an L2 put (plus owed removals) each within
    // the tier's timeout; allow for a loaded machine.
    assert!(slowest < TIMEOUT * 10, "slowest read {slowest:?}");

    // Left alone, every tier and bus comes back by itself.
    for inst in all.iter() {
        within(Duration::from_secs(3), "the tier is back", || {
            !inst.redis.is_down() && inst.bus.is_subscribed()
        });
    }
    // The caches above may still bypass their tier for a cool-down, and owe removals that
    // failed (masking those keys until a write or flush applies them): both end by themselves.
    let hits = all[1].tier.stats().hits;
    within(
        Duration::from_secs(3),
        "a write on one is read through Redis by another",
        || {
            all[0]
                .cache
                .try_insert_with("after", "v".into(), mpm_cache::EntryOptions::new())
                .is_ok()
                && all[1].cache.flush().is_ok()
                && all[1].cache.get("after").as_deref() == Some("v")
        },
    );
    assert!(all[1].tier.stats().hits > hits, "read through Redis");
    all[0].tier_clear();
}

/// A redis-server of the test's own on a free port.
struct OwnServer {
    port: u16,
    child: Child,
}

impl OwnServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = OwnServer { port, child };
        within(
            Duration::from_secs(5),
            "redis-server accepts connections",
            || {
                redis::Client::open(server.url())
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(100)))
                    .is_ok()
            },
        );
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn a_restarted_server_is_used_again_without_help() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = OwnServer::start(port);
    let ns = "restart";
    let (a, b) = (
        instance_at(&server.url(), ns),
        instance_at(&server.url(), ns),
    );
    a.cache.insert("k", "before".into());
    assert_eq!(b.cache.get("k").as_deref(), Some("before"));
    assert!(b.cache.contains("k"));

    server.kill();
    // Calls answer within their timeout while the server is gone, then at once.
    let start = Instant::now();
    assert!(a.tier.get("x").is_err());
    assert!(start.elapsed() < TIMEOUT * 3, "{:?}", start.elapsed());
    within(
        b.bus.staleness_bound() + SCHEDULING,
        "B drops its local entries",
        || !b.cache.contains("k"),
    );
    assert_eq!(b.cache.get("k"), None, "no server: a miss, not an error");
    let start = Instant::now();
    for _ in 0..100 {
        let _ = a.tier.get("x");
    }
    assert!(start.elapsed() < TIMEOUT, "{:?}", start.elapsed());

    let _server = OwnServer::start(port);
    // The restarted server is empty; both instances use it again by themselves.
    for inst in [&a, &b] {
        within(Duration::from_secs(5), "the instance is back", || {
            !inst.redis.is_down() && inst.bus.is_subscribed()
        });
    }
    within(
        Duration::from_secs(2),
        "writes reach the new server",
        || {
            a.cache
                .try_insert_with("k", "after".into(), mpm_cache::EntryOptions::new())
                .is_ok()
        },
    );
    assert_eq!(b.tier.get("k").unwrap().unwrap().value, "after");
    // B's TieredCache may still bypass its tier for a cool-down, and owe a removal it failed
    // to apply while the server was gone (masking those keys until a write or flush applies
    // it): both end by themselves.
    within(
        Duration::from_secs(3),
        "B reads through Redis again",
        || b.cache.flush().is_ok() && b.cache.get("k").as_deref() == Some("after"),
    );
    let mut admin = admin_at(&_server.url());
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    assert!(keys.contains(&"{restart}:e:k".to_owned()), "{keys:?}");
}
