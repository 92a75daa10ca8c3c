//! `Batcher`: size and time flushes on a paused clock, keys, overflow under each policy,
//! consumer failures, flush and shutdown with items in flight, bounded memory, statistics.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mpm_batch::{
    Batch, Batcher, BatcherBuilder, ConsumerError, Error, FlushReason, OnFailure, Overflow,
    PushError,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::nz;

/// A batch as the test consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    key: &'static str,
    items: Vec<u32>,
    reason: FlushReason,
    /// Time since the test started, on the paused clock.
    at: Duration,
}

type Consumer =
    Box<dyn FnMut(Batch<&'static str, u32>) -> BoxFuture<'static, Result<(), String>> + Send>;

/// A consumer that reports each batch on a channel and then waits for a permit of `gate`
/// (if given), failing batches whose key is `"bad"` and panicking on `"panic"`.
fn consumer(gate: Option<Arc<Semaphore>>) -> (Consumer, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let consumer: Consumer = Box::new(move |batch| {
        let tx = tx.clone();
        let gate = gate.clone();
        Box::pin(async move {
            let _ = tx.send(Seen {
                key: batch.key(),
                items: batch.items().to_vec(),
                reason: batch.reason(),
                at: start.elapsed(),
            });
            if let Some(gate) = gate {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
            }
            match *batch.key() {
                "bad" => Err(format!("cannot take {} items", batch.len())),
                "panic" => panic!("consumer panicked on {:?}", batch.items()),
                _ => Ok(()),
            }
        })
    });
    (consumer, rx)
}

fn builder(capacity: usize, overflow: Overflow) -> BatcherBuilder<&'static str, u32> {
    Batcher::builder(nz(capacity), overflow)
        .max_items(nz(3))
        .max_delay(Duration::from_millis(50))
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut seen = Vec::new();
    while let Ok(s) = rx.try_recv() {
        seen.push(s);
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_goes_at_once_the_rest_after_max_delay() {
    let (consume, mut rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait).build(consume).unwrap();
    for i in 0..7 {
        batcher.push("a", i).await.unwrap();
    }
    let seen = [
        rx.recv().await.unwrap(),
        rx.recv().await.unwrap(),
        rx.recv().await.unwrap(),
    ];
    let ms = Duration::from_millis;
    assert_eq!(
        seen,
        [
            Seen {
                key: "a",
                items: vec![0, 1, 2],
                reason: FlushReason::Size,
                at: ms(0)
            },
            Seen {
                key: "a",
                items: vec![3, 4, 5],
                reason: FlushReason::Size,
                at: ms(0)
            },
            Seen {
                key: "a",
                items: vec![6],
                reason: FlushReason::Time,
                at: ms(50)
            },
        ]
    );
    let stats = batcher.stats();
    assert_eq!((stats.flushes.size, stats.flushes.time), (2, 1));
    assert_eq!((stats.accepted, stats.queued), (7, 0));
}

#[tokio::test(start_paused = true)]
async fn max_delay_counts_from_a_batchs_first_item() {
    let (consume, mut rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait).build(consume).unwrap();
    batcher.push("a", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    batcher.push("a", 2).await.unwrap();
    batcher.push("b", 3).await.unwrap();
    let first = rx.recv().await.unwrap();
    assert_eq!(
        (first.key, first.items, first.at),
        ("a", vec![1, 2], Duration::from_millis(50))
    );
    let second = rx.recv().await.unwrap();
    assert_eq!(
        (second.key, second.items, second.at),
        ("b", vec![3], Duration::from_millis(80))
    );
    assert_eq!(second.reason, FlushReason::Time);
}

#[tokio::test(start_paused = true)]
async fn items_are_grouped_by_key() {
    let (consume, mut rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait).build(consume).unwrap();
    for (i, key) in ["x", "y", "x", "z", "y", "x", "y"].into_iter().enumerate() {
        batcher.push(key, i as u32).await.unwrap();
    }
    let a = rx.recv().await.unwrap();
    let b = rx.recv().await.unwrap();
    assert_eq!(
        (a.key, a.items, a.reason),
        ("x", vec![0, 2, 5], FlushReason::Size)
    );
    assert_eq!(
        (b.key, b.items, b.reason),
        ("y", vec![1, 4, 6], FlushReason::Size)
    );
    let c = rx.recv().await.unwrap();
    assert_eq!(
        (c.key, c.items, c.reason),
        ("z", vec![3], FlushReason::Time)
    );
}

#[tokio::test(start_paused = true)]
async fn flush_delivers_everything_accepted_and_waits_for_the_consumer() {
    let (consume, mut rx) = consumer(None);
    let batcher = Batcher::builder(nz(100), Overflow::Wait)
        .max_items(nz(10))
        .max_delay(Duration::from_secs(3600))
        .build(consume)
        .unwrap();
    for (i, key) in ["a", "b", "a", "a", "b"].into_iter().enumerate() {
        batcher.push(key, i as u32).await.unwrap();
    }
    let undelivered = batcher.flush().await.unwrap();
    assert!(undelivered.is_empty());
    let seen = drain(&mut rx);
    assert_eq!(
        seen.len(),
        2,
        "both batches were handed over before flush returned"
    );
    assert_eq!((seen[0].key, &seen[0].items[..]), ("a", &[0, 2, 3][..]));
    assert_eq!((seen[1].key, &seen[1].items[..]), ("b", &[1, 4][..]));
    assert!(
        seen.iter()
            .all(|s| s.reason == FlushReason::Flush && s.at.is_zero())
    );
    assert_eq!(batcher.stats().flushes.flush, 2);
    // Nothing left: a second flush hands over nothing.
    batcher.flush().await.unwrap();
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn reject_newest_refuses_exactly_the_overflow() {
    let (consume, mut rx) = consumer(None);
    let batcher = Batcher::builder(nz(4), Overflow::RejectNewest)
        .max_items(nz(100))
        .max_delay(Duration::from_secs(3600))
        .build(consume)
        .unwrap();
    let mut refused = Vec::new();
    for i in 0..10 {
        if let Err(e) = batcher.push("a", i).await {
            assert!(matches!(e, PushError::Full(_)));
            refused.push(e.into_item());
        }
    }
    assert_eq!(refused, [4, 5, 6, 7, 8, 9]);
    let stats = batcher.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.rejected,
            stats.queued,
            stats.peak_queued
        ),
        (4, 6, 4, 4)
    );
    batcher.flush().await.unwrap();
    assert_eq!(drain(&mut rx)[0].items, [0, 1, 2, 3]);
    assert_eq!(batcher.stats().delivered, 4);
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_keeps_the_newest_across_keys() {
    let (consume, mut rx) = consumer(None);
    let batcher = Batcher::builder(nz(4), Overflow::DropOldest)
        .max_items(nz(100))
        .max_delay(Duration::from_secs(3600))
        .build(consume)
        .unwrap();
    for i in 0..10 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        batcher.push(key, i).await.unwrap();
    }
    let stats = batcher.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.dropped_oldest,
            stats.queued,
            stats.peak_queued
        ),
        (10, 6, 4, 4)
    );
    batcher.flush().await.unwrap();
    let mut kept: Vec<u32> = drain(&mut rx).into_iter().flat_map(|s| s.items).collect();
    kept.sort_unstable();
    assert_eq!(kept, [6, 7, 8, 9]);
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_reaches_into_full_batches_waiting_for_the_consumer() {
    // The consumer holds the first batch; the next full batch waits in the queue, and its
    // oldest items are the ones dropped.
    let gate = Arc::new(Semaphore::new(0));
    let (consume, mut rx) = consumer(Some(Arc::clone(&gate)));
    let batcher = builder(4, Overflow::DropOldest).build(consume).unwrap();
    for i in 0..3 {
        batcher.push("a", i).await.unwrap();
    }
    assert_eq!(rx.recv().await.unwrap().items, [0, 1, 2]);
    for i in 3..10 {
        batcher.push("a", i).await.unwrap();
    }
    // Queued: [3,4,5] full, then [6,7,8] full, then [9]: 7 items for 4 places; 3, 4, 5
    // were dropped as the newest came in.
    let stats = batcher.stats();
    assert_eq!(
        (stats.dropped_oldest, stats.queued, stats.peak_queued),
        (3, 4, 4)
    );
    gate.add_permits(10);
    batcher.flush().await.unwrap();
    let items: Vec<Vec<u32>> = drain(&mut rx).into_iter().map(|s| s.items).collect();
    assert_eq!(items, [vec![6, 7, 8], vec![9]]);
    assert_eq!(batcher.stats().delivered, 3 + 4);
}

#[tokio::test(start_paused = true)]
async fn wait_makes_producers_wait_for_room() {
    let gate = Arc::new(Semaphore::new(0));
    let (consume, mut rx) = consumer(Some(Arc::clone(&gate)));
    let batcher = builder(3, Overflow::Wait).build(consume).unwrap();
    for i in 0..3 {
        batcher.push("a", i).await.unwrap();
    }
    // The consumer took [0, 1, 2] and waits on the gate; three more fill the queue.
    assert_eq!(rx.recv().await.unwrap().items, [0, 1, 2]);
    for i in 3..6 {
        batcher.push("a", i).await.unwrap();
    }
    assert!(matches!(
        batcher.try_push("a", 99),
        Err(PushError::Full(99))
    ));
    let producer = {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.push("a", 6).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !producer.is_finished(),
        "the producer waits while the queue is full"
    );
    assert_eq!(batcher.stats().queued, 3);
    gate.add_permits(1);
    producer.await.unwrap().unwrap();
    gate.add_permits(10);
    batcher.flush().await.unwrap();
    let stats = batcher.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.rejected,
            stats.peak_queued
        ),
        (7, 7, 0, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn failed_batches_are_returned_with_their_items() {
    let (consume, _rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait).build(consume).unwrap();
    for (key, i) in [("bad", 1), ("ok", 2), ("panic", 3), ("bad", 4)] {
        batcher.push(key, i).await.unwrap();
    }
    let undelivered = batcher.flush().await.unwrap();
    assert_eq!(undelivered.len(), 2);
    assert_eq!(
        (
            *undelivered[0].batch.key(),
            &undelivered[0].batch.items()[..]
        ),
        ("bad", &[1, 4][..])
    );
    assert!(
        matches!(&undelivered[0].error, ConsumerError::Failed(e) if e.to_string() == "cannot take 2 items")
    );
    assert_eq!(&undelivered[1].batch.items()[..], &[3]);
    assert!(
        matches!(&undelivered[1].error, ConsumerError::Panicked(m) if m == "consumer panicked on [3]")
    );
    let stats = batcher.stats();
    assert_eq!((stats.delivered, stats.returned, stats.lost), (1, 3, 0));
    assert_eq!((stats.consumer_errors, stats.consumer_panics), (1, 1));
    // The batcher keeps working after a panic.
    batcher.push("ok", 5).await.unwrap();
    assert!(batcher.flush().await.unwrap().is_empty());
    assert_eq!(batcher.stats().delivered, 2);
}

#[tokio::test(start_paused = true)]
async fn count_lost_drops_failed_batches_and_counts_them() {
    let (consume, _rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait)
        .on_failure(OnFailure::CountLost)
        .build(consume)
        .unwrap();
    for (key, i) in [
        ("bad", 1),
        ("ok", 2),
        ("panic", 3),
        ("bad", 4),
        ("bad", 5),
        ("bad", 6),
    ] {
        batcher.push(key, i).await.unwrap();
    }
    assert!(batcher.shutdown().await.unwrap().is_empty());
    let stats = batcher.stats();
    assert_eq!((stats.delivered, stats.returned, stats.lost), (1, 0, 5));
    assert_eq!(stats.accepted, stats.delivered + stats.lost);
}

#[tokio::test(start_paused = true)]
async fn shutdown_delivers_items_in_flight_and_refuses_new_ones() {
    let gate = Arc::new(Semaphore::new(0));
    let (consume, mut rx) = consumer(Some(Arc::clone(&gate)));
    let batcher = builder(4, Overflow::Wait).build(consume).unwrap();
    for i in 0..3 {
        batcher.push("a", i).await.unwrap();
    }
    assert_eq!(rx.recv().await.unwrap().items, [0, 1, 2]);
    for i in 3..7 {
        batcher.push("a", i).await.unwrap();
    }
    // The queue is full and a producer waits for room.
    let waiting = {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.push("b", 7).await })
    };
    // The paused clock advances only once every task is idle: the producer is waiting.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!waiting.is_finished());
    let shutdown = {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.shutdown().await })
    };
    assert_eq!(waiting.await.unwrap(), Err(PushError::Closed(7)));
    assert_eq!(batcher.push("a", 8).await, Err(PushError::Closed(8)));
    assert!(!shutdown.is_finished(), "shutdown waits for the consumer");
    gate.add_permits(10);
    assert!(shutdown.await.unwrap().unwrap().is_empty());
    let seen = drain(&mut rx);
    let items: Vec<Vec<u32>> = seen.iter().map(|s| s.items.clone()).collect();
    assert_eq!(items, [vec![3, 4, 5], vec![6]]);
    assert_eq!(seen[1].reason, FlushReason::Shutdown);
    let stats = batcher.stats();
    assert_eq!((stats.accepted, stats.delivered, stats.queued), (7, 7, 0));
    // Later calls return at once.
    assert!(batcher.shutdown().await.unwrap().is_empty());
    assert!(batcher.flush().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_still_delivers() {
    let (consume, mut rx) = consumer(None);
    let batcher = builder(100, Overflow::Wait)
        .max_delay(Duration::from_secs(3600))
        .build(consume)
        .unwrap();
    let clone = batcher.clone();
    batcher.push("a", 1).await.unwrap();
    drop(batcher);
    clone.push("a", 2).await.unwrap();
    drop(clone);
    let seen = rx.recv().await.unwrap();
    assert_eq!(
        (seen.items, seen.reason),
        (vec![1, 2], FlushReason::Shutdown)
    );
    assert!(
        rx.recv().await.is_none(),
        "the worker ended and dropped the consumer"
    );
}

#[tokio::test]
async fn a_zero_max_delay_is_refused() {
    let (consume, _rx) = consumer(None);
    let err = builder(1, Overflow::Wait)
        .max_delay(Duration::ZERO)
        .build(consume)
        .unwrap_err();
    assert!(matches!(err, Error::ZeroDelay));
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    let err = Batcher::<u8, u8>::builder(nz(1), Overflow::Wait)
        .build(|_| async { Ok::<_, String>(()) })
        .unwrap_err();
    assert!(matches!(err, Error::NoRuntime(_)), "{err}");
}

#[test]
fn a_dead_worker_is_reported_and_its_items_counted_lost() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (batcher, flush) = runtime.block_on(async {
        let batcher = Batcher::builder(nz(10), Overflow::Wait)
            .max_items(nz(100))
            .max_delay(Duration::from_secs(3600))
            .build(|_: Batch<u8, u8>| async { Ok::<_, String>(()) })
            .unwrap();
        batcher.push(0, 1).await.unwrap();
        batcher.push(0, 2).await.unwrap();
        (batcher.clone(), batcher)
    });
    drop(runtime);
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    other.block_on(async {
        assert!(matches!(flush.flush().await, Ok(v) if v.is_empty()));
        assert_eq!(batcher.push(0, 3).await, Err(PushError::Closed(3)));
    });
    let stats = batcher.stats();
    assert_eq!((stats.accepted, stats.lost, stats.queued), (2, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn statistics_land_in_the_registry() {
    let registry = mpm_metrics::Registry::default();
    let (consume, _rx) = consumer(None);
    let batcher = builder(2, Overflow::RejectNewest)
        .metrics(&registry, "events")
        .build(consume)
        .unwrap();
    for i in 0..3 {
        let _ = batcher.push("a", i).await;
    }
    batcher.flush().await.unwrap();
    let text = registry.render_prometheus();
    for line in [
        "mpm_batch_items_accepted_total{name=\"events\"} 2",
        "mpm_batch_items_delivered_total{name=\"events\"} 2",
        "mpm_batch_items_dropped_total{name=\"events\",reason=\"rejected\"} 1",
        "mpm_batch_flushes_total{name=\"events\",reason=\"flush\"} 1",
        "mpm_batch_batch_size_count{name=\"events\"} 1",
        "mpm_batch_wait_seconds_count{name=\"events\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // A second batcher of the same name is an error at build...
    let (consume, _rx) = consumer(None);
    let err = builder(2, Overflow::Wait)
        .metrics(&registry, "events")
        .build(consume)
        .unwrap_err();
    assert!(matches!(err, Error::Metrics { .. }), "{err}");
    // ...and so is a series the registry holds with another kind.
    let other = mpm_metrics::Registry::default();
    other
        .gauge("mpm_batch_wait_seconds", &[("name", "x")])
        .unwrap();
    let (consume, _rx) = consumer(None);
    let err = builder(2, Overflow::Wait)
        .metrics(&other, "x")
        .build(consume)
        .unwrap_err();
    assert!(matches!(err, Error::Metrics { .. }), "{err}");
}

/// Producers ten times faster than the consumer: the queue never holds more than its
/// capacity, under each policy, and every item is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_when_producers_outrun_the_consumer() {
    for overflow in [Overflow::Wait, Overflow::RejectNewest, Overflow::DropOldest] {
        let batcher = Batcher::builder(nz(64), overflow)
            .max_items(nz(16))
            .max_delay(Duration::from_millis(5))
            .build(|_: Batch<u8, u64>| async move {
                // About 16 items a millisecond; each producer pushes far more than ten times
                // that.
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, String>(())
            })
            .unwrap();
        let producers: Vec<_> = (0..4u8)
            .map(|p| {
                let batcher = batcher.clone();
                tokio::spawn(async move {
                    let mut refused = 0u64;
                    for i in 0..2_000u64 {
                        if batcher.push(p, i).await.is_err() {
                            refused += 1;
                        }
                        if i % 10 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    refused
                })
            })
            .collect();
        let mut refused = 0;
        for p in producers {
            refused += p.await.unwrap();
        }
        batcher.shutdown().await.unwrap();
        let s = batcher.stats();
        assert!(s.peak_queued <= 64, "{overflow:?}: peak {}", s.peak_queued);
        assert_eq!(s.accepted + s.rejected, 8_000, "{overflow:?}");
        assert_eq!(s.rejected, refused, "{overflow:?}");
        assert_eq!(
            s.accepted,
            s.delivered + s.dropped_oldest,
            "{overflow:?}: {s:?}"
        );
        if overflow == Overflow::Wait {
            assert_eq!(s.delivered, 8_000);
        }
        println!("{overflow:?}: peak queued {} of 64, {s:?}", s.peak_queued);
    }
}

/// Many producer tasks on two threads, mixed keys and a consumer that sometimes fails:
/// every accepted item ends in exactly one count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_many_producers() {
    let (consume, mut rx) = consumer(None);
    let batcher = Batcher::builder(nz(32), Overflow::Wait)
        .max_items(nz(7))
        .max_delay(Duration::from_micros(200))
        .build(consume)
        .unwrap();
    let keys = ["a", "b", "bad", "c"];
    let tasks: Vec<_> = (0..32u32)
        .map(|t| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                for i in 0..200u32 {
                    batcher
                        .push(keys[(i % 4) as usize], t * 1000 + i)
                        .await
                        .unwrap();
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let undelivered = batcher.shutdown().await.unwrap();
    let mut seen: Vec<u32> = drain(&mut rx).into_iter().flat_map(|s| s.items).collect();
    seen.sort_unstable();
    let mut expected: Vec<u32> = (0..32)
        .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(
        seen, expected,
        "every item reached the consumer exactly once"
    );
    let returned: usize = undelivered.iter().map(|u| u.batch.len()).sum();
    let s = batcher.stats();
    assert_eq!(returned as u64, s.returned);
    assert_eq!(s.returned, 1600, "the \"bad\" key's items come back");
    assert_eq!((s.accepted, s.delivered + s.returned), (6400, 6400));
    assert!(s.peak_queued <= 32);
}
