//! The subscriber: one task on the crate's runtime thread per bus, on a RESP3 connection of its
//! own (told at once when it drops), with a heartbeat for the drops it is not told about.
//!
//! Messages lost while the subscription is broken cannot be recovered, so the attached caches
//! are cleared when the break is found, after every failed reconnection attempt, and once more
//! when the subscription is back (entries loaded meanwhile may have missed a message).

use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::oneshot;

use super::Shared;

/// The subscriber's timing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) reconnect_max: Duration,
}

/// Subscribes, reads, and resubscribes until `stop` fires (or its sender is dropped).
/// `first` is told when the first subscription is in place.
pub(crate) async fn run(
    shared: Arc<Shared>,
    client: Client,
    timing: Timing,
    mut stop: oneshot::Receiver<()>,
    first: std::sync::mpsc::Sender<()>,
) {
    let mut first = Some(first);
    let mut ever = false;
    let mut broken_at = None;
    let mut delay = Duration::from_millis(5).min(timing.reconnect_max);
    loop {
        let attempt = tokio::time::timeout(
            timing.connect_timeout,
            subscribe(&client, &shared.channel, &shared.client_name),
        );
        let connected = tokio::select! {
            _ = &mut stop => return,
            c = attempt => c.ok().and_then(Result::ok),
        };
        match connected {
            Some((mut conn, pushes)) => {
                if let Some(found) = broken_at.take() {
                    // Messages may have been lost: undo this instance's writes that may have
                    // raced one, and drop what was loaded meanwhile.
                    let back = std::time::Instant::now();
                    undo_writes(&shared, &mut conn, found, back).await;
                    shared.clear_local();
                    // A write in flight when the break was found lands within the window.
                    let (late_shared, mut late_conn) = (Arc::clone(&shared), conn.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(late_shared.journal.window()).await;
                        undo_writes(&late_shared, &mut late_conn, found, back).await;
                    });
                }
                shared.set_subscribed(true);
                ever = true;
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                delay = Duration::from_millis(5).min(timing.reconnect_max);
                if read(&shared, conn, pushes, timing, &mut stop)
                    .await
                    .is_break()
                {
                    shared.set_subscribed(false);
                    return;
                }
                shared.set_subscribed(false);
                broken_at = Some(std::time::Instant::now());
                shared.counters.disconnects.inc();
                shared.clear_local();
                // Reconnect at once: the server usually is still there.
                continue;
            }
            None if ever => shared.clear_local(),
            None => {}
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(timing.reconnect_max);
    }
}

/// Removes from Redis the entries this instance began to write between shortly before `found`
/// and `back`, and tells the other instances (they may have read them meanwhile); an entry
/// written again since (by this instance or another) holds a newer value and stays.
async fn undo_writes(
    shared: &Shared,
    conn: &mut redis::aio::MultiplexedConnection,
    found: std::time::Instant,
    back: std::time::Instant,
) {
    let written = shared.journal.written(found, back);
    for chunk in written.chunks(super::UNDO_CHUNK) {
        let pipe = super::undo_pipeline(shared, chunk);
        let done =
            tokio::time::timeout(shared.journal.window(), pipe.query_async::<Vec<i64>>(conn)).await;
        if let Ok(Ok(replies)) = done {
            shared.count_undone(&replies);
        }
    }
}

type Subscription = (
    redis::aio::MultiplexedConnection,
    UnboundedReceiver<PushInfo>,
);

async fn subscribe(client: &Client, channel: &str, name: &str) -> redis::RedisResult<Subscription> {
    let (tx, rx) = unbounded_channel();
    let config = AsyncConnectionConfig::new().set_push_sender(tx);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .exec_async(&mut conn)
        .await?;
    conn.subscribe(channel).await?;
    Ok((conn, rx))
}

/// Reads messages until the connection drops or misses a heartbeat (`Continue`), or `stop`
/// fires (`Break`).
async fn read(
    shared: &Shared,
    mut conn: redis::aio::MultiplexedConnection,
    mut pushes: UnboundedReceiver<PushInfo>,
    timing: Timing,
    stop: &mut oneshot::Receiver<()>,
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow::{Break, Continue};
    let mut beat = tokio::time::interval(timing.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.reset();
    loop {
        tokio::select! {
            _ = &mut *stop => return Break(()),
            push = pushes.recv() => match push {
                Some(PushInfo { kind: PushKind::Message, data }) => {
                    if let Some(Value::BulkString(payload)) = data.into_iter().nth(1) {
                        shared.receive(&payload);
                    }
                }
                Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => return Continue(()),
                Some(_) => {}
            },
            _ = beat.tick() => {
                let ping = redis::cmd("PING");
                let ping = ping.query_async::<Value>(&mut conn);
                if !matches!(tokio::time::timeout(timing.heartbeat_timeout, ping).await, Ok(Ok(_))) {
                    return Continue(());
                }
            }
        }
    }
}
