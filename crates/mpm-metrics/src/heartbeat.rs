//! A process-wide millisecond count that one thread (`mpm-heartbeat`) keeps, every [`BEAT`],
//! only while someone needs it: coarse clocks read it with one relaxed load instead of calling
//! the system clock, and can tell from it whether they were refreshed lately.
//!
//! A user holds a [`Beat`] for as long as it reads the count: the first starts the thread,
//! and when the last drops the thread parks (no wake-ups) until the next one comes. The count
//! is the milliseconds since the thread started, never goes back, and keeps time across a
//! pause: the user that ends one stores the current count before it reads it. mpm-cache's
//! coarse clock and mpm-pool's staleness test of its maintenance task both run on it, so a
//! process has one such thread, not one per crate.
//!
//! ```
//! use mpm_metrics::heartbeat::{self, Beat};
//!
//! let beat = Beat::start().expect("threads can start here");
//! let t0 = heartbeat::now_ms();
//! std::thread::sleep(heartbeat::BEAT * 5);
//! assert!(heartbeat::now_ms() > t0);
//! drop(beat); // the last user: the thread parks at its next beat
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// The count: milliseconds since the heartbeat's thread started, as of its last beat. Behind
/// the time by up to a [`BEAT`] (and the scheduler's delay) while a [`Beat`] lives; standing
/// still while none does, and 0 before the first.
#[inline]
pub fn now_ms() -> u64 {
    HEART.beat()
}

/// A user of the heartbeat: while one lives, the thread beats. Dropping the last lets it park.
#[must_use = "the heartbeat beats only while the Beat lives"]
pub struct Beat(());

impl Beat {
    /// Registers a user, starting the thread if it never ran and waking it if it is parked.
    /// `None` where no thread can be started (the count then never moves).
    pub fn start() -> Option<Beat> {
        HEART.register().then_some(Beat(()))
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        HEART.deregister();
    }
}

impl fmt::Debug for Beat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Beat").finish_non_exhaustive()
    }
}

/// How many [`Beat`]s live: for tests of the crates that use the heartbeat.
#[doc(hidden)]
pub fn users() -> usize {
    HEART.users()
}

/// Waits up to `timeout` for the heartbeat to park with no user; returns whether it did: for
/// tests of the crates that use the heartbeat.
#[doc(hidden)]
pub fn wait_parked(timeout: Duration) -> bool {
    HEART.wait_parked(timeout)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How often the heartbeat beats, in milliseconds.
const BEAT_MS: u64 = 2;

/// How often the heartbeat beats while a [`Beat`] lives.
pub const BEAT: Duration = Duration::from_millis(BEAT_MS);

/// The process's heartbeat.
static HEART: Heartbeat = Heartbeat::new();

/// A millisecond count that a thread of its own (`mpm-heartbeat`) stores every [`BEAT_MS`]
/// while at least one user holds a [`Beat`].
///
/// Its life: the first user starts the thread; a user registers ([`Heartbeat::register`],
/// in [`Beat::start`]) and deregisters ([`Heartbeat::deregister`], when its [`Beat`] drops). With
/// no user the thread parks at its next beat (waiting on a condition variable: no wake-ups),
/// and the next user to register wakes it. Both decisions are taken under one lock, so a user
/// that registers while the thread is about to park is seen (the thread looks at the count
/// under the lock before it waits, and the registration notifies under it).
///
/// The count never goes back and reads the time since the thread started, paused or not: the
/// user that ends a pause stores the current count itself before its clock reads it (a
/// catch-up beat), so a stale-from mark taken before the pause (a beat plus a tick and
/// the user's slack) is below the count as soon as the pause outlasted that slack, as it would
/// be had the beat never paused, and no reader trusts a coarse clock because the beat stopped.
/// While a user lives the thread beats, so the count a reader loads is never older than a
/// beat (and the scheduler's delay).
pub(crate) struct Heartbeat<B: Beats = Os> {
    /// Milliseconds since the thread started, as of its last beat (or a catch-up beat).
    beat: AtomicU64,
    state: B::Lock,
    /// Signalled when the first user registers (to wake the thread) and when the thread parks.
    changed: B::Signal,
}

/// What a [`Heartbeat`] runs on: the process's locks, threads and clock ([`Os`]), or a
/// model's (the shuttle model in the tests).
pub(crate) trait Beats: Sized + Sync + 'static {
    /// The lock around the heartbeat's state.
    type Lock: Sync;
    /// The lock, held.
    type Guard<'a>: std::ops::DerefMut<Target = Beating<Self::Start>>;
    /// The condition variable beside the lock.
    type Signal: Sync;
    /// When the thread started.
    type Start: Copy + Send + 'static;
    /// Takes the lock.
    fn lock(lock: &Self::Lock) -> Self::Guard<'_>;
    /// Waits on `signal`, letting go of the lock meanwhile.
    fn wait<'a>(signal: &Self::Signal, guard: Self::Guard<'a>) -> Self::Guard<'a>;
    /// Wakes every thread waiting on `signal`.
    fn notify_all(signal: &Self::Signal);
    /// Now, as the thread's start.
    fn start() -> Self::Start;
    /// Milliseconds since `start`.
    fn elapsed(start: Self::Start) -> u64;
    /// Starts the thread; returns whether it started.
    fn spawn(run: impl FnOnce() + Send + 'static) -> bool;
    /// Waits a beat.
    fn sleep();
}

