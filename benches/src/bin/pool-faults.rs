//! The fault scenarios of mpm-pool, each run against mpm-pool and against the deadpool pool a
//! user would pick instead, printed as one table.
//!
//! `pool-faults [--scenario N]... [--kill-all-normal]`: runs every scenario (about 35 s), or
//! only those given.
//! Scenarios 1 and 4 need the servers at `MPM_REDIS_URL` (default `redis://127.0.0.1:6379`) and
//! `MPM_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); a scenario whose
//! server cannot be reached is skipped with a message that says how to start it. Scenarios 2
//! and 3 use an in-process manager and need no server.
//!
//! # The scenarios
//!
//! 1. **Redis connections killed while in use.** 32 tasks loop get / `PING` / drop on a pool of
//!    `max_size` 8 (mpm: `RedisManager` with default settings; deadpool: deadpool-redis). Every
//!    connection is named by `CLIENT SETNAME` (mpm: the manager's `client_name`; deadpool: a
//!    `post_create` hook). After 2 s, a separate connection kills every connection of that name
//!    in one `MULTI`/`EXEC` (the pool's connections only, so that other clients of the server are
//!    left alone; `--kill-all-normal` kills as an operator would, with `CLIENT KILL TYPE normal
//!    SKIPME yes`); the run ends 3 s later.
//! 2. **Timeouts without a live maintenance runtime.** A pool of one object is built inside a
//!    current-thread runtime A, which is then dropped; from runtime B the object is taken and
//!    held, and a second get must time out: once with the pool's 1 s acquire timeout (deadpool:
//!    `wait_timeout` 1 s) and once with a 300 ms timeout given to the call. Each wait is given
//!    up after 5 s.
//! 3. **A panicking manager method.** An in-process manager panics once in the method named
//!    (mpm: `create`, `validate`, `recycle`, `is_broken`, `close`; deadpool has only `create`
//!    and `recycle`). The probe gets and drops objects from a pool of `max_size` 2 until the
//!    panic fires, each call in its own task so that a panic reaching the caller is caught.
//! 4. **An outage of PostgreSQL under load.** The pools reach PostgreSQL through a TCP forwarder
//!    of this probe's own. 32 tasks loop get / `SELECT 1` / drop on a pool of `max_size` 8
//!    (mpm: `PgManager`, default settings, then with a default `CircuitBreaker`; deadpool:
//!    deadpool-postgres, default settings). After 1.5 s the forwarder drops every connection and
//!    refuses new ones for 3 s, then forwards again; the run ends 3 s after the restore.
//!
//! # Reading the table
//!
//! One row per scenario and pool; the rows of a scenario are adjacent, ours first. Times are
//! measured by this process, from the fault's start (the kill, the cut, the restore).
//!
//! - `errors`: failed calls (a failed get, or a command that failed on the connection got)
//!   that ended after the kill (1), or from the cut to the restore (4); `errors after the
//!   restore` (4): those that ended after it. `instant`: those that failed in under 1 ms (in
//!   1, a command on a connection already dead fails that fast; in 4, thousands of them are
//!   a caller spinning). `first error`: the text of the first error of the phase.
//! - `errors stop` (1): from the kill to the last error of the run. `all tasks ok`: from the
//!   kill until every task has had a successful call after its own last error. `never` means
//!   errors went on until the end of the run.
//! - `ok/s before` and `ok/s after`: successful calls a second before the fault, and after it
//!   (1: from the kill to the end; 4: the last second of the run), with the 500 ms after the
//!   start left out of "before". `longest call`: the slowest call of the run (a caller that
//!   waits through a fault rather than failing shows here).
//! - `idle` / `server conns` (1): at the end, the objects the pool holds idle (deadpool: its
//!   `available`) beside the connections the server lists under the pool's name. They should
//!   agree.
//! - `first ok` (4): from the restore to the first successful call; `every task served`: until
//!   each of the 32 tasks has had a successful call after the restore. `full rate`: from the
//!   restore to the end of the first 200 ms window (in 10 ms steps) with at least 80% of the
//!   calls a second before the cut (so never below 200 ms; the machine's noise moves it).
//!   `pool size`: the pool's objects 100, 200, 300 and 400 ms after the restore (mpm: idle and
//!   lent out, leaving out places still being created or waiting out a creation backoff;
//!   deadpool: its size).
//! - Scenario 2: the elapsed time of each get, and how it ended.
//! - Scenario 3: `fired`: the call during which the panic happened and what its caller got (an
//!   error's text; `panic reached caller`: the panic unwound into the caller's task; `ok`: the
//!   panic happened where the caller cannot see it, such as on release); `status`: size, in
//!   use and available after it (deadpool: available is its idle objects, in use its size
//!   less those); `next 20`: rounds that each take both objects at once (200 ms timeout), all
//!   20 or the first that failed.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpm_testkit::{Forwarder, Service};

/// A scenario's number and title.
const SCENARIOS: [(u8, &str); 4] = [
    (1, "redis killed in use"),
    (2, "timeouts, runtime gone"),
    (3, "manager panics"),
    (4, "postgres outage"),
];

/// One row of the table: a scenario, a pool, and its figures.
struct Row {
    scenario: String,
    pool: String,
    figures: Vec<String>,
}

impl Row {
    fn new(scenario: u8, pool: &str, figures: Vec<String>) -> Row {
        let title = SCENARIOS
            .iter()
            .find(|(n, _)| *n == scenario)
            .map_or("", |(_, t)| t);
        Row {
            scenario: format!("{scenario}. {title}"),
            pool: pool.to_owned(),
            figures,
        }
    }
}

