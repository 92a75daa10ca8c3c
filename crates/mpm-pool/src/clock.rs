//! The pools' millisecond clock: coarse (refreshed by the maintenance task) or precise.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds since a pool's epoch.
pub(crate) type Ms = u64;

/// "Never" in [`Ms`].
pub(crate) const NEVER: Ms = u64::MAX;

#[inline]
pub(crate) fn ms(d: Duration) -> Ms {
    // Not through `as_millis`: its 128-bit arithmetic costs more, on every contended get.
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
        .min(NEVER - 1)
}

/// How often the maintenance task refreshes a coarse clock: often enough for a
/// skip-validation window of `skip_window` and leak detection at `leak` to stay within a few
/// percent (at most 100 ms, at least 1 ms).
pub(crate) fn tick_for(skip_window: Duration, leak: Option<Duration>) -> Duration {
    let mut tick = Duration::from_millis(100);
    if !skip_window.is_zero() {
        tick = tick.min(skip_window / 4);
    }
    if let Some(leak) = leak {
        tick = tick.min(leak / 20);
    }
    tick.max(Duration::from_millis(1))
}

/// The pool's clock in milliseconds. With maintenance on, the hot path reads a coarse value
/// that the maintenance task refreshes every `lag` (and every precise read moves forward), so
/// getting and returning an object never calls the system clock. Comparisons that must not
/// err on the optimistic side add `lag`.
///
/// The coarse value is trusted only while it is refreshed: each tick also notes the
/// [`Heartbeat`] (a process-wide millisecond count that a thread of its own keeps, so it
/// never stalls with a runtime, and that costs a reader one load where a TSC read cost
/// 20-30 ns on the benchmark machine), and a reader that finds the note older than a tick
/// and [`STALE_SLACK`] refreshes the clock itself ([`Clock::refresh`]: a precise read). So a
/// task that is stalled (its runtime not driven, its thread blocked, or starved by tasks that
/// never yield) or gone stops no lifetime or skip-validation window, and the clock is read
/// precisely about once a tick meanwhile.
///
/// A wait must start its deadline at a precise time, and reading the system clock (or Tokio's)
/// there cost about a tenth of a contended get. So each tick also reads Tokio's clock and the
/// TSC (through `quanta`, as the statistics' timers) together, and [`Clock::fast_now`] reads
/// Tokio's time as that reading plus the TSC's count since, while ticks come on time. A tick
/// that finds Tokio's clock frozen (paused, in tests: two readings in a row are equal) forgets
/// its reading, so that waits read Tokio's clock, which alone moves when the tests advance it.
pub(crate) struct Clock {
    pub(crate) epoch: Instant,
    pub(crate) coarse: Option<AtomicU64>,
    pub(crate) lag: Ms,
    /// The TSC (or the fastest clock `quanta` finds), read raw: a read through
    /// `quanta::Instant::now` also looks up a thread-local override and a global clock.
    tsc: quanta::Clock,
    /// Tokio's nanoseconds since `epoch` at the last tick that set them, or [`UNSET`].
    tick_ns: AtomicU64,
    /// The raw TSC reading taken with `tick_ns`.
    tick_raw: AtomicU64,
    /// How long after a tick (in nanoseconds: four ticks) its reading still serves.
    fresh_ns: u64,
    /// The [`Heartbeat`] from which `coarse` is stale: `stale_ms` after its last refresh (or
    /// the clock's start).
    stale_at: AtomicU64,
    /// How many milliseconds of the heartbeat after a refresh the coarse clock goes stale: a
    /// tick and [`STALE_SLACK`].
    stale_ms: Ms,
    /// The time of the last tick (only ticks set it, where any precise read moves `coarse`).
    ticked_ms: AtomicU64,
    /// Whether this clock registered with the [`Heartbeat`] (deregisters when dropped).
    beating: bool,
}

impl Drop for Clock {
    fn drop(&mut self) {
        if self.beating {
            HEART.deregister();
        }
    }
}

