//! The crate's table of metrics matches what an optimizer exports, and the counts are exact.

use mpm_memory_opt::{Error, FileOptions, Optimizer, Options};
use mpm_metrics::{Registry, contract};

const TABLE: &str = include_str!("../../src/metrics.md");

fn optimizer(registry: &Registry, name: &str) -> Result<Optimizer, Error> {
    Optimizer::builder(Options::default())
        .metrics(registry, name)
        .build()
}

/// Drives every metric of the table, then checks the table against the exposition.
#[test]
fn the_table_lists_every_exported_metric_and_counts_are_exact() {
    let registry = Registry::default();
    let opt = optimizer(&registry, "memories").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("engineer_memories.md");
    std::fs::write(&file, "## Learnings\n- a\n- a\n- b\n").unwrap();
    let report = opt.optimize_file(&file, FileOptions::default()).unwrap();
    assert!(report.written);
    opt.optimize_text("## Learnings\n- c\n- c\n- c\n");
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "- a\n").unwrap();
    assert!(matches!(
        opt.optimize_file(&readme, FileOptions::default()),
        Err(Error::Readme { .. })
    ));
    assert!(matches!(
        opt.optimize_file(&dir.path().join("gone_memories.md"), FileOptions::default()),
        Err(Error::Io { .. })
    ));

    let text = registry.render_prometheus();
    contract::check_metric_table(TABLE, &text, "mpm_memory_opt_").unwrap();
    for line in [
        "mpm_memory_opt_documents_total{name=\"memories\"} 2\n",
        "mpm_memory_opt_entries_removed_total{name=\"memories\"} 3\n",
        "mpm_memory_opt_optimize_seconds_count{name=\"memories\"} 2\n",
        "mpm_memory_opt_files_written_total{name=\"memories\"} 1\n",
        "mpm_memory_opt_file_errors_total{name=\"memories\",reason=\"readme\"} 1\n",
        "mpm_memory_opt_file_errors_total{name=\"memories\",reason=\"io\"} 1\n",
        "mpm_memory_opt_file_errors_total{name=\"memories\",reason=\"parse\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn a_second_optimizer_of_one_name_fails_at_build_and_a_clone_shares_the_series() {
    let registry = Registry::default();
    let first = optimizer(&registry, "memories").unwrap();
    assert!(matches!(
        optimizer(&registry, "memories"),
        Err(Error::Metrics { .. })
    ));
    let clone = first.clone();
    drop(first);
    clone.optimize_text("- a\n");
    assert!(
        registry
            .render_prometheus()
            .contains("mpm_memory_opt_documents_total{name=\"memories\"} 1\n")
    );
    assert!(
        optimizer(&registry, "memories").is_err(),
        "the clone still holds the name"
    );
    drop(clone);
    optimizer(&registry, "memories").unwrap();
}