fn usage() -> &'static str {
    "usage: pool-faults [--scenario N]... [--kill-all-normal]\n  \
     --scenario N       run scenario N (1 to 4); all four without it\n  \
     --kill-all-normal  scenario 1 kills with CLIENT KILL TYPE normal SKIPME yes: every\n                     \
     normal client of the Redis server, not only the pool's"
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Options {
    scenarios: Vec<u8>,
    kill_all_normal: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut chosen = Vec::new();
    let mut kill_all_normal = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = match arg.as_str() {
            "--kill-all-normal" => {
                kill_all_normal = true;
                continue;
            }
            "--scenario" | "-s" => it
                .next()
                .ok_or_else(|| format!("{arg} needs a number\n{}", usage()))?
                .clone(),
            "--help" | "-h" => return Err(usage().to_owned()),
            other => match other.strip_prefix("--scenario=") {
                Some(v) => v.to_owned(),
                None => return Err(format!("unknown argument {other:?}\n{}", usage())),
            },
        };
        match value.parse::<u8>() {
            Ok(n) if (1..=4).contains(&n) => {
                if !chosen.contains(&n) {
                    chosen.push(n);
                }
            }
            _ => return Err(format!("no scenario {value:?}\n{}", usage())),
        }
    }
    if chosen.is_empty() {
        chosen = vec![1, 2, 3, 4];
    }
    Ok(Options {
        scenarios: chosen,
        kill_all_normal,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("pool-faults: {message}");
            return ExitCode::FAILURE;
        }
    };
    quiet_injected_panics();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for n in options.scenarios {
        eprintln!("pool-faults: scenario {n}...");
        let result = match n {
            2 => runtime_gone::run(),
            _ => match multi_thread_runtime() {
                Ok(rt) => rt.block_on(async {
                    match n {
                        1 => redis_kill::run(options.kill_all_normal).await,
                        3 => panics::run().await,
                        _ => outage::run().await,
                    }
                }),
                Err(e) => Err(format!("could not start a Tokio runtime: {e}")),
            },
        };
        match result {
            Ok(mut r) => rows.append(&mut r),
            Err(why) => {
                eprintln!("pool-faults: scenario {n} skipped: {why}");
                skipped.push(format!("scenario {n} skipped: {why}"));
            }
        }
    }
    print_table(&rows);
    for s in &skipped {
        println!("{s}");
    }
    ExitCode::SUCCESS
}

fn multi_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The panics this probe injects are expected: the hook stays silent on them and reports
/// any other as usual.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if panic_text(info.payload()).starts_with(panics::INJECTED) {
            return;
        }
        default(info);
    }));
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn print_table(rows: &[Row]) {
    let w_scenario = rows
        .iter()
        .map(|r| r.scenario.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let w_pool = rows
        .iter()
        .map(|r| r.pool.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:w_scenario$}  {:w_pool$}  figures",
        "scenario", "pool"
    );
    let _ = writeln!(
        out,
        "{}  {}  {}",
        "-".repeat(w_scenario),
        "-".repeat(w_pool),
        "-".repeat(60)
    );
    let mut last = "";
    for row in rows {
        if !last.is_empty() && last != row.scenario {
            out.push('\n');
        }
        let scenario = if last == row.scenario {
            ""
        } else {
            &row.scenario
        };
        last = &row.scenario;
        for (i, figure) in row.figures.iter().enumerate() {
            let (s, p) = if i == 0 {
                (scenario, row.pool.as_str())
            } else {
                ("", "")
            };
            let _ = writeln!(out, "{s:w_scenario$}  {p:w_pool$}  {figure}");
        }
    }
    print!("{out}");
}

/// `n` as a capacity; 1 for 0.
fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Thousands separated by commas, for counts that run into millions.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What to tell a reader whose `service` is missing.
fn how_to_start(service: Service) -> String {
    format!(
        "start it with: {} (or set {})",
        service.start_hint(),
        service.env_var()
    )
}

/// What a load loop records: calls per 10 ms bucket, and each task's errors after the fault.
mod load {
    use super::*;

    /// The width of a bucket.
    pub(crate) const BUCKET: Duration = Duration::from_millis(10);
    /// An error that came back faster than this is counted as instant (spinning).
    pub(crate) const INSTANT: Duration = Duration::from_millis(1);

    /// Counts shared by the tasks of one run.
    pub(crate) struct Recorder {
        pub(crate) start: Instant,
        ok: Vec<AtomicU64>,
        pub(crate) stop: AtomicBool,
        /// Micros from the start to the first success of the run at or after `mark`.
        first_ok_after_mark: AtomicU64,
        /// Micros from the start of the last mark (the fault, or the restore); `u64::MAX`
        /// before.
        mark: AtomicU64,
        /// 0 before the first mark, then 1, then 2 (at most).
        phase: AtomicUsize,
        /// The first error of each phase.
        first_error: std::sync::Mutex<[Option<String>; PHASES]>,
    }

    /// Phases of a run: before the fault, the fault, after it ends.
    pub(crate) const PHASES: usize = 3;