/// The process's locks, threads and clock.
pub(crate) struct Os;

impl Beats for Os {
    type Lock = Mutex<Beating<std::time::Instant>>;
    type Guard<'a> = parking_lot::MutexGuard<'a, Beating<std::time::Instant>>;
    type Signal = Condvar;
    type Start = std::time::Instant;
    fn lock(lock: &Self::Lock) -> Self::Guard<'_> {
        lock.lock()
    }
    fn wait<'a>(signal: &Condvar, mut guard: Self::Guard<'a>) -> Self::Guard<'a> {
        signal.wait(&mut guard);
        guard
    }
    fn notify_all(signal: &Condvar) {
        signal.notify_all();
    }
    fn start() -> std::time::Instant {
        std::time::Instant::now()
    }
    fn elapsed(start: std::time::Instant) -> u64 {
        millis(start.elapsed())
    }
    fn spawn(run: impl FnOnce() + Send + 'static) -> bool {
        std::thread::Builder::new()
            .name("mpm-heartbeat".into())
            .spawn(run)
            .is_ok()
    }
    fn sleep() {
        std::thread::sleep(Duration::from_millis(BEAT_MS));
    }
}

/// A heartbeat's state, under its lock.
pub(crate) struct Beating<S> {
    /// Users of the heartbeat (live [`Beat`]s).
    users: usize,
    /// When the thread started (the count's zero), once it did.
    start: Option<S>,
    /// The thread could not be started (a platform without threads): never beats.
    failed: bool,
    /// The thread is parked, waiting for a user.
    parked: bool,
    /// The thread is to end once it parks (a model's, at its end).
    #[cfg(test)]
    stop: bool,
}

impl<S> Beating<S> {
    const fn new() -> Self {
        Beating {
            users: 0,
            start: None,
            failed: false,
            parked: false,
            #[cfg(test)]
            stop: false,
        }
    }
}

impl Heartbeat<Os> {
    const fn new() -> Self {
        Heartbeat {
            beat: AtomicU64::new(0),
            state: Mutex::new(Beating::new()),
            changed: Condvar::new(),
        }
    }

    /// Waits up to `timeout` for the thread to park with no user; returns whether it did.
    fn wait_parked(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock();
        let deadline = std::time::Instant::now() + timeout;
        while !(state.parked && state.users == 0) {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return state.parked && state.users == 0;
            }
        }
        true
    }
}

impl<B: Beats> Heartbeat<B> {
    /// The count as of the last beat.
    #[inline]
    fn beat(&self) -> u64 {
        self.beat.load(Ordering::Relaxed)
    }

