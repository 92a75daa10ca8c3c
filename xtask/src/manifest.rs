//! The two checked-in declarations: `benches/comparisons.toml` (which benchmarks are compared
//! with which) and `benches/budgets.toml` (the limits CI holds us to).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

/// Cargo's target directory.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Where every output of `cargo xtask bench` goes.
pub(crate) fn report_dir() -> PathBuf {
    target_dir().join("mpm-report")
}

/// What a group's figures are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Unit {
    /// Time per operation: lower is better.
    Time,
    /// Operations per second: higher is better.
    Throughput,
}

impl Unit {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Unit::Time => "time per op",
            Unit::Throughput => "throughput",
        }
    }
}

/// One chart: our benchmark beside the peers that do the same work.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) name: String,
    pub(crate) what: String,
    pub(crate) unit: Unit,
    pub(crate) ours: String,
    pub(crate) peers: Vec<String>,
    pub(crate) seconds_quick: f64,
}

impl Group {
    /// The criterion ids this group runs (the Python peer is not one).
    pub(crate) fn criterion_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.ours.as_str())
            .chain(self.peers.iter().map(String::as_str))
            .filter(|id| !is_python(id))
    }

    /// The bench target (`benches/benches/<target>.rs`) the group's benchmarks live in.
    pub(crate) fn bench_target(&self) -> String {
        self.krate.replace('-', "_")
    }
}

/// Whether a peer id names the Python optimizer, timed outside criterion.
pub(crate) fn is_python(id: &str) -> bool {
    id.starts_with("python:")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComparisonsFile {
    group: Vec<Group>,
}

/// A ratio budget: in one run, our time per operation over the peer's at most `max`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RatioBudget {
    pub(crate) name: String,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    pub(crate) ours: String,
    pub(crate) peer: String,
    pub(crate) max: f64,
}

/// An instruction budget: instructions per operation under callgrind at most `max`, with the
/// tolerance of [`INSTRUCTION_TOLERANCE`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstructionBudget {
    pub(crate) name: String,
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    /// The `mpm-ops` operation.
    pub(crate) op: String,
    /// The two repetition counts whose difference is measured.
    pub(crate) iterations: [u64; 2],
    pub(crate) max: f64,
    /// `avx2` or `scalar`: the path mpm-memory-opt took when the figure was measured, for
    /// operations whose count depends on it.
    #[serde(default)]
    pub(crate) cpu: Option<String>,
}

/// A breach of an instruction budget is an actual figure above `max * (1 + this)`.
pub(crate) const INSTRUCTION_TOLERANCE: f64 = 0.02;

/// `benches/budgets.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Budgets {
    #[serde(default)]
    pub(crate) ratio: Vec<RatioBudget>,
    #[serde(default)]
    pub(crate) instructions: Vec<InstructionBudget>,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The declared groups, checked: unique names, every id in one group only.
pub(crate) fn groups() -> Result<Vec<Group>> {
    let file: ComparisonsFile = read(&root().join("benches/comparisons.toml"))?;
    check_groups(&file.group)?;
    Ok(file.group)
}

fn check_groups(groups: &[Group]) -> Result<()> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for g in groups {
        if !names.insert(&g.name) {
            bail!(
                "benches/comparisons.toml: group {:?} is declared twice",
                g.name
            );
        }
        if g.peers.is_empty() {
            bail!("benches/comparisons.toml: group {:?} has no peer", g.name);
        }
        for id in std::iter::once(&g.ours).chain(&g.peers) {
            if !ids.insert(id) {
                bail!("benches/comparisons.toml: {id:?} is in two groups");
            }
        }
    }
    Ok(())
}

/// The budgets, checked against the declared groups: a ratio budget compares a declared pair.
pub(crate) fn budgets(groups: &[Group]) -> Result<Budgets> {
    let budgets: Budgets = read(&root().join("benches/budgets.toml"))?;
    for b in &budgets.ratio {
        let declared = groups
            .iter()
            .any(|g| g.ours == b.ours && g.peers.contains(&b.peer));
        if !declared {
            bail!(
                "benches/budgets.toml: ratio budget {:?} compares {} with {}, which no group of benches/comparisons.toml declares",
                b.name,
                b.ours,
                b.peer
            );
        }
    }
    Ok(budgets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_declarations_parse_and_agree() {
        let groups = groups().unwrap();
        let budgets = budgets(&groups).unwrap();
        let crates: HashSet<&str> = groups.iter().map(|g| g.krate.as_str()).collect();
        for krate in &crates {
            assert!(
                budgets.ratio.iter().any(|b| &b.krate == krate),
                "crate {krate} has no ratio budget"
            );
            assert!(
                budgets.instructions.iter().any(|b| &b.krate == krate),
                "crate {krate} has no instruction budget"
            );
        }
        for g in &groups {
            let path = root().join(format!("benches/benches/{}.rs", g.bench_target()));
            assert!(path.is_file(), "group {}: no {}", g.name, path.display());
        }
    }

    #[test]
    fn an_id_in_two_groups_is_refused() {
        let g = |name: &str, ours: &str| Group {
            krate: "cache".into(),
            name: name.into(),
            what: String::new(),
            unit: Unit::Time,
            ours: ours.into(),
            peers: vec!["x/peer".into()],
            seconds_quick: 1.0,
        };
        assert!(check_groups(&[g("a", "x/mpm"), g("b", "y/mpm")]).is_err());
        assert!(check_groups(&[g("a", "x/mpm"), g("a", "y/mpm")]).is_err());
        let mut ok = g("b", "y/mpm");
        ok.peers = vec!["y/peer".into()];
        assert!(check_groups(&[g("a", "x/mpm"), ok]).is_ok());
    }
}
