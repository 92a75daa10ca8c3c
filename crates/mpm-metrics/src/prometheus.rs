//! The Prometheus text exposition format (version 0.0.4).

use crate::name::escape_help;
use crate::registry::{Family, Handle};

/// How many series ahead the renderer asks for counter and gauge cells.
const LOOKAHEAD: usize = 8;
use crate::{Buckets, Registry};

/// The HELP text of a metric registered without one.
pub const DEFAULT_HELP: &str = "No help text was given for this metric.";

/// The `Content-Type` to serve [`Registry::render_prometheus`] with.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Registry {
    /// Runs the collectors (see [`Registry::add_collector`]), then renders every metric in the
    /// Prometheus text exposition format (version 0.0.4): a `# HELP` line (the text given with
    /// [`Registry::describe`] or at registration, else [`DEFAULT_HELP`]) and a `# TYPE` line
    /// per metric, then one line per series, label values escaped. Histograms are written as
    /// cumulative `_bucket` lines at their fixed bounds ([`Buckets`]), `le="+Inf"`, `_sum` and
    /// `_count`. No value is written as `-0.0`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        self.render_prometheus_into(&mut out);
        out
    }

    /// [`Registry::render_prometheus`] into a buffer you keep, to reuse its allocation.
    pub fn render_prometheus_into(&self, out: &mut String) {
        self.run_collectors();
        let help = self.inner.help.read();
        let buckets = self.inner.buckets.read();
        let families = self.inner.families.read();
        // Every counter's value, from one sequential sweep over the registry's counter cells.
        let mut counters = Vec::new();
        self.inner.counters.sum_into(&mut counters);
        for (name, family) in families.iter() {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(out, help.get(name).map_or(DEFAULT_HELP, String::as_str));
            out.push('\n');
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(match family.kind {
                crate::Kind::Counter => " counter\n",
                crate::Kind::Histogram => " histogram\n",
                _ => " gauge\n",
            });
            let layout;
            let bounds = match family.kind {
                crate::Kind::Histogram => {
                    layout = buckets
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| Buckets::default_for(family.unit));
                    layout.bounds()
                }
                _ => &[],
            };
            render_family(out, name, family, bounds, &counters);
        }
    }
}

fn render_family(out: &mut String, name: &str, family: &Family, bounds: &[f64], counters: &[u64]) {
    let mut ints = itoa::Buffer::new();
    let mut floats = ryu::Buffer::new();
    let lines = family.lines.get(name, &family.series);
    let heads = lines.heads.as_str();
    // A line is its start, a number of at most 20 characters and a newline.
    out.reserve(heads.len() + lines.ends.len() * 21);
    let mut start = 0;
    match family.kind {
        crate::Kind::Counter => {
            for ((end, id), handle) in lines.ends.iter().zip(&lines.counters).zip(&lines.handles) {
                // Every counter of the family was made in the registry's arena before the
                // sweep (under the lock this render holds); the fallback is never taken.
                let value = match counters.get(*id as usize) {
                    Some(value) => *value,
                    None => match handle {
                        Handle::Counter(c) => c.get(),
                        _ => 0,
                    },
                };
                out.push_str(heads.get(start..*end).unwrap_or_default());
                start = *end;
                out.push_str(ints.format(value));
                out.push('\n');
            }
        }
        crate::Kind::Gauge | crate::Kind::IntGauge => {
            for (i, (end, handle)) in lines.ends.iter().zip(&lines.handles).enumerate() {
                // Each gauge is an allocation of its own, a cache miss once the registry is
                // larger than the cache; asking for the one a few series ahead lets those
                // misses overlap.
                match lines.handles.get(i + LOOKAHEAD) {
                    Some(Handle::IntGauge(g)) => g.prefetch(),
                    Some(Handle::Gauge(g)) => g.prefetch(),
                    _ => {}
                }
                out.push_str(heads.get(start..*end).unwrap_or_default());
                start = *end;
                match handle {
                    Handle::IntGauge(g) => out.push_str(ints.format(g.get())),
                    Handle::Gauge(g) => push_f64(out, &mut floats, g.get()),
                    _ => out.push('0'),
                }
                out.push('\n');
            }
        }
        crate::Kind::Histogram => {
            for (end, handle) in lines.ends.iter().zip(&lines.handles) {
                let head = heads.get(start..*end).unwrap_or_default();
                start = *end;
                let Handle::Histogram(h) = handle else {
                    continue;
                };
                let labels = labels_of(name, head);
                let divisor = family.unit.divisor();
                let snap = h.snapshot();
                let cumulative = snap.cumulative_at(bounds.iter().map(|b| b * divisor));
                for (bound, count) in bounds.iter().zip(cumulative) {
                    bucket_start(out, name, labels);
                    push_f64(out, &mut floats, *bound);
                    out.push_str("\"} ");
                    out.push_str(ints.format(count));
                    out.push('\n');
                }
                bucket_start(out, name, labels);
                out.push_str("+Inf\"} ");
                out.push_str(ints.format(snap.count));
                out.push('\n');
                sample_start(out, name, "_sum", labels);
                push_f64(out, &mut floats, snap.sum / divisor);
                out.push('\n');
                sample_start(out, name, "_count", labels);
                out.push_str(ints.format(snap.count));
                out.push('\n');
            }
        }
    }
}

/// The rendered label set inside a line start `name{labels} ` (empty for `name `).
fn labels_of<'h>(name: &str, head: &'h str) -> &'h str {
    head.get(name.len() + 1..head.len().saturating_sub(2))
        .unwrap_or_default()
}

fn sample_start(out: &mut String, name: &str, suffix: &str, labels: &str) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
}

fn bucket_start(out: &mut String, name: &str, labels: &str) {
    out.push_str(name);
    out.push_str("_bucket{");
    if !labels.is_empty() {
        out.push_str(labels);
        out.push(',');
    }
    out.push_str("le=\"");
}

fn push_f64(out: &mut String, buf: &mut ryu::Buffer, v: f64) {
    if v.is_finite() {
        // Adding +0.0 turns -0.0 into +0.0 and changes nothing else.
        out.push_str(buf.format_finite(v + 0.0));
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}