    /// One task's story after the fault.
    #[derive(Default, Clone, Copy)]
    pub(crate) struct TaskEnd {
        /// Errors in each phase, by the phase at the call's end.
        pub(crate) errors: [u64; PHASES],
        /// Of those, the errors that came back in under `INSTANT`.
        pub(crate) instant: [u64; PHASES],
        /// The last error of the current phase.
        pub(crate) last_error: Option<Instant>,
        /// The first success after `last_error`.
        pub(crate) ok_after_error: Option<Instant>,
        /// The longest call of the run, success or failure.
        pub(crate) longest: Duration,
        /// The task's first success in the current phase.
        pub(crate) first_ok: Option<Instant>,
    }

    impl Recorder {
        pub(crate) fn new(run: Duration) -> Arc<Recorder> {
            let n = (run.as_millis() / BUCKET.as_millis()) as usize + 100;
            let zeros = || (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
            Arc::new(Recorder {
                start: Instant::now(),
                ok: zeros(),
                stop: AtomicBool::new(false),
                first_ok_after_mark: AtomicU64::new(u64::MAX),
                mark: AtomicU64::new(u64::MAX),
                phase: AtomicUsize::new(0),
                first_error: std::sync::Mutex::new([None, None, None]),
            })
        }

        fn bucket(&self, at: Instant) -> usize {
            let i = (at.saturating_duration_since(self.start).as_millis() / BUCKET.as_millis())
                as usize;
            i.min(self.ok.len() - 1)
        }

        /// Marks now as the moment the fault starts (or ends): the next phase starts here.
        pub(crate) fn mark(&self) -> Instant {
            let now = Instant::now();
            self.mark.store(
                now.duration_since(self.start).as_micros() as u64,
                Ordering::SeqCst,
            );
            self.first_ok_after_mark.store(u64::MAX, Ordering::SeqCst);
            let next = (self.phase.load(Ordering::SeqCst) + 1).min(PHASES - 1);
            self.phase.store(next, Ordering::SeqCst);
            now
        }

        /// The first error of `phase`, if any.
        pub(crate) fn first_error(&self, phase: usize) -> Option<String> {
            self.first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(phase)
                .and_then(Option::take)
        }

        pub(crate) fn ok(&self, at: Instant) {
            self.ok[self.bucket(at)].fetch_add(1, Ordering::Relaxed);
            let micros = at.saturating_duration_since(self.start).as_micros() as u64;
            if micros >= self.mark.load(Ordering::Relaxed) {
                self.first_ok_after_mark
                    .fetch_min(micros, Ordering::Relaxed);
            }
        }

        fn err(&self, phase: usize, what: String) {
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot @ None) = first.get_mut(phase) {
                *slot = Some(what);
            }
        }

        /// Time from the start of the mark to the first success at or after it.
        pub(crate) fn first_ok_after_mark(&self, mark: Instant) -> Option<Duration> {
            match self.first_ok_after_mark.load(Ordering::SeqCst) {
                u64::MAX => None,
                m => Some((self.start + Duration::from_micros(m)).saturating_duration_since(mark)),
            }
        }

        /// Successes in the whole buckets between `from` and `to`.
        pub(crate) fn oks(&self, from: Instant, to: Instant) -> u64 {
            let (a, b) = (self.bucket(from), self.bucket(to));
            self.ok[a..b.max(a)]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum()
        }

        /// Successes a second between `from` and `to`.
        pub(crate) fn rate(&self, from: Instant, to: Instant) -> f64 {
            let (a, b) = (self.bucket(from), self.bucket(to));
            let span = BUCKET.as_secs_f64() * (b.saturating_sub(a)) as f64;
            if span <= 0.0 {
                0.0
            } else {
                self.oks(from, to) as f64 / span
            }
        }

        /// From `mark` to the end of the first window of `window` (whole buckets) from `mark`
        /// on in which successes reach `target` a second, before `end`.
        pub(crate) fn full_rate_after(
            &self,
            mark: Instant,
            end: Instant,
            window: Duration,
            target: f64,
        ) -> Option<Duration> {
            let w = (window.as_millis() / BUCKET.as_millis()) as usize;
            let need = target * window.as_secs_f64();
            let (a, b) = (self.bucket(mark) + 1, self.bucket(end));
            let oks: Vec<u64> = self.ok[..b.max(a)]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
            (a..b.saturating_sub(w)).find_map(|i| {
                let sum: u64 = oks[i..i + w].iter().sum();
                (sum as f64 >= need)
                    .then(|| (self.start + BUCKET * (i + w) as u32).saturating_duration_since(mark))
            })
        }
    }

