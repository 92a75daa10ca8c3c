//! Criterion's results as it leaves them on disk: per benchmark, `new/benchmark.json` (its full
//! id and throughput) beside `new/estimates.json` (the median with its confidence interval).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

/// One benchmark's median time per iteration, in nanoseconds, with criterion's confidence
/// interval, and the elements one iteration processes (for throughput).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Estimate {
    pub(crate) median: f64,
    pub(crate) lower: f64,
    pub(crate) upper: f64,
    pub(crate) elements: Option<f64>,
}

/// Every benchmark written since `since`, by full id (`group/function[/parameter]`).
pub(crate) fn read_since(dir: &Path, since: SystemTime) -> Result<HashMap<String, Estimate>> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    let mut out = HashMap::new();
    for new in files {
        let estimates = new.join("estimates.json");
        let fresh = fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= since);
        if !fresh {
            continue;
        }
        let benchmark = json(&new.join("benchmark.json"))?;
        let estimates = json(&estimates)?;
        let Some(id) = benchmark["full_id"].as_str() else {
            continue;
        };
        if let Some(e) = parse(&benchmark, &estimates) {
            out.insert(id.to_owned(), e);
        }
    }
    Ok(out)
}

fn json(path: &Path) -> Result<serde_json::Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse(benchmark: &serde_json::Value, estimates: &serde_json::Value) -> Option<Estimate> {
    let median = &estimates["median"];
    let ci = &median["confidence_interval"];
    let elements = benchmark["throughput"]["Elements"]
        .as_f64()
        .or_else(|| benchmark["throughput"]["Bytes"].as_f64());
    Some(Estimate {
        median: median["point_estimate"].as_f64()?,
        lower: ci["lower_bound"].as_f64()?,
        upper: ci["upper_bound"].as_f64()?,
        elements,
    })
}

/// Every `new` folder under `dir` that holds a result, skipping criterion's HTML reports.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        match path.file_name().and_then(|n| n.to_str()) {
            Some("new") if path.join("benchmark.json").is_file() => out.push(path),
            Some("report" | "base" | "change") => {}
            _ => collect(&path, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_its_interval_and_the_throughput() {
        let benchmark = serde_json::json!({
            "full_id": "pool_get_drop/mpm/4x16",
            "throughput": {"Elements": 1}
        });
        let estimates = serde_json::json!({
            "median": {"point_estimate": 250.0, "confidence_interval": {"lower_bound": 240.0, "upper_bound": 260.0}}
        });
        assert_eq!(
            parse(&benchmark, &estimates),
            Some(Estimate {
                median: 250.0,
                lower: 240.0,
                upper: 260.0,
                elements: Some(1.0)
            })
        );
        let no_throughput = serde_json::json!({"full_id": "x/y", "throughput": null});
        assert_eq!(parse(&no_throughput, &estimates).unwrap().elements, None);
        assert_eq!(parse(&no_throughput, &serde_json::json!({})), None);
    }
}
