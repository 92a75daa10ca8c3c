//! The maintenance task's life, shared by both pools: at most one task per pool, marked
//! running while it lives ([`Maintained::ticking`]) and marked gone by a guard however it ends
//! (returned, panicked, or dropped with its runtime), so that the next acquire starts a new
//! one on its own runtime ([`spawn_unless_running`]). No deadline depends on the task; this
//! only brings its work (the coarse clock, the sweep, idle and lifetime passes) back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// A pool with a maintenance task.
pub(crate) trait Maintained: Send + Sync + 'static {
    /// Set while a maintenance task is running.
    fn ticking(&self) -> &AtomicBool;

    /// Called once the task has ended and `ticking` is clear: waiters that counted on the
    /// task are woken to use their own timers.
    fn task_ended(&self) {}
}

/// Runs when the maintenance task ends for any reason: marks it gone.
pub(crate) struct TaskEnded<T: Maintained>(Weak<T>);

impl<T: Maintained> Drop for TaskEnded<T> {
    fn drop(&mut self) {
        if let Some(pool) = self.0.upgrade() {
            pool.ticking().store(false, Ordering::Release);
            pool.task_ended();
        }
    }
}

/// Spawns the task made by `task` on the caller's Tokio runtime unless one is running (or
/// there is no runtime). The task is given the pool weakly and the guard that marks it gone;
/// the guard is made here, not in the task, so a task dropped before its first poll (its
/// runtime shut down first) still clears the mark.
pub(crate) fn spawn_unless_running<T, F>(
    pool: &Arc<T>,
    task: impl FnOnce(Weak<T>, TaskEnded<T>) -> F,
) where
    T: Maintained,
    F: Future<Output = ()> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if pool
        .ticking()
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        let ended = TaskEnded(Arc::downgrade(pool));
        runtime.spawn(task(Arc::downgrade(pool), ended));
    }
}
