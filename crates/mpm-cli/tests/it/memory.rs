use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const EXAMPLE: &str = "# Engineer Agent Memory - demo\n\n<!-- MEMORY LIMITS: 80KB max | 10 sections max | 15 items per section -->\n<!-- Last Updated: 2025-08-20 10:00:00 | Auto-updated by: engineer -->\n\n## Recent Learnings\n- Note: the CLI entry point is cli/main.py\n- Use async/await for all database operations\n- use async/await   for all database operations\n- Use async/await for all database operations and queries\n\n## Project Architecture\n- Service layer lives in src/services\n- Services live in src/services directory\n- You must always register services in the DI container\n\n## Implementation Guidelines\n<!-- Items will be added as knowledge accumulates -->\n- Prefer pathlib over os.path\n- Tests should use pytest fixtures\n";

fn mpm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpm"))
        .args(args)
        .output()
        .expect("the mpm binary runs")
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn memories() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("engineer_memories.md"), EXAMPLE).unwrap();
    std::fs::write(
        dir.path().join("qa_agent.md"),
        EXAMPLE.replace("\n", "\r\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "- dup\n- dup\n").unwrap();
    dir
}

#[test]
fn dry_run_leaves_every_byte_unchanged() {
    let dir = memories();
    let before = snapshot(dir.path());
    let out = mpm(&[
        "memory",
        "optimize",
        "--dry-run",
        "--diff",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(dir.path()), before);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(
        stdout.contains("-- use async/await   for all database operations"),
        "{stdout}"
    );
    assert!(stdout.contains("+++ b/"), "{stdout}");
}

#[test]
fn optimize_writes_backups_and_json_reports() {
    let dir = memories();
    let out = mpm(&["memory", "optimize", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 2, "README.md is not a memory file");
    for r in reports {
        for key in [
            "original_size",
            "optimized_size",
            "size_reduction",
            "size_reduction_percent",
            "duplicates_removed",
            "items_consolidated",
            "items_reordered",
            "sections_optimized",
            "backup_created",
            "audit",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_eq!(r["duplicates_removed"], 2);
        let backup = r["backup_created"].as_str().unwrap();
        assert!(backup.contains("_backup_"), "{backup}");
        assert!(Path::new(backup).exists());
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "- dup\n- dup\n"
    );
    let text = std::fs::read_to_string(dir.path().join("engineer_memories.md")).unwrap();
    assert!(text.contains("- Use async/await for all database operations and queries\n"));
    // CRLF stays CRLF.
    let qa = std::fs::read_to_string(dir.path().join("qa_agent.md")).unwrap();
    assert!(qa.contains("\r\n") && !qa.replace("\r\n", "").contains('\n'));
    // A second run changes nothing and writes no backup.
    let again = mpm(&[
        "memory",
        "optimize",
        "--json",
        dir.path().join("engineer_memories.md").to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v[0]["changed"], false);
    assert_eq!(v[0]["backup_created"], Value::Null);
}

#[test]
fn claude_mpm_profile_matches_python() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("engineer_agent.md");
    std::fs::write(&f, EXAMPLE).unwrap();
    let out = mpm(&[
        "memory",
        "optimize",
        "--profile",
        "claude-mpm",
        "--json",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["original_size"], 703);
    assert_eq!(v[0]["optimized_size"], 598);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.ends_with("- Use async/await for all database operations and queries"));
    assert!(text.contains("| Auto-updated by: optimizer -->"));
}

#[test]
fn errors_name_the_file_and_others_are_still_processed() {
    let dir = memories();
    let bad = dir.path().join("bad_memories.md");
    std::fs::write(&bad, b"## A\n- \xff\xfe\n").unwrap();
    let missing = dir.path().join("nope_memories.md");
    let good = dir.path().join("engineer_memories.md");
    let out = mpm(&[
        "memory",
        "optimize",
        bad.to_str().unwrap(),
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("bad_memories.md") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(stderr.contains("nope_memories.md"), "{stderr}");
    assert_ne!(
        std::fs::read_to_string(&good).unwrap(),
        EXAMPLE,
        "the good file was still optimized"
    );
    assert_eq!(std::fs::read(&bad).unwrap(), b"## A\n- \xff\xfe\n");
    // README.md named directly is refused.
    let out = mpm(&[
        "memory",
        "optimize",
        dir.path().join("README.md").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("README.md"));
}

#[test]
fn hard_limit_and_symlinks_are_refused() {
    let dir = memories();
    let f = dir.path().join("engineer_memories.md");
    let out = mpm(&[
        "memory",
        "optimize",
        "--hard-limit",
        "100B",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the 100-byte limit"));
    #[cfg(unix)]
    {
        let link = dir.path().join("link_memories.md");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let out = mpm(&["memory", "optimize", link.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
        let out = mpm(&[
            "memory",
            "optimize",
            "--follow-symlinks",
            link.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_ne!(std::fs::read_to_string(&f).unwrap(), EXAMPLE);
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(mpm(&["memory", "optimize"]).status.code(), Some(2));
    assert_eq!(
        mpm(&["memory", "optimize", "--threshold", "1.5", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        mpm(&["memory", "optimize", "--max-size", "lots", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        mpm(&[
            "memory",
            "optimize",
            "--profile",
            "claude-mpm",
            "--threshold",
            "0.9",
            "x"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(mpm(&["memory", "frobnicate"]).status.code(), Some(2));
}

#[test]
fn analyze_and_stats_write_nothing() {
    let dir = memories();
    let before = snapshot(dir.path());
    let out = mpm(&["memory", "analyze", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<String> = v[0]["opportunities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_owned())
        .collect();
    assert!(
        ops.contains(&"Recent Learnings: 2 duplicate items".to_owned()),
        "{ops:?}"
    );
    let out = mpm(&["memory", "stats", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["bytes"], 703);
    assert_eq!(v[0]["entries"], 9);
    assert_eq!(v[0]["sections"], 3);
    let text = mpm(&["memory", "stats", dir.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("engineer_memories.md"));
    assert_eq!(snapshot(dir.path()), before);
}
