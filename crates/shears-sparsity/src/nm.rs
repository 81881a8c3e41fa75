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
        if !self.fits(layout) {
            return None;
        }
        Some(
            self.runs(layout)
                .all(|run| run.iter().filter(|&&e| values[e] != 0.0).count() <= self.n),
        )
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
    fn compliance() {
        let p = NmPattern::new(2, 4).unwrap();
        let l = layout(1, 4, 1);
        assert_eq!(p.satisfied_by(&l, &[1.0, 0.0, 0.0, 2.0]), Some(true));
        assert_eq!(p.satisfied_by(&l, &[1.0, 0.0, 3.0, 2.0]), Some(false));
        assert_eq!(p.satisfied_by(&layout(1, 3, 1), &[0.0; 3]), None);
    }
}
