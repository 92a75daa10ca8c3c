//! The pair cache of a section: every candidate pair computed once, up front (over threads for
//! large sections), then kept up to date as entries change.

use super::SectionWork;
use super::scorer::{Brief, PairStats, Prepared, Scorer};

/// Pairs `(earlier, later)` at or above a threshold, with their ratios.
type Hits = Vec<((usize, usize), f64)>;

/// A section with fewer candidate pairs than this is computed on the calling thread.
const PARALLEL_MIN_PAIRS: usize = 50_000;

/// The pairs of one section's entries that reach the lowest stage threshold, with their ratios.
///
/// Every pair of entries that take part (see [`super::alive`]) is computed once up front; when an
/// entry's text changes, its pairs with the entries still taking part are computed again at
/// once. The stages then only read the partners lists. A pair is always computed as (earlier,
/// later), so an asymmetric metric sees it the way claude-mpm's loop does. Each answer depends
/// only on the two texts, so the result is the one of asking every pair when it is needed.
pub(super) struct Pairs {
    items: Vec<Prepared>,
    /// Per entry, the entries it reaches `t_min` with, by entry index (ascending), with the ratio.
    partners: Vec<Vec<(usize, f64)>>,
    t_min: f64,
    threads: usize,
}

impl Pairs {
    pub(super) fn new(s: &SectionWork, t_min: f64, threads: usize) -> Pairs {
        Pairs {
            items: s
                .entries
                .iter()
                .map(|e| Prepared::new(e.content().to_lowercase()))
                .collect(),
            partners: vec![Vec::new(); s.entries.len()],
            t_min,
            threads,
        }
    }

    /// The partners of entry `k` (ascending), with ratios at least `t_min`.
    pub(super) fn partners(&self, k: usize) -> &[(usize, f64)] {
        &self.partners[k]
    }

    /// Computes every pair `(ks[x], ks[y])`, `x < y`; split over threads when there are at least
    /// [`PARALLEL_MIN_PAIRS`] of them.
    pub(super) fn fill(&mut self, scorer: &mut Scorer<'_>, ks: &[usize]) {
        // Rows by length: each row's entry is compared with the longer ones, so the row tables
        // (the patterns) are the shorter texts.
        let mut ks = ks.to_vec();
        ks.sort_by_key(|&k| (self.items[k].chars.len(), k));
        let ks = &ks[..];
        let n = ks.len();
        let pairs = n * n.saturating_sub(1) / 2;
        let threads = self.threads.min(n / 2).max(1);
        scorer.prepare_shared(&mut self.items);
        let items = &self.items;
        // What the bounds read, in row order: a row reads its texts one after another.
        let briefs: Vec<Brief<'_>> = ks.iter().map(|&k| items[k].brief()).collect();
        let briefs = &briefs[..];
        let t_min = self.t_min;
        let results: Vec<(Hits, PairStats)> = if threads < 2 || pairs < PARALLEL_MIN_PAIRS {
            let mut hits = Vec::new();
            scorer.rows(items, (ks, briefs), (0, n), t_min, &mut hits);
            vec![(hits, PairStats::default())]
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let mut sc = scorer.fork();
                        let next = &next;
                        scope.spawn(move || {
                            let mut hits = Vec::new();
                            loop {
                                // Rows in small chunks, taken in turn: the triangle's rows shrink.
                                let x0 = next.fetch_add(8, std::sync::atomic::Ordering::Relaxed);
                                if x0 >= n {
                                    break;
                                }
                                sc.rows(
                                    items,
                                    (ks, briefs),
                                    (x0, (x0 + 8).min(n)),
                                    t_min,
                                    &mut hits,
                                );
                            }
                            (hits, sc.stats)
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a pair worker panicked"))
                    .collect()
            })
        };
        for (hits, stats) in results {
            for ((a, b), r) in hits {
                self.partners[a].push((b, r));
                self.partners[b].push((a, r));
            }
            scorer.stats += stats;
        }
        for p in &mut self.partners {
            p.sort_unstable_by_key(|&(o, _)| o);
        }
    }

    /// Entry `k`'s text is now `content`: its pairs with the entries `ks()` lists are computed
    /// again, or, with a symmetric metric, copied from `twin` when that entry (taking part until
    /// now) has the same text (then `ks` is never called).
    pub(super) fn changed(
        &mut self,
        scorer: &mut Scorer<'_>,
        k: usize,
        content: &str,
        ks: impl FnOnce() -> Vec<usize>,
        twin: Option<usize>,
    ) {
        let lower = content.to_lowercase();
        if lower == self.items[k].text {
            return;
        }
        for (o, _) in std::mem::take(&mut self.partners[k]) {
            self.partners[o].retain(|&(p, _)| p != k);
        }
        let twin = twin.filter(|&t| t != k && scorer.symmetric() && self.items[t].text == lower);
        self.items[k] = Prepared::new(lower);
        let hits: Vec<(usize, f64)> = match twin {
            Some(t) => self.partners[t]
                .iter()
                .copied()
                .filter(|&(o, _)| o != k)
                .collect(),
            None => {
                scorer.prepare_one(&mut self.items[k]);
                scorer.invalidate();
                let mut hits = Vec::new();
                scorer.row(&self.items, k, &ks(), self.t_min, &mut hits);
                hits.into_iter()
                    .map(|((a, b), r)| (if a == k { b } else { a }, r))
                    .collect()
            }
        };
        for (o, r) in hits {
            self.partners[k].push((o, r));
            let list = &mut self.partners[o];
            let at = list.partition_point(|&(p, _)| p < k);
            list.insert(at, (k, r));
        }
        self.partners[k].sort_unstable_by_key(|&(o, _)| o);
    }
}
