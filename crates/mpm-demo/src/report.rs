//! The run's report: a table for a person, JSON for a program.

use std::fmt::Write as _;

use serde::Serialize;

use crate::figures::{Better, Figure};
use crate::machine::Machine;

/// A figure of ours beside a peer's on the same workload in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct PeerFigure {
    /// Which of our figures (see [`crate::figures::SPECS`]).
    pub name: &'static str,
    /// The peer.
    pub peer: &'static str,
    /// The peer's figure, in the same unit.
    pub value: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Each figure beside the guide's.
    pub figures: Vec<Figure>,
    /// Peers measured on the same workloads.
    pub peers: Vec<PeerFigure>,
    /// The machine it ran on.
    pub machine: Machine,
    /// The scale of the run.
    pub scale: String,
    /// Whether every budget passed.
    pub budgets_ok: bool,
    /// Budgets that failed, one line each (`name: actual vs limit`).
    pub budget_failures: Vec<String>,
}

impl Report {
    /// The report as JSON: `{"figures": [...], "peers": [...], "machine": {...}, ...}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// The figures alone as a JSON array (what the dashboard shows).
    pub fn figures_json(&self) -> String {
        serde_json::to_string(&self.figures).expect("figures serialize")
    }

    /// The report as a table a person reads in a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<30} {:>10} {:>12} {:<4} {:>16}  budget",
            "figure", "guide", "mpm", "unit", "vs the guide"
        );
        let _ = writeln!(out, "{}", "-".repeat(90));
        for f in &self.figures {
            let spec = f.spec();
            let verdict = if f.ratio >= 1.0 {
                format!("{} better", times(f.ratio))
            } else {
                format!("{} worse", times(1.0 / f.ratio))
            };
            let budget = match f.budget {
                None => String::new(),
                Some(limit) => {
                    let op = match spec.better {
                        Better::Lower => "<=",
                        Better::Higher => ">=",
                    };
                    format!(
                        "{op} {} {}",
                        number(limit),
                        if f.ok { "ok" } else { "FAIL" }
                    )
                }
            };
            let _ = writeln!(
                out,
                "{:<30} {:>10} {:>12} {:<4} {:>16}  {}",
                spec.label,
                number(f.guide),
                number(f.ours),
                f.unit,
                verdict,
                budget
            );
            for p in self.peers.iter().filter(|p| p.name == f.name) {
                let _ = writeln!(
                    out,
                    "{:<30} {:>10} {:>12} {:<4}",
                    format!("  {} on the same workload", p.peer),
                    "",
                    number(p.value),
                    f.unit
                );
            }
        }
        let _ = writeln!(out, "{}", "-".repeat(90));
        let total = self.figures.iter().filter(|f| f.budget.is_some()).count();
        let failed = self.budget_failures.len();
        if failed == 0 {
            let _ = writeln!(out, "budgets: all {total} pass");
        } else {
            let _ = writeln!(out, "budgets: {failed} of {total} FAIL");
            for line in &self.budget_failures {
                let _ = writeln!(out, "  FAIL {line}");
            }
        }
        let m = &self.machine;
        let load = m
            .load_average
            .map_or_else(String::new, |l| format!(", load {l:.2}"));
        let _ = writeln!(
            out,
            "machine: {}, {} cores{load}, {}; scale {}",
            m.cpu, m.cores, m.os, self.scale
        );
        out
    }
}

/// A number with about three significant digits, no exponent.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        let digits = (-a.log10()).floor() as usize + 3;
        format!("{v:.digits$}")
    };
    if s == "-0" { "0".to_owned() } else { s }
}

fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(v: f64, expect: &str) {
        assert_eq!(number(v), expect);
    }

    #[test]
    fn numbers_read_well() {
        check(450.0, "450");
        check(12.345, "12.3");
        check(1.5, "1.50");
        check(0.5, "0.500");
        check(0.0123, "0.0123");
        check(0.0, "0");
        check(-0.0, "0");
        check(1234.4, "1234");
    }
}
