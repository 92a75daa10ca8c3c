//! Synthetic memory files with ground truth, for tests and benchmarks.
//!
//! Unique entries are random sentences of made-up words, checked to be less than 0.70 similar
//! (indel ratio, so also difflib) to every other unique entry of their section; duplicates are
//! copies with changed case or spacing, or with one short word added, and the generator records
//! which lines it made as duplicates.

use crate::optimize::scorer::{Prepared, Scorer};
use crate::similarity::Indel;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The file's size in bytes (exact unless smaller than the fixed header and headings).
    pub target_bytes: usize,
    /// Share of entries that are duplicates of an earlier entry of their section (0.0..1.0).
    pub duplicate_share: f64,
    /// The random seed.
    pub seed: u64,
}

/// A generated file and, for each of its lines, whether the generator made it as a duplicate.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The file.
    pub text: String,
    /// Per line (0-based): `Some(k)` if the line is a duplicate of line `k`, else `None`.
    pub duplicate_of: Vec<Option<usize>>,
    /// Number of entries (bullets).
    pub entries: usize,
}

const SECTIONS: [&str; 11] = [
    "Project Context",
    "Project Architecture",
    "Coding Patterns Learned",
    "Implementation Guidelines",
    "Domain-Specific Knowledge",
    "Effective Strategies",
    "Common Mistakes to Avoid",
    "Integration Points",
    "Performance Considerations",
    "Current Technical Context",
    "Recent Learnings",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn word(rng: &mut Rng) -> String {
    const SYL: [&str; 24] = [
        "ka", "zo", "mi", "tru", "pex", "lo", "vin", "qua", "sed", "bar", "ny", "gol", "fi", "hup",
        "wex", "ro", "dal", "cy", "jom", "tes", "ux", "bri", "ol", "ze",
    ];
    let n = 1 + rng.below(3);
    (0..n).map(|_| SYL[rng.below(SYL.len())]).collect()
}

fn sentence(rng: &mut Rng) -> String {
    let n = 12 + rng.below(9);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        let w = word(rng);
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push_str(&w);
        }
        if rng.chance(0.08) {
            s.push_str(&format!("/{}", rng.below(1000)));
        }
    }
    s
}

fn duplicate(rng: &mut Rng, s: &str) -> String {
    match rng.below(4) {
        0 => s.to_owned(),
        1 => s.to_uppercase(),
        2 => s.replace(' ', "  "),
        _ => format!("{s} too"),
    }
}

/// Generates a sectioned memory file.
///
/// ```
/// use mpm_memory_opt::generator::{Spec, generate};
/// let g = generate(Spec { target_bytes: 4_000, duplicate_share: 0.5, seed: 1 });
/// assert_eq!(g.text.len(), 4_000);
/// assert_eq!(g.duplicate_of.len(), g.text.lines().count());
/// ```
pub fn generate(spec: Spec) -> Generated {
    let mut rng = Rng(spec.seed ^ 0x5DEE_CE66);
    let mut text = String::from(
        "# Engineer Agent Memory - generated\n\n<!-- MEMORY LIMITS: 80KB max | 10 sections max | 15 items per section -->\n<!-- Last Updated: 2025-08-20 10:00:00 | Auto-updated by: engineer -->\n",
    );
    let mut duplicate_of: Vec<Option<usize>> = vec![None; 4];
    let mut uniques: Vec<Vec<String>> = vec![Vec::new(); SECTIONS.len()];
    let mut prepared: Vec<Vec<Prepared>> = (0..SECTIONS.len()).map(|_| Vec::new()).collect();
    let mut bodies: Vec<Vec<(String, bool)>> = vec![Vec::new(); SECTIONS.len()];
    let mut bytes = text.len() + SECTIONS.iter().map(|s| s.len() + 5).sum::<usize>();
    let mut entries = 0;
    loop {
        let sec = rng.below(SECTIONS.len());
        let (line, dup) = if !uniques[sec].is_empty() && rng.chance(spec.duplicate_share) {
            let k = rng.below(uniques[sec].len());
            let d = duplicate(&mut rng, &uniques[sec][k]);
            (format!("- {d}"), true)
        } else {
            // A fresh sentence, retried until it is below 0.70 to every unique of the section.
            let mut tries = 0;
            let s = loop {
                let s = sentence(&mut rng);
                let items = &mut prepared[sec];
                items.push(Prepared::new(s.to_lowercase()));
                let me = items.len() - 1;
                let mut scorer = Scorer::new(&Indel, true);
                let clash = (0..me).any(|i| scorer.at_least(items, i, me, 0.70).is_some());
                items.pop();
                tries += 1;
                if !clash || tries > 50 {
                    break s;
                }
            };
            prepared[sec].push(Prepared::new(s.to_lowercase()));
            uniques[sec].push(s.clone());
            (format!("- {s}"), false)
        };
        if bytes + line.len() + 1 > spec.target_bytes {
            break;
        }
        bytes += line.len() + 1;
        entries += 1;
        bodies[sec].push((line, dup));
    }
    // Place: each duplicate refers to the first unique line with the same content key.
    let mut line_no = 4;
    for (sec, body) in bodies.into_iter().enumerate() {
        text.push_str(&format!("\n## {}\n", SECTIONS[sec]));
        duplicate_of.push(None);
        duplicate_of.push(None);
        line_no += 2;
        let mut first: std::collections::HashMap<String, usize> = Default::default();
        for (line, dup) in body {
            let base = base_of(&line);
            if dup {
                duplicate_of.push(first.get(&base).copied());
            } else {
                first.insert(base, line_no);
                duplicate_of.push(None);
            }
            text.push_str(&line);
            text.push('\n');
            line_no += 1;
        }
    }
    // Pad the title so that the file is exactly `target_bytes` long.
    if text.len() < spec.target_bytes {
        let pad = "-".repeat(spec.target_bytes - text.len());
        text.insert_str("# Engineer Agent Memory - generated".len(), &pad);
    }
    Generated {
        text,
        duplicate_of,
        entries,
    }
}

/// The unique sentence a generated line came from (undoing the duplicate transformations).
fn base_of(line: &str) -> String {
    let s = line.strip_prefix("- ").unwrap_or(line);
    let s = s.strip_suffix(" too").unwrap_or(s);
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
