//! The dashboard's live feed: a sample of the service's state, broadcast to every client.

use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::hub::Hub;

/// One sample of the running service, as the dashboard charts it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LiveStats {
    /// Milliseconds since the feed started.
    pub t_ms: u64,
    /// Cache hit rate over the last period, in percent.
    pub hit_rate: f64,
    /// Profile load latency over the last period: median, in microseconds.
    pub load_p50_us: f64,
    /// Profile load latency over the last period: 99th percentile, in microseconds.
    pub load_p99_us: f64,
    /// Database pool: connections open.
    pub pool_size: u64,
    /// Database pool: connections lent out.
    pub pool_in_use: u64,
    /// Database pool: tasks waiting for a connection.
    pub pool_waiting: u64,
    /// Events broadcast per second over the last period.
    pub events_per_s: f64,
}

impl LiveStats {
    /// The message the dashboard reads: `{"type":"stats", ...}`.
    pub fn to_message(&self) -> String {
        let body = serde_json::to_string(self).expect("stats serialize");
        format!("{{\"type\":\"stats\",{}", &body[1..])
    }
}

/// Broadcasts `sample()` to every client of `hub` every `period`, until the task is aborted.
pub fn spawn_feed(
    hub: Hub,
    period: Duration,
    mut sample: impl FnMut() -> LiveStats + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            hub.broadcast(sample().to_message());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_typed_json() {
        let m = LiveStats {
            hit_rate: 93.5,
            ..LiveStats::default()
        }
        .to_message();
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["hit_rate"], 93.5);
        assert_eq!(v["pool_waiting"], 0);
    }
}
