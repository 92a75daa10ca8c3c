//! The crate's table of metrics matches what a batcher exports; counts are exact and the
//! gauges fresh at scrape time.

use std::num::NonZeroUsize;
use std::time::Duration;

use mpm_batch::{Batch, Batcher, OnFailure, Overflow};
use mpm_metrics::{Registry, contract};

const TABLE: &str = include_str!("../../src/metrics.md");

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

#[track_caller]
fn check_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

/// Drives the batcher through every flush reason and failure kind, then checks the table
/// against the exposition and the exact counts.
#[tokio::test(start_paused = true)]
async fn the_table_lists_every_exported_metric_and_counts_are_exact() {
    let registry = Registry::default();
    // The consumer fails batches whose first item is 100 and panics on 200.
    let batcher = Batcher::builder(nz(4), Overflow::DropOldest)
        .max_items(nz(2))
        .max_delay(Duration::from_millis(10))
        .on_failure(OnFailure::CountLost)
        .metrics(&registry, "events")
        .build(|batch: Batch<&str, u32>| async move {
            match batch.items()[0] {
                100 => Err("refused"),
                200 => panic!("consumer panicked"),
                _ => Ok(()),
            }
        })
        .unwrap();
    // A full batch (size), a lone item (time), a failing and a panicking batch (flush).
    batcher.push("a", 1).await.unwrap();
    batcher.push("a", 2).await.unwrap();
    batcher.push("b", 3).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    batcher.push("c", 100).await.unwrap();
    batcher.flush().await.unwrap();
    batcher.push("d", 200).await.unwrap();
    batcher.flush().await.unwrap();
    batcher.push("e", 5).await.unwrap();
    batcher.shutdown().await.unwrap();

    let text = registry.render_prometheus();
    contract::check_metric_table(TABLE, &text, "mpm_batch_").unwrap();
    check_lines(
        &text,
        &[
            "mpm_batch_items_accepted_total{name=\"events\"} 6\n",
            "mpm_batch_items_delivered_total{name=\"events\"} 4\n",
            "mpm_batch_items_dropped_total{name=\"events\",reason=\"lost\"} 2\n",
            "mpm_batch_consumer_failures_total{kind=\"error\",name=\"events\"} 1\n",
            "mpm_batch_consumer_failures_total{kind=\"panic\",name=\"events\"} 1\n",
            "mpm_batch_flushes_total{name=\"events\",reason=\"size\"} 1\n",
            "mpm_batch_flushes_total{name=\"events\",reason=\"time\"} 1\n",
            "mpm_batch_flushes_total{name=\"events\",reason=\"flush\"} 2\n",
            "mpm_batch_flushes_total{name=\"events\",reason=\"shutdown\"} 1\n",
            "mpm_batch_batch_size_count{name=\"events\"} 5\n",
            "mpm_batch_batch_size_sum{name=\"events\"} 6.0\n",
            "mpm_batch_wait_seconds_count{name=\"events\"} 5\n",
            "mpm_batch_queued{name=\"events\"} 0\n",
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn the_queue_gauges_are_fresh_without_calling_stats() {
    let registry = Registry::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let consumer_gate = std::sync::Arc::clone(&gate);
    let batcher = Batcher::builder(nz(8), Overflow::RejectNewest)
        .max_items(nz(100))
        .max_delay(Duration::from_secs(3600))
        .metrics(&registry, "events")
        .build(move |_: Batch<u8, u32>| {
            let gate = std::sync::Arc::clone(&consumer_gate);
            async move {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                Ok::<_, String>(())
            }
        })
        .unwrap();
    for i in 0..3 {
        batcher.push(0, i).await.unwrap();
    }
    check_lines(
        &registry.render_prometheus(),
        &[
            "mpm_batch_queued{name=\"events\"} 3\n",
            "mpm_batch_queued_peak{name=\"events\"} 3\n",
        ],
    );
    gate.add_permits(1);
    batcher.shutdown().await.unwrap();
    check_lines(
        &registry.render_prometheus(),
        &[
            "mpm_batch_queued{name=\"events\"} 0\n",
            "mpm_batch_queued_peak{name=\"events\"} 3\n",
            "mpm_batch_items_delivered_total{name=\"events\"} 3\n",
        ],
    );
}

#[tokio::test]
async fn a_dropped_batcher_releases_its_name() {
    let registry = Registry::default();
    let build = || {
        Batcher::builder(nz(8), Overflow::Wait)
            .metrics(&registry, "events")
            .build(|_: Batch<u8, u32>| async { Ok::<_, String>(()) })
    };
    let first = build().unwrap();
    assert!(build().is_err(), "the name is held while the batcher lives");
    first.shutdown().await.unwrap();
    drop(first);
    // The worker task holds the state until it has finished; wait for it to let go.
    let mut tries = 0;
    let second = loop {
        match build() {
            Ok(batcher) => break batcher,
            Err(_) if tries < 1_000 => {
                tries += 1;
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("the name was never released: {e}"),
        }
    };
    second.shutdown().await.unwrap();
}
