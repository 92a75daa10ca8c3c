//! Judging one declared comparison: ours against one peer, in the group's unit, with the
//! confidence intervals criterion gives, so that a difference inside the noise is called so.

use serde::{Deserialize, Serialize};

use crate::estimates::Estimate;
use crate::manifest::Unit;

/// A figure in a group's unit (nanoseconds per operation, or operations per second) with its
/// confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Figure {
    pub(crate) value: f64,
    pub(crate) lower: f64,
    pub(crate) upper: f64,
}

impl Figure {
    /// The figure of a criterion estimate in `unit`. Throughput is elements per second, so the
    /// interval's ends swap: the slowest time is the lowest throughput.
    pub(crate) fn from_estimate(e: &Estimate, unit: Unit) -> Self {
        match unit {
            Unit::Time => Figure {
                value: e.median,
                lower: e.lower,
                upper: e.upper,
            },
            Unit::Throughput => {
                let per_second = e.elements.unwrap_or(1.0) * 1e9;
                Figure {
                    value: per_second / e.median,
                    lower: per_second / e.upper,
                    upper: per_second / e.lower,
                }
            }
        }
    }

    /// Whether the two intervals share a point.
    pub(crate) fn overlaps(&self, other: &Figure) -> bool {
        self.lower <= other.upper && other.lower <= self.upper
    }
}

/// How a comparison came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Faster,
    Slower,
    NoClearDifference,
}

/// One comparison, judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Comparison {
    pub(crate) group: String,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) ours: String,
    pub(crate) peer: String,
    pub(crate) unit: Unit,
    /// Ours over the peer, in the unit: below 1 is better for time, above 1 for throughput.
    pub(crate) ratio: f64,
    /// The ratio's interval: from the best case of one side against the worst of the other.
    pub(crate) interval: [f64; 2],
    pub(crate) outcome: Outcome,
    /// A sentence: "mpm 2.10x faster than bb8 (throughput)".
    pub(crate) verdict: String,
}

/// What a reader calls a benchmark: its function name (`pool_get_drop/bb8/4x16` is `bb8`).
pub(crate) fn label(id: &str) -> String {
    if id.starts_with("python:") {
        return "claude-mpm (Python)".to_owned();
    }
    let parts: Vec<&str> = id.split('/').collect();
    parts.get(1).copied().unwrap_or(id).to_owned()
}

/// Judges ours against a peer.
pub(crate) fn judge(
    group: &str,
    krate: &str,
    (ours_id, ours): (&str, Figure),
    (peer_id, peer): (&str, Figure),
    unit: Unit,
) -> Comparison {
    let ratio = ours.value / peer.value;
    let interval = [ours.lower / peer.upper, ours.upper / peer.lower];
    let better = match unit {
        Unit::Time => ratio < 1.0,
        Unit::Throughput => ratio > 1.0,
    };
    let factor = if ratio >= 1.0 { ratio } else { 1.0 / ratio };
    let outcome = if ours.overlaps(&peer) {
        Outcome::NoClearDifference
    } else if better {
        Outcome::Faster
    } else {
        Outcome::Slower
    };
    let (who, whom) = (label(ours_id), label(peer_id));
    let unit_note = unit.label();
    let verdict = match outcome {
        Outcome::NoClearDifference => {
            format!(
                "no clear difference between {who} and {whom} ({factor:.2}x, intervals overlap; {unit_note})"
            )
        }
        Outcome::Faster => format!("{who} {factor:.2}x faster than {whom} ({unit_note})"),
        Outcome::Slower => format!("{who} {factor:.2}x slower than {whom} ({unit_note})"),
    };
    Comparison {
        group: group.to_owned(),
        krate: krate.to_owned(),
        ours: ours_id.to_owned(),
        peer: peer_id.to_owned(),
        unit,
        ratio,
        interval,
        outcome,
        verdict,
    }
}

impl Comparison {
    /// Our time per operation over the peer's, whatever the unit: what ratio budgets limit.
    pub(crate) fn time_ratio(&self) -> f64 {
        match self.unit {
            Unit::Time => self.ratio,
            Unit::Throughput => 1.0 / self.ratio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(value: f64, half: f64) -> Figure {
        Figure {
            value,
            lower: value - half,
            upper: value + half,
        }
    }

    #[track_caller]
    fn check(unit: Unit, ours: Figure, peer: Figure, outcome: Outcome, verdict: &str) {
        let c = judge("g", "cache", ("g/mpm", ours), ("g/quick_cache", peer), unit);
        assert_eq!(c.outcome, outcome);
        assert_eq!(c.verdict, verdict);
    }

    #[test]
    fn less_time_is_faster() {
        check(
            Unit::Time,
            fig(10.0, 1.0),
            fig(21.0, 1.0),
            Outcome::Faster,
            "mpm 2.10x faster than quick_cache (time per op)",
        );
    }

    #[test]
    fn more_time_is_slower() {
        check(
            Unit::Time,
            fig(25.0, 1.0),
            fig(10.0, 1.0),
            Outcome::Slower,
            "mpm 2.50x slower than quick_cache (time per op)",
        );
    }

    #[test]
    fn more_throughput_is_faster() {
        check(
            Unit::Throughput,
            fig(4e6, 1e5),
            fig(2e6, 1e5),
            Outcome::Faster,
            "mpm 2.00x faster than quick_cache (throughput)",
        );
        check(
            Unit::Throughput,
            fig(1e6, 1e5),
            fig(2e6, 1e5),
            Outcome::Slower,
            "mpm 2.00x slower than quick_cache (throughput)",
        );
    }

    #[test]
    fn overlapping_intervals_are_no_clear_difference() {
        check(
            Unit::Time,
            fig(10.0, 1.0),
            fig(11.5, 1.0),
            Outcome::NoClearDifference,
            "no clear difference between mpm and quick_cache (1.15x, intervals overlap; time per op)",
        );
    }

    #[test]
    fn throughput_intervals_swap_ends() {
        let e = Estimate {
            median: 500.0,
            lower: 400.0,
            upper: 1000.0,
            elements: Some(1.0),
        };
        let f = Figure::from_estimate(&e, Unit::Throughput);
        assert_eq!(f.value, 2e6);
        assert_eq!(f.lower, 1e6);
        assert_eq!(f.upper, 2.5e6);
    }

    #[test]
    fn the_ratio_interval_spans_the_worst_cases() {
        let c = judge(
            "g",
            "cache",
            ("g/mpm", fig(10.0, 1.0)),
            ("g/moka", fig(20.0, 2.0)),
            Unit::Time,
        );
        assert_eq!(c.ratio, 0.5);
        assert_eq!(c.interval, [9.0 / 22.0, 11.0 / 18.0]);
        assert_eq!(c.time_ratio(), 0.5);
    }

    #[test]
    fn labels_are_function_names() {
        assert_eq!(label("pool_get_drop/bb8/4x16"), "bb8");
        assert_eq!(label("counter_inc/mpm"), "mpm");
        assert_eq!(
            label("python:claude_mpm_profile_80kb"),
            "claude-mpm (Python)"
        );
    }
}
