//! The [`Batcher`](crate::Batcher)'s bookkeeping: open groups by key, batches waiting for the
//! consumer, and the count of queued items that the capacity bounds.
//!
//! [`State`] is plain data with no synchronisation and no clock of its own (callers pass
//! `now`), so the same code runs in the batcher under its mutex and under the model checker
//! in the tests.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::batcher::{Batch, FlushReason, Overflow};

/// An item with its arrival number, which orders "oldest" across groups.
type Entry<T> = (u64, T);

/// A batch being filled for one key.
struct Group<T> {
    id: u64,
    started: Instant,
    items: VecDeque<Entry<T>>,
}

/// A full or flushed batch waiting for the consumer.
pub(crate) struct Closed<K, T> {
    key: K,
    started: Instant,
    reason: FlushReason,
    items: VecDeque<Entry<T>>,
}

/// What the worker finds next in the queue.
pub(crate) enum Job<K, T, M> {
    /// A batch to deliver.
    Batch(Closed<K, T>),
    /// Everything queued before this marker has been handed over.
    Marker(M),
}

/// What the worker should do next.
pub(crate) enum Next<K, T, M> {
    /// Deliver this batch; `waited` is the time since its first item.
    Deliver(Batch<K, T>, Duration),
    /// Answer this marker.
    Marker(M),
    /// Nothing to do before this deadline (or before a wake-up, if none).
    Sleep(Option<Instant>),
    /// Closed and empty: the worker can stop.
    Exit,
}

/// The outcome of a push.
pub(crate) enum Pushed<K, T> {
    /// Accepted; `dropped` is the oldest item that made room under
    /// [`Overflow::DropOldest`]; `wake` says whether the worker must be woken.
    Accepted { dropped: Option<T>, wake: bool },
    /// No room, and the policy does not make any: the key and item back.
    Full(K, T),
    /// The batcher is closed: the key and item back.
    Closed(K, T),
}

pub(crate) struct State<K, T, M> {
    max_items: usize,
    max_delay: Duration,
    capacity: usize,
    overflow: Overflow,
    groups: HashMap<K, Group<T>, foldhash::fast::RandomState>,
    /// Open groups by deadline (a group's id tells a live entry from a stale one).
    deadlines: VecDeque<(Instant, K, u64)>,
    queue: VecDeque<Job<K, T, M>>,
    queued: usize,
    peak: usize,
    next_seq: u64,
    next_group: u64,
    closed: bool,
    exited: bool,
    /// The worker sleeps with no deadline: a new group must wake it.
    idle: bool,
}

impl<K, T, M> State<K, T, M> {
    /// Items accepted and not yet handed to the consumer.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// The most items ever queued at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.exited
    }

    /// Moves every open group, oldest first, to the queue with `reason`.
    fn close_groups(&mut self, reason: FlushReason) {
        let mut groups: Vec<(K, Group<T>)> = self.groups.drain().collect();
        groups.sort_unstable_by_key(|(_, group)| group.id);
        self.deadlines.clear();
        for (key, group) in groups {
            self.queue.push_back(Job::Batch(Closed {
                key,
                started: group.started,
                reason,
                items: group.items,
            }));
        }
    }

    /// Queues every open group, then `marker`, which the worker answers once everything
    /// before it has been handed over.
    pub(crate) fn flush(&mut self, marker: M) {
        self.close_groups(FlushReason::Flush);
        self.queue.push_back(Job::Marker(marker));
        self.idle = false;
    }

    /// Stops accepting items, queues every open group and then `marker`, if given. Returns
    /// the marker back when the worker has already exited, since nobody would answer it.
    pub(crate) fn close(&mut self, marker: Option<M>) -> Option<M> {
        self.closed = true;
        self.close_groups(FlushReason::Shutdown);
        self.idle = false;
        if self.exited {
            return marker;
        }
        if let Some(marker) = marker {
            self.queue.push_back(Job::Marker(marker));
        }
        None
    }

    /// The worker is gone: marks it exited and returns every queued item count and the
    /// markers nobody will answer.
    pub(crate) fn abandon(&mut self) -> (usize, Vec<M>) {
        self.exited = true;
        self.closed = true;
        self.close_groups(FlushReason::Shutdown);
        let mut markers = Vec::new();
        let lost = self.queued;
        for job in self.queue.drain(..) {
            if let Job::Marker(marker) = job {
                markers.push(marker);
            }
        }
        self.queued = 0;
        (lost, markers)
    }
}

