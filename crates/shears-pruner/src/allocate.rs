//! Allocation: how many channels each group loses for a given ratio, and which.
//!
//! Counts follow Torch-Pruning's `MetaPruner`, with Shears' guarantees on top:
//! - **local**: a group with `n0` channels at the start of the schedule keeps
//!   `floor(n0 * (1 - r))`, where `r` is the group's ratio (its `--layer-ratio`, else the
//!   global one), capped by `max_ratio`;
//! - **global**: the groups without their own ratio are ranked together: the lowest scores go
//!   until the total kept is `floor(T0 * (1 - r))`, `T0` the total they started with, no group
//!   going past `max_ratio`;
//! - **round-to N**: the kept count is rounded down to a multiple of `N` (Torch-Pruning's
//!   rounding), but never below `N`; a group smaller than `N` keeps what it has;
//! - never fewer than one channel kept, never more than the group has removed, never a count
//!   above what `max_ratio` allows (rounding up to the next multiple when rounding down would).
//!
//! Within a group the lowest-scored units go first (ties: the lower unit first).

use crate::pattern::Pattern;

/// How ratios are spread over groups.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AllocationConfig {
    /// One ranking across groups instead of the same ratio in each.
    pub global: bool,
    /// The largest share of its starting channels any group may lose, in `(0, 1]`.
    pub max_ratio: f64,
    /// Per-layer ratios: the first pattern matching one of a group's layers sets its ratio.
    pub layer_ratios: Vec<(Pattern, f64)>,
    /// Layers whose output channels are kept whole (in addition to the graph outputs'
    /// producers).
    pub ignore: Vec<Pattern>,
    /// Kept counts are multiples of this (1: no rounding).
    pub round_to: usize,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        AllocationConfig {
            global: false,
            max_ratio: 1.0,
            layer_ratios: Vec::new(),
            ignore: Vec::new(),
            round_to: 1,
        }
    }
}

/// A group that may lose channels.
///
/// Invariant: `scores.len()` is the group's current unit count, `>= 1`.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Units the group had at the start of the schedule.
    pub original: usize,
    /// Importance per current unit, higher is more important.
    pub scores: Vec<f64>,
    /// The group's own ratio for this stage (a scheduled `--layer-ratio`), if any.
    pub fixed_ratio: Option<f64>,
}

impl Candidate {
    pub fn current(&self) -> usize {
        self.scores.len()
    }

    /// Unit positions from least to most important (ties: lower position first).
    pub fn ranking(&self) -> Vec<usize> {
        let mut r: Vec<usize> = (0..self.scores.len()).collect();
        r.sort_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]).then(a.cmp(&b)));
        r
    }

    /// The fewest units the group may keep under `max_ratio` (at least one).
    fn min_kept(&self, max_ratio: f64) -> usize {
        let floor = (self.original as f64 * (1.0 - max_ratio) - 1e-9).ceil();
        (floor.max(1.0) as usize).min(self.current())
    }
}

/// Rounds a kept count to the allocation rules (see the module docs).
pub fn round_kept(kept: usize, current: usize, min_kept: usize, round_to: usize) -> usize {
    let kept = kept.clamp(min_kept.max(1), current.max(1));
    if round_to <= 1 || kept >= current {
        return kept;
    }
    let down = kept - kept % round_to;
    if down >= min_kept.max(round_to) {
        return down;
    }
    let up = min_kept.max(1).div_ceil(round_to) * round_to;
    if up >= current {
        current
    } else {
        up
    }
}

/// Units to remove from each candidate at `ratio` (a fraction of the starting channels).
pub fn allocate(cands: &[Candidate], cfg: &AllocationConfig, ratio: f64) -> Vec<usize> {
    let mut counts = vec![0usize; cands.len()];
    let pool: Vec<usize> = (0..cands.len())
        .filter(|&c| !cfg.global || cands[c].fixed_ratio.is_some())
        .collect();
    for &c in &pool {
        let cand = &cands[c];
        let r = cand.fixed_ratio.unwrap_or(ratio).min(cfg.max_ratio);
        let kept = (cand.original as f64 * (1.0 - r)).floor().max(0.0) as usize;
        let kept = round_kept(
            kept,
            cand.current(),
            cand.min_kept(cfg.max_ratio),
            cfg.round_to,
        );
        counts[c] = cand.current().saturating_sub(kept);
    }
    if cfg.global {
        allocate_global(cands, cfg, ratio, &mut counts);
    }
    counts
}

