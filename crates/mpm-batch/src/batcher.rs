//! [`Batcher`]: items from many tasks, grouped by key, handed to one consumer in batches of
//! at most N items or after T since a batch's first item, through a bounded queue.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use mpm_metrics::Registry;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::error::{ConsumerError, Error, PushError, panic_message};
use crate::state::{Next, Pushed, State};
use crate::stats::{BatcherMetrics, BatcherStats, Dropped};

/// What a full queue does with one more item. There is no default: the choice is the
/// caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// `push` waits for room (`try_push` returns [`PushError::Full`]). Producers slow down to
    /// the consumer's pace; nothing is dropped.
    Wait,
    /// The new item is refused with [`PushError::Full`] and counted as `rejected`.
    RejectNewest,
    /// The oldest queued item (across all keys) is dropped to make room, and counted as
    /// `dropped_oldest`; `push` never waits.
    DropOldest,
}

/// What happens to a batch whose consumer returned an error or panicked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OnFailure {
    /// The batch is kept, with the error, and handed back by [`Batcher::flush`],
    /// [`Batcher::shutdown`] and [`Batcher::take_undelivered`]; its items are counted as
    /// `returned`. Kept batches are held until the caller takes them.
    #[default]
    Return,
    /// The batch is dropped and its items are counted as `lost`.
    CountLost,
}

/// Why a batch was handed to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// It reached `max_items`.
    Size = 0,
    /// `max_delay` passed since its first item.
    Time = 1,
    /// [`Batcher::flush`] was called.
    Flush = 2,
    /// The batcher shut down ([`Batcher::shutdown`], or its last handle was dropped).
    Shutdown = 3,
}

impl FlushReason {
    /// The reason in lower case, as the `reason` label says it.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Time => "time",
            FlushReason::Flush => "flush",
            FlushReason::Shutdown => "shutdown",
        }
    }
}

/// A batch as the consumer receives it: one key's items, oldest first.
#[derive(Debug)]
pub struct Batch<K, T> {
    key: K,
    items: Arc<[T]>,
    reason: FlushReason,
}

impl<K: Clone, T> Clone for Batch<K, T> {
    fn clone(&self) -> Self {
        Batch {
            key: self.key.clone(),
            items: Arc::clone(&self.items),
            reason: self.reason,
        }
    }
}

impl<K, T> Batch<K, T> {
    pub(crate) fn new(key: K, items: Arc<[T]>, reason: FlushReason) -> Self {
        Batch { key, items, reason }
    }

    /// The key the items were pushed with.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The items, oldest first (shared, so a failed batch can be handed back intact).
    pub fn items(&self) -> &Arc<[T]> {
        &self.items
    }

    /// Why the batch was handed over.
    pub fn reason(&self) -> FlushReason {
        self.reason
    }

    /// Items in the batch (never zero).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always `false`: a batch holds at least one item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A batch the consumer failed, kept for the caller under [`OnFailure::Return`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Undelivered<K, T> {
    /// The batch, as the consumer was given it.
    pub batch: Batch<K, T>,
    /// What the consumer did.
    pub error: ConsumerError,
}

/// Items go in from many tasks; batches come out to one consumer.
///
/// - A key's batch is handed over when it holds `max_items` items, or when `max_delay` has
///   passed since its first item, whichever comes first; [`flush`](Batcher::flush) and
///   [`shutdown`](Batcher::shutdown) hand over everything accepted before they were called
///   and wait until the consumer is done with it.
/// - At most `capacity` items wait in the queue (accepted, not yet handed over); the
///   [`Overflow`] policy says what one more does. Besides the queue, the consumer holds at
///   most one batch (`max_items` items), so memory is bounded however fast producers are.
/// - The consumer runs on its own task, one batch at a time; its errors and panics are
///   caught, and the batch is handed back or counted as lost by the [`OnFailure`] policy.
///   No accepted item disappears without a count: see [`BatcherStats`].
/// - The handle is an `Arc`: clone it into every producer. When the last clone is dropped,
///   the batcher shuts down and still delivers what it holds.
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use mpm_batch::{Batcher, Overflow};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let batcher = Batcher::builder(NonZeroUsize::new(1_000).unwrap(), Overflow::Wait)
///     .max_items(NonZeroUsize::new(10).unwrap())
///     .max_delay(Duration::from_millis(50))
///     .build(move |batch| {
///         let tx = tx.clone();
///         async move { tx.send((*batch.key(), batch.len())).map_err(|e| e.to_string()) }
///     })?;
/// for i in 0..25 {
///     batcher.push("agent", i).await?;
/// }
/// let undelivered = batcher.shutdown().await?;
/// assert!(undelivered.is_empty());
/// let mut sizes = Vec::new();
/// while let Ok((_, n)) = rx.try_recv() {
///     sizes.push(n);
/// }
/// assert_eq!(sizes, [10, 10, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Batcher<K, T> {
    handle: Arc<Handle<K, T>>,
}

