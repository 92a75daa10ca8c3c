//! `Redis`: one server's connection, shared by the tiers and buses built on it: the redis
//! crate's multiplexed, reconnecting `ConnectionManager`, the runtime thread that drives it,
//! and what the crate knows about the server's health (so calls fail fast while it is down).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, ProtocolVersion, PushInfo, PushKind, RedisError};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::Error;
use crate::wait;

/// A handle on one Redis server: a multiplexed connection that reconnects by itself, driven by
/// a runtime thread of the crate's own, shared by every [`RedisTier`](crate::RedisTier) and
/// [`RedisInvalidationBus`](crate::RedisInvalidationBus) built on it. Clones share it; the
/// thread stops when the last clone (and the last tier or bus built on it) is dropped.
///
/// Synchronous callers (the [`Tier`](mpm_cache::Tier) methods) wait for the thread with a
/// deadline, so they may run on any thread, inside a Tokio runtime or not. While the server
/// is known to be down (a call timed out or the connection dropped), calls fail at once and a
/// background probe pings the server until it answers; then calls go through again.
///
/// The server must speak RESP3 (Redis 6 or later): the connection is told at once when it
/// drops, instead of at the next call.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

struct Shared {
    handle: Handle,
    thread: ThreadId,
    client: Client,
    manager: ConnectionManager,
    name: String,
    health: Health,
    config: Config,
    _stop: oneshot::Sender<()>,
}

#[derive(Clone, Debug)]
struct Config {
    connect_timeout: Duration,
    probe_max_interval: Duration,
}

struct Health {
    down: AtomicBool,
    probing: AtomicBool,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("name", &self.shared.name)
            .field("down", &self.is_down())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Redis`] handle: [`Redis::builder`].
#[derive(Debug)]
pub struct RedisBuilder {
    url: String,
    name: Option<String>,
    config: Config,
}

/// Why a call failed, before it becomes the caller's error type.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server is known to be down; nothing was sent.
    Down,
    /// No answer before the deadline.
    Timeout,
    /// The connection failed (and the server is now known to be down).
    Connection(RedisError),
    /// The server answered with an error.
    Command(RedisError),
    /// The call was made on the crate's own runtime thread, where it could never finish.
    OwnThread,
    /// A write while the invalidation bus is not subscribed (it could bring back a value
    /// another instance removed).
    Unsubscribed,
}

impl Failure {
    /// The `reason` label of the error counters.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Failure::Down | Failure::Unsubscribed => "down",
            Failure::Timeout => "timeout",
            Failure::Connection(_) => "connection",
            Failure::Command(_) | Failure::OwnThread => "command",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Down => f.write_str("the server is down (failing fast until a probe answers)"),
            Failure::Timeout => f.write_str("no answer within the timeout"),
            Failure::Connection(e) => write!(f, "connection failed: {e}"),
            Failure::Command(e) => write!(f, "the server refused the command: {e}"),
            Failure::OwnThread => f.write_str("called on the crate's own runtime thread"),
            Failure::Unsubscribed => {
                f.write_str("the invalidation bus is not subscribed; writes wait until it is")
            }
        }
    }
}

/// Whether an error says the connection (not the command) failed: anything but the server's
/// answer being an error or not the expected type (a reply that does not parse is a
/// connection to something that is not Redis).
fn is_connection_error(e: &RedisError) -> bool {
    e.code().is_none()
        && !matches!(
            e.kind(),
            ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
        )
}

impl RedisBuilder {
    /// The name the connections give themselves (`CLIENT SETNAME`, shown by `CLIENT LIST`).
    /// Default: `mpm-cache-redis:` and a random id.
    pub fn client_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// How long connecting may take. Default: 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// While the server is down, the longest wait between two probes (they start at 5 ms and
    /// double). Default: 250 ms.
    pub fn probe_max_interval(mut self, interval: Duration) -> Self {
        self.config.probe_max_interval = interval;
        self
    }

    /// Starts the runtime thread and the connection manager. Connecting happens in the
    /// background: a server that is down now is not an error (calls fail fast until it
    /// answers); a URL that does not parse is.
    pub fn build(self) -> Result<Redis, Error> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())
            .map_err(|source| Error::Url { source })?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))
            .map_err(|source| Error::Url { source })?;
        if self.config.connect_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                what: "connect_timeout must be above zero".into(),
            });
        }
        let name = self
            .name
            .unwrap_or_else(|| format!("mpm-cache-redis:{:016x}", fastrand::u64(..)));
        let (handle, thread, stop) = start_runtime().map_err(|source| Error::Runtime { source })?;
        let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel::<PushInfo>();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_min_delay(Duration::from_millis(5))
            .set_max_delay(self.config.probe_max_interval)
            .set_number_of_retries(2)
            // Every call of the crate waits with a deadline of its own (`wait::until`, or a
            // Tokio timeout on the runtime thread), so the client's per-request timer (500 ms
            // by default) would only add a timer registration, and often a wake-up of the
            // runtime thread, to every request.
            .set_response_timeout(None)
            .set_push_sender(push_tx);
        let manager = {
            let _context = handle.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config).map_err(
                |source| Error::Redis {
                    op: "connect",
                    source,
                },
            )?
        };
        let shared = Arc::new(Shared {
            handle,
            thread,
            client,
            manager,
            name,
            // The first probe below connects; calls may go through meanwhile.
            health: Health {
                down: AtomicBool::new(false),
                probing: AtomicBool::new(true),
            },
            config: self.config,
            _stop: stop,
        });
        let weak = Arc::downgrade(&shared);
        shared
            .handle
            .spawn(watch_disconnects(weak.clone(), push_rx));
        // Connect now, in the background, and name the connection.
        shared.handle.spawn(probe(weak, Duration::ZERO));
        Ok(Redis { shared })
    }
}

thread_local! {
    /// This thread's id, without cloning the thread's handle on every call.
    static THIS_THREAD: ThreadId = std::thread::current().id();
}

/// A current-thread runtime on a thread of its own: it drives every connection of a [`Redis`].
/// Dropping the returned sender ends the thread and cancels its tasks.
fn start_runtime() -> std::io::Result<(Handle, ThreadId, oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("mpm-cache-redis".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
    Ok((handle, thread.thread().id(), stop))
}

/// Marks the server down the moment the connection reports that it dropped.
async fn watch_disconnects(
    shared: Weak<Shared>,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
) {
    while let Some(push) = pushes.recv().await {
        if push.kind == PushKind::Disconnection {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            Redis { shared }.mark_down();
        }
    }
}

/// Pings until the server answers (after `first` and then at doubling intervals), names the
/// connection, and marks the server up.
async fn probe(shared: Weak<Shared>, first: Duration) {
    let mut wait = first;
    loop {
        tokio::time::sleep(wait).await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        let mut conn = s.manager.clone();
        let limit = s.config.connect_timeout;
        let mut named = redis::pipe();
        named
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(&s.name)
            .ignore()
            .cmd("PING");
        let answered = tokio::time::timeout(limit, named.query_async::<(String,)>(&mut conn)).await;
        if matches!(answered, Ok(Ok(_))) {
            s.health.down.store(false, Ordering::Release);
            s.health.probing.store(false, Ordering::Release);
            // A failure marked between the two stores found this probe running and started
            // none: carry on probing for it.
            if !s.health.down.load(Ordering::Acquire)
                || s.health.probing.swap(true, Ordering::AcqRel)
            {
                return;
            }
            wait = Duration::ZERO;
            continue;
        }
        wait = (wait * 2)
            .max(Duration::from_millis(5))
            .min(s.config.probe_max_interval);
    }
}

impl Redis {
    /// A builder for the server at `url` (`redis://[user:password@]host[:port][/db]`).
    pub fn builder(url: &str) -> RedisBuilder {
        RedisBuilder {
            url: url.to_owned(),
            name: None,
            config: Config {
                connect_timeout: Duration::from_secs(1),
                probe_max_interval: Duration::from_millis(250),
            },
        }
    }

