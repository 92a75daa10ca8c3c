use mpm_memory_opt::{Action, Optimizer, Options, Profile};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn claude() -> Optimizer {
    Optimizer::new(Options {
        timestamp: Some("2026-11-24 01:06:44".to_owned()),
        ..Options::claude_mpm()
    })
}

#[test]
fn claude_mpm_profile_reproduces_python_on_the_example() {
    let input = fixture("example_input.md");
    let out = claude().optimize_text(&input);
    assert_eq!(out.output, fixture("example_claude_mpm.md"));
    let r = &out.report;
    assert_eq!((r.original_size, r.optimized_size), (703, 598));
    assert_eq!(r.size_reduction, 105);
    assert_eq!(r.size_reduction_percent, 14.9);
    assert_eq!(
        (
            r.duplicates_removed,
            r.items_consolidated,
            r.items_reordered,
            r.sections_optimized
        ),
        (1, 2, 1, 2)
    );
    assert!(r.warnings.is_empty());
}

#[test]
fn default_profile_on_the_example_keeps_layout_and_removes_only_matches() {
    let input = fixture("example_input.md");
    let out = Optimizer::new(Options::default()).optimize_text(&input);
    let expected = fixture("example_default.md");
    assert_eq!(out.output, expected, "got:\n{}", out.output);
    for a in &out.report.audit {
        assert!(a.score.unwrap() >= 0.70, "{a:?}");
        assert!(a.matched.is_some());
    }
    // Idempotent.
    let again = Optimizer::new(Options::default()).optimize_text(&out.output);
    assert_eq!(again.output, out.output);
    assert!(again.report.audit.is_empty());
}

#[test]
fn claude_mpm_profile_warns_for_every_dropped_line() {
    let input = "# T\n\n## A\n- one\n- two\n\n## (untitled)\n- lost 1\n\n## A (v2)\n- three\n";
    let out = claude().optimize_text(input);
    // Python keeps only the last `A`; the untitled section and the first `A` vanish.
    assert!(!out.output.contains("lost 1"));
    assert!(!out.output.contains("- one"));
    let dropped: Vec<_> = out
        .report
        .warnings
        .iter()
        .filter(|w| w.kind == "dropped_line")
        .map(|w| w.line.clone().unwrap())
        .collect();
    assert_eq!(
        dropped,
        [
            "## A",
            "- one",
            "- two",
            "",
            "## (untitled)",
            "- lost 1",
            ""
        ]
    );
    // The default profile keeps every line.
    let ours = Optimizer::new(Options::default()).optimize_text(input);
    for l in ["- one", "- two", "- lost 1", "- three"] {
        assert!(ours.output.contains(l), "{l} missing from {}", ours.output);
    }
    assert_eq!(ours.report.sections_merged, 1);
    assert!(
        ours.report
            .audit
            .iter()
            .any(|a| a.action == Action::SectionMerged)
    );
    assert_eq!(Profile::ClaudeMpm.as_str(), "claude-mpm");
}

#[test]
fn claude_mpm_profile_matches_python_on_200_odd_files() {
    // Inputs with CR, CRLF, BOM, repeated and empty section names, `## header`, Unicode case and
    // whitespace; outputs and fields from claude-mpm v4.0.29 (scripts/claude_mpm_fixture.py).
    let opt = Optimizer::new(Options {
        timestamp: Some("2026-01-01 00:00:00".to_owned()),
        ..Options::claude_mpm()
    });
    let text = fixture("claude_mpm_cases.jsonl");
    let mut n = 0;
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let input = case["input"].as_str().unwrap();
        let out = opt.optimize_text(input);
        assert_eq!(
            out.output,
            case["output"].as_str().unwrap(),
            "input {input:?}"
        );
        let r = serde_json::to_value(&out.report).unwrap();
        for field in [
            "original_size",
            "optimized_size",
            "size_reduction",
            "size_reduction_percent",
            "duplicates_removed",
            "items_consolidated",
            "items_reordered",
            "sections_optimized",
        ] {
            assert_eq!(
                r[field].as_f64(),
                case[field].as_f64(),
                "{field} for {input:?}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 200);
}

#[track_caller]
fn check_default(input: &str, expected: &str) {
    let out = Optimizer::new(Options::default()).optimize_text(input);
    assert_eq!(out.output, expected);
}

#[test]
fn default_profile_keeps_bom_crlf_and_missing_final_newline() {
    check_default(
        "\u{feff}# M\r\n\r\n## Learnings\r\n- Use pathlib\r\n- use  PATHLIB\r\n- You must test",
        "\u{feff}# M\r\n\r\n## Learnings\r\n- You must test\r\n- Use pathlib",
    );
}

#[test]
fn default_profile_keeps_text_comments_and_nested_items_in_place() {
    check_default(
        "## A\nintro text\n<!-- c -->\n- parent\n  - child one\n  - child one\n- parent\n\n- other\n",
        "## A\nintro text\n<!-- c -->\n- parent\n  - child one\n  - child one\n- parent\n\n- other\n",
    );
    check_default("## A\n- x\n- x\n\n## B\n- x\n", "## A\n- x\n\n## B\n- x\n");
}

#[test]
fn default_profile_size_policy_covers_the_flat_layout() {
    let mut input =
        String::from("# Engineer Agent Memory\nLast Updated: 2025-01-01\n\n## Learnings\n");
    for i in 0..40 {
        input.push_str(&format!(
            "- learning {i:02} about widgets and gadgets {}\n",
            "x".repeat(i % 7)
        ));
    }
    let out = Optimizer::new(Options {
        size_limit: Some(1_000),
        consolidation: None,
        near_duplicates: None,
        ..Options::default()
    })
    .optimize_text(&input);
    assert!(out.output.len() <= 1_000);
    assert!(
        out.output
            .starts_with("# Engineer Agent Memory\nLast Updated: 2025-01-01\n\n## Learnings\n")
    );
    assert!(out.report.warnings.is_empty());
    // Oldest first: the first learnings went.
    assert!(!out.output.contains("learning 00"));
    assert!(out.output.contains("learning 39"));
}
