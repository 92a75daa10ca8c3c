//! `index.html`: one self-contained page (no scripts, no network) with the verdicts, the
//! budgets, a bar chart per group of ours beside each peer, each group's ratios across runs, and
//! the machine.

use std::fmt::Write as _;

use crate::manifest::Unit;
use crate::summary::{BudgetKind, GroupResult, HistoryLine, Summary};
use crate::verdict::{Figure, Outcome};

/// A figure for a person: `12.3 ns`, `4.56 ms`, `2.10 M/s`.
pub(crate) fn human(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Time => match value {
            n if n < 1e3 => format!("{n:.2} ns"),
            n if n < 1e6 => format!("{:.2} µs", n / 1e3),
            n if n < 1e9 => format!("{:.2} ms", n / 1e6),
            n => format!("{:.2} s", n / 1e9),
        },
        Unit::Throughput => match value {
            n if n < 1e3 => format!("{n:.1} ops/s"),
            n if n < 1e6 => format!("{:.1} K ops/s", n / 1e3),
            n => format!("{:.2} M ops/s", n / 1e6),
        },
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}\
h1{margin-bottom:.2em}.meta{color:#555}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f4f4f4}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
tr.faster td.v{color:#11702f}tr.slower td.v{color:#a4161a}tr.no_clear_difference td.v{color:#555}\
tr.breach td{background:#fde2e2}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:1em}\
section.group{border:1px solid #e3e3e3;border-radius:6px;padding:.5em .8em}section.group h3{margin:.2em 0;font-size:15px}\
section.group p{margin:0 0 .4em;color:#555}svg text{font:12px system-ui,sans-serif}";

/// The whole page.
pub(crate) fn page(summary: &Summary, history: &[HistoryLine]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mpm benchmarks, {}</title><style>{STYLE}</style></head><body>\n",
        esc(&summary.date)
    );
    let _ = write!(
        h,
        "<h1>mpm benchmarks</h1>\n<p class=\"meta\">{} UTC · <code>{}</code> · {}</p>\n",
        esc(&summary.date),
        esc(&summary.command),
        esc(&summary.machine.describe())
    );
    verdicts(&mut h, summary);
    budgets(&mut h, summary);
    h.push_str("<h2>Groups</h2>\n<p>Each bar is a median; the whisker is criterion's confidence interval. Ours is blue.</p>\n<div class=\"grid\">\n");
    for g in &summary.groups {
        let _ = writeln!(
            h,
            "<section class=\"group\" id=\"group-{0}\"><h3>{0} <small>({1})</small></h3><p>{2}; {3}</p>",
            esc(&g.name),
            esc(&g.krate),
            esc(&g.what),
            if g.unit == Unit::Time {
                "time per operation, shorter is better"
            } else {
                "operations per second, longer is better"
            }
        );
        bar_chart(&mut h, g);
        h.push_str("</section>\n");
    }
    h.push_str("</div>\n");
    history_section(&mut h, summary, history);
    let _ = write!(
        h,
        "<h2>Machine</h2>\n<table id=\"machine\"><tr><th>CPU</th><td>{}</td></tr><tr><th>cores</th><td>{}</td></tr><tr><th>load average before</th><td>{:?}</td></tr><tr><th>load average after</th><td>{:?}</td></tr></table>\n",
        esc(&summary.machine.cpu),
        summary.machine.cores,
        summary.machine.load_before,
        summary.machine.load_after
    );
    h.push_str("</body></html>\n");
    h
}

fn verdicts(h: &mut String, summary: &Summary) {
    h.push_str("<h2>Verdicts</h2>\n<p>Ratio is ours over the peer in the group's unit (time per operation, or throughput). Where the two confidence intervals overlap the verdict is \"no clear difference\".</p>\n<table id=\"verdicts\"><thead><tr><th>crate</th><th>group</th><th>peer</th><th>ours / peer</th><th>interval</th><th>verdict</th></tr></thead><tbody>\n");
    for c in &summary.comparisons {
        let class = match c.outcome {
            Outcome::Faster => "faster",
            Outcome::Slower => "slower",
            Outcome::NoClearDifference => "no_clear_difference",
        };
        let _ = writeln!(
            h,
            "<tr class=\"verdict {class}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3} – {:.3}</td><td class=\"v\">{}</td></tr>",
            esc(&c.krate),
            esc(&c.group),
            esc(&crate::verdict::label(&c.peer)),
            c.ratio,
            c.interval[0],
            c.interval[1],
            esc(&c.verdict)
        );
    }
    h.push_str("</tbody></table>\n");
    if !summary.missing.is_empty() {
        let _ = writeln!(
            h,
            "<p><strong>No figure</strong> for: {}</p>",
            esc(&summary.missing.join(", "))
        );
    }
}

fn budgets(h: &mut String, summary: &Summary) {
    h.push_str("<h2>Budgets</h2>\n<table id=\"budgets\"><thead><tr><th>budget</th><th>kind</th><th>limit</th><th>actual</th><th>ok</th></tr></thead><tbody>\n");
    for b in &summary.budgets {
        let kind = match b.kind {
            BudgetKind::Ratio => "ours / peer, time per op",
            BudgetKind::Instructions => "instructions per op (callgrind)",
        };
        let actual = b
            .actual
            .map_or_else(|| "not run".to_owned(), |a| format!("{a:.3}"));
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{kind}</td><td class=\"num\">{:.3}</td><td class=\"num\">{actual}</td><td>{}</td></tr>",
            if b.ok { "ok" } else { "breach" },
            esc(&b.name),
            b.limit,
            if b.ok { "yes" } else { "BREACH" }
        );
    }
    h.push_str("</tbody></table>\n");
}

/// Horizontal bars: ours first, then each peer, with the interval as a whisker.
fn bar_chart(h: &mut String, g: &GroupResult) {
    let rows: Vec<(&str, &Figure, bool)> =
        std::iter::once((g.ours.label.as_str(), &g.ours.figure, true))
            .chain(g.peers.iter().map(|p| (p.label.as_str(), &p.figure, false)))
            .collect();
    let max = rows
        .iter()
        .map(|r| r.1.upper.max(r.1.value))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (label_w, bar_w, row_h) = (150.0, 200.0, 26.0);
    let height = row_h * rows.len() as f64 + 8.0;
    let _ = writeln!(
        h,
        "<svg class=\"chart\" data-group=\"{}\" width=\"440\" height=\"{height}\" viewBox=\"0 0 440 {height}\" role=\"img\" aria-label=\"{} ours beside its peers\">",
        esc(&g.name),
        esc(&g.name)
    );
    for (i, (label, f, ours)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = (f.value / max * bar_w).max(1.0);
        let (lo, hi) = (f.lower / max * bar_w, f.upper / max * bar_w);
        let color = if *ours { "#2b6cb0" } else { "#a0aec0" };
        let _ = writeln!(
            h,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"{color}\"><title>{}</title></rect>\
<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#222\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 13.0,
            esc(label),
            esc(&human(f.value, g.unit)),
            label_w + lo,
            label_w + hi,
            y + 9.0,
            y + 9.0,
            label_w + bar_w + 8.0,
            y + 13.0,
            esc(&human(f.value, g.unit))
        );
    }
    h.push_str("</svg>\n");
}

/// Per group, each peer's ratio across the runs in the history, on a log scale, with 1 marked.
fn history_section(h: &mut String, summary: &Summary, history: &[HistoryLine]) {
    h.push_str("<h2>History</h2>\n<p>Each comparison's ratio (ours / peer) across runs, oldest on the left; log scale; the dashed line is 1.</p>\n<div class=\"grid\">\n");
    const COLORS: [&str; 4] = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1"];
    for g in &summary.groups {
        let series: Vec<(String, Vec<(usize, f64)>)> = g
            .peers
            .iter()
            .map(|p| {
                let points = history
                    .iter()
                    .enumerate()
                    .filter_map(|(run, line)| {
                        line.comparisons
                            .iter()
                            .find(|c| c.group == g.name && c.peer == p.id)
                            .filter(|c| c.ratio.is_finite() && c.ratio > 0.0)
                            .map(|c| (run, c.ratio))
                    })
                    .collect();
                (p.label.clone(), points)
            })
            .collect();
        let all: Vec<f64> = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .chain([1.0])
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).ln();
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max).ln();
        let span = (hi - lo).max(0.1);
        let runs = history.len().max(2) - 1;
        let (w, ht, left, top) = (440.0, 120.0, 40.0, 8.0);
        let x = |run: usize| left + run as f64 / runs as f64 * (w - left - 10.0);
        let y = |r: f64| top + (hi - r.ln()) / span * (ht - 2.0 * top);
        let _ = writeln!(
            h,
            "<section class=\"group\"><h3>{0}</h3><svg class=\"history\" data-group=\"{0}\" width=\"{w}\" height=\"{1}\" viewBox=\"0 0 {w} {1}\">",
            esc(&g.name),
            ht + 16.0
        );
        let _ = writeln!(
            h,
            "<line x1=\"{left}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/><text x=\"0\" y=\"{2:.1}\">1.0</text>",
            w - 10.0,
            y(1.0),
            y(1.0) + 4.0
        );
        for (i, (label, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = points
                .iter()
                .map(|&(run, r)| format!("{:.1},{:.1}", x(run), y(r)))
                .collect();
            let _ = writeln!(
                h,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                path.join(" ")
            );
            for &(run, r) in points {
                let _ = writeln!(
                    h,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{} {}: {r:.3}</title></circle>",
                    x(run),
                    y(r),
                    esc(label),
                    esc(&history[run].date)
                );
            }
            let _ = writeln!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">mpm / {}</text>",
                left + i as f64 * 140.0,
                ht + 12.0,
                esc(label)
            );
        }
        h.push_str("</svg></section>\n");
    }
    h.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_a_person_writes_them() {
        assert_eq!(human(12.345, Unit::Time), "12.35 ns");
        assert_eq!(human(2_500_000.0, Unit::Time), "2.50 ms");
        assert_eq!(human(4_200_000.0, Unit::Throughput), "4.20 M ops/s");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