impl<K, T> Clone for Batcher<K, T> {
    fn clone(&self) -> Self {
        Batcher {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<K, T> fmt::Debug for Batcher<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.handle.shared.state.lock();
        f.debug_struct("Batcher")
            .field("queued", &state.queued())
            .field("closed", &state.is_closed())
            .field("overflow", &self.handle.shared.overflow)
            .finish_non_exhaustive()
    }
}

/// The producers' side: dropping the last one shuts the batcher down.
struct Handle<K, T> {
    shared: Arc<Shared<K, T>>,
}

impl<K, T> Drop for Handle<K, T> {
    fn drop(&mut self) {
        self.shared.close(None);
    }
}

/// Answered by the worker once everything queued before it has been handed over.
type Marker = oneshot::Sender<()>;

/// What producers, the worker and the handles share.
struct Shared<K, T> {
    state: Mutex<State<K, T, Marker>>,
    /// Wakes the worker.
    work: Notify,
    /// Wakes producers waiting for room.
    room: Notify,
    overflow: Overflow,
    on_failure: OnFailure,
    undelivered: Mutex<Vec<Undelivered<K, T>>>,
    metrics: BatcherMetrics,
}

/// The outcome of one attempt to push.
enum Offer<K, T> {
    Done(Result<(), PushError<T>>),
    /// No room under [`Overflow::Wait`]: try again when there is.
    Wait(K, T),
}

impl<K, T> Shared<K, T> {
    fn close(&self, marker: Option<Marker>) -> Option<Marker> {
        let back = self.state.lock().close(marker);
        self.work.notify_one();
        self.room.notify_waiters();
        back
    }
}

impl<K: Hash + Eq + Clone, T> Shared<K, T> {
    fn offer(&self, key: K, item: T) -> Offer<K, T> {
        let pushed = self.state.lock().push(key, item, Instant::now);
        match pushed {
            Pushed::Accepted { dropped, wake } => {
                self.metrics.accepted.inc();
                if wake {
                    self.work.notify_one();
                }
                if dropped.is_some() {
                    self.metrics.dropped(Dropped::Oldest, 1);
                }
                drop(dropped);
                Offer::Done(Ok(()))
            }
            Pushed::Closed(_, item) => Offer::Done(Err(PushError::Closed(item))),
            Pushed::Full(key, item) if self.overflow == Overflow::Wait => Offer::Wait(key, item),
            Pushed::Full(_, item) => {
                self.metrics.dropped(Dropped::Rejected, 1);
                Offer::Done(Err(PushError::Full(item)))
            }
        }
    }
}

impl<K, T> Batcher<K, T>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    /// A builder for a batcher whose queue holds at most `capacity` items, with the given
    /// overflow policy. Defaults: batches of at most 10 items or 50 ms (claude-mpm's
    /// dashboard events), failed batches returned, statistics in handles of its own.
    pub fn builder(capacity: NonZeroUsize, overflow: Overflow) -> BatcherBuilder<K, T> {
        BatcherBuilder {
            marker: PhantomData,
            capacity,
            overflow,
            max_items: const { NonZeroUsize::new(10).unwrap() },
            max_delay: Duration::from_millis(50),
            on_failure: OnFailure::Return,
            metrics: None,
        }
    }

