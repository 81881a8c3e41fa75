//! Cost targets: the allocation whose cost lands nearest a target, found by bisecting the
//! ratio and then refining one allocation step at a time between the two bracketing ratios.
//!
//! The cost of an allocation never rises when a count grows, so both searches are bisections.
//! The refinement matters because ratios move many groups at once (every 64-channel group
//! loses a channel at the same ratio): between the last ratio above the target and the first
//! below, counts grow one group at a time, in the order the allocation itself would take them
//! (locally the group whose pruned share stays lowest, globally the least important unit), so
//! the result lands within one group-step of the target.

use crate::allocate::{allocate, round_kept, AllocationConfig, Candidate};
use crate::error::Result;

/// The allocation found, the ratio bracketing it from below, and its measured value.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub counts: Vec<usize>,
    pub ratio: f64,
    pub value: u64,
}

/// Searches the counts whose `measure` is nearest `target`, preferring the ratio path.
/// `measure` maps counts to the metric (parameters or MACs).
pub fn search(
    cands: &[Candidate],
    cfg: &AllocationConfig,
    target: u64,
    measure: &mut dyn FnMut(&[usize]) -> Result<u64>,
) -> Result<Found> {
    let at = |r: f64| allocate(cands, cfg, r);
    let (c0, c1) = (at(0.0), at(1.0));
    let v0 = measure(&c0)?;
    if v0 <= target {
        return Ok(Found {
            counts: c0,
            ratio: 0.0,
            value: v0,
        });
    }
    let v1 = measure(&c1)?;
    if v1 > target {
        // Unreachable: prune as far as the rules allow.
        return Ok(Found {
            counts: c1,
            ratio: 1.0,
            value: v1,
        });
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let (mut c_lo, mut c_hi, mut v_hi) = (c0, c1, v1);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        let c = at(mid);
        if c == c_lo || c == c_hi {
            // Counts only change at discrete ratios: narrow without measuring again.
            if c == c_lo {
                lo = mid;
            } else {
                hi = mid;
            }
            continue;
        }
        let v = measure(&c)?;
        if v > target {
            lo = mid;
            c_lo = c;
        } else {
            hi = mid;
            c_hi = c;
            v_hi = v;
        }
    }
    let steps = refinement_steps(cands, cfg, &c_lo, &c_hi);
    let counts_at = |p: usize| {
        let mut c = c_lo.clone();
        for &(_, k, n) in &steps[..p] {
            c[k] = n;
        }
        c
    };
    // Smallest prefix at or under the target; the full prefix is `c_hi`, which is.
    let (mut a, mut b) = (0usize, steps.len());
    let mut v_b = v_hi;
    while a + 1 < b {
        let mid = (a + b) / 2;
        let v = measure(&counts_at(mid))?;
        if v > target {
            a = mid;
        } else {
            b = mid;
            v_b = v;
        }
    }
    // `a` is above the target (it is `c_lo` or a prefix measured above), `b` at or under it.
    let v_a = measure(&counts_at(a))?;
    let (p, value) = if v_a - target < target - v_b {
        (a, v_a)
    } else {
        (b, v_b)
    };
    Ok(Found {
        counts: counts_at(p),
        ratio: hi,
        value,
    })
}

/// The single-group count changes that lead from `lo` to `hi` (component-wise `lo <= hi`),
/// each to a count the rounding rules allow, ordered as the allocation would take them.
fn refinement_steps(
    cands: &[Candidate],
    cfg: &AllocationConfig,
    lo: &[usize],
    hi: &[usize],
) -> Vec<(f64, usize, usize)> {
    let mut steps = Vec::new();
    for (k, c) in cands.iter().enumerate() {
        if hi[k] <= lo[k] {
            continue;
        }
        let ranking = c.ranking();
        let cur = c.current();
        let mut counts: Vec<usize> = (lo[k] + 1..=hi[k])
            .filter(|&n| {
                let kept = cur - n;
                n == hi[k] || round_kept(kept, cur, 1, cfg.round_to) == kept
            })
            .collect();
        counts.dedup();
        for n in counts {
            let key = if cfg.global && c.fixed_ratio.is_none() {
                c.scores[ranking[n - 1]]
            } else {
                // The share of the starting channels pruned once this step is taken.
                (c.original - (cur - n)) as f64 / c.original.max(1) as f64
            };
            steps.push((key, k, n));
        }
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: usize) -> Candidate {
        Candidate {
            original: n,
            scores: (0..n).map(|i| i as f64).collect(),
            fixed_ratio: None,
        }
    }

    #[test]
    fn lands_on_the_exact_channel_count_a_ratio_cannot_reach() {
        // Cost = channels kept, squared per group (a conv between two pruned layers).
        let cands = vec![cand(64), cand(64), cand(64)];
        let cfg = AllocationConfig::default();
        let mut measure = |c: &[usize]| -> Result<u64> {
            Ok(c.iter().map(|&n| ((64 - n) * (64 - n)) as u64).sum())
        };
        // 3 * 32^2 = 3072 at ratio 0.5; ratios move all three groups at once (3*33^2 = 3267,
        // 3*31^2 = 2883); the target sits between.
        let f = search(&cands, &cfg, 3000, &mut measure).unwrap();
        let v = measure(&f.counts).unwrap();
        assert_eq!(v, f.value);
        // Reachable values near 3000: 32^2*2 + 31^2 = 3009, 32^2 + 31^2*2 = 2946.
        assert_eq!(v, 3009, "{:?}", f.counts);
        let mut sorted = f.counts.clone();
        sorted.sort();
        assert_eq!(sorted, vec![32, 32, 33]);
    }

    #[test]
    fn unreachable_and_trivial_targets() {
        let cands = vec![cand(4)];
        let cfg = AllocationConfig::default();
        let mut measure = |c: &[usize]| -> Result<u64> { Ok((4 - c[0]) as u64 * 10) };
        let f = search(&cands, &cfg, 100, &mut measure).unwrap();
        assert_eq!(f.counts, vec![0]);
        let f = search(&cands, &cfg, 1, &mut measure).unwrap();
        assert_eq!((f.counts, f.value), (vec![3], 10));
    }

    #[test]
    fn round_to_steps_stay_on_multiples() {
        let cands = vec![cand(64), cand(64)];
        let cfg = AllocationConfig {
            round_to: 8,
            ..Default::default()
        };
        let mut measure =
            |c: &[usize]| -> Result<u64> { Ok(c.iter().map(|&n| (64 - n) as u64).sum()) };
        let f = search(&cands, &cfg, 90, &mut measure).unwrap();
        for n in &f.counts {
            assert_eq!((64 - n) % 8, 0, "{:?}", f.counts);
        }
        // 48 + 40 = 88 and 48 + 48 = 96: 88 is nearer 90.
        assert_eq!(f.value, 88);
    }
}
