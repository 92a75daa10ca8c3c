//! Interleaved rounds: contenders take turns, round by round, so that a busy spell of a shared
//! machine hits all of them alike, and the results are written where criterion writes its own,
//! so that `cargo xtask bench` reads both alike.
//!
//! Criterion measures one benchmark after another, each for a few seconds of its own. Where a
//! comparison is sensitive to the machine's state (hold mode of the pools, whose figures
//! moved 1.0x-1.4x between runs), the bench measures the contenders in turns instead and
//! records each one's rounds with [`record`]: the median time of a round, with the
//! distribution-free 95% interval of the median that the rounds give (their order
//! statistics), in criterion's `new/benchmark.json` and `new/estimates.json` under its output
//! directory.
//!
//! ```
//! use mpm_benches::rounds::{interleaved, median, paired};
//!
//! // Two contenders, five rounds; the machine halves its speed every round, and the first
//! // contender is twice as fast as the second on the same machine.
//! let mut speed = 2.0;
//! let rates = interleaved(2, 5, |i| {
//!     if i == 0 {
//!         speed /= 2.0;
//!         2.0 * speed
//!     } else {
//!         speed
//!     }
//! });
//! assert_eq!(rates[0].len(), 5);
//! assert_eq!(paired(&rates[0], &rates[1]), 2.0);
//! assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `rounds` rounds in which each of `n` contenders takes its turn (`rate(i)` runs contender
/// `i` once and returns its throughput); returns each one's throughputs, round by round.
pub fn interleaved(n: usize, rounds: usize, mut rate: impl FnMut(usize) -> f64) -> Vec<Vec<f64>> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
    for _ in 0..rounds {
        for (i, r) in rates.iter_mut().enumerate() {
            r.push(rate(i));
        }
    }
    rates
}

/// The median (the upper one of an even count); NaN for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median over rounds of the ratio of `a`'s throughput to `b`'s in the same round: the
/// load of a shared machine changes within a pass, and two turns run one shortly after the
/// other share more of it than two medians over the pass do.
pub fn paired(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(a, b)| a / b).collect())
}

/// Where criterion writes its results, found as criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the `criterion` folder of the target directory that
/// holds this bench executable (cargo puts it in `<target>/<profile>/deps/`).
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// The median of `times` and the distribution-free interval of at least 95% confidence that
/// the order statistics give for it: with `n` sorted values, from the `k`-th to the
/// `(n + 1 - k)`-th, `k` the largest for which fewer than `k` of `n` fair coin tosses come up
/// heads with probability at most 2.5%. With fewer than six values no such `k` exists and the
/// interval is the whole range.
pub fn median_interval(times: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = times.iter().copied().filter(|t| t.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // Grow k while P(Binomial(n, 1/2) <= k) stays at most 2.5%, summed term by term, and
    // while the interval still holds the median.
    let mut k = 1;
    let mut term = 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX)); // P(X = k - 1)
    let mut cdf = term; // P(X <= k - 1)
    while cdf <= 0.025 && k < n / 2 {
        let next = term * (n - (k - 1)) as f64 / k as f64; // P(X = k)
        if cdf + next > 0.025 {
            break;
        }
        term = next;
        cdf += next;
        k += 1;
    }
    if cdf > 0.025 {
        k = 1;
    }
    Some((v[n / 2], v[k - 1], v[n - k]))
}

/// Writes the rounds of benchmark `id` (`group/function/parameter`, as criterion's ids) where
/// criterion writes its results: one round processed `elements` elements and took the time
/// given, in order. The estimate is the median time per round with [`median_interval`]'s
/// interval.
pub fn record(id: &str, elements: u64, times: &[Duration]) -> io::Result<()> {
    record_in(&criterion_home(), id, elements, times)
}

/// Writes the rounds of benchmark `id` as [`record`] does, each round's figure the mean time of
/// one operation in nanoseconds (a fraction, where a [`Duration`] would round it): what
/// criterion reports for a benchmark without a throughput, so that a group measured in rounds
/// reads like its neighbours, in time per operation.
pub fn record_per_op(id: &str, ns_per_op: &[f64]) -> io::Result<()> {
    record_ns(&criterion_home(), id, 1, ns_per_op.to_vec())
}

/// [`record`] into the criterion folder `home`.
pub fn record_in(home: &Path, id: &str, elements: u64, times: &[Duration]) -> io::Result<()> {
    let ns = times.iter().map(|t| t.as_secs_f64() * 1e9).collect();
    record_ns(home, id, elements, ns)
}

fn record_ns(home: &Path, id: &str, elements: u64, ns: Vec<f64>) -> io::Result<()> {
    let (median, lower, upper) = median_interval(&ns)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{id}: no rounds")))?;
    let dir = id
        .split('/')
        .fold(home.to_path_buf(), |d, part| d.join(sanitize(part)))
        .join("new");
    fs::create_dir_all(&dir)?;
    let benchmark = serde_json::json!({
        "full_id": id,
        "throughput": { "Elements": elements },
        "source": "interleaved rounds",
    });
    let estimates = serde_json::json!({
        "median": {
            "point_estimate": median,
            "confidence_interval": {
                "confidence_level": 0.95,
                "lower_bound": lower,
                "upper_bound": upper,
            },
        },
        "rounds_ns": ns,
    });
    write_atomic(&dir.join("benchmark.json"), &benchmark)?;
    write_atomic(&dir.join("estimates.json"), &estimates)
}

fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_atomic(path: &Path, value: &serde_json::Value) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    fs::rename(&tmp, path)
}

/// Whether a pass that criterion does not run is selected by the filter on the command line:
/// criterion's filter, a regular expression over benchmark ids, matched against each of
/// `ids` (a plain word matches every id that contains it). No filter selects everything.
pub fn selected<'a>(ids: impl IntoIterator<Item = &'a str>) -> bool {
    let Some(filter) = filter_arg(std::env::args().skip(1)) else {
        return true;
    };
    matches(&filter, ids)
}

/// Whether `filter` (a regular expression, or a plain substring where it is not one) matches
/// any of `ids`.
pub fn matches<'a>(filter: &str, ids: impl IntoIterator<Item = &'a str>) -> bool {
    let re = regex::Regex::new(filter).ok();
    ids.into_iter().any(|id| match &re {
        Some(re) => re.is_match(id),
        None => id.contains(filter),
    })
}

/// The first argument that is neither a flag nor a flag's value: criterion's filter.
fn filter_arg(mut args: impl Iterator<Item = String>) -> Option<String> {
    // Criterion's flags that take a value: their values are not filters.
    const WITH_VALUE: [&str; 15] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
    ];
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_of_the_median_is_the_order_statistics_a_binomial_gives() {
        let v: Vec<f64> = (1..=21).map(f64::from).collect();
        // n = 21: P(X <= 5) = 1.3%, P(X <= 6) = 3.9%, so the 6th and 16th values.
        assert_eq!(median_interval(&v), Some((11.0, 6.0, 16.0)));
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        // n = 11: P(X <= 1) = 0.6%, P(X <= 2) = 3.3%, so the 2nd and 10th.
        assert_eq!(median_interval(&v), Some((6.0, 2.0, 10.0)));
        // Too few values for 95%: the whole range.
        assert_eq!(median_interval(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(median_interval(&[]), None);
    }

    #[test]
    fn a_record_reads_back_as_criterion_writes_it() {
        let home = tempfile::tempdir().expect("a temporary folder");
        let times: Vec<Duration> = (1..=11).map(Duration::from_millis).collect();
        record_in(home.path(), "pool_hold/mpm/16x64", 50_000, &times).expect("written");
        let new = home.path().join("pool_hold/mpm/16x64/new");
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&fs::read(new.join(f)).expect("a file")).expect("JSON")
        };
        let b = read("benchmark.json");
        assert_eq!(b["full_id"], "pool_hold/mpm/16x64");
        assert_eq!(b["throughput"]["Elements"], 50_000);
        let e = read("estimates.json");
        assert_eq!(e["median"]["point_estimate"], 6e6);
        assert_eq!(e["median"]["confidence_interval"]["lower_bound"], 2e6);
        assert_eq!(e["median"]["confidence_interval"]["upper_bound"], 10e6);
        assert!(record_in(home.path(), "x/y", 1, &[]).is_err());
    }

    #[test]
    fn a_record_per_operation_keeps_fractions_of_a_nanosecond() {
        let home = tempfile::tempdir().expect("a temporary folder");
        let ns: Vec<f64> = (0..11).map(|i| 8.25 + f64::from(i) / 10.0).collect();
        record_ns(home.path(), "l1_hot_get/mpm", 1, ns).expect("written");
        let new = home.path().join("l1_hot_get/mpm/new");
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&fs::read(new.join(f)).expect("a file")).expect("JSON")
        };
        assert_eq!(read("benchmark.json")["throughput"]["Elements"], 1);
        let median = &read("estimates.json")["median"];
        assert_eq!(median["point_estimate"], 8.75);
        assert_eq!(median["confidence_interval"]["lower_bound"], 8.35);
        assert_eq!(median["confidence_interval"]["upper_bound"], 9.15);
    }

    #[test]
    fn the_filter_is_the_first_argument_that_is_not_a_flag_or_its_value() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            filter_arg(args(&["--bench", "--sample-size", "10", "pool_hold"]).into_iter()),
            Some("pool_hold".to_owned())
        );
        assert_eq!(filter_arg(args(&["--noplot", "--quick"]).into_iter()), None);
    }

    #[test]
    fn a_filter_matches_as_criterion_s_regular_expression_or_as_a_word() {
        assert!(matches(
            "^(pool_hold/mpm/16x64|pool_get_drop/mpm/4x16)$",
            ["pool_hold/mpm/16x64"]
        ));
        assert!(!matches("^(pool_hold/mpm/16x64)$", ["pool_hold/mpm/4x16"]));
        assert!(matches("pool", ["pool_interleaved/hold/4x16"]));
        assert!(matches("hold(", ["pool_interleaved/hold(/4x16"]));
        assert!(!matches("cache", ["pool_interleaved/hold/4x16"]));
    }
}