    /// A loop of calls in one task until the recorder says stop: `call` is one get / command /
    /// drop, `Ok` on success, `Err(text)` on failure. The task's story after the mark.
    pub(crate) async fn task<F, Fut>(rec: Arc<Recorder>, call: F) -> TaskEnd
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut end = TaskEnd::default();
        let mut phase = 0;
        while !rec.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let result = call().await;
            let at = Instant::now();
            end.longest = end.longest.max(at.duration_since(started));
            let now = rec.phase.load(Ordering::SeqCst).min(PHASES - 1);
            if now != phase {
                phase = now;
                end.first_ok = None;
                end.last_error = None;
                end.ok_after_error = None;
            }
            let after_mark = phase > 0;
            match result {
                Ok(()) => {
                    rec.ok(at);
                    if after_mark && end.first_ok.is_none() {
                        end.first_ok = Some(at);
                    }
                    if after_mark && end.last_error.is_some() && end.ok_after_error.is_none() {
                        end.ok_after_error = Some(at);
                    }
                }
                Err(e) => {
                    end.errors[phase] += 1;
                    if at.duration_since(started) < INSTANT {
                        end.instant[phase] += 1;
                    }
                    if end.errors[phase] == 1 {
                        rec.err(phase, e);
                    }
                    if after_mark {
                        end.last_error = Some(at);
                        end.ok_after_error = None;
                    }
                }
            }
            // A call that fails at once would otherwise keep a worker thread to itself.
            tokio::task::yield_now().await;
        }
        end
    }

    /// Errors, and instant errors, of all tasks in `phase`.
    pub(crate) fn errors(ends: &[TaskEnd], phase: usize) -> (u64, u64) {
        ends.iter().fold((0, 0), |(e, i), end| {
            (e + end.errors[phase], i + end.instant[phase])
        })
    }

    /// From `mark` until every task had a success after it (`None`: some task never did).
    pub(crate) fn every_task_served(ends: &[TaskEnd], mark: Instant) -> Option<Duration> {
        ends.iter().try_fold(Duration::ZERO, |latest, e| {
            e.first_ok
                .map(|ok| latest.max(ok.saturating_duration_since(mark)))
        })
    }

    /// The longest call of all tasks.
    pub(crate) fn longest(ends: &[TaskEnd]) -> Duration {
        ends.iter().map(|e| e.longest).max().unwrap_or_default()
    }

    /// From `mark` to the last error, and to the moment every task had a success after its
    /// own last error (`None`: some task never did, before `end`).
    pub(crate) fn healing(ends: &[TaskEnd], mark: Instant) -> (Duration, Option<Duration>) {
        let mut last_error = Duration::ZERO;
        let mut all_ok = Some(Duration::ZERO);
        for e in ends {
            if let Some(err) = e.last_error {
                last_error = last_error.max(err.saturating_duration_since(mark));
                all_ok = match (all_ok, e.ok_after_error) {
                    (Some(a), Some(ok)) => Some(a.max(ok.saturating_duration_since(mark))),
                    _ => None,
                };
            }
        }
        (last_error, all_ok)
    }
}

/// Scenario 1: Redis connections killed while in use.
mod redis_kill {
    use super::load::{Recorder, TaskEnd};
    use super::*;
    use redis::aio::MultiplexedConnection;

    const TASKS: usize = 32;
    const MAX_SIZE: usize = 8;
    const BEFORE: Duration = Duration::from_secs(2);
    const AFTER: Duration = Duration::from_secs(3);
    /// Connections are named `<prefix>-<pool>-<process id>`.
    const PREFIX: &str = "pool-faults";

    pub(crate) async fn run(kill_all_normal: bool) -> Result<Vec<Row>, String> {
        let url = Service::Redis.url();
        let mut admin = connect(&url).await?;
        let mut rows = Vec::new();

        let name = format!("{PREFIX}-mpm-{}", std::process::id());
        let manager = mpm_pool::redis::RedisManager::new(url.as_str())
            .map_err(|e| format!("bad Redis URL {url}: {e}"))?
            .client_name(name.clone());
        let pool = mpm_pool::Pool::builder(manager)
            .max_size(nz(MAX_SIZE))
            .build()
            .await
            .map_err(|e| format!("could not build the mpm pool: {e}"))?;
        let call = {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move {
                    let mut c = pool.get().await.map_err(|e| e.to_string())?;
                    ping(&mut *c).await
                }
            }
        };
        let figures = probe(&mut admin, &name, kill_all_normal, call, || {
            pool.status().idle
        })
        .await?;
        rows.push(Row::new(1, "mpm", figures));
        drop(pool);

