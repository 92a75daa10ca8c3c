//! `Pattern`: fnmatch semantics.

use mpm_cache::Pattern;

#[track_caller]
fn check(pattern: &str, text: &str, expect: bool) {
    let p = Pattern::new(pattern).unwrap();
    assert_eq!(p.matches(text), expect, "{pattern:?} against {text:?}");
}

#[test]
fn star_matches_any_run_including_separators() {
    check(
        "agent_profile:engineer:*",
        "agent_profile:engineer:42",
        true,
    );
    check("agent_profile:engineer:*", "agent_profile:engineer:", true);
    check("agent_profile:engineer:*", "agent_profile:qa:42", false);
    check("a*b*c", "a/x:b:::c", true);
    check("a*b*c", "abcx", false);
    check("*", "", true);
    check("**x", "yyx", true);
}

#[test]
fn question_mark_and_classes() {
    check("k?", "k1", true);
    check("k?", "k", false);
    check("k?", "k12", false);
    check("k[0-9]", "k7", true);
    check("k[0-9]", "ka", false);
    check("k[!0-9]", "ka", true);
    check("k[^0-9]", "k1", false);
    check("k[]]", "k]", true);
    check("k[a-]", "k-", true);
    check("k\\*", "k*", true);
    check("k\\*", "kx", false);
}

#[test]
fn bad_patterns_are_errors() {
    for bad in ["k[", "k\\", "k[z-a]"] {
        assert!(Pattern::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn prefix_detection() {
    let p = Pattern::new("agent:7:*").unwrap();
    assert!(p.is_prefix());
    assert_eq!(p.literal_prefix(), "agent:7:");
    assert!(!Pattern::new("agent:?:*").unwrap().is_prefix());
    assert!(!Pattern::new("agent").unwrap().is_prefix());
    assert!(Pattern::new("agent").unwrap().is_literal());
}

#[test]
fn escape_makes_a_literal() {
    let p = Pattern::new(&Pattern::escape("a*[b]?\\")).unwrap();
    assert!(p.matches("a*[b]?\\"));
    assert!(!p.matches("aX[b]?\\"));
}

#[test]
fn long_inputs_stay_linear() {
    let text = "a".repeat(10_000);
    check(&"a*".repeat(50), &text, true);
    check(&format!("{}b", "a*".repeat(50)), &text, false);
}
