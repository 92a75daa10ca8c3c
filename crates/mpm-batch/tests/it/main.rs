//! Integration tests of `mpm-batch`.

mod batcher;
mod bounded;
mod metrics;
mod processor;
mod property;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `n` as a `NonZeroUsize`; the tests only pass positive numbers.
fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("a positive number")
}

/// Counts live values: each [`Live::enter`] guard is one, until it is dropped; also keeps the
/// highest count seen.
#[derive(Clone, Default)]
struct Live {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

struct LiveGuard(Arc<AtomicUsize>);

impl Live {
    fn enter(&self) -> LiveGuard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        LiveGuard(Arc::clone(&self.now))
    }

    fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
