//! The keyed pool's maintenance task: idle objects past their timeout, and empty keys.

use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::inner::Inner;
use super::manager::KeyedManager;

/// The maintenance task: a pass every `interval` until the pool is closed or dropped. It
/// holds the pool only weakly (and only during a pass), and `stop` wakes it at once on
/// either.
pub(super) async fn maintain<K, M>(
    weak: Weak<Inner<K, M>>,
    stop: Arc<Notify>,
    interval: Duration,
    ended: MaintenanceEnded<K, M>,
) where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    let _ended = ended;
    loop {
        // Each period is shortened by a random 0-10%, so that pools made together do not
        // run their passes in step.
        if tokio::time::timeout(crate::backoff::jitter(interval, 10), stop.notified())
            .await
            .is_ok()
        {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.lock().closed {
            return;
        }
        inner.maintain_once();
    }
}

/// Runs when the maintenance task ends for any reason (returned, or dropped with its
/// runtime): marks it gone, so that the next `get` starts another on its own runtime.
pub(super) struct MaintenanceEnded<K, M: KeyedManager<K>>(pub(super) Weak<Inner<K, M>>);

impl<K, M: KeyedManager<K>> Drop for MaintenanceEnded<K, M> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.ticking.store(false, Ordering::Release);
        }
    }
}
