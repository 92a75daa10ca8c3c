//! The Prometheus text exposition format (version 0.0.4).

use crate::Registry;
use crate::name::escape_help;
use crate::registry::{Family, Handle};

/// The `Content-Type` to serve [`Registry::render_prometheus`] with.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Registry {
    /// Renders every metric in the Prometheus text exposition format: a `# HELP` line (when a
    /// help text was given) and a `# TYPE` line per metric, then one line per series, label
    /// values escaped. Histograms are written as cumulative `_bucket` lines at each power of
    /// two of the recorded unit (exact, since bucket edges fall on powers of two) up to the
    /// largest value seen, then `le="+Inf"`, `_sum` and `_count`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        self.render_prometheus_into(&mut out);
        out
    }

    /// [`Registry::render_prometheus`] into a buffer you keep, to reuse its allocation.
    pub fn render_prometheus_into(&self, out: &mut String) {
        let help = self.inner.help.read();
        let families = self.inner.families.read();
        for (name, family) in families.iter() {
            if let Some(h) = help.get(name) {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                escape_help(out, h);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(match family.kind {
                crate::Kind::Counter => " counter\n",
                crate::Kind::Histogram => " histogram\n",
                _ => " gauge\n",
            });
            render_family(out, name, family);
        }
    }
}

fn render_family(out: &mut String, name: &str, family: &Family) {
    let mut ints = itoa::Buffer::new();
    let mut floats = ryu::Buffer::new();
    for (labels, series) in &family.series {
        match &series.handle {
            Handle::Counter(c) => {
                sample_start(out, name, "", labels);
                out.push_str(ints.format(c.get()));
                out.push('\n');
            }
            Handle::IntGauge(g) => {
                sample_start(out, name, "", labels);
                out.push_str(ints.format(g.get()));
                out.push('\n');
            }
            Handle::Gauge(g) => {
                sample_start(out, name, "", labels);
                push_f64(out, &mut floats, g.get());
                out.push('\n');
            }
            Handle::Histogram(h) => {
                let divisor = family.unit.divisor();
                let snap = h.snapshot();
                for (bound, cumulative) in &snap.cumulative {
                    bucket_start(out, name, labels);
                    push_f64(out, &mut floats, *bound as f64 / divisor);
                    out.push_str("\"} ");
                    out.push_str(ints.format(*cumulative));
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
        out.push_str(buf.format_finite(v));
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}
