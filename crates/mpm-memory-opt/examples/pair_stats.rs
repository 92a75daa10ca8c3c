//! Runs the `default` profile on a generated file and prints the time and the pair counters
//! (pairs looked at, pruned by each bound, computed in full), for profiling:
//!
//! ```text
//! cargo run --release -p mpm-memory-opt --example pair_stats -- 1048576 1 3
//! valgrind --tool=callgrind --toggle-collect='*optimize_text*' target/release/examples/pair_stats
//! ```
//!
//! Arguments: size in bytes (1 MiB), threads (1), repetitions (1), `noprune` for all pairs.

use std::hash::{DefaultHasher, Hash, Hasher};

use mpm_memory_opt::generator::{Spec, generate};
use mpm_memory_opt::{Optimizer, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (bytes, threads, reps) = (num(0, 1 << 20), num(1, 1), num(2, 1).max(1));
    let prune = args.get(3).is_none_or(|a| a != "noprune");
    let text = generate(Spec {
        target_bytes: bytes,
        duplicate_share: 0.2,
        seed: 42,
    })
    .text;
    let optimizer = Optimizer::new(Options {
        threads,
        prune,
        ..Options::default()
    });
    let start = std::time::Instant::now();
    let mut outcome = optimizer.optimize_text(&text);
    for _ in 1..reps {
        outcome = optimizer.optimize_text(&text);
    }
    let per_run = start.elapsed() / reps as u32;
    // A digest of the output and audit list, to compare builds.
    let mut h = DefaultHasher::new();
    outcome.output.hash(&mut h);
    format!("{:?}", outcome.report.audit).hash(&mut h);
    println!(
        "{per_run:?} per run; {:?}; {} audit entries; digest {:016x}",
        outcome.report.pairs,
        outcome.report.audit.len(),
        h.finish()
    );
}
