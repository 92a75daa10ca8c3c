//! `BatchProcessor`: split, bounded concurrency, flattened results, failed batches with their
//! items.

use std::time::Duration;

use mpm_batch::{BatchProcessor, JobError};

use crate::{Live, nz};

#[tokio::test(start_paused = true)]
async fn results_flattened_in_order_with_failed_batches_reported() {
    let processor = BatchProcessor::builder()
        .batch_size(nz(4))
        .max_concurrency(nz(3))
        .build();
    let live = Live::default();
    let results = processor
        .run(0..30u32, |batch| {
            let live = live.clone();
            async move {
                let _guard = live.enter();
                tokio::time::sleep(Duration::from_millis(u64::from(40 - batch[0]))).await;
                match batch[0] {
                    8 => Err("batch 2 failed"),
                    16 => panic!("batch 4 panicked"),
                    // One result short.
                    24 => Ok(batch.iter().skip(1).map(|n| n * 2).collect()),
                    _ => Ok(batch.iter().map(|n| n * 2).collect()),
                }
            }
        })
        .await;
    assert_eq!(results.len(), 30);
    assert_eq!(live.peak(), 3);
    for (i, r) in results.iter().enumerate() {
        let batch = i / 4;
        match (batch, r) {
            (2 | 4 | 6, Err(failed)) => {
                assert_eq!(failed.batch, batch);
                assert_eq!(failed.first_item, batch * 4);
                let items: Vec<u32> = (batch as u32 * 4..batch as u32 * 4 + 4).collect();
                assert_eq!(&failed.items[..], &items[..]);
                match (batch, &failed.error) {
                    (2, JobError::Failed(e)) => assert_eq!(*e, "batch 2 failed"),
                    (4, JobError::Panicked(m)) => assert_eq!(m, "batch 4 panicked"),
                    (
                        6,
                        JobError::ResultCount {
                            expected: 4,
                            actual: 3,
                        },
                    ) => {}
                    (_, e) => panic!("item {i}: {e}"),
                }
            }
            (_, Ok(v)) => assert_eq!(*v, i as u32 * 2),
            (_, Err(e)) => panic!("item {i}: {:?}", e.error),
        }
    }
}

#[tokio::test]
async fn the_last_batch_may_be_short_and_defaults_are_the_guides() {
    let processor = BatchProcessor::default();
    assert_eq!(processor.batch_size().get(), 10);
    assert_eq!(processor.max_concurrency().get(), 5);
    let mut sizes = Vec::new();
    let results = processor
        .run(0..23u8, |batch| {
            sizes.push(batch.len());
            async move { Ok::<_, ()>(batch.to_vec()) }
        })
        .await;
    assert_eq!(sizes, [10, 10, 3]);
    assert_eq!(
        results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        (0..23).collect::<Vec<_>>()
    );
    let none = processor
        .run(Vec::<u8>::new(), |b| async move { Ok::<_, ()>(b.to_vec()) })
        .await;
    assert!(none.is_empty());
}
