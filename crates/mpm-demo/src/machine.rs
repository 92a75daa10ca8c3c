//! What the demo ran on, for the report.

use serde::{Deserialize, Serialize};

/// The machine a run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model, from `/proc/cpuinfo` where it exists.
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// The one-minute load average when the run started, where the OS reports it.
    pub load_average: Option<f64>,
    /// The operating system and architecture.
    pub os: String,
}

impl Machine {
    /// Describes this machine now.
    pub fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}