impl<K: Hash + Eq + Clone, T, M> State<K, T, M> {
    pub(crate) fn new(
        max_items: usize,
        max_delay: Duration,
        capacity: usize,
        overflow: Overflow,
    ) -> Self {
        State {
            max_items,
            max_delay,
            capacity,
            overflow,
            groups: HashMap::default(),
            deadlines: VecDeque::new(),
            queue: VecDeque::new(),
            queued: 0,
            peak: 0,
            next_seq: 0,
            next_group: 0,
            closed: false,
            exited: false,
            idle: false,
        }
    }

    /// Adds `item` to `key`'s batch if the capacity and the overflow policy allow; `now` is
    /// read only when the item starts a batch.
    pub(crate) fn push(&mut self, key: K, item: T, now: impl FnOnce() -> Instant) -> Pushed<K, T> {
        if self.closed {
            return Pushed::Closed(key, item);
        }
        let mut dropped = None;
        if self.queued >= self.capacity {
            match self.overflow {
                Overflow::Wait | Overflow::RejectNewest => return Pushed::Full(key, item),
                Overflow::DropOldest => match self.remove_oldest() {
                    Some(old) => dropped = Some(old),
                    None => return Pushed::Full(key, item),
                },
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut wake = false;
        // A lookup first, so that adding to an open batch does not clone the key.
        let group = match self.groups.get_mut(&key) {
            Some(group) => group,
            None => {
                let id = self.next_group;
                self.next_group += 1;
                let now = now();
                self.deadlines
                    .push_back((now + self.max_delay, key.clone(), id));
                wake = self.idle;
                self.groups.entry(key.clone()).or_insert(Group {
                    id,
                    started: now,
                    items: VecDeque::new(),
                })
            }
        };
        group.items.push_back((seq, item));
        if group.items.len() >= self.max_items
            && let Some(group) = self.groups.remove(&key)
        {
            self.queue.push_back(Job::Batch(Closed {
                key,
                started: group.started,
                reason: FlushReason::Size,
                items: group.items,
            }));
            wake = true;
        }
        if dropped.is_none() {
            self.queued += 1;
            self.peak = self.peak.max(self.queued);
        }
        if wake {
            self.idle = false;
        }
        Pushed::Accepted { dropped, wake }
    }

    /// Removes the item that arrived first among all queued items; `O(keys + queued
    /// batches)`, on the overflow path only.
    fn remove_oldest(&mut self) -> Option<T> {
        enum Place<'a, K> {
            Group(&'a K),
            Queue(usize),
        }
        let mut oldest: Option<(u64, Place<'_, K>)> = None;
        for (key, group) in &self.groups {
            if let Some(&(seq, _)) = group.items.front()
                && oldest.as_ref().is_none_or(|(s, _)| seq < *s)
            {
                oldest = Some((seq, Place::Group(key)));
            }
        }
        for (i, job) in self.queue.iter().enumerate() {
            if let Job::Batch(batch) = job
                && let Some(&(seq, _)) = batch.items.front()
                && oldest.as_ref().is_none_or(|(s, _)| seq < *s)
            {
                oldest = Some((seq, Place::Queue(i)));
            }
        }
        match oldest?.1 {
            Place::Group(key) => {
                let key = key.clone();
                let group = self.groups.get_mut(&key)?;
                let (_, item) = group.items.pop_front()?;
                if group.items.is_empty() {
                    // Its deadline entry goes stale and is skipped.
                    self.groups.remove(&key);
                }
                Some(item)
            }
            Place::Queue(i) => match self.queue.get_mut(i) {
                Some(Job::Batch(batch)) => batch.items.pop_front().map(|(_, item)| item),
                _ => None,
            },
        }
    }

    /// The worker's next step at `now`.
    pub(crate) fn next(&mut self, now: Instant) -> Next<K, T, M> {
        loop {
            match self.queue.pop_front() {
                Some(Job::Batch(batch)) => {
                    if batch.items.is_empty() {
                        // Every item was dropped to make room.
                        continue;
                    }
                    return self.deliver(batch, now);
                }
                Some(Job::Marker(marker)) => return Next::Marker(marker),
                None => {}
            }
            let Some((deadline, key, id)) = self.deadlines.front() else {
                if self.closed {
                    self.exited = true;
                    return Next::Exit;
                }
                self.idle = true;
                return Next::Sleep(None);
            };
            let live = self.groups.get(key).is_some_and(|g| g.id == *id);
            if live && *deadline > now {
                return Next::Sleep(Some(*deadline));
            }
            let Some((_, key, _)) = self.deadlines.pop_front() else {
                continue;
            };
            if live && let Some(group) = self.groups.remove(&key) {
                let batch = Closed {
                    key,
                    started: group.started,
                    reason: FlushReason::Time,
                    items: group.items,
                };
                return self.deliver(batch, now);
            }
        }
    }

    fn deliver(&mut self, batch: Closed<K, T>, now: Instant) -> Next<K, T, M> {
        self.queued -= batch.items.len();
        let items: Arc<[T]> = batch.items.into_iter().map(|(_, item)| item).collect();
        let waited = now.saturating_duration_since(batch.started);
        Next::Deliver(Batch::new(batch.key, items, batch.reason), waited)
    }
}

#[cfg(test)]
mod shuttle_model {
    //! A shuttle model of the batcher's state: two producers push under a small capacity
    //! (with each overflow policy that decides in the state), a flusher asks for a flush, a
    //! worker hands batches over and lets time pass when nothing is due, and the main thread
    //! closes the state. In every interleaving shuttle picks: every accepted item is handed
    //! over exactly once or dropped by the policy, a flush marker comes after every item
    //! accepted before it, batches hold one key and at most `max_items`, and the queue never
    //! holds more than its capacity.

    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use shuttle::sync::Mutex;
    use shuttle::sync::atomic::{AtomicU64, Ordering};
    use tokio::time::Instant;

    use super::{Next, Pushed, State};
    use crate::batcher::Overflow;

    const CAPACITY: usize = 3;
    const MAX_ITEMS: usize = 2;

    #[derive(Default)]
    struct Log {
        accepted: Vec<u32>,
        refused: Vec<u32>,
        dropped: Vec<u32>,
        delivered: Vec<u32>,
    }

    /// The flush marker carries the items accepted (and not dropped) when it was asked for.
    type Model = State<u32, u32, Vec<u32>>;

    fn model(overflow: Overflow) {
        let base = Instant::now();
        let clock = Arc::new(AtomicU64::new(0));
        let now = {
            let clock = Arc::clone(&clock);
            move || base + Duration::from_millis(clock.load(Ordering::SeqCst))
        };
        let state: Arc<Mutex<Model>> = Arc::new(Mutex::new(State::new(
            MAX_ITEMS,
            Duration::from_millis(10),
            CAPACITY,
            overflow,
        )));
        let log = Arc::new(Mutex::new(Log::default()));

        let mut threads = Vec::new();
        for producer in 0..2u32 {
            let (state, log, now) = (Arc::clone(&state), Arc::clone(&log), now.clone());
            threads.push(shuttle::thread::spawn(move || {
                for i in 0..3 {
                    let id = producer * 10 + i;
                    // Pushing and logging under one lock, so the flusher sees both or
                    // neither.
                    let mut state = state.lock().unwrap();
                    let mut log = log.lock().unwrap();
                    match state.push(producer, id, &now) {
                        Pushed::Accepted { dropped, .. } => {
                            log.accepted.push(id);
                            log.dropped.extend(dropped);
                        }
                        Pushed::Full(_, id) => log.refused.push(id),
                        Pushed::Closed(..) => panic!("closed while producers run"),
                    }
                    assert!(state.queued() <= CAPACITY);
                }
            }));
        }
        {
            let (state, log) = (Arc::clone(&state), Arc::clone(&log));
            threads.push(shuttle::thread::spawn(move || {
                let mut state = state.lock().unwrap();
                let log = log.lock().unwrap();
                let pending = log
                    .accepted
                    .iter()
                    .filter(|id| !log.dropped.contains(id))
                    .copied()
                    .collect();
                state.flush(pending);
            }));
        }
        let worker = {
            let (state, log, clock) = (Arc::clone(&state), Arc::clone(&log), Arc::clone(&clock));
            shuttle::thread::spawn(move || {
                let mut markers = 0;
                loop {
                    let next = state.lock().unwrap().next(now());
                    match next {
                        Next::Deliver(batch, _) => {
                            assert!(batch.len() <= MAX_ITEMS && !batch.is_empty());
                            let key = *batch.key();
                            assert!(batch.items().iter().all(|id| id / 10 == key));
                            log.lock().unwrap().delivered.extend(batch.items().iter());
                        }
                        Next::Marker(pending) => {
                            markers += 1;
                            let log = log.lock().unwrap();
                            for id in pending {
                                assert!(
                                    log.delivered.contains(&id) || log.dropped.contains(&id),
                                    "{id} accepted before the flush and not handed over"
                                );
                            }
                        }
                        Next::Sleep(Some(deadline)) => {
                            let ms = deadline.duration_since(base).as_millis() as u64;
                            clock.fetch_max(ms, Ordering::SeqCst);
                        }
                        Next::Sleep(None) => shuttle::thread::yield_now(),
                        Next::Exit => return markers,
                    }
                }
            })
        };
        for thread in threads {
            thread.join().unwrap();
        }
        let everything = {
            let log = log.lock().unwrap();
            log.accepted
                .iter()
                .filter(|id| !log.dropped.contains(id))
                .copied()
                .collect()
        };
        assert!(state.lock().unwrap().close(Some(everything)).is_none());
        assert_eq!(worker.join().unwrap(), 2, "the flush and the close markers");

        let log = log.lock().unwrap();
        let delivered: HashSet<u32> = log.delivered.iter().copied().collect();
        assert_eq!(
            delivered.len(),
            log.delivered.len(),
            "nothing handed over twice"
        );
        let dropped: HashSet<u32> = log.dropped.iter().copied().collect();
        assert!(delivered.is_disjoint(&dropped));
        let accepted: HashSet<u32> = log.accepted.iter().copied().collect();
        assert_eq!(&delivered | &dropped, accepted);
        assert_eq!(log.accepted.len() + log.refused.len(), 6);
        if overflow == Overflow::RejectNewest {
            assert!(dropped.is_empty());
        } else {
            assert!(log.refused.is_empty());
        }
        let state = state.lock().unwrap();
        assert_eq!(state.queued(), 0);
        assert!(state.peak() <= CAPACITY);
        assert!(state.has_exited());
    }

    #[test]
    fn reject_newest() {
        shuttle::check_random(|| model(Overflow::RejectNewest), 3_000);
        shuttle::check_pct(|| model(Overflow::RejectNewest), 3_000, 3);
    }

    #[test]
    fn drop_oldest() {
        shuttle::check_random(|| model(Overflow::DropOldest), 3_000);
        shuttle::check_pct(|| model(Overflow::DropOldest), 3_000, 3);
    }
}
