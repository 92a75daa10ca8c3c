//! The keyed pool's maintenance task: idle objects past their timeout, and empty keys.

use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::inner::Inner;
use super::manager::KeyedManager;
use crate::task::TaskEnded;

/// The maintenance task: a pass every `interval` until the pool is closed or dropped. It
/// holds the pool only weakly (and only during a pass), and `stop` wakes it at once on
/// either.
pub(super) async fn maintain<K, M>(
    weak: Weak<Inner<K, M>>,
    stop: Arc<Notify>,
    interval: Duration,
    ended: TaskEnded<Inner<K, M>>,
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
        if inner.table.is_closed() {
            return;
        }
        inner.maintain_once();
    }
}
