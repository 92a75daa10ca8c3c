//! The pair scorer: compares prepared entries with a metric, pruning with the bounds when the
//! metric allows, through the fastest LCS kernel that fits.

use crate::similarity::bounds::Histogram;
use crate::similarity::difflib::{self, B2j};
use crate::similarity::lcs::{LaneTable, PatternMasks, RowTable, lanes_available};
use crate::similarity::{Builtin, Similarity, builtin, need, ratio_of};

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One string prepared for comparison.
pub(crate) struct Prepared {
    /// Unique per value, so cached pattern masks are never used for another string.
    id: u64,
    pub(crate) text: String,
    pub(crate) chars: Vec<char>,
    pub(crate) hist: Histogram,
    /// The text is ASCII, so its bytes are its characters.
    ascii: bool,
    b2j: Option<B2j>,
}

impl Prepared {
    pub(crate) fn new(text: String) -> Prepared {
        let chars: Vec<char> = text.chars().collect();
        let hist = Histogram::new(&chars);
        Prepared {
            ascii: text.is_ascii(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            text,
            chars,
            hist,
            b2j: None,
        }
    }
}

/// What the bounds read of an item, kept in row order during [`Scorer::rows`] so that a row's
/// texts are read one after another.
#[derive(Clone, Debug)]
pub(crate) struct Brief<'t> {
    len: usize,
    ascii: bool,
    hist: Histogram,
    text: &'t [u8],
}

impl Prepared {
    /// The item's [`Brief`].
    pub(crate) fn brief(&self) -> Brief<'_> {
        Brief {
            len: self.chars.len(),
            ascii: self.ascii,
            hist: self.hist.clone(),
            text: self.text.as_bytes(),
        }
    }
}

/// Counters of how many pairs were pruned and how many computed in full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PairStats {
    /// Pairs looked at.
    pub pairs: u64,
    /// Pairs ruled out by the length bound.
    pub pruned_length: u64,
    /// Pairs ruled out by the character-multiset bound.
    pub pruned_histogram: u64,
    /// Pairs ruled out by the LCS bound (difflib only: its ratio is never above the indel ratio).
    pub pruned_lcs: u64,
    /// Pairs whose ratio was computed in full.
    pub computed: u64,
}

impl std::ops::AddAssign for PairStats {
    fn add_assign(&mut self, o: PairStats) {
        self.pairs += o.pairs;
        self.pruned_length += o.pruned_length;
        self.pruned_histogram += o.pruned_histogram;
        self.pruned_lcs += o.pruned_lcs;
        self.computed += o.computed;
    }
}

/// Compares prepared entries with a metric, pruning with bounds when allowed.
pub(crate) struct Scorer<'m> {
    metric: &'m dyn Similarity,
    /// `prune` as asked, for scorers of other threads.
    prune_requested: bool,
    prune: bool,
    masks: [Option<(u64, PatternMasks)>; 2],
    needs: Vec<u32>,
    need_for: f64,
    stamp: [u64; 2],
    tick: u64,
    last: Option<u64>,
    scratch: Vec<u64>,
    /// The pattern of the current row ([`Scorer::row`]).
    row_table: Option<Box<RowTable>>,
    /// The four patterns of [`Scorer::rows`].
    table4: Option<Box<LaneTable>>,
    /// Which built-in metric `metric` is, if any.
    builtin: Option<Builtin>,
    /// [`lanes_available`], asked once.
    lanes: bool,
    pub(crate) stats: PairStats,
}

impl<'m> Scorer<'m> {
    pub(crate) fn new(metric: &'m dyn Similarity, prune: bool) -> Scorer<'m> {
        Scorer {
            metric,
            prune_requested: prune,
            prune: prune && metric.bounded_by_lcs(),
            masks: [None, None],
            needs: Vec::new(),
            need_for: f64::NAN,
            stamp: [0; 2],
            tick: 0,
            last: None,
            scratch: Vec::new(),
            row_table: None,
            table4: None,
            builtin: builtin(metric),
            lanes: lanes_available(),
            stats: PairStats::default(),
        }
    }

    /// A new scorer with the same metric and pruning (for another thread).
    pub(crate) fn fork(&self) -> Scorer<'m> {
        Scorer::new(self.metric, self.prune_requested)
    }

    /// `true` if the metric gives the same ratio for `(a, b)` and `(b, a)` ([`Indel`](crate::Indel)).
    pub(crate) fn symmetric(&self) -> bool {
        self.builtin == Some(Builtin::Indel)
    }

    /// Forgets cached pattern masks (call when the items change).
    pub(crate) fn invalidate(&mut self) {
        self.masks = [None, None];
    }