        let name = format!("{PREFIX}-deadpool-{}", std::process::id());
        let manager = deadpool_redis::Manager::new(url.as_str())
            .map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        let hook_name = name.clone();
        let pool = deadpool_redis::Pool::builder(manager)
            .max_size(MAX_SIZE)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .post_create(deadpool::managed::Hook::async_fn(
                move |conn: &mut MultiplexedConnection, _| {
                    let name = hook_name.clone();
                    Box::pin(async move {
                        redis::cmd("CLIENT")
                            .arg("SETNAME")
                            .arg(name)
                            .query_async::<()>(conn)
                            .await
                            .map_err(deadpool::managed::HookError::Backend)
                    })
                },
            ))
            .build()
            .map_err(|e| format!("could not build the deadpool-redis pool: {e}"))?;
        let call = {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move {
                    let mut c = pool.get().await.map_err(|e| e.to_string())?;
                    ping(&mut c).await
                }
            }
        };
        let figures = probe(&mut admin, &name, kill_all_normal, call, || {
            pool.status().available
        })
        .await?;
        rows.push(Row::new(1, "deadpool-redis", figures));
        Ok(rows)
    }

    /// `PING` on a pooled connection, answered `PONG`.
    async fn ping<C: redis::aio::ConnectionLike + Send>(c: &mut C) -> Result<(), String> {
        let pong: String = redis::cmd("PING")
            .query_async(c)
            .await
            .map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("PING answered {pong:?}"))
        }
    }

    async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
        let how = how_to_start(Service::Redis);
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| format!("Redis at {url} did not answer within 3 s; {how}"))?
        .map_err(|e| format!("Redis at {url} is not reachable ({e}); {how}"))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("Redis at {url} does not answer PING ({e}); {how}"))?;
        Ok(conn)
    }

    /// The ids of the server's connections named `name`.
    async fn named(admin: &mut MultiplexedConnection, name: &str) -> Result<Vec<i64>, String> {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(admin)
            .await
            .map_err(|e| format!("CLIENT LIST failed: {e}"))?;
        Ok(list
            .lines()
            .filter(|l| l.split(' ').any(|f| f == format!("name={name}")))
            .filter_map(|l| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix("id="))
                    .and_then(|id| id.parse().ok())
            })
            .collect())
    }

    /// Kills every connection named `name` at once; how many were killed.
    async fn kill(admin: &mut MultiplexedConnection, name: &str) -> Result<usize, String> {
        let ids = named(admin, name).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for id in &ids {
            pipe.cmd("CLIENT").arg("KILL").arg("ID").arg(*id);
        }
        let killed: Vec<i64> = pipe
            .query_async(admin)
            .await
            .map_err(|e| format!("CLIENT KILL failed: {e}"))?;
        Ok(killed.iter().filter(|k| **k == 1).count())
    }

    /// Kills every normal client of the server but this one; how many were killed.
    async fn kill_normal(admin: &mut MultiplexedConnection) -> Result<usize, String> {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async::<usize>(admin)
            .await
            .map_err(|e| format!("CLIENT KILL failed: {e}"))
    }

    async fn probe<F, Fut>(
        admin: &mut MultiplexedConnection,
        name: &str,
        kill_all_normal: bool,
        call: F,
        idle: impl Fn() -> usize,
    ) -> Result<Vec<String>, String>
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let rec = Recorder::new(BEFORE + AFTER);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| tokio::spawn(load::task(Arc::clone(&rec), call.clone())))
            .collect();
        tokio::time::sleep(BEFORE).await;
        let ids = named(admin, name).await?.len();
        let at = rec.mark();
        let killed = if kill_all_normal {
            kill_normal(admin).await
        } else {
            kill(admin, name).await
        };
        tokio::time::sleep(AFTER).await;
        let end = Instant::now();
        rec.stop.store(true, Ordering::SeqCst);
        let mut ends: Vec<TaskEnd> = Vec::new();
        for h in handles {
            ends.push(h.await.unwrap_or_default());
        }
        let killed = killed?;
        // Let the pool settle: connections freed by the last calls are back.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let idle = idle();
        let server = named(admin, name).await?.len();

        let (errors, instant) = load::errors(&ends, 1);
        let (last_error, all_ok) = load::healing(&ends, at);
        let before = rec.rate(rec.start + Duration::from_millis(500), at);
        let after = rec.rate(at, end);
        let never = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), ms);
        let stop = if errors == 0 {
            "no errors".to_owned()
        } else if end.saturating_duration_since(at + last_error) < Duration::from_millis(50) {
            format!("never (errors until the end, {})", secs(AFTER))
        } else {
            ms(last_error)
        };
        let mut figures = vec![
            if kill_all_normal {
                format!(
                    "killed {killed} normal clients ({ids} of them the pool's) at {}",
                    secs(BEFORE)
                )
            } else {
                format!(
                    "killed {killed} of {ids} named connections at {}",
                    secs(BEFORE)
                )
            },
            format!(
                "errors after the kill: {} ({} instant)",
                count(errors),
                count(instant)
            ),
            format!("errors stop: {stop}; all tasks ok: {}", never(all_ok)),
            format!(
                "ok/s before: {}; after: {}; longest call {}",
                count(before as u64),
                count(after as u64),
                ms(load::longest(&ends))
            ),
            format!("at the end: idle {idle}, server conns {server}"),
        ];
        if let Some(e) = rec.first_error(1) {
            figures.push(format!("first error: {}", clip(&e)));
        }
        Ok(figures)
    }
}

/// An error's text cut to a line's worth.
fn clip(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > 90 {
        format!("{}...", one_line.chars().take(90).collect::<String>())
    } else {
        one_line
    }
}

/// In-process managers for scenarios 2 and 3: an object is a number.
mod counting {
    use super::*;
    use std::sync::Mutex;

    /// The error of these managers (never returned: they only panic).
    #[derive(Debug)]
    pub(crate) struct Never;

    impl std::fmt::Display for Never {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("never")
        }
    }

    impl std::error::Error for Never {}

    /// Makes numbered objects; panics once in the method it is armed for.
    #[derive(Default)]
    pub(crate) struct Counting {
        next: AtomicU64,
        armed: Mutex<Option<&'static str>>,
        fired: AtomicBool,
    }

    impl Counting {
        pub(crate) fn arm(&self, method: &'static str) {
            *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(method);
        }

        pub(crate) fn fired(&self) -> bool {
            self.fired.load(Ordering::SeqCst)
        }

        fn maybe_panic(&self, method: &'static str) {
            let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
            if *armed == Some(method) {
                *armed = None;
                drop(armed);
                self.fired.store(true, Ordering::SeqCst);
                panic!("{} {method}", super::panics::INJECTED);
            }
        }

        fn make(&self) -> u64 {
            self.maybe_panic("create");
            self.next.fetch_add(1, Ordering::Relaxed)
        }
    }

    impl mpm_pool::Manager for Counting {
        type Object = u64;
        type Error = Never;

        async fn create(&self) -> Result<u64, Never> {
            Ok(self.make())
        }

        async fn validate(&self, _: &mut u64) -> Result<(), Never> {
            self.maybe_panic("validate");
            Ok(())
        }

        async fn recycle(&self, _: &mut u64) -> Result<(), Never> {
            self.maybe_panic("recycle");
            Ok(())
        }

        fn is_broken(&self, _: &mut u64) -> bool {
            self.maybe_panic("is_broken");
            false
        }

        fn close(&self, _: u64) {
            self.maybe_panic("close");
        }
    }

    impl deadpool::managed::Manager for Counting {
        type Type = u64;
        type Error = Never;

        async fn create(&self) -> Result<u64, Never> {
            Ok(self.make())
        }

        async fn recycle(
            &self,
            _: &mut u64,
            _: &deadpool::managed::Metrics,
        ) -> deadpool::managed::RecycleResult<Never> {
            self.maybe_panic("recycle");
            Ok(())
        }
    }
}

