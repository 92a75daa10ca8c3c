//! Step 6: real WebSocket clients over loopback: set-up time, broadcast time, update latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

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
    seq: u64,
    sent_ns: u64,
}

/// Connects `plan.clients` clients to the service at `addr` and measures, broadcasting through
/// `hub` (the service's own).
pub async fn measure(addr: SocketAddr, hub: &Hub, plan: EventPlan) -> Result<EventFigures, Error> {
    let base = Instant::now();
    let url = format!("ws://{addr}/ws");
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<(u64, Duration)>();
    let mut readers = JoinSet::new();
    let mut connect = Vec::with_capacity(plan.clients);
    for _ in 0..plan.clients {
        let started = Instant::now();
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| Error::Client(e.to_string()))?;
        connect.push(started.elapsed());
        let (_write, mut read) = socket.split();
        // The service greets each client once it is registered: wait for that.
        match read.next().await {
            Some(Ok(Message::Text(_))) => {}
            other => {
                return Err(Error::Client(format!(
                    "no greeting from the service: {other:?}"
                )));
            }
        }
        let seen_tx = seen_tx.clone();
        readers.spawn(async move {
            let _write = _write;
            while let Some(Ok(message)) = read.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Event>(text.as_str()) else {
                    continue;
                };
                let now = base.elapsed();
                let latency = now.saturating_sub(Duration::from_nanos(event.sent_ns));
                if seen_tx.send((event.seq, latency)).is_err() {
                    return;
                }
            }
        });
    }
    drop(seen_tx);
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
        send(seq);
        let mut slowest = Duration::ZERO;
        for _ in 0..plan.clients {
            let (got, latency) = tokio::time::timeout(wait, seen.recv())
                .await
                .map_err(|_| Error::Client(format!("broadcast {seq} did not reach every client")))?
                .ok_or_else(|| Error::Client("a client closed".into()))?;
            debug_assert_eq!(got, seq);
            slowest = slowest.max(latency);
        }
        broadcast.push(slowest);
    }

    // A steady stream of updates: every client's latency for every update.
    let first = plan.broadcasts as u64;
    let expected = plan.updates * plan.clients;
    let mut latencies = Vec::with_capacity(expected);
    let mut ticker = tokio::time::interval(plan.update_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = first;
    let end = first + plan.updates as u64;
    while latencies.len() < expected {
        tokio::select! {
            _ = ticker.tick(), if next < end => {
                send(next);
                next += 1;
            }
            got = tokio::time::timeout(wait, seen.recv()) => {
                match got {
                    Ok(Some((_, latency))) => latencies.push(latency),
                    _ => break,
                }
            }
        }
    }
    let lost = (expected - latencies.len()) as u64;
    readers.abort_all();
    Ok(EventFigures {
        clients: plan.clients,
        connect_ms: ms(median(&mut connect)),
        broadcast_ms: ms(median(&mut broadcast)),
        update_p99_ms: ms(percentile(&mut latencies, 0.99)),
        lost,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