    /// Adds `item` to `key`'s batch. Under [`Overflow::Wait`] this waits for room; under the
    /// other policies it never waits. Dropping the future before it finishes drops the item
    /// unaccepted.
    pub async fn push(&self, key: K, item: T) -> Result<(), PushError<T>> {
        let shared = &self.handle.shared;
        let (mut key, mut item) = match shared.offer(key, item) {
            Offer::Done(result) => return result,
            Offer::Wait(key, item) => (key, item),
        };
        loop {
            let mut room = pin!(shared.room.notified());
            room.as_mut().enable();
            match shared.offer(key, item) {
                Offer::Done(result) => return result,
                Offer::Wait(k, t) => (key, item) = (k, t),
            }
            room.await;
        }
    }

    /// Adds `item` to `key`'s batch if that needs no waiting: under [`Overflow::Wait`] a full
    /// queue returns [`PushError::Full`] (not counted as rejected).
    pub fn try_push(&self, key: K, item: T) -> Result<(), PushError<T>> {
        match self.handle.shared.offer(key, item) {
            Offer::Done(result) => result,
            Offer::Wait(_, item) => Err(PushError::Full(item)),
        }
    }

    /// Hands every item accepted so far to the consumer, waits until it is done with them,
    /// and returns the failed batches kept so far ([`OnFailure::Return`]).
    pub async fn flush(&self) -> Result<Vec<Undelivered<K, T>>, Error> {
        let shared = &self.handle.shared;
        let (tx, rx) = oneshot::channel();
        let answered = {
            let mut state = shared.state.lock();
            if state.has_exited() {
                None
            } else {
                state.flush(tx);
                Some(rx)
            }
        };
        if let Some(rx) = answered {
            shared.work.notify_one();
            rx.await.map_err(|_| Error::WorkerGone)?;
        }
        Ok(self.take_undelivered())
    }

    /// Stops accepting items (waiting producers get [`PushError::Closed`]), hands everything
    /// accepted to the consumer, waits until it is done, and returns the failed batches kept
    /// ([`OnFailure::Return`]). Later calls return at once.
    pub async fn shutdown(&self) -> Result<Vec<Undelivered<K, T>>, Error> {
        let shared = &self.handle.shared;
        let (tx, rx) = oneshot::channel();
        if shared.close(Some(tx)).is_none() {
            rx.await.map_err(|_| Error::WorkerGone)?;
        }
        Ok(self.take_undelivered())
    }

    /// Takes the failed batches kept so far ([`OnFailure::Return`]).
    pub fn take_undelivered(&self) -> Vec<Undelivered<K, T>> {
        std::mem::take(&mut *self.handle.shared.undelivered.lock())
    }

    /// The batcher's counts now.
    pub fn stats(&self) -> BatcherStats {
        let shared = &self.handle.shared;
        let (queued, peak) = {
            let state = shared.state.lock();
            (state.queued(), state.peak())
        };
        shared.metrics.snapshot(queued, peak)
    }
}

/// Builds a [`Batcher`]; see [`Batcher::builder`].
pub struct BatcherBuilder<K, T> {
    marker: PhantomData<fn() -> (K, T)>,
    capacity: NonZeroUsize,
    overflow: Overflow,
    max_items: NonZeroUsize,
    max_delay: Duration,
    on_failure: OnFailure,
    metrics: Option<(Registry, String)>,
}