/// Scenario 2: a pool built in a runtime that is gone, used from another.
mod runtime_gone {
    use super::counting::Counting;
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);
    const SHORT: Duration = Duration::from_millis(300);
    const GIVE_UP: Duration = Duration::from_secs(5);

    /// Builds `make`'s pool inside a current-thread runtime on its own thread, and drops that
    /// runtime.
    fn built_in_a_dropped_runtime<P, F, Fut>(make: F) -> Result<P, String>
    where
        P: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<P, String>>,
    {
        std::thread::spawn(move || {
            let a = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start runtime A: {e}"))?;
            a.block_on(make())
            // Runtime A shuts down here, and its tasks with it.
        })
        .join()
        .map_err(|_| "building the pool in runtime A panicked".to_owned())?
    }

    fn runtime_b() -> Result<tokio::runtime::Runtime, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("could not start runtime B: {e}"))
    }

    /// The first get, of the pool's one free object (held while the timed gets wait), given
    /// up at `GIVE_UP`; or why it failed.
    async fn first_get<T, E: std::fmt::Display>(
        get: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(GIVE_UP, get).await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(format!("the first get failed: {e}")),
            Err(_) => Err(format!(
                "the first get (a free object) still waited after {}",
                secs(GIVE_UP)
            )),
        }
    }

    /// How long `get` took and how it ended, given up at `GIVE_UP`.
    async fn timed<T, E: std::fmt::Display>(
        what: &str,
        get: impl std::future::Future<Output = Result<T, E>>,
    ) -> String {
        let started = Instant::now();
        match tokio::time::timeout(GIVE_UP, get).await {
            Ok(Ok(_)) => format!(
                "{what}: {} -> got an object (the pool is full!)",
                secs(started.elapsed())
            ),
            Ok(Err(e)) => format!(
                "{what}: {} -> {}",
                secs(started.elapsed()),
                clip(&e.to_string())
            ),
            Err(_) => format!("{what}: still waiting after {}, given up", secs(GIVE_UP)),
        }
    }

    pub(crate) fn run() -> Result<Vec<Row>, String> {
        let mut rows = Vec::new();

        let pool = built_in_a_dropped_runtime(|| async {
            mpm_pool::Pool::builder(Counting::default())
                .max_size(nz(1))
                .min_idle(1)
                .acquire_timeout(Some(TIMEOUT))
                .build()
                .await
                .map_err(|e| format!("could not build the mpm pool: {e}"))
        })?;
        let figures = runtime_b()?.block_on(async {
            let mut figures = Vec::new();
            let held = match first_get(pool.get()).await {
                Ok(o) => o,
                Err(why) => return vec![why],
            };
            figures.push(timed("get, 1 s acquire timeout", pool.get()).await);
            figures.push(timed("get_timeout(300 ms)", pool.get_timeout(Some(SHORT))).await);
            drop(held);
            figures
        });
        rows.push(Row::new(2, "mpm", figures));

        let pool = built_in_a_dropped_runtime(|| async {
            let pool = deadpool::managed::Pool::<Counting>::builder(Counting::default())
                .max_size(1)
                .wait_timeout(Some(TIMEOUT))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| format!("could not build the deadpool pool: {e}"))?;
            // One object, as the other pool's min_idle.
            drop(
                pool.get()
                    .await
                    .map_err(|e| format!("the first get failed: {e}"))?,
            );
            Ok(pool)
        })?;
        let figures = runtime_b()?.block_on(async {
            let mut figures = Vec::new();
            let held = match first_get(pool.get()).await {
                Ok(o) => o,
                Err(why) => return vec![why],
            };
            figures.push(timed("get, wait_timeout 1 s", pool.get()).await);
            let short = deadpool::managed::Timeouts {
                wait: Some(SHORT),
                ..Default::default()
            };
            figures.push(timed("timeout_get(wait 300 ms)", pool.timeout_get(&short)).await);
            drop(held);
            figures
        });
        rows.push(Row::new(2, "deadpool", figures));
        Ok(rows)
    }
}

/// Scenario 3: a manager method panics once.
mod panics {
    use super::counting::Counting;
    use super::*;

    /// The start of every injected panic's message.
    pub(crate) const INJECTED: &str = "injected panic in";

    const MAX_SIZE: usize = 2;
    const ROUNDS: usize = 20;
    const ROUND_TIMEOUT: Duration = Duration::from_millis(200);

