use mpm_memory_opt::{FileOptions, MemoryStore, Optimizer, Options, SymlinkPolicy};

#[test]
fn lists_both_naming_schemes_and_skips_readme_and_backups() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "engineer_agent.md",
        "qa_memories.md",
        "README.md",
        "qa_memories_backup_20250101_000000.md",
        "notes.txt",
    ] {
        std::fs::write(dir.path().join(name), "## Learnings\n- a\n").unwrap();
    }
    let store = MemoryStore::new(dir.path(), Options::default());
    assert_eq!(store.agents().unwrap(), ["engineer", "qa"]);
    assert_eq!(store.path_of("qa"), dir.path().join("qa_memories.md"));
    assert_eq!(
        store.path_of("engineer"),
        dir.path().join("engineer_agent.md")
    );
}

#[test]
fn optimizes_many_files_with_bounded_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let body = format!("## Learnings\n- item {i}\n- ITEM {i}\n- other {i} thing\n");
        std::fs::write(dir.path().join(format!("a{i}_memories.md")), body).unwrap();
    }
    let store = MemoryStore::new(dir.path(), Options::default());
    let results = store.optimize_all(4, FileOptions::default());
    assert_eq!(results.len(), 40);
    for (path, r) in results {
        let r = r.unwrap();
        assert_eq!(r.duplicates_removed, 1, "{}", path.display());
        assert!(r.backup_created.as_ref().unwrap().exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
    }
}

#[test]
fn auto_optimize_runs_only_past_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        size_limit: Some(1_000),
        ..Options::default()
    };
    let store = MemoryStore::new(dir.path(), opts);
    let small = "## Recent Learnings\n- a\n- a\n";
    std::fs::write(dir.path().join("eng_memories.md"), small).unwrap();
    assert!(store.auto_optimize_if_needed("eng").unwrap().is_none());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("eng_memories.md")).unwrap(),
        small
    );
    let mut big = String::from("## Recent Learnings\n");
    for i in 0..60 {
        big.push_str(&format!(
            "- learning number {i} about the {} subsystem\n",
            ["cache", "pool", "batch"][i % 3]
        ));
    }
    big.push_str("- a\n- a\n");
    std::fs::write(dir.path().join("eng_memories.md"), &big).unwrap();
    assert!(store.needs_optimization("eng").unwrap());
    let r = store
        .auto_optimize_if_needed("eng")
        .unwrap()
        .expect("past 80% of 1,000 bytes");
    assert!(r.written);
    assert!(
        std::fs::metadata(dir.path().join("eng_memories.md"))
            .unwrap()
            .len()
            <= 1_000
    );
}

#[test]
fn readme_symlinks_and_hard_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "- a\n- a\n").unwrap();
    let opt = Optimizer::new(Options::default());
    assert!(
        opt.optimize_file(&readme, FileOptions::default())
            .unwrap_err()
            .to_string()
            .contains("README.md")
    );
    let f = dir.path().join("x_memories.md");
    std::fs::write(&f, "## L\n- a\n- a\n").unwrap();
    let tiny = Optimizer::new(Options {
        max_file_bytes: 4,
        ..Options::default()
    });
    assert!(
        tiny.optimize_file(&f, FileOptions::default())
            .unwrap_err()
            .to_string()
            .contains("over the 4-byte limit")
    );
    #[cfg(unix)]
    {
        let link = dir.path().join("y_memories.md");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(
            opt.optimize_file(&link, FileOptions::default())
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        let follow = Optimizer::new(Options {
            symlinks: SymlinkPolicy::Follow,
            ..Options::default()
        });
        let r = follow.optimize_file(&link, FileOptions::default()).unwrap();
        assert!(r.written);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "## L\n- a\n");
        // The backup sits beside the target, named as claude-mpm names it.
        let b = r.backup_created.unwrap();
        assert_eq!(b.parent(), f.canonicalize().unwrap().parent());
        assert!(
            b.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("x_memories_backup_")
        );
    }
}

#[test]
fn dry_run_writes_nothing_and_metrics_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x_memories.md");
    std::fs::write(&f, "## L\n- a\n- a\n").unwrap();
    let registry = mpm_metrics::Registry::default();
    let opt = Optimizer::builder(Options::default())
        .metrics(&registry, "memories")
        .build()
        .unwrap();
    let r = opt.optimize_file(&f, FileOptions::dry_run()).unwrap();
    assert!(r.changed && !r.written && r.backup_created.is_none());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "## L\n- a\n- a\n");
    let snap = registry.snapshot();
    assert_eq!(
        snap.get("mpm_memory_opt_documents_total", &[("name", "memories")])
            .unwrap()
            .as_f64(),
        1.0
    );
    assert_eq!(
        snap.get(
            "mpm_memory_opt_entries_removed_total",
            &[("name", "memories")]
        )
        .unwrap()
        .as_f64(),
        1.0
    );
}