    /// The server at `url` with the default settings (see [`RedisBuilder`]).
    pub fn open(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// The connection manager, for commands of your own on the same multiplexed connection
    /// (await them on any Tokio runtime). It has no response timeout of its own: bound your
    /// calls (with `tokio::time::timeout`, for instance).
    pub fn connection(&self) -> ConnectionManager {
        self.shared.manager.clone()
    }

    /// The name the connections give themselves (`CLIENT SETNAME`).
    pub fn client_name(&self) -> &str {
        &self.shared.name
    }

    /// Whether the server is known to be down (calls fail at once until a probe answers).
    pub fn is_down(&self) -> bool {
        self.shared.health.down.load(Ordering::Acquire)
    }

    /// Pings the server, waiting at most `timeout`.
    pub fn ping(&self, timeout: Duration) -> Result<(), Error> {
        self.run(timeout, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .map(drop)
        .map_err(|f| match f {
            Failure::Command(source) | Failure::Connection(source) => {
                Error::Redis { op: "ping", source }
            }
            _ => Error::Timeout {
                op: "ping",
                timeout,
            },
        })
    }

    pub(crate) fn client(&self) -> &Client {
        &self.shared.client
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.shared.handle
    }

    /// Marks the server down and starts a probe, unless one runs.
    pub(crate) fn mark_down(&self) {
        let s = &self.shared;
        s.health.down.store(true, Ordering::Release);
        if !s.health.probing.swap(true, Ordering::AcqRel) {
            s.handle
                .spawn(probe(Arc::downgrade(s), Duration::from_millis(1)));
        }
    }

    /// Runs one request (`call` is given a clone of the connection manager) on this thread,
    /// answering within `timeout`: fails at once while the server is known to be down, and
    /// marks it down when the request times out or the connection fails.
    pub(crate) fn run<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, Failure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_until(Instant::now() + timeout, call)
    }

    /// [`run`](Self::run) with a deadline.
    pub(crate) fn run_until<T, F, Fut>(&self, deadline: Instant, call: F) -> Result<T, Failure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let s = &*self.shared;
        if s.health.down.load(Ordering::Acquire) {
            return Err(Failure::Down);
        }
        if THIS_THREAD.with(|t| *t) == s.thread {
            return Err(Failure::OwnThread);
        }
        match wait::until(&s.handle, deadline, call(s.manager.clone())) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_connection_error(&e) => {
                self.mark_down();
                Err(Failure::Connection(e))
            }
            Ok(Err(e)) => Err(Failure::Command(e)),
            Err(wait::Elapsed) => {
                self.mark_down();
                Err(Failure::Timeout)
            }
        }
    }
}
