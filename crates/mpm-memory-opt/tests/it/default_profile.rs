use mpm_memory_opt::generator::{Spec, generate};
use mpm_memory_opt::{
    Action, Difflib, Document, Indel, Optimizer, Options, Similarity, bullet_content,
};
use proptest::prelude::*;
use std::sync::Arc;

#[test]
fn compresses_the_guide_sized_file_and_removes_only_generated_duplicates() {
    let g = generate(Spec {
        target_bytes: 156_800,
        duplicate_share: 0.72,
        seed: 7,
    });
    assert_eq!(g.text.len(), 156_800);
    let out = Optimizer::new(Options {
        size_limit: None,
        ..Options::default()
    })
    .optimize_text(&g.text);
    let r = &out.report;
    let ratio = r.compression_ratio();
    assert!(ratio <= 0.35, "compression ratio {ratio}");
    for a in &r.audit {
        let idx = a.line_number - 1;
        assert!(
            g.duplicate_of[idx].is_some(),
            "removed a line the generator made unique: {a:?}"
        );
    }
    // Every generated duplicate is gone.
    let dups = g.duplicate_of.iter().filter(|d| d.is_some()).count();
    assert_eq!(r.audit.len(), dups);
    println!(
        "156,800-byte file: {} -> {} bytes, ratio {ratio:.3}, {} entries, {} removed",
        r.original_bytes,
        r.optimized_bytes,
        g.entries,
        r.audit.len()
    );
}

#[test]
fn pruning_gives_the_all_pairs_result() {
    for (seed, share) in [(1, 0.3), (2, 0.6)] {
        let g = generate(Spec {
            target_bytes: 20_000,
            duplicate_share: share,
            seed,
        });
        // Sprinkle near matches between 0.70 and 0.85 so consolidation has work.
        let text = g.text.replace("- Ka", "- Ka ka").replace("zo ", "zoo ");
        for metric in [
            Arc::new(mpm_memory_opt::Indel) as Arc<dyn mpm_memory_opt::Similarity>,
            Arc::new(Difflib),
        ] {
            let pruned = Optimizer::new(Options {
                metric: metric.clone(),
                ..Options::default()
            })
            .optimize_text(&text);
            let all = Optimizer::new(Options {
                metric,
                prune: false,
                ..Options::default()
            })
            .optimize_text(&text);
            assert_eq!(pruned.output, all.output);
            assert_eq!(pruned.report.audit, all.report.audit);
            assert!(pruned.report.pairs.computed < all.report.pairs.computed);
        }
    }
}

/// [`Indel`] without its fast paths: the optimizer compares each pair through `ratio`.
#[derive(Debug)]
struct PlainIndel;

impl Similarity for PlainIndel {
    fn name(&self) -> &str {
        "plain-indel"
    }
    fn ratio(&self, a: &str, b: &str) -> f64 {
        Indel.ratio(a, b)
    }
    fn bounded_by_lcs(&self) -> bool {
        true
    }
}

#[test]
fn fast_indel_paths_give_the_plain_metric_result() {
    // Sections of 60 to 120 entries: rows four at a time, pairs copied from twins, merges.
    let g = generate(Spec {
        target_bytes: 60_000,
        duplicate_share: 0.4,
        seed: 5,
    });
    let text = g.text.replace("- Ka", "- Ka ka").replace("zo ", "zoo ");
    let run = |metric: Arc<dyn Similarity>| {
        Optimizer::new(Options {
            metric,
            threads: 1,
            ..Options::default()
        })
        .optimize_text(&text)
    };
    let fast = run(Arc::new(Indel));
    let plain = run(Arc::new(PlainIndel));
    assert!(fast.report.near_duplicates_removed > 0);
    assert_eq!(fast.output, plain.output);
    assert_eq!(fast.report.audit, plain.report.audit);
}

#[test]
fn threaded_pair_work_gives_the_one_thread_result() {
    // One section of about 380 entries: over 50,000 candidate pairs, so they are computed up
    // front on several threads when allowed.
    let g = generate(Spec {
        target_bytes: 40_000,
        duplicate_share: 0.3,
        seed: 3,
    });
    let mut text = String::from("# M\n\n## Recent Learnings\n");
    for (k, line) in g.text.lines().filter(|l| l.starts_with("- ")).enumerate() {
        text.push_str(&line.replace("zo ", "zoo "));
        text.push('\n');
        if k % 25 == 3 {
            // Non-ASCII text, and an entry over 128 characters: the one-pair-at-a-time paths.
            text.push_str(&line.replace('e', "é"));
            text.push('\n');
            text.push_str(&format!("{line} {}", &line[2..]));
            text.push('\n');
        }
        if k % 10 == 0 {
            // The first 62% of the line: indel ratio about 0.77, consolidated, not removed.
            let cut: String = line.chars().take(line.chars().count() * 62 / 100).collect();
            text.push_str(&cut);
            text.push('\n');
        }
    }
    assert!(text.lines().count() > 330);
    for metric in [Arc::new(Indel) as Arc<dyn Similarity>, Arc::new(Difflib)] {
        let run = |threads: usize, prune: bool| {
            Optimizer::new(Options {
                metric: metric.clone(),
                threads,
                prune,
                size_limit: None,
                ..Options::default()
            })
            .optimize_text(&text)
        };
        let one = run(1, true);
        assert!(one.report.items_consolidated > 0 && one.report.duplicates_removed > 0);
        for (threads, prune) in [(2, true), (3, true), (2, false)] {
            let many = run(threads, prune);
            assert_eq!(many.output, one.output, "{threads} threads, prune {prune}");
            assert_eq!(many.report.audit, one.report.audit);
            if prune {
                // Every pair is computed up front whatever the thread count.
                assert_eq!(many.report.pairs, one.report.pairs);
            }
        }
    }
}

