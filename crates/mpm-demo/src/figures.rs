//! The figures the demo measures, each beside the performance guide's value.

use serde::Serialize;

/// Which way a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Smaller is better: times, sizes.
    Lower,
    /// Larger is better: hit rates, reductions.
    Higher,
}

/// What the guide says about one figure.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The figure's name in `--json` output and in the budgets file.
    pub name: &'static str,
    /// What it measures, for the table.
    pub label: &'static str,
    /// The unit of `guide`, `ours` and `budget`.
    pub unit: &'static str,
    /// The guide's value.
    pub guide: f64,
    /// Which way is better.
    pub better: Better,
}

use Better::{Higher, Lower};

const fn spec(
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    guide: f64,
    better: Better,
) -> Spec {
    Spec {
        name,
        label,
        unit,
        guide,
        better,
    }
}

/// Every figure, in the order of the report.
///
/// The guide's values come from its "Current Performance Metrics" table; the 60-70% memory
/// reduction is its 156,800 to 52,300 bytes example (66.6%).
pub const SPECS: &[Spec] = &[
    spec("cold_start_ms", "cold start", "ms", 450.0, Lower),
    spec("warm_start_ms", "warm start", "ms", 120.0, Lower),
    spec(
        "baseline_rss_mb",
        "baseline memory (RSS)",
        "MB",
        85.0,
        Lower,
    ),
    spec("peak_rss_mb", "peak memory (RSS)", "MB", 180.0, Lower),
    spec(
        "discovery_fresh_ms",
        "agent discovery, fresh",
        "ms",
        300.0,
        Lower,
    ),
    spec(
        "discovery_cached_ms",
        "agent discovery, cached",
        "ms",
        50.0,
        Lower,
    ),
    spec("deploy_5_ms", "deploy 5 agents", "ms", 1200.0, Lower),
    spec("deploy_15_ms", "deploy 15 agents", "ms", 2100.0, Lower),
    spec(
        "profile_disk_ms",
        "profile load, from disk",
        "ms",
        150.0,
        Lower,
    ),
    spec(
        "profile_cached_ms",
        "profile load, cached",
        "ms",
        25.0,
        Lower,
    ),
    spec("l1_hit_rate_pct", "L1 hit rate", "%", 92.0, Higher),
    spec("l2_hit_rate_pct", "L2 hit rate", "%", 78.0, Higher),
    spec(
        "cache_access_avg_us",
        "cache access, average",
        "us",
        500.0,
        Lower,
    ),
    spec(
        "memory_reduction_pct",
        "memory file reduction",
        "%",
        66.6,
        Higher,
    ),
    spec(
        "ws_connect_ms",
        "WebSocket connection set-up",
        "ms",
        15.0,
        Lower,
    ),
    spec(
        "broadcast_50_ms",
        "broadcast to 50 clients",
        "ms",
        5.0,
        Lower,
    ),
    spec(
        "update_latency_p99_ms",
        "update latency p99",
        "ms",
        100.0,
        Lower,
    ),
];

/// Looks a figure's spec up by name.
pub fn spec_of(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// One measured figure beside the guide's.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// The figure's name (see [`SPECS`]).
    pub name: &'static str,
    /// The guide's value.
    pub guide: f64,
    /// Ours.
    pub ours: f64,
    /// The unit of both.
    pub unit: &'static str,
    /// How many times better ours is than the guide's (guide / ours for times and sizes,
    /// ours / guide for rates); above 1 is better.
    pub ratio: f64,
    /// Our budget from the budgets file, if it names this figure.
    pub budget: Option<f64>,
    /// Whether ours meets the budget (true when there is none).
    pub ok: bool,
}

impl Figure {
    /// Pairs a measured value with its spec.
    pub fn new(spec: &'static Spec, ours: f64) -> Self {
        let ratio = match spec.better {
            Lower if ours > 0.0 => spec.guide / ours,
            Lower => f64::INFINITY,
            Higher => ours / spec.guide,
        };
        Self {
            name: spec.name,
            guide: spec.guide,
            ours,
            unit: spec.unit,
            ratio,
            budget: None,
            ok: true,
        }
    }

    /// The spec this figure was measured against.
    pub fn spec(&self) -> &'static Spec {
        spec_of(self.name).expect("a figure is made from a spec")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, ours: f64, ratio: f64) {
        let f = Figure::new(spec_of(name).unwrap(), ours);
        assert!((f.ratio - ratio).abs() < 1e-9, "{} ratio {}", name, f.ratio);
    }

    #[test]
    fn lower_is_better_ratio_is_guide_over_ours() {
        check("cold_start_ms", 9.0, 50.0);
        check("cold_start_ms", 900.0, 0.5);
    }

    #[test]
    fn higher_is_better_ratio_is_ours_over_guide() {
        check("l1_hit_rate_pct", 92.0, 1.0);
        check("l1_hit_rate_pct", 46.0, 0.5);
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in SPECS.iter().enumerate() {
            assert!(
                SPECS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