    /// The ratio of `items[a]` (Python's `a`) and `items[b]` if it is at least `threshold`.
    pub(crate) fn at_least(
        &mut self,
        items: &mut [Prepared],
        a: usize,
        b: usize,
        threshold: f64,
    ) -> Option<f64> {
        if self.builtin == Some(Builtin::Difflib) && items[b].b2j.is_none() {
            items[b].b2j = Some(B2j::new(&items[b].chars));
        }
        self.at_least_shared(items, a, b, threshold)
    }

    /// Prepares what [`Scorer::at_least_shared`] needs from `items` (difflib's `b2j` tables).
    pub(crate) fn prepare_shared(&self, items: &mut [Prepared]) {
        if self.builtin == Some(Builtin::Difflib) {
            for it in items.iter_mut().filter(|it| it.b2j.is_none()) {
                it.b2j = Some(B2j::new(&it.chars));
            }
        }
    }

    /// [`Scorer::at_least`] on items it does not change (several threads can share them); a
    /// difflib `b2j` table missing from `items[b]` is built for this pair only.
    pub(crate) fn at_least_shared(
        &mut self,
        items: &[Prepared],
        a: usize,
        b: usize,
        threshold: f64,
    ) -> Option<f64> {
        self.stats.pairs += 1;
        let (la, lb) = (items[a].chars.len(), items[b].chars.len());
        let total = la + lb;
        let builtin = self.builtin;
        // The smallest match count that reaches the threshold: the bounds compare integers.
        let need = if self.prune && total > 0 {
            self.need(threshold, total)
        } else {
            0
        };
        if self.prune && total > 0 {
            if la.min(lb) < need {
                self.stats.pruned_length += 1;
                return None;
            }
            if let Some(common) = items[a].hist.common(&items[b].hist)
                && common < need
            {
                self.stats.pruned_histogram += 1;
                return None;
            }
            if builtin == Some(Builtin::Difflib) && la.min(lb) > 0 {
                let lcs = self.lcs(items, a, b, need);
                if lcs < need {
                    self.stats.pruned_lcs += 1;
                    return None;
                }
            }
        }
        self.stats.computed += 1;
        let r = match builtin {
            Some(Builtin::Indel) => {
                if la.min(lb) == 0 {
                    ratio_of(0, total)
                } else {
                    ratio_of(self.lcs(items, a, b, need), total)
                }
            }
            Some(Builtin::Difflib) => {
                let built;
                let b2j = match &items[b].b2j {
                    Some(t) => t,
                    None => {
                        built = B2j::new(&items[b].chars);
                        &built
                    }
                };
                ratio_of(
                    difflib::matches(&items[a].chars, &items[b].chars, b2j),
                    total,
                )
            }
            None => self.metric.ratio(&items[a].text, &items[b].text),
        };
        (r >= threshold).then_some(r)
    }

    /// Prepares one item that [`Scorer::prepare_shared`] did not see (difflib's `b2j` table).
    pub(crate) fn prepare_one(&self, item: &mut Prepared) {
        if self.builtin == Some(Builtin::Difflib) && item.b2j.is_none() {
            item.b2j = Some(B2j::new(&item.chars));
        }
    }