#[test]
fn size_policy_drops_lowest_priority_oldest_recent_learnings() {
    let mut text =
        String::from("# M\n\n## Project Architecture\n- keep me always\n\n## Recent Learnings\n");
    let g = generate(Spec {
        target_bytes: 6_000,
        duplicate_share: 0.0,
        seed: 3,
    });
    for l in g.text.lines().filter(|l| l.starts_with("- ")) {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("- You must never skip this critical item\n");
    let opts = Options {
        size_limit: Some(3_000),
        consolidation: None,
        near_duplicates: None,
        ..Options::default()
    };
    let out = Optimizer::new(opts).optimize_text(&text);
    assert!(out.output.len() <= 3_000, "{}", out.output.len());
    assert!(out.output.contains("- keep me always"));
    assert!(out.output.contains("critical item"));
    let removed: Vec<_> = out
        .report
        .audit
        .iter()
        .filter(|a| a.action == Action::SizeLimit)
        .collect();
    assert_eq!(removed.len(), out.report.size_limit_removed);
    assert!(!removed.is_empty());
    // Oldest first among equal scores.
    let nums: Vec<usize> = removed
        .iter()
        .filter(|a| a.score == Some(0.0))
        .map(|a| a.line_number)
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]));
}

fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-e ]{0,12}",
        Just("use pathlib over os.path".to_owned()),
        Just("Use pathlib over os.path always".to_owned()),
        Just("tests should use fixtures".to_owned()),
        Just("Tests  should use pytest fixtures".to_owned()),
        "[a-zé -]{10,40}",
    ]
}

fn memory_file() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => entry().prop_map(|e| format!("- {e}\n")),
            1 => entry().prop_map(|e| format!("  - {e}\n")),
            1 => Just("\n".to_owned()),
            1 => Just("<!-- c -->\n".to_owned()),
            1 => prop_oneof![Just("## Recent Learnings\n"), Just("## A\n"), Just("## A (v2)\n"), Just("## (x)\n")].prop_map(str::to_owned),
            1 => Just("text line\r\n".to_owned()),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn optimizing_twice_is_optimizing_once(text in memory_file()) {
        let opt = Optimizer::new(Options::default());
        let once = opt.optimize_text(&text).output;
        let twice = opt.optimize_text(&once).output;
        prop_assert_eq!(&once, &twice);
        // The output parses.
        prop_assert_eq!(Document::parse(once.as_bytes()).unwrap().render(), once);
    }

    #[test]
    fn no_line_without_a_match_is_removed(text in memory_file()) {
        let opts = Options::default();
        let out = Optimizer::new(opts.clone()).optimize_text(&text);
        for a in &out.report.audit {
            match a.action {
                Action::ExactDuplicate | Action::NearDuplicate | Action::Consolidated => {
                    prop_assert!(a.score.unwrap() >= 0.70 && a.matched.is_some());
                    // Recomputed independently from the audit entry: the match is real.
                    let line = bullet_content(&a.line).to_lowercase();
                    let matched = bullet_content(a.matched.as_deref().unwrap()).to_lowercase();
                    if a.action == Action::ExactDuplicate {
                        // Exact means equal once whitespace runs are collapsed ("c d" and
                        // "c    d"), which a character ratio need not reach.
                        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                        prop_assert_eq!(norm(&line), norm(&matched));
                    } else {
                        let r = Indel.ratio(&line, &matched);
                        prop_assert!(r >= 0.70, "{:?} vs {:?}: {}", line, matched, r);
                    }
                }
                Action::SectionMerged | Action::SizeLimit => {}
            }
        }
        // Every non-bullet, non-heading line survives.
        for l in text.lines().filter(|l| !l.trim_start().starts_with("- ") && !l.starts_with("## ")) {
            prop_assert!(out.output.contains(l), "lost {:?}", l);
        }
    }

    #[test]
    fn the_size_limit_holds(text in memory_file(), limit in 50usize..400) {
        let text = text.replace("## A", "## Recent Learnings");
        let out = Optimizer::new(Options { size_limit: Some(limit), ..Options::default() }).optimize_text(&text);
        let over = out.report.warnings.iter().any(|w| w.kind == "over_limit");
        prop_assert!(out.output.len() <= limit || over);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for opts in [Options::default(), Options::claude_mpm()] {
            let _ = Optimizer::new(opts).optimize_bytes(&bytes);
        }
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = Optimizer::new(Options::claude_mpm()).optimize_text(&lossy);
        let _ = Optimizer::new(Options::default()).optimize_text(&lossy);
    }
}