/// How late a tick may come before readers stop trusting the coarse clock: Tokio's timers
/// fire up to a millisecond late, and the heartbeat lags by up to a beat at either end.
const STALE_SLACK: Duration = Duration::from_millis(2 + 2 * BEAT_MS);

/// How often the heartbeat beats, in milliseconds.
const BEAT_MS: u64 = 2;

/// The process's heartbeat, which every clock with a coarse value uses.
static HEART: Heartbeat = Heartbeat::new();

/// A millisecond count that a thread of its own (`mpm-pool-heartbeat`) stores every
/// [`BEAT_MS`] while at least one clock uses it, for readers of a coarse clock to tell with
/// one load whether the clock was refreshed lately ([`Clock::fresh_coarse`]).
///
/// Its life: the first user starts the thread; a user registers ([`Heartbeat::register`],
/// in [`Clock::new`]) and deregisters ([`Heartbeat::deregister`], when its clock drops). With
/// no user the thread parks at its next beat (waiting on a condition variable: no wake-ups),
/// and the next user to register wakes it. Both decisions are taken under one lock, so a user
/// that registers while the thread is about to park is seen (the thread looks at the count
/// under the lock before it waits, and the registration notifies under it).
///
/// The count never goes back and reads the time since the thread started, paused or not: the
/// user that ends a pause stores the current count itself before its clock reads it (a
/// catch-up beat), so a stale-from mark taken before the pause (a beat plus a tick and
/// [`STALE_SLACK`]) is below the count as soon as the pause outlasted that slack, as it would
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
    fn elapsed(start: Self::Start) -> Ms;
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
    fn elapsed(start: std::time::Instant) -> Ms {
        ms(start.elapsed())
    }
    fn spawn(run: impl FnOnce() + Send + 'static) -> bool {
        std::thread::Builder::new()
            .name("mpm-pool-heartbeat".into())
            .spawn(run)
            .is_ok()
    }
    fn sleep() {
        std::thread::sleep(Duration::from_millis(BEAT_MS));
    }
}

/// A heartbeat's state, under its lock.
pub(crate) struct Beating<S> {
    /// Clocks that use the heartbeat.
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
    #[cfg(test)]
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
    fn beat(&self) -> Ms {
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

    /// How many clocks use the heartbeat.
    #[cfg(test)]
    fn users(&self) -> usize {
        B::lock(&self.state).users
    }
}

/// When a get began to wait, for the acquire-time histogram: a raw TSC reading
/// ([`Clock::raw`]), taken by a wait that read its start from the TSC anyway (while ticks keep
/// the TSC in step with Tokio's clock, which is then not paused, so both count the same time),
/// or Tokio's clock otherwise (paused in tests: then the histogram counts Tokio's time).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Since {
    /// A raw TSC reading.
    Raw(u64),
    /// Tokio's clock.
    At(Instant),
}

impl Since {
    /// Nanoseconds from this start to `raw`, a later raw reading of `clock` (only a start
    /// read from Tokio's clock reads it again).
    #[inline]
    pub(crate) fn nanos_to(self, clock: &Clock, raw: u64) -> u64 {
        match self {
            Since::Raw(start) => clock.nanos(start, raw),
            Since::At(start) => ns(start.elapsed()),
        }
    }
}

