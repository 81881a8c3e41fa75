//! N:M semi-structured sparsity: in every run of M consecutive weights along the reduction
//! axis, at most N are non-zero (2:4 is what sparse tensor cores run).

use std::fmt;
use std::str::FromStr;

use crate::weights::Layout;

/// An N:M pattern.
///
/// Invariant: `0 < n < m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NmPattern {
    pub n: usize,
    pub m: usize,
}

impl NmPattern {
    /// `n` of every `m`, or an error saying why not.
    pub fn new(n: usize, m: usize) -> Result<NmPattern, String> {
        if n == 0 {
            return Err(format!("{n}:{m} keeps nothing (N must be at least 1)"));
        }
        if n >= m {
            return Err(format!("{n}:{m} needs N < M"));
        }
        Ok(NmPattern { n, m })
    }

    /// Whether `layout`'s reduction axis splits into runs of M (otherwise the layer stays
    /// dense).
    pub fn fits(&self, layout: &Layout) -> bool {
        layout.reduce > 0 && layout.reduce.is_multiple_of(self.m)
    }

    /// The runs of `layout` as lists of element indices (each of length M, in reduction order).
    /// Empty when the pattern does not fit.
    pub fn runs(&self, layout: &Layout) -> impl Iterator<Item = Vec<usize>> + '_ {
        let l = *layout;
        let m = self.m;
        let fits = self.fits(&l);
        let per_outer = if fits { l.reduce / m } else { 0 };
        (0..l.outer).flat_map(move |o| {
            (0..l.inner).flat_map(move |i| {
                (0..per_outer).map(move |run| {
                    (0..m)
                        .map(|k| (o * l.reduce + run * m + k) * l.inner + i)
                        .collect()
                })
            })
        })
    }

    /// Whether `values` (laid out as `layout`) has at most N non-zeros in every run; `None`
    /// when the pattern does not fit the layout.
    pub fn satisfied_by(&self, layout: &Layout, values: &[f32]) -> Option<bool> {
        self.satisfied_by_fn(layout, |e| values[e] != 0.0)
    }

    /// [`NmPattern::satisfied_by`] with `nonzero(e)` telling whether element `e` is non-zero,
    /// so a payload can be tested in place, without decoding it first.
    ///
    /// The elements are visited in storage order (the runs of one reduction block counted
    /// side by side, one counter per inner position): a run strided by `inner` read run after
    /// run would jump through memory. It stops at the first block with a run over N.
    pub fn satisfied_by_fn(
        &self,
        layout: &Layout,
        nonzero: impl Fn(usize) -> bool,
    ) -> Option<bool> {
        if !self.fits(layout) {
            return None;
        }
        let l = *layout;
        let mut counts = vec![0usize; l.inner];
        for o in 0..l.outer {
            for run in 0..l.reduce / self.m {
                counts.fill(0);
                for k in 0..self.m {
                    let row = (o * l.reduce + run * self.m + k) * l.inner;
                    for (i, c) in counts.iter_mut().enumerate() {
                        *c += usize::from(nonzero(row + i));
                    }
                }
                if counts.iter().any(|&c| c > self.n) {
                    return Some(false);
                }
            }
        }
        Some(true)
    }
}

impl fmt::Display for NmPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

impl FromStr for NmPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<NmPattern, String> {
        let bad = || format!("expected N:M with integers 0 < N < M (like 2:4), got `{s}`");
        let (n, m) = s.split_once(':').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let m: usize = m.trim().parse().map_err(|_| bad())?;
        NmPattern::new(n, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{Channels, Rows};

    fn layout(outer: usize, reduce: usize, inner: usize) -> Layout {
        Layout {
            outer,
            reduce,
            inner,
            rows: Rows::Outer,
            channels: Channels::Reduce,
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2:4".parse(), Ok(NmPattern { n: 2, m: 4 }));
        assert!("4:4".parse::<NmPattern>().unwrap_err().contains("N < M"));
        assert!("0:4".parse::<NmPattern>().is_err());
        assert!("2-4".parse::<NmPattern>().is_err());
        assert!("a:4".parse::<NmPattern>().is_err());
    }

    #[test]
    fn runs_follow_the_reduction_axis() {
        // outer 2, reduce 4, inner 2: a run holds the 4 reduction indices of one (o, i).
        let p = NmPattern::new(1, 2).unwrap();
        let runs: Vec<Vec<usize>> = p.runs(&layout(2, 4, 2)).collect();
        assert_eq!(runs.len(), 2 * 2 * 2);
        assert_eq!(runs[0], vec![0, 2]);
        assert_eq!(runs[1], vec![4, 6]);
        assert_eq!(runs[2], vec![1, 3]);
        assert_eq!(runs[4], vec![8, 10]);
        let mut all: Vec<usize> = runs.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert_eq!(p.runs(&layout(2, 3, 2)).count(), 0);
    }

    #[test]
    fn in_place_test_equals_the_runs_definition() {
        // Runs-based reference: every run of M (as `runs` lists it) has at most N non-zeros.
        let reference = |p: &NmPattern, l: &Layout, v: &[f32]| {
            p.runs(l)
                .all(|run| run.iter().filter(|&&e| v[e] != 0.0).count() <= p.n)
        };
        let mut seen = [false; 2];
        for (outer, reduce, inner) in [(1, 8, 1), (2, 8, 3), (3, 4, 5), (1, 12, 2)] {
            let l = layout(outer, reduce, inner);
            let n = outer * reduce * inner;
            for seed in 0..40u64 {
                // Sparse enough that some patterns hold and some fail, differently per seed.
                let v: Vec<f32> = (0..n as u64)
                    .map(|i| {
                        let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(31);
                        if h % 7 < 4 + seed % 3 {
                            0.0
                        } else {
                            1.0
                        }
                    })
                    .collect();
                for p in [NmPattern::new(2, 4).unwrap(), NmPattern::new(1, 4).unwrap()] {
                    let want = reference(&p, &l, &v);
                    seen[usize::from(want)] = true;
                    assert_eq!(
                        p.satisfied_by(&l, &v),
                        Some(want),
                        "{outer}x{reduce}x{inner} seed {seed} {p}"
                    );
                }
            }
        }
        assert_eq!(seen, [true, true], "both verdicts are exercised");
    }

    #[test]
    fn compliance() {
        let p = NmPattern::new(2, 4).unwrap();
        let l = layout(1, 4, 1);
        assert_eq!(p.satisfied_by(&l, &[1.0, 0.0, 0.0, 2.0]), Some(true));
        assert_eq!(p.satisfied_by(&l, &[1.0, 0.0, 3.0, 2.0]), Some(false));
        assert_eq!(p.satisfied_by(&layout(1, 3, 1), &[0.0; 3]), None);
    }
}
