//! `summary.json`: everything one run measured and judged, with the machine it ran on; and
//! `history.jsonl`, one line per run, for the ratios across runs.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::manifest::Unit;
use crate::verdict::{Comparison, Figure};

/// The machine a run used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    /// The 1, 5 and 15 minute load averages when the run started.
    pub(crate) load_before: [f64; 3],
    /// The same when it ended.
    pub(crate) load_after: [f64; 3],
}

impl Machine {
    /// The CPU model, the cores this process may use and the load average now (both loads).
    pub(crate) fn now() -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let load = load_average();
        Machine {
            cpu,
            cores,
            load_before: load,
            load_after: load,
        }
    }

    pub(crate) fn describe(&self) -> String {
        let l = |x: [f64; 3]| format!("{:.2} {:.2} {:.2}", x[0], x[1], x[2]);
        format!(
            "{}, {} cores; load average {} before, {} after",
            self.cpu,
            self.cores,
            l(self.load_before),
            l(self.load_after)
        )
    }
}

/// The 1, 5 and 15 minute load averages (zeros where the system does not say).
pub(crate) fn load_average() -> [f64; 3] {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// One benchmark's figure in its group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Measured {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) figure: Figure,
}

/// One declared group as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupResult {
    pub(crate) name: String,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) what: String,
    pub(crate) unit: Unit,
    pub(crate) ours: Measured,
    pub(crate) peers: Vec<Measured>,
}

/// Which kind of budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BudgetKind {
    /// Our time per operation over the peer's, same run.
    Ratio,
    /// Instructions per operation under callgrind.
    Instructions,
}

/// One budget checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BudgetResult {
    pub(crate) name: String,
    pub(crate) kind: BudgetKind,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) limit: f64,
    /// None when it was not measured in this run (its benchmark did not run).
    pub(crate) actual: Option<f64>,
    pub(crate) ok: bool,
}

/// Everything one run produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// When the run started, UTC, `YYYY-MM-DD HH:MM`.
    pub(crate) date: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) groups: Vec<GroupResult>,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) budgets: Vec<BudgetResult>,
    /// Declared benchmarks that produced no figure.
    #[serde(default)]
    pub(crate) missing: Vec<String>,
}

impl Summary {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the summary atomically (a temporary file renamed over the old one).
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        write_atomic(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryLine {
    pub(crate) date: String,
    pub(crate) command: String,
    pub(crate) comparisons: Vec<HistoryRatio>,
}

/// One comparison's ratio in a history line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryRatio {
    pub(crate) group: String,
    pub(crate) peer: String,
    pub(crate) ratio: f64,
    pub(crate) interval: [f64; 2],
}

impl HistoryLine {
    pub(crate) fn of(summary: &Summary) -> Self {
        HistoryLine {
            date: summary.date.clone(),
            command: summary.command.clone(),
            comparisons: summary
                .comparisons
                .iter()
                .map(|c| HistoryRatio {
                    group: c.group.clone(),
                    peer: c.peer.clone(),
                    ratio: c.ratio,
                    interval: c.interval,
                })
                .collect(),
        }
    }
}

/// Appends one line for `summary` to the history file.
pub(crate) fn append_history(path: &Path, summary: &Summary) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let line = serde_json::to_string(&HistoryLine::of(summary))? + "\n";
    f.write_all(line.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Every readable line of the history file; a damaged line is skipped, not fatal.
pub(crate) fn read_history(path: &Path) -> Vec<HistoryLine> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The time now, UTC, as `YYYY-MM-DD HH:MM`.
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` after the Unix epoch as `YYYY-MM-DD HH:MM`, UTC (Howard Hinnant's civil date).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_796_461_320), "2026-12-05 09:02");
    }

    #[test]
    fn history_appends_and_skips_damaged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let summary = Summary {
            date: "2026-01-01 00:00".into(),
            command: "cargo xtask bench".into(),
            machine: Machine::now(),
            groups: vec![],
            comparisons: vec![],
            budgets: vec![],
            missing: vec![],
        };
        append_history(&path, &summary).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        append_history(&path, &summary).unwrap();
        let lines = read_history(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], HistoryLine::of(&summary));
    }
}