    /// Rows `x0..x1` of the triangle of `ks`: each `ks[x]` against `ks[x + 1..]`, as
    /// [`Scorer::row`] does, pushing the pairs that reach `threshold` to `hits`. With
    /// [`Indel`](crate::Indel) and four ASCII patterns of at most 128 characters in a row, the texts after
    /// them are compared with the four at once ([`LaneTable`]); the answers are the same.
    pub(crate) fn rows(
        &mut self,
        items: &[Prepared],
        (ks, briefs): (&[usize], &[Brief<'_>]),
        (x0, x1): (usize, usize),
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let mut x = x0;
        while x < x1 {
            let quad = x + 4 <= x1
                && self.lanes
                && self.builtin == Some(Builtin::Indel)
                && ks[x..x + 4].iter().all(|&a| {
                    let la = items[a].chars.len();
                    items[a].ascii && (1..=128).contains(&la)
                });
            if !quad {
                self.row(items, ks[x], &ks[x + 1..], threshold, hits);
                x += 1;
                continue;
            }
            for y in x..x + 3 {
                self.row(items, ks[y], &ks[y + 1..x + 4], threshold, hits);
            }
            self.four_rows(
                items,
                [ks[x], ks[x + 1], ks[x + 2], ks[x + 3]],
                (&ks[x + 4..], &briefs[x + 4..]),
                threshold,
                hits,
            );
            x += 4;
        }
    }

    /// Four ASCII patterns of 1 to 128 characters against each of `bs`.
    fn four_rows(
        &mut self,
        items: &[Prepared],
        rows: [usize; 4],
        (bs, briefs): (&[usize], &[Brief<'_>]),
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let mut t = self.table4.take().unwrap_or_else(LaneTable::new);
        for (l, &a) in rows.iter().enumerate() {
            t.set(l, items[a].text.as_bytes());
        }
        let ordered = |a: usize, b: usize| if b < a { (b, a) } else { (a, b) };
        // `need` is the smallest LCS whose ratio reaches the threshold (0 without pruning), so
        // the ratio is computed only for the lanes that can be hits.
        let push4 = |hits: &mut Vec<((usize, usize), f64)>,
                     rows: [usize; 4],
                     b: usize,
                     (need, live): ([usize; 4], [bool; 4]),
                     lcs: [usize; 4]| {
            for (l, &a) in rows.iter().enumerate() {
                if !live[l] || lcs[l] < need[l] {
                    continue;
                }
                let r = ratio_of(lcs[l], items[a].chars.len() + items[b].chars.len());
                if r >= threshold {
                    hits.push((ordered(a, b), r));
                }
            }
        };
        // A text waiting for a second one: (item, text, need, live).
        type Waiting<'t> = (usize, &'t [u8], [usize; 4], [bool; 4]);
        let mut pending: Option<Waiting<'_>> = None;
        let la = rows.map(|a| items[a].chars.len());
        let hists = rows.map(|a| &items[a].hist);
        // The needs of every total these pairs can have, read without checks in the loop.
        let longest = briefs.iter().map(|d| d.len).max().unwrap_or(0);
        let needs = self.needs_upto(threshold, la.iter().max().copied().unwrap_or(0) + longest);
        let mut stats = PairStats::default();
        for (&b, d) in bs.iter().zip(briefs) {
            let lb = d.len;
            if lb == 0 || !d.ascii {
                for a in rows {
                    let (x, y) = ordered(a, b);
                    if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                        hits.push(((x, y), r));
                    }
                }
                continue;
            }
            let mut need = [0usize; 4];
            let mut live = [true; 4];
            stats.pairs += 4;
            if self.prune {
                for l in 0..4 {
                    need[l] = needs[la[l] + lb] as usize;
                    if la[l].min(lb) < need[l] {
                        stats.pruned_length += 1;
                        live[l] = false;
                    } else if let Some(common) = hists[l].common(&d.hist)
                        && common < need[l]
                    {
                        stats.pruned_histogram += 1;
                        live[l] = false;
                    }
                }
            }
            stats.computed += live.iter().filter(|&&x| x).count() as u64;
            if live == [false; 4] {
                continue;
            }
            // Texts go through the lanes two at a time.
            let Some((b1, t1, need1, live1)) = pending.take() else {
                pending = Some((b, d.text, need, live));
                continue;
            };
            let [r1, r2] = t.lcs([(t1, need1, live1), (d.text, need, live)]);
            for (bb, nl, lcs) in [(b1, (need1, live1), r1), (b, (need, live), r2)] {
                push4(hits, rows, bb, nl, lcs);
            }
        }
        if let Some((b1, t1, need1, live1)) = pending {
            let empty: &[u8] = &[];
            let [r1, _] = t.lcs([(t1, need1, live1), (empty, [0; 4], [false; 4])]);
            push4(hits, rows, b1, (need1, live1), r1);
        }
        self.table4 = Some(t);
        self.stats += stats;
    }

    /// [`need`] of every total `0..=max` for `threshold`.
    fn needs_upto(&mut self, threshold: f64, max: usize) -> Vec<u32> {
        (0..=max)
            .map(|total| self.need(threshold, total) as u32)
            .collect()
    }

    /// [`Scorer::at_least_shared`] of `items[a]` against each of `bs` (before or after `a`;
    /// `a` itself is skipped), pushing the pairs that reach `threshold` to `hits` as (earlier,
    /// later). With [`Indel`](crate::Indel), an ASCII `a` of at most 256 characters and ASCII texts, the
    /// comparisons run through one [`RowTable`], two texts at a time; the answers are the same.
    pub(crate) fn row(
        &mut self,
        items: &[Prepared],
        a: usize,
        bs: &[usize],
        threshold: f64,
        hits: &mut Vec<((usize, usize), f64)>,
    ) {
        let ordered = |b: usize| if b < a { (b, a) } else { (a, b) };
        let la = items[a].chars.len();
        if self.builtin != Some(Builtin::Indel) || !items[a].ascii || la == 0 || la > 256 {
            for &b in bs.iter().filter(|&&b| b != a) {
                let (x, y) = ordered(b);
                if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                    hits.push(((x, y), r));
                }
            }
            return;
        }
        // Indel is symmetric: `a` is the pattern whichever side it is on.
        let mut pending: Option<(usize, usize)> = None; // (b, need)
        for &b in bs.iter().filter(|&&b| b != a) {
            let lb = items[b].chars.len();
            if lb == 0 || !items[b].ascii {
                let (x, y) = ordered(b);
                if let Some(r) = self.at_least_shared(items, x, y, threshold) {
                    hits.push(((x, y), r));
                }
                continue;
            }
            self.stats.pairs += 1;
            let total = la + lb;
            let need = if self.prune {
                self.need(threshold, total)
            } else {
                0
            };
            if self.prune {
                if la.min(lb) < need {
                    self.stats.pruned_length += 1;
                    continue;
                }
                if let Some(common) = items[a].hist.common(&items[b].hist)
                    && common < need
                {
                    self.stats.pruned_histogram += 1;
                    continue;
                }
            }
            self.stats.computed += 1;
            let Some((b1, need1)) = pending.take() else {
                pending = Some((b, need));
                continue;
            };
            let t = self.row_table(&items[a]);
            let (l1, l2) = t.lcs_pair(
                (items[b1].text.as_bytes(), need1),
                (items[b].text.as_bytes(), need),
            );
            for (bb, l) in [(b1, l1), (b, l2)] {
                let r = ratio_of(l, la + items[bb].chars.len());
                if r >= threshold {
                    hits.push((ordered(bb), r));
                }
            }
        }
        if let Some((b1, need1)) = pending {
            let t = self.row_table(&items[a]);
            let l = t.lcs(items[b1].text.as_bytes(), need1);
            let r = ratio_of(l, la + items[b1].chars.len());
            if r >= threshold {
                hits.push((ordered(b1), r));
            }
        }
    }

    /// The row table of `item` (ASCII, at most 256 characters), built if not the current one.
    fn row_table(&mut self, item: &Prepared) -> &RowTable {
        let t = self.row_table.get_or_insert_with(RowTable::new);
        if t.id != item.id {
            t.set(item.id, item.text.as_bytes());
        }
        t
    }

    /// [`need`], remembered per total length for the current threshold.
    #[inline]
    fn need(&mut self, threshold: f64, total: usize) -> usize {
        if self.need_for.to_bits() == threshold.to_bits()
            && let Some(&m) = self.needs.get(total)
            && m != u32::MAX
        {
            return m as usize;
        }
        self.need_slow(threshold, total)
    }

    #[cold]
    #[inline(never)]
    fn need_slow(&mut self, threshold: f64, total: usize) -> usize {
        if self.need_for.to_bits() != threshold.to_bits() {
            self.need_for = threshold;
            self.needs.clear();
        }
        if total >= 4096 {
            return need(threshold, total);
        }
        if self.needs.len() <= total {
            self.needs.resize(total + 1, u32::MAX);
        }
        self.needs[total] = need(threshold, total) as u32;
        self.needs[total] as usize
    }

    /// LCS of two prepared items (at least `need`, else some value below it). The pattern masks
    /// of the last two patterns are kept; LCS is symmetric, so either side can be the pattern.
    fn lcs(&mut self, items: &[Prepared], a: usize, b: usize, need: usize) -> usize {
        let (ia, ib) = (items[a].id, items[b].id);
        let slot = self
            .masks
            .iter()
            .position(|m| matches!(m, Some((k, _)) if *k == ia || *k == ib));
        let slot = match slot {
            Some(s) => s,
            None => {
                // Keep the pattern that repeated last time; replace the other slot.
                let (pat, victim) = if self.last == Some(ib) {
                    (b, self.oldest())
                } else {
                    (a, self.oldest())
                };
                // Reuse the evicted pattern's table (no allocation).
                let table = self.masks[victim].take().and_then(|(_, m)| m.into_table());
                self.masks[victim] = Some((
                    items[pat].id,
                    PatternMasks::with_table(&items[pat].chars, table),
                ));
                victim
            }
        };
        self.stamp[slot] = self.tick;
        self.tick += 1;
        self.last = Some(ib);
        let (k, masks) = self.masks[slot].as_ref().expect("slot is filled");
        let text = if *k == ia { &items[b] } else { &items[a] };
        let ascii = text.ascii.then_some(text.text.as_bytes());
        masks.lcs_text(&text.chars, ascii, &mut self.scratch, need)
    }

    fn oldest(&self) -> usize {
        if self.masks[0].is_none() {
            0
        } else if self.masks[1].is_none() || self.stamp[1] < self.stamp[0] {
            1
        } else {
            0
        }
    }
}
