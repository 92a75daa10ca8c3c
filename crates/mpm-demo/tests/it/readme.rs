//! The README's demo table is the one the committed report's run printed.

use std::path::PathBuf;

use mpm_demo::report::{README_BEGIN, README_END, Report};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_readme_table_matches_the_committed_report() {
    let json = std::fs::read_to_string(root().join("docs/demo.json")).unwrap();
    let report = Report::from_json(&json).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (Some(a), Some(b)) = (readme.find(README_BEGIN), readme.find(README_END)) else {
        panic!("README.md has no demo block: run `cargo xtask demo-report`");
    };
    assert!(
        readme[a..b + README_END.len()] == report.readme_block(),
        "README.md's demo table differs from docs/demo.json: run `cargo xtask demo-report` (or `--from docs/demo.json` to keep the figures)"
    );
}