    /// Registers a user, starting the thread if it never ran and waking it if it is parked (or
    /// about to park); returns whether the heartbeat beats (a platform without threads has
    /// none: the caller then must not register again or deregister).
    fn register(&'static self) -> bool {
        let mut state = B::lock(&self.state);
        if state.failed {
            return false;
        }
        let start = match state.start {
            Some(start) => start,
            None => {
                let start = B::start();
                if !B::spawn(move || self.run(start)) {
                    state.failed = true;
                    return false;
                }
                state.start = Some(start);
                start
            }
        };
        state.users += 1;
        if state.users == 1 {
            // The catch-up beat (see the type's docs), before the new user's clock reads the
            // count, and the thread woken if it waits.
            self.beat.fetch_max(B::elapsed(start), Ordering::Relaxed);
            B::notify_all(&self.changed);
        }
        true
    }

    /// Deregisters a user: with none left, the thread parks at its next beat.
    fn deregister(&self) {
        let mut state = B::lock(&self.state);
        state.users = state.users.saturating_sub(1);
    }

    /// The thread: beats every [`BEAT_MS`] while there is a user, and waits for one otherwise.
    fn run(&self, start: B::Start) {
        loop {
            {
                let mut state = B::lock(&self.state);
                if state.users == 0 {
                    state.parked = true;
                    B::notify_all(&self.changed);
                    while state.users == 0 {
                        #[cfg(test)]
                        if state.stop {
                            state.parked = false;
                            B::notify_all(&self.changed);
                            return;
                        }
                        state = B::wait(&self.changed, state);
                    }
                    state.parked = false;
                }
            }
            B::sleep();
            // Never back past a catch-up beat stored meanwhile.
            self.beat.fetch_max(B::elapsed(start), Ordering::Relaxed);
        }
    }

    /// How many users the heartbeat has.
    fn users(&self) -> usize {
        B::lock(&self.state).users
    }
}

#[cfg(test)]
mod tests {
    use super::{BEAT_MS, Heartbeat};
    use std::time::Duration;