impl<K, T> fmt::Debug for BatcherBuilder<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatcherBuilder")
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("max_items", &self.max_items)
            .field("max_delay", &self.max_delay)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl<K, T> BatcherBuilder<K, T>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    /// A batch is handed over when it holds this many items (default 10).
    pub fn max_items(mut self, n: NonZeroUsize) -> Self {
        self.max_items = n;
        self
    }

    /// A batch is handed over when this much time has passed since its first item (default
    /// 50 ms). Zero is refused by [`build`](Self::build) with [`Error::ZeroDelay`].
    pub fn max_delay(mut self, t: Duration) -> Self {
        self.max_delay = t;
        self
    }

    /// What happens to a batch the consumer fails (default [`OnFailure::Return`]).
    pub fn on_failure(mut self, policy: OnFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// Reports into `registry` under the instance name `name` (the label `name`): the metrics
    /// listed in the [crate docs](crate#metrics). The name is claimed at
    /// [`build`](Self::build), which returns [`Error::Metrics`] if another batcher of that
    /// name reports into the registry.
    pub fn metrics(mut self, registry: &Registry, name: &str) -> Self {
        self.metrics = Some((registry.clone(), name.to_owned()));
        self
    }

    /// Starts the batcher's worker task on the current Tokio runtime. `consumer` is called
    /// with each batch, one at a time; an `Err` or a panic fails that batch (see
    /// [`OnFailure`]).
    pub fn build<F, Fut, E>(self, consumer: F) -> Result<Batcher<K, T>, Error>
    where
        F: FnMut(Batch<K, T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        if self.max_delay.is_zero() {
            return Err(Error::ZeroDelay);
        }
        let runtime = tokio::runtime::Handle::try_current()?;
        let metrics = match &self.metrics {
            Some((registry, name)) => BatcherMetrics::register(registry, name)?,
            None => BatcherMetrics::detached(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(
                self.max_items.get(),
                self.max_delay,
                self.capacity.get(),
                self.overflow,
            )),
            work: Notify::new(),
            room: Notify::new(),
            overflow: self.overflow,
            on_failure: self.on_failure,
            undelivered: Mutex::new(Vec::new()),
            metrics,
        });
        if let Some(scope) = shared.metrics.scope() {
            scope.collector(&shared, |shared| {
                let (queued, peak) = {
                    let state = shared.state.lock();
                    (state.queued(), state.peak())
                };
                shared.metrics.set_queued(queued, peak);
            });
        }
        runtime.spawn(work(Abandon(Arc::clone(&shared)), consumer));
        Ok(Batcher {
            handle: Arc::new(Handle { shared }),
        })
    }
}

/// The worker's hold on the shared state: if the worker is dropped before it finished (its
/// runtime shut down), the items it still held are counted as lost and waiting callers are
/// told.
struct Abandon<K, T>(Arc<Shared<K, T>>);

impl<K, T> Drop for Abandon<K, T> {
    fn drop(&mut self) {
        let shared = &self.0;
        let (lost, markers) = {
            let mut state = shared.state.lock();
            if state.has_exited() {
                return;
            }
            state.abandon()
        };
        shared.metrics.dropped(Dropped::Lost, lost);
        shared.room.notify_waiters();
        // Dropping the markers tells `flush` and `shutdown` callers the worker is gone.
        drop(markers);
    }
}

/// The worker: hands batches to the consumer, one at a time, until the batcher is closed
/// and empty.
async fn work<K, T, F, Fut, E>(guard: Abandon<K, T>, mut consumer: F)
where
    K: Hash + Eq + Clone,
    F: FnMut(Batch<K, T>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let shared = &*guard.0;
    loop {
        let next = shared.state.lock().next(Instant::now());
        match next {
            Next::Deliver(batch, waited) => {
                if shared.overflow == Overflow::Wait {
                    shared.room.notify_waiters();
                }
                let metrics = &shared.metrics;
                metrics.handed_over(batch.reason(), batch.len(), waited);
                let items = batch.len();
                match consume(&mut consumer, batch.clone()).await {
                    Ok(()) => metrics.delivered.add(items as u64),
                    Err(error) => {
                        match error {
                            ConsumerError::Panicked(_) => metrics.consumer_panics.inc(),
                            _ => metrics.consumer_errors.inc(),
                        }
                        match shared.on_failure {
                            OnFailure::Return => {
                                metrics.returned.add(items as u64);
                                shared.undelivered.lock().push(Undelivered { batch, error });
                            }
                            OnFailure::CountLost => metrics.dropped(Dropped::Lost, items),
                        }
                    }
                }
            }
            Next::Marker(marker) => {
                // The caller may have stopped waiting; that is fine.
                let _ = marker.send(());
            }
            Next::Sleep(deadline) => match deadline {
                Some(deadline) => {
                    tokio::select! {
                        () = shared.work.notified() => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => shared.work.notified().await,
            },
            Next::Exit => return,
        }
    }
}

/// Calls the consumer, turning its error or panic into a [`ConsumerError`].
async fn consume<K, T, F, Fut, E>(consumer: &mut F, batch: Batch<K, T>) -> Result<(), ConsumerError>
where
    F: FnMut(Batch<K, T>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let future = catch_unwind(AssertUnwindSafe(|| consumer(batch)))
        .map_err(|payload| ConsumerError::Panicked(panic_message(&*payload)))?;
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ConsumerError::Failed(error.into())),
        Err(payload) => Err(ConsumerError::Panicked(panic_message(&*payload))),
    }
}
