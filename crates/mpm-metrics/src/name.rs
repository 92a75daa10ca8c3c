//! Metric and label names: validation, sanitising and escaping for the text exposition.

use std::fmt::Write as _;

use crate::Error;

/// Checks a metric name against Prometheus' rules: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn validate_metric_name(name: &str) -> Result<(), Error> {
    let err = |reason| Error::InvalidMetricName {
        name: name.to_owned(),
        reason,
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(err("it is empty")),
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        Some(_) => return Err(err("it must not start with that character")),
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(err("it contains a character that is not allowed"))
    }
}

/// Checks a label name against Prometheus' rules: `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting
/// with `__`, which Prometheus reserves.
pub fn validate_label_name(metric: &str, label: &str) -> Result<(), Error> {
    let err = |reason| Error::InvalidLabelName {
        metric: metric.to_owned(),
        label: label.to_owned(),
        reason,
    };
    let mut chars = label.chars();
    match chars.next() {
        None => return Err(err("it is empty")),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        Some(_) => return Err(err("it must not start with that character")),
    }
    if label.starts_with("__") {
        return Err(err("names starting with \"__\" are reserved"));
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(err("it contains a character that is not allowed"))
    }
}

/// Turns any string into a valid metric name: every character that is not allowed becomes
/// `_`, a leading digit gets a `_` in front, and the empty string becomes `_`.
///
/// The tracing layer and the `metrics` recorder use this, since span names and `metrics` keys
/// (`http.requests`) follow other rules.
///
/// ```
/// assert_eq!(mpm_metrics::sanitize_metric_name("http.requests-total"), "http_requests_total");
/// assert_eq!(mpm_metrics::sanitize_metric_name("9lives"), "_9lives");
/// ```
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// The same as [`sanitize_metric_name`] for label names (no `:`; a leading `__` becomes `_`).
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = sanitize_metric_name(name).replace(':', "_");
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}

/// Appends a label value escaped for the text exposition: `\` `"` and newline.
pub(crate) fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a HELP text escaped for the text exposition: `\` and newline.
pub(crate) fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Validates, sorts and renders a label set as `a="x",b="y"` (escaped): the series' identity
/// and the text that the exposition writes between braces.
pub(crate) fn label_key(metric: &str, labels: &[(&str, &str)]) -> Result<String, Error> {
    if labels.is_empty() {
        return Ok(String::new());
    }
    let mut sorted: Vec<(&str, &str)> = labels.to_vec();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(labels.len() * 16);
    for (i, (k, v)) in sorted.iter().enumerate() {
        validate_label_name(metric, k)?;
        if i > 0 {
            if sorted[i - 1].0 == *k {
                return Err(Error::InvalidLabelName {
                    metric: metric.to_owned(),
                    label: (*k).to_owned(),
                    reason: "it is given twice",
                });
            }
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        escape_label_value(&mut out, v);
        out.push('"');
    }
    Ok(out)
}
