//! Writes a synthetic memory file like the benchmarks' (to time other optimizers on it):
//!
//! ```text
//! cargo run --release -p mpm-memory-opt --example generate -- 81920 0.2 42 > engineer_agent.md
//! ```
//!
//! Arguments: size in bytes, duplicate share, seed.

use mpm_memory_opt::generator::{Spec, generate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let spec = Spec {
        target_bytes: arg(0, "81920").parse().unwrap_or(81_920),
        duplicate_share: arg(1, "0.2").parse().unwrap_or(0.2),
        seed: arg(2, "42").parse().unwrap_or(42),
    };
    print!("{}", generate(spec).text);
}
