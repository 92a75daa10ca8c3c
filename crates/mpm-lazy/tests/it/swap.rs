//! `Swap`, the hot-swappable handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mpm_lazy::Swap;

trait Backend: Send + Sync {
    fn generation(&self) -> usize;
}

struct Counted {
    generation: usize,
    drops: Arc<AtomicUsize>,
}

impl Backend for Counted {
    fn generation(&self) -> usize {
        self.generation
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted(generation: usize, drops: &Arc<AtomicUsize>) -> Arc<dyn Backend> {
    Arc::new(Counted {
        generation,
        drops: Arc::clone(drops),
    })
}

#[test]
fn the_old_value_is_dropped_when_its_last_reader_is_done() {
    let drops = Arc::new(AtomicUsize::new(0));
    let swap: Swap<dyn Backend> = Swap::new(counted(0, &drops));
    let reader = swap.load();
    let kept = swap.load_full();
    swap.store(counted(1, &drops));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "two readers still hold generation 0"
    );
    assert_eq!(reader.generation(), 0);
    drop(reader);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the Arc still holds generation 0"
    );
    drop(kept);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(swap.load().generation(), 1);
    drop(swap);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn rcu_loses_no_concurrent_update() {
    let swap = Swap::from_value(0_u64);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..500 {
                    swap.rcu(|n| Arc::new(**n + 1));
                }
            });
        }
    });
    assert_eq!(*swap.load(), 2_000);
    assert_eq!(swap.version(), 2_000);
}

#[test]
fn readers_see_whole_values_while_writers_swap() {
    // Each value is a pair that writers keep equal; a torn read would see a mismatch.
    let swap = Swap::from_value((0_u64, 0_u64));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let mut reads = 0_u64;
                while !stop.load(Ordering::Relaxed) || reads < 1_000 {
                    let pair = swap.load();
                    assert_eq!(pair.0, pair.1);
                    reads += 1;
                }
            });
        }
        for n in 1..=2_000 {
            swap.store(Arc::new((n, n)));
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(*swap.load(), (2_000, 2_000));
}

#[test]
fn unsized_strings_and_slices() {
    let name: Swap<str> = Swap::new(Arc::from("legacy"));
    let old = name.swap(Arc::from("agent.deployment"));
    assert_eq!(&*old, "legacy");
    assert_eq!(&*name.load(), "agent.deployment");
    assert_eq!(
        format!("{name:?}"),
        r#"Swap { value: "agent.deployment", version: 1 }"#
    );
    let list: Swap<[u8]> = Swap::new(Arc::from(&[1_u8, 2][..]));
    assert_eq!(list.load().to_arc().len(), 2);
}
