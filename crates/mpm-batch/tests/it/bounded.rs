//! `run_bounded` and `run_bounded_stream`: order, isolation of errors and panics, the limit,
//! cancellation and backpressure.

use std::future::{Future, pending};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::task::noop_waker;
use mpm_batch::{JobError, run_bounded, run_bounded_stream};

use crate::{Live, nz};

/// What job `i` of the random-delay runs does: every fifth fails, every seventh panics.
fn outcome(i: u64) -> Result<u64, String> {
    if i % 7 == 3 {
        panic!("job {i} panicked");
    }
    if i.is_multiple_of(5) {
        Err(format!("job {i} failed"))
    } else {
        Ok(i * i)
    }
}

#[track_caller]
fn check_results(results: &[Result<u64, JobError<String>>], n: u64) {
    assert_eq!(results.len() as u64, n);
    for (i, result) in (0..n).zip(results) {
        match result {
            Ok(v) => assert_eq!(*v, i * i, "job {i}"),
            Err(JobError::Failed(e)) => {
                assert!(i % 5 == 0 && i % 7 != 3, "job {i}: {e}");
                assert_eq!(*e, format!("job {i} failed"));
            }
            Err(JobError::Panicked(m)) => {
                assert_eq!(i % 7, 3, "job {i}");
                assert_eq!(*m, format!("job {i} panicked"));
            }
            Err(other) => panic!("job {i}: unexpected {other}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn results_in_input_order_under_random_delays() {
    for (seed, limit) in [(1, 1), (2, 3), (3, 16), (4, 500)] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let delays: Vec<u64> = (0..300).map(|_| rng.u64(1..50)).collect();
        let live = Live::default();
        let results = run_bounded(0..300u64, nz(limit), |i| {
            let live = live.clone();
            let delay = delays[i as usize];
            async move {
                let _guard = live.enter();
                tokio::time::sleep(Duration::from_millis(delay)).await;
                outcome(i)
            }
        })
        .await;
        check_results(&results, 300);
        assert_eq!(
            live.peak(),
            limit.min(300),
            "limit {limit} is reached, never passed"
        );
        assert_eq!(live.now(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_woken_from_other_threads() {
    // 10,000 jobs, each finished by a task on another worker thread, at most 64 at once.
    let live = Live::default();
    let results = run_bounded(0..10_000u64, nz(64), |i| {
        let live = live.clone();
        async move {
            let _guard = live.enter();
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                let _ = tx.send(i);
            });
            let v = rx.await.map_err(|e| e.to_string())?;
            if v % 1000 == 999 {
                return Err(format!("job {v} failed"));
            }
            Ok(v)
        }
    })
    .await;
    assert_eq!(results.len(), 10_000);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(JobError::Failed(e)) => assert_eq!(*e, format!("job {i} failed")),
            Err(e) => panic!("job {i}: {e}"),
        }
    }
    assert!(live.peak() <= 64, "peak {}", live.peak());
    assert_eq!(live.now(), 0);
}

#[tokio::test]
async fn a_panic_in_the_closure_is_that_items_error() {
    let results = run_bounded(0..5u32, nz(2), |i| {
        if i == 2 {
            panic!("no job for {i}");
        }
        async move { Ok::<_, ()>(i) }
    })
    .await;
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[2].as_ref().unwrap_err().panic_message(),
        Some("no job for 2")
    );
    for i in [0, 1, 3, 4] {
        assert_eq!(results[i as usize].as_ref().ok(), Some(&i));
    }
}

#[tokio::test]
async fn a_panic_after_a_wait_is_isolated() {
    let results = run_bounded(0..6u32, nz(6), |i| async move {
        tokio::task::yield_now().await;
        if i % 2 == 1 {
            std::panic::panic_any(i);
        }
        Ok::<_, ()>(i)
    })
    .await;
    for (i, r) in results.iter().enumerate() {
        if i % 2 == 1 {
            // A payload that is not a string still becomes an error.
            assert!(r.as_ref().unwrap_err().panic_message().is_some());
        } else {
            assert_eq!(r.as_ref().ok(), Some(&(i as u32)));
        }
    }
}

#[tokio::test]
async fn empty_input() {
    let results = run_bounded(Vec::<u8>::new(), nz(4), |i| async move { Ok::<_, ()>(i) }).await;
    assert!(results.is_empty());
}

#[tokio::test]
async fn jobs_may_borrow_from_the_caller() {
    let names = vec!["a".to_owned(), "bb".to_owned()];
    let lens = run_bounded(&names, nz(2), |s| async move { Ok::<_, ()>(s.len()) }).await;
    assert_eq!(
        lens.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [1, 2]
    );
}

/// Polls `future` until `done` holds, yielding to the runtime in between; panics after many
/// tries instead of hanging.
async fn poll_until<F: Future + Unpin>(future: &mut F, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(future.poll_unpin_pending(&mut cx), "the run finished early");
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

trait PollPending {
    fn poll_unpin_pending(&mut self, cx: &mut Context<'_>) -> bool;
}

impl<F: Future + Unpin> PollPending for F {
    fn poll_unpin_pending(&mut self, cx: &mut Context<'_>) -> bool {
        matches!(std::pin::Pin::new(self).poll(cx), Poll::Pending)
    }
}

#[tokio::test]
async fn dropping_the_run_cancels_every_job_in_flight() {
    let live = Live::default();
    let started = Arc::new(AtomicUsize::new(0));
    let run = run_bounded(0..100u32, nz(8), |_| {
        let live = live.clone();
        started.fetch_add(1, Ordering::SeqCst);
        async move {
            let _guard = live.enter();
            pending::<Result<(), ()>>().await
        }
    });
    let mut run = Box::pin(run);
    poll_until(&mut run, || live.now() == 8).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        8,
        "no job beyond the limit started"
    );
    drop(run);
    assert_eq!(live.now(), 0, "every job was dropped with the run");
    assert_eq!(started.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn dropping_the_stream_cancels_every_job_in_flight() {
    let live = Live::default();
    let stream = run_bounded_stream(futures::stream::iter(0..100u32), nz(5), |i| {
        let live = live.clone();
        async move {
            let _guard = live.enter();
            if i < 3 {
                Ok::<_, ()>(i)
            } else {
                pending().await
            }
        }
    });
    let mut stream = Box::pin(stream);
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(stream.next().await.expect("three jobs finish").0);
    }
    first.sort_unstable();
    assert_eq!(first, [0, 1, 2]);
    assert!(futures::poll!(stream.next()).is_pending());
    assert_eq!(live.now(), 5, "jobs 3 to 7 run");
    drop(stream);
    assert_eq!(live.now(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_stream_yields_as_jobs_finish_and_pulls_with_backpressure() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let inputs = {
        let pulled = Arc::clone(&pulled);
        futures::stream::iter(0..6u64).inspect(move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        })
    };
    // Job i takes (6 - i) * 10 ms, so with all running they finish in reverse order.
    let stream = run_bounded_stream(inputs, nz(3), |i| async move {
        tokio::time::sleep(Duration::from_millis((6 - i) * 10)).await;
        Ok::<_, ()>(i)
    });
    let mut stream = pin!(stream);
    let (first, _) = stream.next().await.expect("a result");
    // Jobs 0, 1, 2 run; 2 is the shortest; nothing more was pulled before a place freed.
    assert_eq!(first, 2);
    assert_eq!(pulled.load(Ordering::SeqCst), 3);
    let mut rest: Vec<usize> = stream
        .map(|(i, r)| {
            assert_eq!(r.unwrap(), i as u64);
            i
        })
        .collect()
        .await;
    rest.sort_unstable();
    assert_eq!(rest, [0, 1, 3, 4, 5]);
    assert_eq!(pulled.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_pending_input_stream_is_waited_for() {
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
    let inputs = tokio_stream_from(rx);
    let stream = run_bounded_stream(inputs, nz(2), |i| async move { Ok::<_, ()>(i + 1) });
    let feeder = tokio::spawn(async move {
        for i in 0..10 {
            tx.send(i).await.expect("the stream is alive");
        }
    });
    let mut got: Vec<u32> = stream.map(|(_, r)| r.unwrap()).collect().await;
    feeder.await.expect("the feeder finishes");
    got.sort_unstable();
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
}

/// A receiver as a `Stream`.
fn tokio_stream_from<T>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

#[tokio::test]
async fn jobs_that_wake_themselves_forever_do_not_starve_the_runtime() {
    // One job spins (wakes itself on every poll); another task must still run, on the one
    // thread of this runtime, and its result ends the spin.
    let flag = Arc::new(AtomicUsize::new(0));
    let other = {
        let flag = Arc::clone(&flag);
        tokio::spawn(async move { flag.store(1, Ordering::SeqCst) })
    };
    let results = run_bounded(0..1u32, nz(1), |_| {
        let flag = Arc::clone(&flag);
        futures::future::poll_fn(move |cx| {
            if flag.load(Ordering::SeqCst) == 1 {
                Poll::Ready(Ok::<_, ()>(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    })
    .await;
    assert!(results[0].is_ok());
    other.await.expect("the other task ran");
}
