//! Numbers in sentences: plurals and signed percentages.

/// `1 item`, `2 items`: `count` followed by the singular or plural noun.
pub(crate) fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// A change in percent with its sign and one decimal (`-12.5%`, `+0.3%`); a change that rounds
/// to zero is `0.0%`, never `-0.0%`.
pub(crate) fn signed_percent(change: f64) -> String {
    let rounded = (change * 10.0).round() / 10.0;
    if rounded == 0.0 || !rounded.is_finite() {
        "0.0%".to_owned()
    } else {
        format!("{rounded:+.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(count(0, "item", "items"), "0 items");
        assert_eq!(count(1, "item", "items"), "1 item");
        assert_eq!(count(2, "entry", "entries"), "2 entries");
    }

    #[test]
    fn percents_never_read_minus_zero() {
        assert_eq!(signed_percent(-0.0), "0.0%");
        assert_eq!(signed_percent(-0.04), "0.0%");
        assert_eq!(signed_percent(0.04), "0.0%");
        assert_eq!(signed_percent(-14.96), "-15.0%");
        assert_eq!(signed_percent(2.25), "+2.3%");
    }
}
