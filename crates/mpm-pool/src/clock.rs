//! The pools' millisecond clock: coarse (refreshed by the maintenance task) or precise.

use std::sync::atomic::{AtomicU64, Ordering};

use mpm_metrics::heartbeat::{self, Beat};
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds since a pool's epoch.
pub(crate) type Ms = u64;

/// "Never" in [`Ms`].
pub(crate) const NEVER: Ms = u64::MAX;

/// How late a tick may come before readers stop trusting the coarse clock: Tokio's timers
/// fire up to a millisecond late, and the heartbeat lags by up to a beat at either end.
const STALE_SLACK: Duration =
    Duration::from_millis(2).saturating_add(heartbeat::BEAT.saturating_mul(2));

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
/// heartbeat ([`mpm_metrics::heartbeat`]: a process-wide millisecond count that a thread of
/// its own keeps, so it never stalls with a runtime, and that costs a reader one load where a TSC read cost
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
    /// The heartbeat's count from which `coarse` is stale: `stale_ms` after its last refresh (or
    /// the clock's start).
    stale_at: AtomicU64,
    /// How many milliseconds of the heartbeat after a refresh the coarse clock goes stale: a
    /// tick and [`STALE_SLACK`].
    stale_ms: Ms,
    /// The time of the last tick (only ticks set it, where any precise read moves `coarse`).
    ticked_ms: AtomicU64,
    /// This clock's registration with the heartbeat, which beats while it lives.
    _beat: Option<Beat>,
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
        let beat = tick.and_then(|_| Beat::start());
        let stale_ms = if beat.is_some() {
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
            stale_at: AtomicU64::new(heartbeat::now_ms().saturating_add(stale_ms)),
            stale_ms,
            ticked_ms: AtomicU64::new(0),
            _beat: beat,
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
        let beat = heartbeat::now_ms();
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
        (heartbeat::now_ms() < stale_at).then_some(coarse)
    }
}

#[cfg(test)]
mod tests {
    use super::{Clock, ms};
    use mpm_metrics::heartbeat;
    use std::time::Duration;
    use tokio::time::Instant;

    /// Held by the tests that make clocks with a coarse value (users of the process's
    /// heartbeat), so that those that watch it park see no other user.
    static HEART_USERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Long enough for any of these waits on a loaded machine, short of hanging.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Waits (up to [`PATIENCE`]) for the heartbeat's count to pass `beat`; returns it.
    fn beat_past(beat: u64) -> u64 {
        let until = std::time::Instant::now() + PATIENCE;
        loop {
            let now = heartbeat::now_ms();
            if now > beat {
                return now;
            }
            assert!(std::time::Instant::now() < until, "no beat past {beat}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Asserts that the heartbeat, parked, does not beat: its count does not move for 25
    /// beats (a bounded wait for a value to stay still; the park itself is awaited).
    fn stays_still() -> u64 {
        assert!(
            heartbeat::wait_parked(PATIENCE),
            "the heartbeat did not park"
        );
        let beat = heartbeat::now_ms();
        std::thread::sleep(heartbeat::BEAT * 25);
        assert_eq!(heartbeat::now_ms(), beat, "a parked heartbeat beat");
        beat
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
        beat_past(heartbeat::now_ms());
        assert_eq!(heartbeat::users(), 2);
        drop(pool);
        beat_past(heartbeat::now_ms());
        drop(keyed);
        // The maintenance tasks let go of the pools (and their clocks) once they see them
        // closed; then the heartbeat parks.
        let paused_at = stays_still();
        assert_eq!(heartbeat::users(), 0);

        let pool = crate::Pool::builder(Nothing).build().await.unwrap();
        drop(pool.get().await.unwrap());
        beat_past(paused_at);
        beat_past(heartbeat::now_ms());
        // A pool built (on another thread, without a runtime: no maintenance task holds it)
        // as the last one drops still gets beats.
        let mut current = crate::keyed::KeyedPool::builder(Nothing).build().unwrap();
        drop(pool);
        // The plain pool's task lets go of it once it sees it closed.
        while heartbeat::users() > 1 {
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
            assert_eq!(heartbeat::users(), 1);
            let beat = heartbeat::now_ms();
            beat_past(beat);
        }
        drop(current);
        stays_still();
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
        assert_eq!(heartbeat::users(), 2);
        drop(pool);
        drop(keyed);
        stays_still();
        assert_eq!(heartbeat::users(), 0);
        drop(stalled);
    }

    #[test]
    fn a_clock_made_as_the_beat_resumes_goes_stale_without_ticks() {
        let _alone = HEART_USERS.blocking_lock();
        // Started (if no test did), then parked (no other user), its count left at the last
        // beat.
        drop(Clock::new(Some(Duration::from_millis(1))));
        let paused_at = stays_still();
        std::thread::sleep(Duration::from_millis(40));
        let clock = Clock::new(Some(Duration::from_millis(1)));
        // Fresh now (its coarse value is its start), never from the old count.
        assert!(clock.fresh_coarse().is_some());
        assert!(heartbeat::now_ms() >= paused_at + 40);
        // Without a tick it goes stale once the beat passes its mark.
        let stale_from = clock.stale_at.load(std::sync::atomic::Ordering::Relaxed);
        beat_past(stale_from);
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