    /// Long enough for any of these waits on a loaded machine, short of hanging.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A heartbeat of the test's own (its thread parked for good when the test ends).
    fn own_heart() -> &'static Heartbeat {
        Box::leak(Box::new(Heartbeat::new()))
    }

    /// Waits (up to [`PATIENCE`]) for `heart`'s count to pass `beat`; returns the count.
    fn beat_past(heart: &Heartbeat, beat: u64) -> u64 {
        let until = std::time::Instant::now() + PATIENCE;
        loop {
            let now = heart.beat();
            if now > beat {
                return now;
            }
            assert!(std::time::Instant::now() < until, "no beat past {beat}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Asserts that `heart`, parked, does not beat: its count does not move for 25 beats (a
    /// bounded wait for a value to stay still; the park itself is awaited as a signal).
    fn stays_still(heart: &Heartbeat) -> u64 {
        assert!(heart.wait_parked(PATIENCE), "the heartbeat did not park");
        let beat = heart.beat();
        std::thread::sleep(Duration::from_millis(25 * BEAT_MS));
        assert_eq!(heart.beat(), beat, "a parked heartbeat beat");
        beat
    }

    #[test]
    fn the_heartbeat_parks_without_users_and_resumes_with_a_count_that_kept_time() {
        let heart = own_heart();
        assert!(heart.register());
        assert!(heart.register());
        let beat = beat_past(heart, 0);
        beat_past(heart, beat);
        heart.deregister();
        // One user left: still beating.
        beat_past(heart, heart.beat());
        heart.deregister();
        let paused_at = stays_still(heart);
        let paused = std::time::Instant::now();
        // A clock refreshed at the last beat and trusted for 10 ms and a slack of two beats
        // went stale this many milliseconds later: the pause outlasts it, so the count must be
        // past that mark as soon as the beat resumes, before the thread beats again (the
        // registration's catch-up beat).
        let mark = paused_at + 12 + 2 * BEAT_MS;
        while paused.elapsed() < Duration::from_millis(40) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(heart.register());
        let resumed = heart.beat();
        assert!(
            resumed > mark && resumed >= paused_at + 40,
            "resumed at {resumed}, paused at {paused_at}, stale from {mark}"
        );
        // And the thread beats again.
        beat_past(heart, resumed);
        heart.deregister();
        stays_still(heart);
    }

    #[test]
    fn a_user_that_registers_as_the_last_one_leaves_gets_beats() {
        let heart = own_heart();
        assert!(heart.register());
        for round in 0..200 {
            // The last user leaves while another registers, on another thread, and in every
            // fifth round once the thread parked (or is about to).
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    heart.deregister();
                });
                barrier.wait();
                if round % 5 == 0 {
                    heart.wait_parked(Duration::from_millis(BEAT_MS));
                }
                assert!(heart.register());
            });
            assert_eq!(heart.users(), 1);
            let beat = heart.beat();
            beat_past(heart, beat);
        }
        heart.deregister();
        stays_still(heart);
    }

    /// A shuttle model of the heartbeat's life, on its own code with shuttle's locks, threads
    /// and a clock that counts beats: the last user leaves while another registers, in every
    /// interleaving shuttle picks (and the leaver, in some, registers again first). The new user
    /// must see the thread beat after it registered (a lost wake-up leaves the thread parked
    /// and the user spinning, which shuttle reports at its step bound), and the count must
    /// never go back; at the end, with no user, the thread parks (it is then stopped).
    mod model {
        use super::super::{Beating, Beats, Heartbeat};
        use shuttle::sync::{Condvar, Mutex, MutexGuard};
        use shuttle::thread;
        use std::sync::atomic::{AtomicU64, Ordering};

        /// Beats so far, across all executions: the model's clock.
        static TIME: AtomicU64 = AtomicU64::new(0);

        struct Model;

        impl Beats for Model {
            type Lock = Mutex<Beating<()>>;
            type Guard<'a> = MutexGuard<'a, Beating<()>>;
            type Signal = Condvar;
            type Start = ();
            fn lock(lock: &Self::Lock) -> Self::Guard<'_> {
                lock.lock().expect("not poisoned")
            }
            fn wait<'a>(signal: &Condvar, guard: Self::Guard<'a>) -> Self::Guard<'a> {
                signal.wait(guard).expect("not poisoned")
            }
            fn notify_all(signal: &Condvar) {
                signal.notify_all();
            }
            fn start() {}
            fn elapsed((): ()) -> u64 {
                TIME.load(Ordering::Relaxed)
            }
            fn spawn(run: impl FnOnce() + Send + 'static) -> bool {
                thread::spawn(run);
                true
            }
            fn sleep() {
                TIME.fetch_add(1, Ordering::Relaxed);
                thread::yield_now();
            }
        }

        /// Waits until the thread beats past `from`.
        fn beat_past(heart: &Heartbeat<Model>, from: u64) {
            while heart.beat() <= from {
                thread::yield_now();
            }
        }

        fn model(rejoin: bool) {
            let heart: &'static Heartbeat<Model> = Box::leak(Box::new(Heartbeat {
                beat: AtomicU64::new(0),
                state: Mutex::new(Beating::new()),
                changed: Condvar::new(),
            }));
            assert!(heart.register());
            beat_past(heart, heart.beat());
            let leaving = thread::spawn(move || {
                heart.deregister();
                if rejoin {
                    assert!(heart.register());
                    let from = heart.beat();
                    beat_past(heart, from);
                    heart.deregister();
                }
            });
            let coming = thread::spawn(move || {
                let before = heart.beat();
                assert!(heart.register());
                let from = heart.beat();
                assert!(from >= before, "the count went back");
                beat_past(heart, from);
                heart.deregister();
            });
            leaving.join().expect("no panic");
            coming.join().expect("no panic");
            let mut state = Model::lock(&heart.state);
            assert_eq!(state.users, 0);
            // Parks with no user, then stops.
            while !state.parked {
                state = Model::wait(&heart.changed, state);
            }
            state.stop = true;
            Model::notify_all(&heart.changed);
            while state.parked {
                state = Model::wait(&heart.changed, state);
            }
        }

        #[test]
        fn a_user_that_registers_as_the_last_one_leaves_is_never_left_without_beats() {
            shuttle::check_random(|| model(false), 2_000);
            shuttle::check_random(|| model(true), 2_000);
            shuttle::check_pct(|| model(false), 2_000, 3);
            shuttle::check_pct(|| model(true), 2_000, 3);
        }
    }
}