    /// What one get-and-drop in its own task gave its caller.
    async fn one_call<F>(call: F) -> String
    where
        F: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        match tokio::spawn(call).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => clip(&e),
            Err(e) if e.is_panic() => {
                format!("panic reached caller: {}", panic_text(&*e.into_panic()))
            }
            Err(e) => format!("task ended: {e}"),
        }
    }

    pub(crate) async fn run() -> Result<Vec<Row>, String> {
        let mut rows = Vec::new();
        for method in ["create", "validate", "recycle", "is_broken", "close"] {
            rows.push(Row::new(3, &format!("mpm {method}"), mpm(method).await));
        }
        for method in ["create", "recycle"] {
            rows.push(Row::new(
                3,
                &format!("deadpool {method}"),
                deadpool(method).await,
            ));
        }
        Ok(rows)
    }

    async fn mpm(method: &'static str) -> Vec<String> {
        let manager = Arc::new(Counting::default());
        let pool = match mpm_pool::Pool::builder(Arc::clone(&manager))
            .max_size(nz(MAX_SIZE))
            // Validate on every get, so that `validate` runs.
            .skip_validation_within(Duration::ZERO)
            .acquire_timeout(Some(Duration::from_secs(1)))
            .build()
            .await
        {
            Ok(p) => p,
            Err(e) => return vec![format!("could not build the pool: {e}")],
        };
        manager.arm(method);
        let mut fired = "did not fire in 4 calls".to_owned();
        for i in 1..=4 {
            let p = pool.clone();
            let outcome = one_call(async move {
                let mut o = p.get().await.map_err(|e| e.to_string())?;
                if method == "close" {
                    // Closed on release, not kept.
                    mpm_pool::Object::discard(&mut o);
                }
                drop(o);
                Ok(())
            })
            .await;
            if manager.fired() {
                fired = format!("fired: call {i} -> {}", caller_saw(&outcome));
                break;
            }
        }
        let s = pool.status();
        let status = format!(
            "status: size {} in_use {} available {}",
            s.size, s.in_use, s.available
        );
        let next = rounds(|| {
            let p = pool.clone();
            async move {
                let a = p
                    .get_timeout(Some(ROUND_TIMEOUT))
                    .await
                    .map_err(|e| e.to_string())?;
                let b = p
                    .get_timeout(Some(ROUND_TIMEOUT))
                    .await
                    .map_err(|e| e.to_string())?;
                drop((a, b));
                Ok(())
            }
        })
        .await;
        vec![fired, status, next]
    }

    async fn deadpool(method: &'static str) -> Vec<String> {
        let manager = Counting::default();
        let pool = match deadpool::managed::Pool::<Counting>::builder(manager)
            .max_size(MAX_SIZE)
            .wait_timeout(Some(Duration::from_secs(1)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
        {
            Ok(p) => p,
            Err(e) => return vec![format!("could not build the pool: {e}")],
        };
        pool.manager().arm(method);
        let mut fired = "did not fire in 4 calls".to_owned();
        for i in 1..=4 {
            let p = pool.clone();
            let outcome = one_call(async move {
                drop(p.get().await.map_err(|e| e.to_string())?);
                Ok(())
            })
            .await;
            if pool.manager().fired() {
                fired = format!("fired: call {i} -> {}", caller_saw(&outcome));
                break;
            }
        }
        let s = pool.status();
        let status = format!(
            "status: size {} in_use {} available {}",
            s.size,
            s.size.saturating_sub(s.available),
            s.available
        );
        let short = deadpool::managed::Timeouts {
            wait: Some(ROUND_TIMEOUT),
            ..Default::default()
        };
        let next = rounds(|| {
            let p = pool.clone();
            async move {
                let a = p.timeout_get(&short).await.map_err(|e| e.to_string())?;
                let b = p.timeout_get(&short).await.map_err(|e| e.to_string())?;
                drop((a, b));
                Ok(())
            }
        })
        .await;
        vec![fired, status, next]
    }

    fn caller_saw(outcome: &str) -> String {
        if outcome == "ok" {
            "ok (no error reached the caller)".to_owned()
        } else {
            outcome.to_owned()
        }
    }

    /// Runs `ROUNDS` rounds (each in its own task); all ok, or the first that failed.
    async fn rounds<F, Fut>(round: F) -> String
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        for i in 1..=ROUNDS {
            let outcome = one_call(round()).await;
            if outcome != "ok" {
                return format!("next {ROUNDS} (both objects each): round {i} failed: {outcome}");
            }
        }
        format!("next {ROUNDS} (both objects each): all ok")
    }
}

/// Scenario 4: PostgreSQL cut off by a forwarder, and back.
mod outage {
    use super::load::{Recorder, TaskEnd};
    use super::*;

    const TASKS: usize = 32;
    const MAX_SIZE: usize = 8;
    const BEFORE: Duration = Duration::from_millis(1500);
    const OUTAGE: Duration = Duration::from_secs(3);
    const AFTER: Duration = Duration::from_secs(3);
    /// The pool's size is read this often in the first moments after the restore.
    const SIZE_EVERY: Duration = Duration::from_millis(100);

    pub(crate) async fn run() -> Result<Vec<Row>, String> {
        let url = Service::Postgres.url();
        let server: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("bad PostgreSQL URL {url}: {e}"))?;
        check(&server, &url).await?;
        let (forwarder, config) = Forwarder::to_postgres(&server)
            .await
            .map_err(|e| format!("could not start the forwarder on 127.0.0.1: {e}"))?;

