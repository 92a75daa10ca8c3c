//! Step 6: real WebSocket clients over loopback: set-up time, broadcast time, update latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Error;
use crate::hub::Hub;
use crate::percentile::{median, percentile};

/// What the clients saw.
#[derive(Clone, Debug)]
pub struct EventFigures {
    /// Clients connected.
    pub clients: usize,
    /// Median time from the start of a client's TCP connect to its WebSocket being open.
    pub connect_ms: f64,
    /// Median, over the broadcasts, of the time until the last client had the event.
    pub broadcast_ms: f64,
    /// 99th percentile of the time from sending an update to a client having it, over every
    /// client and update of a steady stream.
    pub update_p99_ms: f64,
    /// Updates that some client never received (should be 0).
    pub lost: u64,
}

/// How many of each.
#[derive(Clone, Copy, Debug)]
pub struct EventPlan {
    /// Real WebSocket clients.
    pub clients: usize,
    /// Broadcasts timed one at a time (each waits for every client to have it).
    pub broadcasts: usize,
    /// Updates sent as a steady stream.
    pub updates: usize,
    /// Time between two updates of the stream.
    pub update_interval: Duration,
}

#[derive(Deserialize)]
struct Event {
    sent_ns: u64,
}

/// Connects `plan.clients` clients to the service at `addr` and measures, broadcasting through
/// `hub` (the service's own).
///
/// The clients run on a thread and runtime of their own, as they would on other machines: the
/// service's runtime does the service's work (one frame per event, written to each client's
/// socket), the clients' runtime reads. Each client takes its arrival time as soon as a frame
/// is read, before it parses the event.
pub async fn measure(addr: SocketAddr, hub: &Hub, plan: EventPlan) -> Result<EventFigures, Error> {
    let base = Instant::now();
    let arrivals = Arc::new(Arrivals::default());
    let (clients, mut connect) =
        Clients::start(addr, plan.clients, base, Arc::clone(&arrivals)).await?;
    let send = |seq: u64| {
        let sent_ns = base.elapsed().as_nanos() as u64;
        hub.broadcast(format!(
            "{{\"type\":\"event\",\"seq\":{seq},\"sent_ns\":{sent_ns},\"agent\":\"engineer\",\"state\":\"deployed\"}}"
        ))
    };
    let wait = Duration::from_secs(5);

    // Broadcasts one at a time: the time until the last client has each.
    let mut broadcast = Vec::with_capacity(plan.broadcasts);
    for seq in 0..plan.broadcasts as u64 {
        let before = seq as usize * plan.clients;
        arrivals.expect(before + plan.clients);
        send(seq);
        if arrivals.wait(wait).await < before + plan.clients {
            return Err(Error::Client(format!(
                "broadcast {seq} did not reach every client"
            )));
        }
        let slowest = arrivals
            .latencies(before..before + plan.clients)
            .into_iter()
            .max();
        broadcast.push(slowest.unwrap_or_default());
    }

    // A steady stream of updates: every client's latency for every update.
    let first = plan.broadcasts as u64;
    let before = plan.broadcasts * plan.clients;
    let expected = plan.updates * plan.clients;
    arrivals.expect(before + expected);
    let mut ticker = tokio::time::interval(plan.update_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in first..first + plan.updates as u64 {
        ticker.tick().await;
        send(seq);
    }
    let arrived = arrivals.wait(wait).await;
    let mut latencies = arrivals.latencies(before..arrived.min(before + expected));
    let lost = (before + expected).saturating_sub(arrived) as u64;
    clients.stop();
    Ok(EventFigures {
        clients: plan.clients,
        connect_ms: ms(median(&mut connect)),
        broadcast_ms: ms(median(&mut broadcast)),
        update_p99_ms: ms(percentile(&mut latencies, 0.99)),
        lost,
    })
}

/// Every event's arrival at every client, in arrival order, shared by the clients' readers and
/// the measuring task. The measuring task is woken once, when the count it expects is
/// reached, rather than once per arrival: it runs on the service's runtime, and 50 wake-ups
/// per event would be the service's work in the figure.
#[derive(Default)]
struct Arrivals {
    latencies: Mutex<Vec<Duration>>,
    expected: AtomicUsize,
    reached: Notify,
}

impl Arrivals {
    /// Records one arrival (`latency` after the event was sent).
    fn record(&self, latency: Duration) {
        let count = {
            let mut l = self.latencies.lock();
            l.push(latency);
            l.len()
        };
        if count == self.expected.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    /// Sets the count [`wait`](Self::wait) waits for; call it before sending what it counts.
    fn expect(&self, count: usize) {
        self.expected.store(count, Ordering::Release);
    }

    /// Waits until the expected count of arrivals is recorded, or `limit` passes; returns the
    /// count recorded.
    async fn wait(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let reached = self.reached.notified();
            let count = self.latencies.lock().len();
            if count >= self.expected.load(Ordering::Acquire)
                || tokio::time::timeout_at(deadline, reached).await.is_err()
            {
                return self.latencies.lock().len();
            }
        }
    }

    /// The latencies of arrivals `range` (in arrival order).
    fn latencies(&self, range: std::ops::Range<usize>) -> Vec<Duration> {
        self.latencies.lock()[range].to_vec()
    }
}

/// The clients' thread: each client connected, reading until told to stop.
struct Clients {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Clients {
    /// Starts a thread that connects `count` clients to `addr` one after the other, each
    /// recording in `arrivals` every event it receives (its latency since the event's
    /// `sent_ns` on `base`); returns once all are connected, with each one's set-up time.
    async fn start(
        addr: SocketAddr,
        count: usize,
        base: Instant,
        arrivals: Arc<Arrivals>,
    ) -> Result<(Self, Vec<Duration>), Error> {
        let url = format!("ws://{addr}/ws");
        let (ready_tx, ready) = oneshot::channel::<Result<Vec<Duration>, Error>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mpm-demo-clients".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Client(format!(
                            "cannot start the clients' runtime: {e}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut readers = JoinSet::new();
                    let mut connect = Vec::with_capacity(count);
                    for _ in 0..count {
                        match connect_one(addr, &url).await {
                            Ok((socket, took)) => {
                                connect.push(took);
                                readers.spawn(read_events(socket, base, Arc::clone(&arrivals)));
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    if ready_tx.send(Ok(connect)).is_ok() {
                        let _ = stopped.await;
                    }
                    readers.abort_all();
                });
            })
            .map_err(|e| Error::Client(format!("cannot start the clients' thread: {e}")))?;
        let clients = Self {
            stop: Some(stop),
            thread: Some(thread),
        };
        let connect = ready
            .await
            .map_err(|_| Error::Client("the clients' thread ended early".into()))??;
        Ok((clients, connect))
    }

    /// Disconnects every client and waits for the thread to end.
    fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.end();
    }
}

