//! How a synchronous caller waits for an asynchronous Redis call, on any thread, inside a Tokio
//! runtime or not, never past a deadline.
//!
//! The connections' I/O runs on the crate's own runtime thread ([`crate::Redis`]). A caller
//! polls the request's future on its own thread with a waker that unparks it, and parks until
//! woken or until the deadline; at the deadline it drops the future (the request is abandoned,
//! the connection is not harmed). No task is spawned per call and nothing is shared with the
//! caller's runtime, so a caller on a current-thread runtime cannot deadlock: it only ever
//! waits for the crate's thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// The deadline passed before the future finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Runs `fut` to completion on this thread, inside `handle`'s context (the Redis client spawns
/// reconnections and arms timers there), or gives up at `deadline`.
pub(crate) fn until<F: Future>(
    handle: &tokio::runtime::Handle,
    deadline: Instant,
    fut: F,
) -> Result<F::Output, Elapsed> {
    let _context = handle.enter();
    // Unconstrained: a caller inside a Tokio task spends that task's cooperative budget on
    // every poll of a Tokio resource, and once it is spent every resource answers "not yet"
    // until the task yields, which a synchronous call never does: each call would wait out its
    // deadline.
    let mut fut = pin!(tokio::task::unconstrained(fut));
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Elapsed);
            }
            // A wake-up before the park is kept by the thread's token; a spurious one polls
            // again.
            thread::park_timeout(deadline - now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A runtime with a worker thread of its own (it drives its timers, as the crate's does).
    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_ready_future_answers_and_a_stuck_one_gives_up_at_the_deadline() {
        let rt = runtime();
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(until(rt.handle(), soon, async { 7 }).unwrap(), 7);
        let start = Instant::now();
        let stuck = until(
            rt.handle(),
            start + Duration::from_millis(30),
            std::future::pending::<()>(),
        );
        assert!(stuck.is_err());
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn calls_from_inside_a_task_do_not_run_out_of_its_budget() {
        let ours = runtime();
        let caller = one_worker();
        // Far more calls than a task's cooperative budget (128 polls of Tokio resources),
        // none of which yields to the caller's scheduler.
        let answered = caller.block_on(async {
            (0..1_000)
                .take_while(|&i| {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tx.send(i).unwrap();
                    let soon = Instant::now() + Duration::from_secs(2);
                    until(ours.handle(), soon, rx).is_ok_and(|r| r == Ok(i))
                })
                .count()
        });
        assert_eq!(answered, 1_000);
    }

    #[test]
    fn a_future_woken_from_another_thread_finishes() {
        let rt = runtime();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = thread::spawn(move || tx.send(5).unwrap());
        let got = until(rt.handle(), Instant::now() + Duration::from_secs(5), rx);
        t.join().unwrap();
        assert_eq!(got.unwrap().unwrap(), 5);
    }

    #[test]
    fn works_inside_another_runtime_with_timers_of_its_own() {
        let outer = runtime();
        let ours = one_worker();
        let got = outer.block_on(async {
            until(
                ours.handle(),
                Instant::now() + Duration::from_secs(5),
                async {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    3
                },
            )
        });
        assert_eq!(got.unwrap(), 3);
    }
}
