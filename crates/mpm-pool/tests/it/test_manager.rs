//! A manager that counts what the pool asks of it and can be told to fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use mpm_pool::Manager;

/// The error of [`TestManager`].
#[derive(Debug, thiserror::Error)]
#[error("test manager: {0}")]
pub(crate) struct TestError(pub(crate) &'static str);

/// Counts creations, validations, recycles and closes; keeps the number of live objects and
/// its maximum; fails steps on request.
#[derive(Default)]
pub(crate) struct TestManager {
    pub(crate) next: AtomicU64,
    pub(crate) created: AtomicUsize,
    pub(crate) create_attempts: AtomicUsize,
    pub(crate) validated: AtomicUsize,
    pub(crate) recycled: AtomicUsize,
    pub(crate) closed: AtomicUsize,
    pub(crate) live: AtomicUsize,
    pub(crate) max_live: AtomicUsize,
    pub(crate) fail_create: AtomicBool,
    pub(crate) fail_validate: AtomicBool,
    pub(crate) fail_recycle: AtomicBool,
    pub(crate) broken: AtomicBool,
}

impl TestManager {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl Manager for TestManager {
    type Object = u64;
    type Error = TestError;

    async fn create(&self) -> Result<u64, TestError> {
        self.create_attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(TestError("create refused"));
        }
        self.created.fetch_add(1, Ordering::SeqCst);
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(live, Ordering::SeqCst);
        Ok(self.next.fetch_add(1, Ordering::SeqCst))
    }

    async fn validate(&self, _: &mut u64) -> Result<(), TestError> {
        self.validated.fetch_add(1, Ordering::SeqCst);
        if self.fail_validate.load(Ordering::SeqCst) {
            return Err(TestError("invalid"));
        }
        Ok(())
    }

    async fn recycle(&self, _: &mut u64) -> Result<(), TestError> {
        self.recycled.fetch_add(1, Ordering::SeqCst);
        if self.fail_recycle.load(Ordering::SeqCst) {
            return Err(TestError("recycle refused"));
        }
        Ok(())
    }

    fn is_broken(&self, _: &mut u64) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    fn close(&self, _: u64) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
