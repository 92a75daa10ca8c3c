//! The waiters of both pools: [`Waiters`], a slab of callers waiting to be handed something
//! (an object, or room to create one), each with what wakes it, the grant handed to it and
//! when the maintenance sweep must wake it.
//!
//! Both pools keep it under their state's lock, beside their own queue of waiter ids in the
//! order they are served ([`Slots`](crate::slots::Slots) one queue, the keyed pool one per
//! key): a release hands its object straight to the first waiter ([`Waiters::serve`]) and
//! wakes it; the waiter picks the grant up under the same lock ([`Waiters::granted`]); a
//! waiter that gives up leaves ([`Waiters::remove`]) and passes on a grant that raced in.
//! Freed places are reused, so waiting allocates nothing once a pool has seen its most
//! waiters. The slab is plain data, generic over what wakes a waiter, so the same code runs
//! in the pools and under the model checker in the tests.

use crate::clock::{Ms, NEVER};

/// One waiter.
#[derive(Debug)]
struct Waiter<G, W> {
    waker: Option<W>,
    grant: Option<G>,
    /// When (in [`Ms`]) the maintenance sweep must wake it, or [`NEVER`].
    wake_at: Ms,
    /// Its arrival number, for a pool that orders waiters across queues (the keyed pool).
    seq: u64,
}

/// The waiters of a pool, by id.
#[derive(Debug)]
pub(crate) struct Waiters<G, W> {
    slab: Vec<Option<Waiter<G, W>>>,
    free: Vec<usize>,
}

impl<G, W> Default for Waiters<G, W> {
    fn default() -> Self {
        Waiters {
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<G, W> Waiters<G, W> {
    /// A new waiter that arrived `seq`-th; returns its id.
    #[inline]
    pub(crate) fn insert(&mut self, seq: u64) -> usize {
        let waiter = Waiter {
            waker: None,
            grant: None,
            wake_at: NEVER,
            seq,
        };
        match self.free.pop() {
            Some(id) => {
                // A freed place holds `None`: nothing to drop, so the old value is not read
                // (an assignment would load it to drop it, a cache miss when the waiter that
                // left it ran on another core).
                debug_assert!(self.slab[id].is_none(), "a freed waiter place is empty");
                std::mem::forget(self.slab[id].replace(waiter));
                id
            }
            None => {
                self.slab.push(Some(waiter));
                self.slab.len() - 1
            }
        }
    }

    fn get(&mut self, id: usize) -> Option<&mut Waiter<G, W>> {
        self.slab.get_mut(id).and_then(Option::as_mut)
    }

    /// The arrival number of waiter `id`.
    pub(crate) fn seq(&self, id: usize) -> Option<u64> {
        self.slab.get(id).and_then(Option::as_ref).map(|w| w.seq)
    }

    /// Takes waiter `id` out; returns `Some(grant)` (the grant it had not picked up yet, if
    /// any) if it was there.
    pub(crate) fn remove(&mut self, id: usize) -> Option<Option<G>> {
        let waiter = self.slab.get_mut(id)?.take()?;
        self.free.push(id);
        Some(waiter.grant)
    }

    /// The waiter's grant, if it has one: then it leaves.
    pub(crate) fn granted(&mut self, id: usize) -> Option<G> {
        if self.get(id)?.grant.is_some() {
            return self.remove(id).flatten();
        }
        None
    }

    /// Sets what wakes waiter `id` (`same` says whether the one it has is that already).
    pub(crate) fn set_waker(
        &mut self,
        id: usize,
        same: impl Fn(&W) -> bool,
        make: impl FnOnce() -> W,
    ) {
        if let Some(w) = self.get(id)
            && !w.waker.as_ref().is_some_and(same)
        {
            w.waker = Some(make());
        }
    }

    /// Sets when the sweep must wake waiter `id`.
    pub(crate) fn set_wake_at(&mut self, id: usize, at: Ms) {
        if let Some(w) = self.get(id) {
            w.wake_at = at;
        }
    }

    /// Hands `grant` to waiter `id` (taken out of its pool's queue by the caller); returns
    /// what wakes it. `Err` gives the grant back if there is no such waiter.
    pub(crate) fn serve(&mut self, id: usize, grant: G) -> Result<Option<W>, G> {
        match self.get(id) {
            Some(w) => {
                w.grant = Some(grant);
                Ok(w.waker.take())
            }
            None => Err(grant),
        }
    }

    /// What wakes waiter `id`, taken (it then looks at the pool again).
    pub(crate) fn take_waker(&mut self, id: usize) -> Option<W> {
        self.get(id).and_then(|w| w.waker.take())
    }

    /// The sweep at `now` for waiter `id`: what wakes it if its wake time has come, else
    /// its wake time.
    pub(crate) fn sweep(&mut self, id: usize, now: Ms) -> Result<Option<W>, Ms> {
        match self.get(id) {
            Some(w) if w.wake_at <= now => {
                w.wake_at = NEVER;
                Ok(w.waker.take())
            }
            Some(w) => Err(w.wake_at),
            None => Err(NEVER),
        }
    }
}

/// What to wake once the state's lock is released: most releases wake one waiter at most,
/// so the first goes in place and only more need an allocation.
#[derive(Debug)]
pub(crate) struct Woken<W> {
    first: Option<W>,
    rest: Vec<W>,
}

impl<W> Default for Woken<W> {
    fn default() -> Self {
        Woken {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<W> Woken<W> {
    pub(crate) fn push(&mut self, w: Option<W>) {
        let Some(w) = w else { return };
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push(w);
        }
    }

    /// Calls `wake` on each.
    pub(crate) fn wake_all(self, mut wake: impl FnMut(W)) {
        if let Some(w) = self.first {
            wake(w);
        }
        for w in self.rest {
            wake(w);
        }
    }
}
