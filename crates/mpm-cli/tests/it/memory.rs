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

#[test]
fn help_describes_only_commands_that_exist() {
    let out = mpm(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    // No command for cache inspection exists.
    assert!(!help.contains("cache inspection"), "{help}");
    // Every command the help lists runs (its own --help succeeds).
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"memory"), "{help}");
    for c in commands {
        assert_eq!(mpm(&[c, "--help"]).status.code(), Some(0), "`mpm {c}`");
    }
}

#[test]
fn a_directory_without_memory_files_is_an_error_that_says_where_it_looked() {
    // An empty directory, and a project root one level above `.claude-mpm/memories`.
    let root = tempfile::tempdir().unwrap();
    let memories = root.path().join(".claude-mpm").join("memories");
    std::fs::create_dir_all(&memories).unwrap();
    for sub in ["stats", "analyze", "optimize"] {
        let out = mpm(&["memory", sub, memories.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no memory files found") && stderr.contains(memories.to_str().unwrap()),
            "{sub}: {stderr}"
        );
    }
    std::fs::write(memories.join("engineer_memories.md"), EXAMPLE).unwrap();
    let out = mpm(&["memory", "stats", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no memory files found") && stderr.contains(memories.to_str().unwrap()),
        "the message points at the memories directory: {stderr}"
    );
    let json = mpm(&["memory", "stats", "--json", root.path().to_str().unwrap()]);
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["success"], false);
}

#[test]
fn files_that_are_not_memory_files_are_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("Cargo.toml");
    let body = "[package]\nname = \"x\"\n- a\n- a\n";
    std::fs::write(&toml, body).unwrap();
    for sub in ["analyze", "optimize", "stats"] {
        let out = mpm(&["memory", sub, toml.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Cargo.toml") && stderr.contains("not a memory file"),
            "{sub}: {stderr}"
        );
        assert!(stderr.contains("--force"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&toml).unwrap(), body);
    let forced = mpm(&["memory", "analyze", "--force", toml.to_str().unwrap()]);
    assert_eq!(
        forced.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    // A file with claude-mpm's header is a memory file whatever its name.
    let headed = dir.path().join("notes.md");
    std::fs::write(&headed, EXAMPLE).unwrap();
    assert_eq!(
        mpm(&["memory", "analyze", headed.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    // README.md stays refused, forced or not.
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, EXAMPLE).unwrap();
    let out = mpm(&["memory", "optimize", "--force", readme.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), EXAMPLE);
}

#[test]
fn stats_needs_optimization_follows_what_optimize_would_do() {
    let dir = tempfile::tempdir().unwrap();
    // Small (far under the 80% mark) but full of duplicates.
    let dup = dir.path().join("engineer_memories.md");
    std::fs::write(&dup, EXAMPLE).unwrap();
    // Small and already optimized.
    let clean = dir.path().join("qa_memories.md");
    std::fs::write(
        &clean,
        "# QA Agent Memory\n\n## Learnings\n- Tests must use fixtures\n- Prefer pathlib over os.path\n",
    )
    .unwrap();
    let out = mpm(&["memory", "stats", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_agent = |id: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["agent_id"] == id)
            .unwrap()
            .clone()
    };
    let e = by_agent("engineer");
    assert_eq!(e["needs_optimization"], true, "{e}");
    assert_eq!(e["optimizable_entries"], 3, "{e}");
    let q = by_agent("qa");
    assert_eq!(q["needs_optimization"], false, "{q}");
    assert_eq!(q["optimizable_entries"], 0, "{q}");
}

#[test]
fn wording_counts_signs_and_diff_headers() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("engineer_memories.md");
    // One duplicate, one section reordered, the size barely changes.
    std::fs::write(
        &f,
        "# Engineer Agent Memory\n\n## Learnings\n- a note about pathlib usage in the codebase today\n- a note about pathlib usage in the codebase today\n- You must always run the tests before pushing\n",
    )
    .unwrap();
    let out = mpm(&["memory", "analyze", f.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1 duplicate removed"), "{stdout}");
    assert!(stdout.contains("Learnings: 1 duplicate item\n"), "{stdout}");
    assert!(stdout.contains("1 section reordered"), "{stdout}");
    assert!(
        !stdout.contains("1 items") && !stdout.contains("1 duplicates"),
        "{stdout}"
    );
    // Nothing to do: no `-0.0%`.
    let clean = dir.path().join("qa_memories.md");
    std::fs::write(
        &clean,
        "# QA Agent Memory\n\n## Learnings\n- Tests must use fixtures\n",
    )
    .unwrap();
    let stdout =
        String::from_utf8(mpm(&["memory", "analyze", clean.to_str().unwrap()]).stdout).unwrap();
    assert!(
        stdout.contains("(0.0%)") && !stdout.contains("-0.0%"),
        "{stdout}"
    );
    // Diff headers of an absolute path have one slash after `a`/`b`, as git writes them.
    let out = mpm(&[
        "memory",
        "optimize",
        "--dry-run",
        "--diff",
        f.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let shown = f.to_str().unwrap().trim_start_matches('/');
    assert!(stdout.contains(&format!("--- a/{shown}\n")), "{stdout}");
    assert!(stdout.contains(&format!("+++ b/{shown}\n")), "{stdout}");
    assert!(!stdout.contains("a//"), "{stdout}");
}

#[test]
fn default_profile_merges_read_well() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("engineer_memories.md");
    std::fs::write(
        &f,
        "## Learnings\n- Wrap the shared worker state in std::sync::Mutex guards\n- Wrap shared worker state with std mutex guards.\n",
    )
    .unwrap();
    let out = mpm(&["memory", "optimize", "--json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["items_consolidated"], 1, "{v}");
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(
        text, "## Learnings\n- Wrap the shared worker state in std::sync::Mutex guards\n",
        "no `(guards., mutex, std, with)`: punctuation and common words are not brought"
    );
}
