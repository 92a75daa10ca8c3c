use mpm_memory_opt::{Difflib, Indel, Similarity};
use proptest::prelude::*;

fn fixture() -> Option<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/difflib_pairs.jsonl"
    );
    std::fs::read_to_string(path).ok()
}

#[test]
fn difflib_equals_python_bit_for_bit() {
    let text = fixture().expect("the difflib fixture is committed with the crate");
    let mut n = 0;
    let mut long = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let a = v["a"].as_str().unwrap();
        let b = v["b"].as_str().unwrap();
        let bits: u64 = v["bits"].as_str().unwrap().parse().unwrap();
        let ours = Difflib.ratio(a, b);
        assert_eq!(
            ours.to_bits(),
            bits,
            "a={a:?} b={b:?} ours={ours} python={}",
            f64::from_bits(bits)
        );
        // The indel ratio never falls below difflib's ratio.
        assert!(Indel.ratio(a, b) >= ours);
        n += 1;
        if b.chars().count() >= 200 {
            long += 1;
        }
    }
    assert!(n >= 2000, "{n} pairs");
    assert!(long >= 200, "{long} long pairs");
}

proptest! {
    #[test]
    fn indel_never_below_difflib_and_bound_holds(a in "[ab é]{0,80}", b in "[abc é]{0,80}") {
        let d = Difflib.ratio(&a, &b);
        let i = Indel.ratio(&a, &b);
        prop_assert!(i >= d);
        prop_assert_eq!(Indel.ratio(&a, &b), Indel.ratio(&b, &a));
    }
}

fn naive_lcs(a: &[char], b: &[char]) -> usize {
    let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 0..a.len() {
        for j in 0..b.len() {
            dp[i + 1][j + 1] = if a[i] == b[j] {
                dp[i][j] + 1
            } else {
                dp[i][j + 1].max(dp[i + 1][j])
            };
        }
    }
    dp[a.len()][b.len()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn indel_ratio_is_the_dp_lcs_ratio(a in "[abcé日 ]{0,200}", b in "[abdé日 ]{0,200}") {
        let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let total = ac.len() + bc.len();
        let want = if total == 0 { 1.0 } else { 2.0 * naive_lcs(&ac, &bc) as f64 / total as f64 };
        prop_assert_eq!(Indel.ratio(&a, &b), want);
    }
}