type Socket = WebSocketStream<TcpStream>;

/// A client's read buffer: an event is about 100 bytes; a larger message grows it.
const READ_BUFFER: usize = 4 * 1024;

/// Connects one client and waits for the service's greeting, which it sends once the client is
/// registered; returns the socket and the set-up time (TCP connect to open WebSocket).
///
/// Nagle is off, as on the service's side.
async fn connect_one(addr: SocketAddr, url: &str) -> Result<(Socket, Duration), Error> {
    let io = |e: std::io::Error| Error::Client(e.to_string());
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    // A read buffer the size of a few events rather than the library's default 128 KiB,
    // which it zeroes before every read (most of a client's time per event, measured).
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| Error::Client(e.to_string()))?;
    let took = started.elapsed();
    match socket.next().await {
        Some(Ok(Message::Text(_))) => Ok((socket, took)),
        other => Err(Error::Client(format!(
            "no greeting from the service: {other:?}"
        ))),
    }
}

/// Reads events until the socket ends, recording each one's arrival.
async fn read_events(mut socket: Socket, base: Instant, arrivals: Arc<Arrivals>) {
    while let Some(Ok(message)) = socket.next().await {
        let arrived = base.elapsed();
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Event>(text.as_str()) else {
            continue;
        };
        arrivals.record(arrived.saturating_sub(Duration::from_nanos(event.sent_ns)));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
