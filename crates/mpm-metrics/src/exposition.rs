//! A reader of the Prometheus text exposition, for tests: which families a text holds, their
//! type, help and label keys, and the value of one sample.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family as read from an exposition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExposedFamily {
    /// The `# TYPE` (`counter`, `gauge`, `histogram`, ...), or `untyped` when none was given.
    pub kind: String,
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// Every label key of its samples, without a histogram's `le`.
    pub label_keys: BTreeSet<String>,
    /// The samples: `(name with suffix, labels sorted by key, value)`.
    pub samples: Vec<Sample>,
}

/// A parsed text exposition (version 0.0.4), as [`Registry::render_prometheus`] writes it.
///
/// ```
/// use mpm_metrics::{Exposition, Registry};
///
/// let registry = Registry::default();
/// registry.counter("jobs_total", &[("queue", "a")])?.add(3);
/// let text = Exposition::parse(&registry.render_prometheus()).unwrap();
/// assert_eq!(text.value("jobs_total", &[("queue", "a")]), Some(3.0));
/// assert_eq!(text.family("jobs_total").unwrap().kind, "counter");
/// # Ok::<(), mpm_metrics::Error>(())
/// ```
///
/// [`Registry::render_prometheus`]: crate::Registry::render_prometheus
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    families: BTreeMap<String, ExposedFamily>,
}

impl Exposition {
    /// Parses a text exposition. The error names the first line that is not valid.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut families: BTreeMap<String, ExposedFamily> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                families.entry(name.to_owned()).or_default().help = Some(unescape_help(help));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| bad("TYPE without a type"))?;
                families.entry(name.to_owned()).or_default().kind = kind.to_owned();
            } else if line.starts_with('#') {
                continue;
            } else {
                let (name, labels, value) =
                    parse_sample(line).ok_or_else(|| bad("not a sample"))?;
                let family = family_of(&families, &name);
                let f = families.entry(family).or_default();
                f.label_keys
                    .extend(labels.iter().map(|(k, _)| k.clone()).filter(|k| k != "le"));
                f.samples.push((name, labels, value));
            }
        }
        for f in families.values_mut() {
            if f.kind.is_empty() {
                f.kind = "untyped".to_owned();
            }
        }
        Ok(Self { families })
    }

    /// The families, by name.
    pub fn families(&self) -> &BTreeMap<String, ExposedFamily> {
        &self.families
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&ExposedFamily> {
        self.families.get(name)
    }

    /// The value of the sample `name` (with its suffix, such as `_count`) whose labels are
    /// exactly these, in any order.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut wanted: Vec<(&str, &str)> = labels.to_vec();
        wanted.sort_unstable();
        let family = family_of(&self.families, name);
        self.families
            .get(&family)?
            .samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == wanted.len()
                    && l.iter()
                        .zip(&wanted)
                        .all(|((k, v), (wk, wv))| k == wk && v == wv)
            })
            .map(|(_, _, v)| *v)
    }
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` samples belong
/// to the histogram.
fn family_of(families: &BTreeMap<String, ExposedFamily>, sample: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && families
                .get(base)
                .is_some_and(|f| f.kind == "histogram" || f.kind == "summary")
        {
            return base.to_owned();
        }
    }
    sample.to_owned()
}

/// One sample: its name (with a histogram's suffix), its labels sorted by key, its value.
pub type Sample = (String, Vec<(String, String)>, f64);

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &body[i + 1..];
                    break;
                }
                ',' if key.is_empty() => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    labels.sort();
    Some((name.to_owned(), labels, value))
}

fn unescape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}