        let mut rows = Vec::new();
        for breaker in [false, true] {
            let mut builder = mpm_pool::Pool::builder(mpm_pool::postgres::PgManager::new(
                config.clone(),
                tokio_postgres::NoTls,
            ))
            .max_size(nz(MAX_SIZE));
            if breaker {
                builder = builder.circuit_breaker(mpm_pool::CircuitBreaker::default());
            }
            let pool = builder
                .build()
                .await
                .map_err(|e| format!("could not build the mpm pool: {e}"))?;
            let call = {
                let pool = pool.clone();
                move || {
                    let pool = pool.clone();
                    async move {
                        let c = pool.get().await.map_err(|e| e.to_string())?;
                        select_1(&c).await
                    }
                }
            };
            let live = || {
                let s = pool.status();
                s.idle + s.in_use
            };
            let figures = probe(&forwarder, call, live).await;
            let name = if breaker { "mpm + breaker" } else { "mpm" };
            rows.push(Row::new(4, name, figures));
            pool.close();
        }

        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(MAX_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("could not build the deadpool-postgres pool: {e}"))?;
        let call = {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move {
                    let c = pool.get().await.map_err(|e| e.to_string())?;
                    select_1(&c).await
                }
            }
        };
        let figures = probe(&forwarder, call, || pool.status().size).await;
        rows.push(Row::new(4, "deadpool-postgres", figures));
        pool.close();
        Ok(rows)
    }

    async fn select_1(c: &tokio_postgres::Client) -> Result<(), String> {
        let row = c
            .query_one("SELECT 1", &[])
            .await
            .map_err(|e| e.to_string())?;
        match row.try_get::<_, i32>(0) {
            Ok(1) => Ok(()),
            Ok(n) => Err(format!("SELECT 1 answered {n}")),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn check(server: &tokio_postgres::Config, url: &str) -> Result<(), String> {
        let how = how_to_start(Service::Postgres);
        let (client, connection) = tokio::time::timeout(
            Duration::from_secs(3),
            server.connect(tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| format!("PostgreSQL at {url} did not answer within 3 s; {how}"))?
        .map_err(|e| format!("PostgreSQL at {url} is not reachable ({e}); {how}"))?;
        let driver = tokio::spawn(connection);
        let result = client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| format!("PostgreSQL at {url} does not answer SELECT 1 ({e}); {how}"));
        drop(client);
        let _ = driver.await;
        result
    }

    async fn probe<F, Fut>(forwarder: &Forwarder, call: F, size: impl Fn() -> usize) -> Vec<String>
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        forwarder.set_up(true);
        let rec = Recorder::new(BEFORE + OUTAGE + AFTER);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| tokio::spawn(load::task(Arc::clone(&rec), call.clone())))
            .collect();
        tokio::time::sleep(BEFORE).await;
        let cut = rec.mark();
        forwarder.set_up(false);
        tokio::time::sleep(OUTAGE).await;
        let restore = rec.mark();
        forwarder.set_up(true);
        let mut sizes = Vec::new();
        for _ in 0..4 {
            tokio::time::sleep(SIZE_EVERY).await;
            sizes.push(size().to_string());
        }
        tokio::time::sleep(AFTER - SIZE_EVERY * 4).await;
        let end = Instant::now();
        rec.stop.store(true, Ordering::SeqCst);
        let mut ends: Vec<TaskEnd> = Vec::new();
        for h in handles {
            ends.push(h.await.unwrap_or_default());
        }

        let before = rec.rate(rec.start + Duration::from_millis(500), cut);
        let (errors, instant) = load::errors(&ends, 1);
        let (errors_after, _) = load::errors(&ends, 2);
        let first_ok = rec.first_ok_after_mark(restore);
        let full = rec.full_rate_after(restore, end, Duration::from_millis(200), 0.8 * before);
        let last = rec.rate(end - Duration::from_secs(1), end);
        let (_, all_ok) = load::healing(&ends, restore);
        let never = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), ms);
        let mut figures = vec![
            format!(
                "errors during the {} outage: {} ({} instant)",
                secs(OUTAGE),
                count(errors),
                count(instant)
            ),
            format!(
                "after the restore: first ok {}; every task served {}; full rate {}",
                never(first_ok),
                never(load::every_task_served(&ends, restore)),
                never(full),
            ),
            format!(
                "pool size at +100/200/300/400 ms: {} of {MAX_SIZE}",
                sizes.join("/")
            ),
            format!(
                "errors after the restore: {}; all tasks ok after their last error: {}",
                count(errors_after),
                never(all_ok)
            ),
            format!(
                "ok/s before: {}; last second: {}; longest call {}",
                count(before as u64),
                count(last as u64),
                ms(load::longest(&ends))
            ),
        ];
        if let Some(e) = rec.first_error(1) {
            figures.push(format!("first error in the outage: {}", clip(&e)));
        }
        if let Some(e) = rec.first_error(2) {
            figures.push(format!("first error after the restore: {}", clip(&e)));
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments() {
        let scenarios = |a: &[&str]| parse_args(&args(a)).unwrap().scenarios;
        assert_eq!(scenarios(&[]), vec![1, 2, 3, 4]);
        assert_eq!(scenarios(&["--scenario", "3"]), vec![3]);
        assert_eq!(
            scenarios(&["--scenario=4", "-s", "1", "-s", "4"]),
            vec![4, 1]
        );
        assert!(!parse_args(&[]).unwrap().kill_all_normal);
        assert_eq!(
            parse_args(&args(&["--kill-all-normal", "-s", "1"])).unwrap(),
            Options {
                scenarios: vec![1],
                kill_all_normal: true
            }
        );
        assert!(parse_args(&args(&["--scenario"])).is_err());
        assert!(parse_args(&args(&["--scenario", "5"])).is_err());
        assert!(parse_args(&args(&["--scenario", "x"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
