//! Property: under any sequence of pushes, flushes and pauses, any capacity, batch size and
//! policy, and a consumer that sometimes fails or panics, every accepted item reaches the
//! consumer exactly once or is counted as dropped by the chosen policy.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mpm_batch::{Batch, Batcher, OnFailure, Overflow};
use parking_lot::Mutex;
use proptest::prelude::*;

use crate::nz;

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    Flush,
    Sleep(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u32).prop_map(Op::Push),
        1 => Just(Op::Flush),
        2 => (0..120u64).prop_map(Op::Sleep),
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Wait),
        Just(Overflow::RejectNewest),
        Just(Overflow::DropOldest)
    ]
}

/// A batch the consumer was given: its items and whether it failed them.
type Seen = Arc<Mutex<Vec<(u32, Vec<u32>, bool)>>>;

struct Case {
    ops: Vec<Op>,
    capacity: usize,
    max_items: usize,
    overflow: Overflow,
    on_failure: OnFailure,
    fail_every: u32,
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let seen: Seen = Arc::default();
        let batcher = {
            let seen = Arc::clone(&seen);
            let fail_every = case.fail_every;
            Batcher::builder(nz(case.capacity), case.overflow)
                .max_items(nz(case.max_items))
                .max_delay(Duration::from_millis(50))
                .on_failure(case.on_failure)
                .build(move |batch: Batch<u32, u32>| {
                    let first = batch.items()[0];
                    let fails = first.is_multiple_of(fail_every);
                    seen.lock()
                        .push((*batch.key(), batch.items().to_vec(), fails));
                    async move {
                        tokio::task::yield_now().await;
                        if fails && first.is_multiple_of(2) {
                            panic!("consumer panics on {first}");
                        }
                        if fails {
                            Err(format!("consumer fails on {first}"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .expect("a valid batcher")
        };
        let mut accepted = Vec::new();
        let mut refused = 0u64;
        let mut returned_early = Vec::new();
        for (n, op) in case.ops.iter().enumerate() {
            match op {
                Op::Push(key) => {
                    // Item ids encode their key.
                    let id = n as u32 * 4 + key;
                    let pushed = if case.overflow == Overflow::Wait {
                        batcher.try_push(*key, id)
                    } else {
                        batcher.push(*key, id).await
                    };
                    match pushed {
                        Ok(()) => accepted.push(id),
                        Err(_) => refused += 1,
                    }
                }
                Op::Flush => returned_early.extend(batcher.flush().await.expect("flush")),
                Op::Sleep(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            }
        }
        let mut undelivered = batcher.shutdown().await.expect("shutdown");
        undelivered.extend(returned_early);
        let stats = batcher.stats();
        let seen = seen.lock().clone();

        let accepted_set: HashSet<u32> = accepted.iter().copied().collect();
        let mut seen_ids = HashSet::new();
        let mut ok_items = 0u64;
        let mut failed = HashSet::new();
        for (key, items, fails) in &seen {
            prop_assert!(
                !items.is_empty() && items.len() <= case.max_items,
                "{items:?}"
            );
            prop_assert!(
                items.windows(2).all(|w| w[0] < w[1]),
                "oldest first: {items:?}"
            );
            for id in items {
                prop_assert_eq!(id % 4, *key, "an item in another key's batch");
                prop_assert!(accepted_set.contains(id), "{} was never accepted", id);
                prop_assert!(seen_ids.insert(*id), "{} delivered twice", id);
                if *fails {
                    failed.insert(*id);
                } else {
                    ok_items += 1;
                }
            }
        }
        let dropped = accepted.len() as u64 - seen_ids.len() as u64;
        prop_assert_eq!(stats.accepted, accepted.len() as u64);
        prop_assert_eq!(stats.delivered, ok_items);
        prop_assert_eq!(stats.dropped_oldest, dropped);
        if case.overflow != Overflow::DropOldest {
            prop_assert_eq!(dropped, 0);
        }
        if case.overflow == Overflow::RejectNewest {
            prop_assert_eq!(stats.rejected, refused);
        } else {
            prop_assert_eq!(stats.rejected, 0);
        }
        let returned: HashSet<u32> = undelivered
            .iter()
            .flat_map(|u| u.batch.items().iter().copied())
            .collect();
        match case.on_failure {
            OnFailure::Return => {
                prop_assert_eq!(&returned, &failed);
                prop_assert_eq!(stats.returned, failed.len() as u64);
                prop_assert_eq!(stats.lost, 0);
            }
            OnFailure::CountLost => {
                prop_assert!(returned.is_empty());
                prop_assert_eq!(stats.lost, failed.len() as u64);
            }
        }
        prop_assert_eq!(
            stats.accepted,
            stats.delivered + stats.returned + stats.lost + stats.dropped_oldest
        );
        prop_assert_eq!(stats.queued, 0);
        prop_assert!(stats.peak_queued <= case.capacity as u64);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_accepted_item_is_delivered_once_or_counted(
        ops in proptest::collection::vec(op(), 0..150),
        capacity in 1usize..8,
        max_items in 1usize..6,
        overflow in overflow(),
        lose in any::<bool>(),
        fail_every in 2u32..9,
    ) {
        let on_failure = if lose { OnFailure::CountLost } else { OnFailure::Return };
        run(Case { ops, capacity, max_items, overflow, on_failure, fail_every })?;
    }
}
