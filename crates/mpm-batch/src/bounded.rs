//! Bounded concurrency over many jobs: [`run_bounded`] and [`run_bounded_stream`].
//!
//! Both drive an [`Engine`]: at most `limit` job futures, polled in place on the caller's
//! task (like `buffer_unordered`, unlike `JoinSet`), each in a reusable slot. A new job is
//! polled at once; one that finishes on that first poll frees its slot for the next job
//! without any wake-up, queue or allocation. A job that returns `Pending` is woken through
//! its slot's own waker, which queues the slot's number and wakes the caller. Every poll runs
//! under `catch_unwind`, so a panicking job becomes that job's [`JobError::Panicked`].

use std::collections::VecDeque;
use std::future::Future;
use std::mem;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::Stream;
use futures::task::AtomicWaker;
use parking_lot::Mutex;

use crate::error::{JobError, panic_message};

/// Polls the engine makes in one call before it yields to the runtime, so that a long run
/// of jobs that finish at once (or wake themselves) does not starve the caller's neighbours.
const BUDGET: u32 = 2048;

/// Runs `f` on every item with at most `limit` of the futures it returns alive at once, and
/// returns every result in input order.
///
/// - One job's error or panic does not touch the others: the job's slot holds
///   [`JobError::Failed`] or [`JobError::Panicked`] (with the panic's message), and so does a
///   panic of `f` itself while making the job.
/// - The jobs run concurrently on the task that awaits this future (they need not be `Send`
///   or `'static`, and may borrow from the caller); dropping the future drops every job in
///   flight, so nothing keeps running. Spawn inside `f` for CPU-heavy work that should run in
///   parallel.
/// - Items are taken from the iterator only when a place is free, so a lazy iterator is
///   read no faster than the jobs finish. A panic of the iterator itself (the caller's own
///   code, run on the caller's task) is not caught.
///
/// ```
/// use std::num::NonZeroUsize;
/// use mpm_batch::{JobError, run_bounded};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let limit = NonZeroUsize::new(5).unwrap();
/// let results = run_bounded(1..=4u32, limit, |n| async move {
///     if n == 3 { Err("three") } else { Ok(n * 10) }
/// })
/// .await;
/// assert_eq!(results[0].as_ref().ok(), Some(&10));
/// assert!(matches!(results[2], Err(JobError::Failed("three"))));
/// assert_eq!(results[3].as_ref().ok(), Some(&40));
/// # });
/// ```
pub async fn run_bounded<I, F, Fut, T, E>(
    items: I,
    limit: NonZeroUsize,
    f: F,
) -> Vec<Result<T, JobError<E>>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let items = items.into_iter();
    let mut results = InOrder::with_capacity(items.size_hint().0);
    let mut engine = Engine::new(IterSource(items), limit, f);
    futures::future::poll_fn(|cx| {
        loop {
            match engine.poll_next_done(cx) {
                Poll::Ready(Some((index, result))) => results.put(index, result),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    results.into_vec()
}

/// Results put back into input order as they arrive: those in order go straight to the
/// output, those ahead of a gap wait in `ahead` (slot `k` holds index `done.len() + k`).
struct InOrder<R> {
    done: Vec<R>,
    ahead: VecDeque<Option<R>>,
}

impl<R> InOrder<R> {
    fn with_capacity(n: usize) -> Self {
        InOrder {
            done: Vec::with_capacity(n),
            ahead: VecDeque::new(),
        }
    }

    #[inline]
    fn put(&mut self, index: usize, result: R) {
        let k = index - self.done.len();
        if k == 0 && self.ahead.is_empty() {
            self.done.push(result);
            return;
        }
        if self.ahead.len() <= k {
            self.ahead.resize_with(k + 1, || None);
        }
        self.ahead[k] = Some(result);
        while let Some(Some(_)) = self.ahead.front() {
            self.done.extend(self.ahead.pop_front().flatten());
        }
    }

    fn into_vec(self) -> Vec<R> {
        debug_assert!(self.ahead.is_empty(), "every job reports once");
        self.done
    }
}

/// The streaming form of [`run_bounded`]: takes inputs from a `Stream` and yields
/// `(index, result)` as each job finishes, `index` counting inputs from zero.
///
/// Backpressure holds both ways: an input is pulled only when fewer than `limit` jobs are
/// running, and jobs make progress only while the returned stream is polled. Dropping the
/// stream drops every job in flight.
///
/// ```
/// use std::num::NonZeroUsize;
/// use futures::StreamExt;
/// use mpm_batch::run_bounded_stream;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let inputs = futures::stream::iter(["a", "bb", "ccc"]);
/// let limit = NonZeroUsize::new(2).unwrap();
/// let mut done: Vec<(usize, usize)> = run_bounded_stream(inputs, limit, |s| async move {
///     Ok::<_, std::convert::Infallible>(s.len())
/// })
/// .map(|(i, r)| (i, r.unwrap()))
/// .collect()
/// .await;
/// done.sort();
/// assert_eq!(done, [(0, 1), (1, 2), (2, 3)]);
/// # });
/// ```
pub fn run_bounded_stream<S, F, Fut, T, E>(
    inputs: S,
    limit: NonZeroUsize,
    f: F,
) -> impl Stream<Item = (usize, Result<T, JobError<E>>)>
where
    S: Stream,
    F: FnMut(S::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut engine = Engine::new(StreamSource(Box::pin(inputs)), limit, f);
    futures::stream::poll_fn(move |cx| engine.poll_next_done(cx))
}

/// A finished job: its input index and its result.
type Done<T, E> = (usize, Result<T, JobError<E>>);

/// Where an [`Engine`] takes its inputs from.
trait Source {
    type Item;
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::Item>>;
}

struct IterSource<I>(I);

impl<I: Iterator> Source for IterSource<I> {
    type Item = I::Item;

    #[inline]
    fn poll_item(&mut self, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
}

struct StreamSource<S>(Pin<Box<S>>);

impl<S: Stream> Source for StreamSource<S> {
    type Item = S::Item;

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

/// What the slots' wakers share with the task that drives the engine.
#[derive(Default)]
struct Woken {
    /// Slots woken since the engine last looked.
    slots: Mutex<Vec<usize>>,
    /// The driving task.
    driver: AtomicWaker,
}

/// The waker of one slot: queues the slot's number (once until it is polled) and wakes the
/// driving task.
struct SlotWaker {
    woken: Arc<Woken>,
    slot: usize,
    queued: AtomicBool,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.woken.slots.lock().push(self.slot);
        }
        self.woken.driver.wake();
    }
}

/// A place for one running job, reused by the jobs that follow it.
struct Slot<Fut> {
    future: Pin<Box<Option<Fut>>>,
    /// The input index of the job in `future`.
    index: usize,
    state: Arc<SlotWaker>,
    waker: Waker,
}

/// The state of a bounded run: the input, the job maker, and the slots.
struct Engine<S, F, Fut> {
    input: S,
    make: F,
    exhausted: bool,
    limit: usize,
    slots: Vec<Slot<Fut>>,
    free: Vec<usize>,
    busy: usize,
    next_index: usize,
    woken: Arc<Woken>,
    /// Woken slots taken from `woken` and not yet polled.
    to_poll: Vec<usize>,
    polls: u32,
}

impl<S, F, Fut, T, E> Engine<S, F, Fut>
where
    S: Source,
    F: FnMut(S::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn new(input: S, limit: NonZeroUsize, make: F) -> Self {
        Engine {
            input,
            make,
            exhausted: false,
            limit: limit.get(),
            slots: Vec::new(),
            free: Vec::new(),
            busy: 0,
            next_index: 0,
            woken: Arc::default(),
            to_poll: Vec::new(),
            polls: 0,
        }
    }

    /// Makes progress until a job finishes (`Some`), every job has finished and the input is
    /// exhausted (`None`), or nothing can move (`Pending`, with a wake-up arranged).
    fn poll_next_done(&mut self, cx: &mut Context<'_>) -> Poll<Option<Done<T, E>>> {
        loop {
            while let Some(slot) = self.to_poll.pop() {
                self.polls += 1;
                if let Some(done) = self.poll_slot(slot) {
                    return Poll::Ready(Some(done));
                }
            }
            while self.busy < self.limit && !self.exhausted {
                match self.input.poll_item(cx) {
                    Poll::Ready(Some(item)) => {
                        self.polls += 1;
                        if let Some(done) = self.start(item) {
                            return Poll::Ready(Some(done));
                        }
                    }
                    Poll::Ready(None) => self.exhausted = true,
                    Poll::Pending => break,
                }
            }
            if self.busy == 0 && self.exhausted {
                return Poll::Ready(None);
            }
            self.woken.driver.register(cx.waker());
            mem::swap(&mut self.to_poll, &mut *self.woken.slots.lock());
            if self.to_poll.is_empty() {
                self.polls = 0;
                return Poll::Pending;
            }
            if self.polls >= BUDGET {
                self.polls = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Makes the job for `item` in a free slot and polls it once.
    #[inline]
    fn start(&mut self, item: S::Item) -> Option<Done<T, E>> {
        let index = self.next_index;
        self.next_index += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => self.new_slot(),
        };
        let place = &mut self.slots[slot];
        place.index = index;
        let make = &mut self.make;
        // One `catch_unwind` around making, polling and (when done) dropping the job: a job
        // that finishes at once costs no more than that.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            place.future.set(Some(make(item)));
            poll_place(place)
        }));
        self.finish(slot, outcome)
    }

    /// A new slot, with its waker.
    #[cold]
    fn new_slot(&mut self) -> usize {
        let slot = self.slots.len();
        let state = Arc::new(SlotWaker {
            woken: Arc::clone(&self.woken),
            slot,
            queued: AtomicBool::new(false),
        });
        self.slots.push(Slot {
            future: Box::pin(None),
            index: 0,
            waker: Waker::from(Arc::clone(&state)),
            state,
        });
        slot
    }

    /// Polls the job in `slot` after a wake-up; when it is done, empties the slot and
    /// returns its result.
    fn poll_slot(&mut self, slot: usize) -> Option<Done<T, E>> {
        let place = &mut self.slots[slot];
        place.state.queued.store(false, Ordering::Release);
        // A wake-up may arrive for a slot whose job has already finished.
        if place.future.is_none() {
            return None;
        }
        self.busy -= 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| poll_place(place)));
        self.finish(slot, outcome)
    }

    /// Books the outcome of a poll of `slot`: still running (`None`), or done.
    #[inline]
    fn finish(
        &mut self,
        slot: usize,
        outcome: std::thread::Result<Option<Result<T, E>>>,
    ) -> Option<Done<T, E>> {
        match outcome {
            Ok(None) => {
                self.busy += 1;
                None
            }
            Ok(Some(result)) => {
                self.free.push(slot);
                Some((self.slots[slot].index, result.map_err(JobError::Failed)))
            }
            Err(payload) => Some(self.panicked(slot, payload)),
        }
    }

    /// The job in `slot` panicked: empties the slot and returns the panic as its result.
    #[cold]
    fn panicked(&mut self, slot: usize, payload: Box<dyn std::any::Any + Send>) -> Done<T, E> {
        let place = &mut self.slots[slot];
        if catch_unwind(AssertUnwindSafe(|| place.future.set(None))).is_err() {
            // The job's destructor panicked: what is left of it is not touched again.
            mem::forget(mem::replace(&mut place.future, Box::pin(None)));
        }
        self.free.push(slot);
        (
            place.index,
            Err(JobError::Panicked(panic_message(&*payload))),
        )
    }
}

/// Polls the job in `place` with the slot's waker; when it is done, drops it and returns its
/// output.
#[inline]
fn poll_place<Fut: Future>(place: &mut Slot<Fut>) -> Option<Fut::Output> {
    let future = place.future.as_mut().as_pin_mut()?;
    let mut cx = Context::from_waker(&place.waker);
    match future.poll(&mut cx) {
        Poll::Pending => None,
        Poll::Ready(output) => {
            place.future.set(None);
            Some(output)
        }
    }
}