fn allocate_global(cands: &[Candidate], cfg: &AllocationConfig, ratio: f64, counts: &mut [usize]) {
    let pool: Vec<usize> = (0..cands.len())
        .filter(|&c| cands[c].fixed_ratio.is_none())
        .collect();
    let start: usize = pool.iter().map(|&c| cands[c].original).sum();
    let current: usize = pool.iter().map(|&c| cands[c].current()).sum();
    let target_kept = (start as f64 * (1.0 - ratio)).floor().max(0.0) as usize;
    let mut want = current.saturating_sub(target_kept);
    let mut items: Vec<(f64, usize, usize)> = Vec::new();
    for &c in &pool {
        for (pos, &u) in cands[c].ranking().iter().enumerate() {
            items.push((cands[c].scores[u], c, pos));
        }
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let caps: Vec<usize> = cands
        .iter()
        .map(|c| c.current().saturating_sub(c.min_kept(cfg.max_ratio)))
        .collect();
    for (_, c, pos) in items {
        if want == 0 {
            break;
        }
        // Units of a group come in ranking order, so `pos == counts[c]` while the cap holds.
        if counts[c] < caps[c] && pos == counts[c] {
            counts[c] += 1;
            want -= 1;
        }
    }
    for &c in &pool {
        let cand = &cands[c];
        let kept = round_kept(
            cand.current() - counts[c],
            cand.current(),
            cand.min_kept(cfg.max_ratio),
            cfg.round_to,
        );
        counts[c] = cand.current().saturating_sub(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: usize, scores: &[f64]) -> Candidate {
        Candidate {
            original: n,
            scores: scores.to_vec(),
            fixed_ratio: None,
        }
    }

    #[test]
    fn rounding_keeps_multiples_never_below_one_multiple() {
        // (kept, current, min_kept, round_to) -> rounded kept
        for (kept, current, min_kept, n, want) in [
            (44, 64, 1, 8, 40),
            (44, 64, 1, 1, 44),
            (5, 64, 1, 8, 8),
            (0, 64, 1, 1, 1),
            (3, 6, 1, 8, 6),
            (10, 64, 20, 8, 24),
            (100, 64, 1, 8, 64),
        ] {
            assert_eq!(
                round_kept(kept, current, min_kept, n),
                want,
                "{kept} {current} {min_kept} {n}"
            );
        }
    }

    #[test]
    fn local_keeps_floor_of_the_start_count() {
        let cfg = AllocationConfig::default();
        let cands = vec![cand(10, &[0.0; 10]), cand(3, &[0.0; 3]), cand(1, &[0.0])];
        // floor(10 * 0.7) = 7 kept, floor(3 * 0.7) = 2 kept, one channel always stays.
        assert_eq!(allocate(&cands, &cfg, 0.3), vec![3, 1, 0]);
        assert_eq!(allocate(&cands, &cfg, 1.0), vec![9, 2, 0]);
        let capped = AllocationConfig {
            max_ratio: 0.2,
            ..Default::default()
        };
        assert_eq!(allocate(&cands, &capped, 0.5), vec![2, 0, 0]);
    }

    #[test]
    fn a_later_stage_counts_from_the_start() {
        let cfg = AllocationConfig::default();
        // Started with 10, has 8 now: ratio 0.5 keeps 5, so 3 more go.
        let c = Candidate {
            original: 10,
            scores: vec![0.0; 8],
            fixed_ratio: None,
        };
        assert_eq!(allocate(&[c], &cfg, 0.5), vec![3]);
    }

    #[test]
    fn global_ranks_across_groups_within_caps() {
        let cfg = AllocationConfig {
            global: true,
            max_ratio: 0.75,
            ..Default::default()
        };
        let a = cand(4, &[0.1, 0.2, 0.3, 0.4]);
        let b = cand(4, &[5.0, 6.0, 0.05, 7.0]);
        // 8 channels, ratio 0.5: the 4 lowest are a's 0.1..0.3 capped at 3 (0.75 of 4), b's 0.05,
        // then a's 0.4 is over the cap, so b's 5.0.
        assert_eq!(allocate(&[a.clone(), b.clone()], &cfg, 0.5), vec![3, 1]);
        assert_eq!(allocate(&[a, b], &cfg, 0.625), vec![3, 2]);
    }

    #[test]
    fn fixed_ratios_stay_out_of_the_global_ranking() {
        let cfg = AllocationConfig {
            global: true,
            ..Default::default()
        };
        let mut a = cand(4, &[0.0, 0.0, 0.0, 0.0]);
        a.fixed_ratio = Some(0.25);
        let b = cand(4, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(allocate(&[a, b], &cfg, 0.5), vec![1, 2]);
    }

    #[test]
    fn ranking_is_ascending_and_stable() {
        let c = cand(4, &[0.5, 0.1, 0.5, 0.0]);
        assert_eq!(c.ranking(), vec![3, 1, 0, 2]);
    }
}