/// No reading of Tokio's clock to count the TSC from: read Tokio's.
const UNSET: u64 = u64::MAX;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock {
    pub(crate) fn new(tick: Option<Duration>) -> Self {
        let lag = tick.map_or(0, ms);
        // Without a heartbeat, the coarse clock is never trusted (always stale).
        let beating = tick.is_some() && HEART.register();
        let stale_ms = if beating {
            ms(tick.unwrap_or_default() + STALE_SLACK)
        } else {
            0
        };
        Clock {
            epoch: Instant::now(),
            coarse: tick.map(|_| AtomicU64::new(0)),
            lag,
            tsc: quanta::Clock::new(),
            tick_ns: AtomicU64::new(UNSET),
            tick_raw: AtomicU64::new(0),
            fresh_ns: lag.saturating_mul(4).saturating_mul(1_000_000),
            // The coarse clock starts at 0, the epoch: fresh now.
            stale_at: AtomicU64::new(HEART.beat().saturating_add(stale_ms)),
            stale_ms,
            ticked_ms: AtomicU64::new(0),
            beating,
        }
    }

    /// Reads Tokio's clock and the TSC together (a tick of the maintenance task), or forgets
    /// the last such reading if Tokio's clock is frozen.
    pub(crate) fn calibrate(&self) {
        let before = Instant::now();
        let raw = self.tsc.raw();
        let after = Instant::now();
        if after == before {
            self.tick_ns.store(UNSET, Ordering::Relaxed);
            return;
        }
        if after - before > Duration::from_micros(20) {
            // Interrupted between the readings: keep the last ones.
            return;
        }
        // The time first, the raw reading after it (released): a reader that sees the new raw
        // reading sees the new time too, and one that sees the new time with an older raw
        // reading counts from an earlier TSC, so reads a later time, never an earlier one.
        self.tick_ns.store(
            ns(before.saturating_duration_since(self.epoch)),
            Ordering::Relaxed,
        );
        self.tick_raw.store(raw, Ordering::Release);
    }

    /// Tokio's time read from the TSC, in nanoseconds after `epoch`
    /// and in [`Ms`], with the raw TSC reading it came from (see [`Clock::raw`]), if a tick
    /// read both within the last four ticks.
    #[inline]
    pub(crate) fn fast_now(&self) -> Option<(u64, Ms, u64)> {
        // The raw reading first (see `calibrate`).
        let tick_raw = self.tick_raw.load(Ordering::Acquire);
        let tick_ns = self.tick_ns.load(Ordering::Relaxed);
        if tick_ns == UNSET {
            return None;
        }
        let raw = self.tsc.raw();
        let since_tick = self.tsc.delta_as_nanos(tick_raw, raw);
        if since_tick > self.fresh_ns {
            return None;
        }
        let tokio_ns = tick_ns.saturating_add(since_tick);
        let now_ms = tokio_ns / 1_000_000;
        // A sanity check against the coarse clock (never ahead of Tokio's, and refreshed by
        // the same ticks), so that a bad reading cannot set a deadline far off.
        let coarse = self.coarse.as_ref()?.load(Ordering::Relaxed);
        if now_ms.saturating_add(1) < coarse
            || now_ms
                > coarse
                    .saturating_add(self.lag.saturating_mul(4))
                    .saturating_add(1)
        {
            return None;
        }
        Some((tokio_ns, now_ms, raw))
    }

    /// A raw reading of the TSC (or the fastest clock `quanta` finds): to order events finer
    /// than the coarse clock does, and to time them ([`Clock::nanos`]); not a time of day
    /// without a tick's reading.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        self.tsc.raw()
    }

    /// The nanoseconds from one [`Clock::raw`] reading to a later one (0 if it is not later).
    #[inline]
    pub(crate) fn nanos(&self, from: u64, to: u64) -> u64 {
        self.tsc.delta_as_nanos(from, to)
    }

    /// The instant `ns` nanoseconds after `epoch`.
    #[cfg(test)]
    pub(crate) fn instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    pub(crate) fn at(&self, t: Instant) -> Ms {
        ms(t.saturating_duration_since(self.epoch))
    }

    /// Reads the system clock (and moves the coarse clock forward).
    pub(crate) fn precise(&self) -> Ms {
        let now = self.at(Instant::now());
        if let Some(c) = &self.coarse
            && c.load(Ordering::Relaxed) < now
        {
            c.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    /// How often (in [`Ms`]) the coarse clock is refreshed (and waiters swept), if there is one.
    #[inline]
    pub(crate) fn tick(&self) -> Option<Ms> {
        self.coarse.as_ref().map(|_| self.lag.max(1))
    }

    /// A tick of the maintenance task: refreshes the coarse clock and the readings the fast
    /// clock and the staleness test count from; returns the time.
    pub(crate) fn ticked(&self) -> Ms {
        self.calibrate();
        let now = self.refresh();
        self.ticked_ms.store(now, Ordering::Relaxed);
        now
    }

    /// Reads the precise clock, moves the coarse one forward and marks it fresh for another
    /// tick: what a tick does to it, and what a reader that finds it stale does, so that the
    /// coarse clock is read precisely about once a tick while the task is late or stalled.
    pub(crate) fn refresh(&self) -> Ms {
        let beat = HEART.beat();
        let now = self.precise();
        // Released after the coarse clock moved: a reader that finds it fresh reads it moved.
        self.stale_at
            .store(beat.saturating_add(self.stale_ms), Ordering::Release);
        now
    }

    /// The time of the last tick (0 before the first): how late the ticks are.
    pub(crate) fn ticked_ms(&self) -> Ms {
        self.ticked_ms.load(Ordering::Relaxed)
    }

    /// The coarse time, if there is one and it was refreshed (see [`Clock::refresh`]) within a
    /// tick and [`STALE_SLACK`].
    #[inline]
    pub(crate) fn fresh_coarse(&self) -> Option<Ms> {
        let stale_at = self.stale_at.load(Ordering::Acquire);
        let coarse = self.coarse.as_ref()?.load(Ordering::Relaxed);
        // Without a heartbeat `stale_ms` is 0, and the beat never moves: never fresh.
        (HEART.beat() < stale_at).then_some(coarse)
    }
}

#[cfg(test)]
mod tests {
    use super::{BEAT_MS, Clock, HEART, Heartbeat, STALE_SLACK, ms};
    use std::time::Duration;
    use tokio::time::Instant;

    /// Held by the tests that make clocks with a coarse value (users of the process's
    /// heartbeat), so that those that watch it park see no other user.
    static HEART_USERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
        // A clock refreshed at the last beat went stale this many beats later: the pause
        // outlasts it, so the count must be past that mark as soon as the beat resumes,
        // before the thread beats again (the registration's catch-up beat).
        let mark = paused_at + ms(Duration::from_millis(10) + STALE_SLACK);
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
        use super::super::{Beating, Beats, Heartbeat, Ms};
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
            fn elapsed((): ()) -> Ms {
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
        fn beat_past(heart: &Heartbeat<Model>, from: Ms) {
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

    struct Nothing;

    impl crate::Manager for Nothing {
        type Object = ();
        type Error = std::convert::Infallible;
        async fn create(&self) -> Result<(), std::convert::Infallible> {
            Ok(())
        }
    }

    impl crate::keyed::KeyedManager<u8> for Nothing {
        type Object = ();
        type Error = std::convert::Infallible;
        async fn create(&self, _: &u8) -> Result<(), std::convert::Infallible> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_heartbeat_stops_when_the_last_pool_drops_and_resumes_for_a_new_one() {
        let _alone = HEART_USERS.lock().await;
        let pool = crate::Pool::builder(Nothing).build().await.unwrap();
        let keyed = crate::keyed::KeyedPool::builder(Nothing).build().unwrap();
        drop(pool.get().await.unwrap());
        drop(keyed.get(1).await.unwrap());
        beat_past(&HEART, HEART.beat());
        assert_eq!(HEART.users(), 2);
        drop(pool);
        beat_past(&HEART, HEART.beat());
        drop(keyed);
        // The maintenance tasks let go of the pools (and their clocks) once they see them
        // closed; then the heartbeat parks.
        let paused_at = stays_still(&HEART);
        assert_eq!(HEART.users(), 0);

        let pool = crate::Pool::builder(Nothing).build().await.unwrap();
        drop(pool.get().await.unwrap());
        beat_past(&HEART, paused_at);
        beat_past(&HEART, HEART.beat());
        // A pool built (on another thread, without a runtime: no maintenance task holds it)
        // as the last one drops still gets beats.
        let mut current = crate::keyed::KeyedPool::builder(Nothing).build().unwrap();
        drop(pool);
        // The plain pool's task lets go of it once it sees it closed.
        while HEART.users() > 1 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            let barrier = std::sync::Barrier::new(2);
            current = std::thread::scope(|s| {
                let old = current;
                s.spawn(|| {
                    barrier.wait();
                    drop(old);
                });
                barrier.wait();
                crate::keyed::KeyedPool::builder(Nothing).build().unwrap()
            });
            assert_eq!(HEART.users(), 1);
            let beat = HEART.beat();
            beat_past(&HEART, beat);
        }
        drop(current);
        stays_still(&HEART);
    }

    #[test]
    fn pools_dropped_while_their_maintenance_tasks_are_stalled_let_the_heartbeat_park() {
        let _alone = HEART_USERS.blocking_lock();
        // Each pool's task runs until it waits for its next tick, and then its runtime is no
        // longer driven: a task that held its pool while waiting would keep it (and its
        // clock) alive until the runtime is driven or dropped.
        let stalled = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (pool, keyed) = stalled.block_on(async {
            let pool = crate::Pool::builder(Nothing).build().await.unwrap();
            let keyed = crate::keyed::KeyedPool::builder(Nothing).build().unwrap();
            drop(pool.get().await.unwrap());
            drop(keyed.get(1).await.unwrap());
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            (pool, keyed)
        });
        assert_eq!(HEART.users(), 2);
        drop(pool);
        drop(keyed);
        stays_still(&HEART);
        assert_eq!(HEART.users(), 0);
        drop(stalled);
    }

    #[test]
    fn a_clock_made_as_the_beat_resumes_goes_stale_without_ticks() {
        let _alone = HEART_USERS.blocking_lock();
        // Started (if no test did), then parked (no other user), its count left at the last
        // beat.
        drop(Clock::new(Some(Duration::from_millis(1))));
        let paused_at = stays_still(&HEART);
        std::thread::sleep(Duration::from_millis(40));
        let clock = Clock::new(Some(Duration::from_millis(1)));
        // Fresh now (its coarse value is its start), never from the old count.
        assert!(clock.fresh_coarse().is_some());
        assert!(HEART.beat() >= paused_at + 40);
        // Without a tick it goes stale once the beat passes its mark.
        let stale_from = clock.stale_at.load(std::sync::atomic::Ordering::Relaxed);
        beat_past(&HEART, stale_from);
        assert!(clock.fresh_coarse().is_none());
        clock.refresh();
        assert!(clock.fresh_coarse().is_some());
    }

    #[tokio::test]
    async fn the_fast_clock_reads_tokio_time_once_a_tick_read_it() {
        let _alone = HEART_USERS.lock().await;
        let clock = Clock::new(Some(Duration::from_millis(100)));
        assert!(clock.fast_now().is_none(), "no reading before a tick");
        // A calibration interrupted between its readings keeps the last ones: try again.
        let (at, at_ms) = loop {
            clock.calibrate();
            clock.precise();
            if let Some((ns, ms, _)) = clock.fast_now() {
                break (clock.instant(ns), ms);
            }
        };
        let now = Instant::now();
        assert!(
            at <= now + Duration::from_micros(100),
            "{at:?} after {now:?}"
        );
        assert!(
            now - at < Duration::from_millis(20),
            "{at:?} long before {now:?}"
        );
        assert_eq!(at_ms, ms(at - clock.epoch));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_tokio_clock_turns_the_fast_clock_off() {
        let _alone = HEART_USERS.lock().await;
        let clock = Clock::new(Some(Duration::from_millis(100)));
        clock.calibrate();
        clock.precise();
        assert!(clock.fast_now().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        clock.calibrate();
        clock.precise();
        assert!(clock.fast_now().is_none());
    }
}
