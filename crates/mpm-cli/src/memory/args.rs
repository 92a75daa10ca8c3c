//! The `memory` subcommands' arguments and their parsers.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use mpm_memory_opt::{Difflib, Indel, Options, Similarity, SymlinkPolicy};

/// Which optimizer.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ProfileArg {
    /// Ours: nothing dropped, layout kept, ties keep their order.
    Default,
    /// claude-mpm v4.0.29's output, byte for byte apart from the timestamp.
    ClaudeMpm,
}

/// The `default` profile's similarity metric.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum MetricArg {
    /// Bit-parallel indel ratio (fast; the default).
    Indel,
    /// Python's difflib ratio.
    Difflib,
}

/// Arguments of `optimize` and `analyze`.
#[derive(Args, Debug)]
pub(crate) struct CommonArgs {
    /// Memory files or memories directories.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Which optimizer.
    #[arg(long, value_enum, default_value = "default")]
    pub(crate) profile: ProfileArg,
    /// Consolidation threshold, 0..=1 (default 0.70; `default` profile only).
    #[arg(long, value_parser = parse_ratio)]
    pub(crate) threshold: Option<f64>,
    /// Near-duplicate threshold, 0..=1 (default 0.85; `default` profile only).
    #[arg(long, value_parser = parse_ratio)]
    pub(crate) near_threshold: Option<f64>,
    /// Similarity metric of the `default` profile.
    #[arg(long, value_enum, default_value = "indel")]
    pub(crate) metric: MetricArg,
    /// Size limit per file, e.g. `80KB`, `1MB`, `65536` (KB = 1024 bytes).
    #[arg(long, value_parser = parse_size, default_value = "80KB")]
    pub(crate) max_size: usize,
    /// Refuse files larger than this (default 64MB).
    #[arg(long, value_parser = parse_size, default_value = "64MB")]
    pub(crate) hard_limit: usize,
    /// Follow symbolic links (default: refuse them).
    #[arg(long)]
    pub(crate) follow_symlinks: bool,
    /// Accept files named on the command line that are neither named nor headed as memory
    /// files (`README.md` is still refused).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print a JSON array, one object per file.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `optimize`.
#[derive(Args, Debug)]
pub(crate) struct OptimizeArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print a unified diff of each change.
    #[arg(long)]
    pub(crate) diff: bool,
}

/// Arguments of `stats`.
#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Memory files or memories directories.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Size limit the `of limit` column refers to (and the `default` profile's size policy).
    #[arg(long, value_parser = parse_size, default_value = "80KB")]
    pub(crate) max_size: usize,
    /// Accept files named on the command line that are neither named nor headed as memory
    /// files (`README.md` is still refused).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print a JSON array, one object per file.
    #[arg(long)]
    pub(crate) json: bool,
}

impl CommonArgs {
    /// The optimizer options these arguments ask for.
    pub(crate) fn options(&self) -> Result<Options, String> {
        let mut o = match self.profile {
            ProfileArg::Default => Options::default(),
            ProfileArg::ClaudeMpm => {
                if self.threshold.is_some() || self.near_threshold.is_some() {
                    return Err(
                        "--threshold and --near-threshold apply to the default profile only (claude-mpm's thresholds are fixed)"
                            .to_owned(),
                    );
                }
                Options::claude_mpm()
            }
        };
        if let Some(t) = self.threshold {
            o.consolidation = Some(t);
        }
        if let Some(t) = self.near_threshold {
            o.near_duplicates = Some(t);
        }
        o.metric = match self.metric {
            MetricArg::Indel => Arc::new(Indel) as Arc<dyn Similarity>,
            MetricArg::Difflib => Arc::new(Difflib),
        };
        o.size_limit = Some(self.max_size);
        o.max_file_bytes = self.hard_limit as u64;
        o.symlinks = if self.follow_symlinks {
            SymlinkPolicy::Follow
        } else {
            SymlinkPolicy::Refuse
        };
        Ok(o)
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = [
        ("KIB", 1024),
        ("MIB", 1 << 20),
        ("GIB", 1 << 30),
        ("KB", 1024),
        ("MB", 1 << 20),
        ("GB", 1 << 30),
        ("K", 1024),
        ("M", 1 << 20),
        ("G", 1 << 30),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| {
        upper
            .strip_suffix(suffix)
            .map(|n| (n.trim().to_owned(), *m))
    })
    .unwrap_or((upper.clone(), 1usize));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 80KB, 1MB, 65536)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("`{s}` is not a size"));
    }
    Ok((v * mult as f64) as usize)
}
