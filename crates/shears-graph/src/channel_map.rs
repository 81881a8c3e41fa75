//! Index maps carried by coupling edges: which channel of one side corresponds to which of the
//! other.
//!
//! A map is always read from side `a` to side `b`: it gives, for every index `i` of `a`, the one
//! index of `b` that `a[i]` is tied to. Many-to-one maps (block expansion, grouping) are written
//! from the larger side, so every map is a function on `a`'s indices.

use std::fmt;
use std::sync::Arc;

/// How channel indices of side `a` map onto side `b`.
///
/// Invariant: for every `i < len(a)` the image lies in `0..len(b)`; [`ChannelMap::check`]
/// verifies it against the two sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelMap {
    /// `a[i] ↔ b[i]`; both sides have the same size.
    Identity,
    /// `a[a_start + i] ↔ b[b_start + i]` for `i < len`: Concat inputs, Split outputs, Slice.
    Offset {
        a_start: usize,
        b_start: usize,
        len: usize,
    },
    /// `a[i] ↔ b[(i / div) % modulo]`: block expansion (Flatten: `div` = H·W), grouping
    /// (depthwise multiplier) and same-position-in-every-group couplings (`div` = 1).
    DivMod { div: usize, modulo: usize },
    /// `a[i] ↔ b[table[i]]`: permutations and selections (Gather with constant indices,
    /// strided Slice).
    Table(Arc<[u32]>),
}

impl ChannelMap {
    /// Calls `f(i, j)` for every tied pair `a[i] ↔ b[j]`, given `a`'s size.
    pub fn for_each_pair(&self, a_len: usize, mut f: impl FnMut(usize, usize)) {
        match self {
            ChannelMap::Identity => (0..a_len).for_each(|i| f(i, i)),
            ChannelMap::Offset {
                a_start,
                b_start,
                len,
            } => (0..*len).for_each(|i| f(a_start + i, b_start + i)),
            ChannelMap::DivMod { div, modulo } => (0..a_len).for_each(|i| f(i, (i / div) % modulo)),
            ChannelMap::Table(t) => t.iter().enumerate().for_each(|(i, &j)| f(i, j as usize)),
        }
    }

    /// Whether every image of the map lies inside `b_len`, given `a_len`.
    pub fn check(&self, a_len: usize, b_len: usize) -> bool {
        match self {
            ChannelMap::Identity => a_len == b_len,
            ChannelMap::Offset {
                a_start,
                b_start,
                len,
            } => a_start + len <= a_len && b_start + len <= b_len,
            ChannelMap::DivMod { div, modulo } => *div > 0 && *modulo > 0 && *modulo <= b_len,
            ChannelMap::Table(t) => t.len() <= a_len && t.iter().all(|&j| (j as usize) < b_len),
        }
    }
}

impl fmt::Display for ChannelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelMap::Identity => write!(f, "="),
            ChannelMap::Offset {
                a_start,
                b_start,
                len,
            } => write!(
                f,
                "[{a_start}..{}]=[{b_start}..{}]",
                a_start + len,
                b_start + len
            ),
            ChannelMap::DivMod { div: 1, modulo } => write!(f, "%{modulo}"),
            ChannelMap::DivMod { div, modulo } => write!(f, "/{div}%{modulo}"),
            ChannelMap::Table(t) if t.len() <= 8 => write!(f, "@{:?}", &t[..]),
            ChannelMap::Table(t) => write!(f, "@[{} entries]", t.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(m: &ChannelMap, a_len: usize) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        m.for_each_pair(a_len, |i, j| v.push((i, j)));
        v
    }

    #[test]
    fn block_expansion_ties_each_feature_to_its_channel() {
        // Flatten of [C=2, H*W=3]: features 0..3 belong to channel 0, 3..6 to channel 1.
        let m = ChannelMap::DivMod { div: 3, modulo: 2 };
        assert_eq!(
            pairs(&m, 6),
            [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)]
        );
        assert!(m.check(6, 2));
    }

    #[test]
    fn offsets_and_modulo() {
        let m = ChannelMap::Offset {
            a_start: 0,
            b_start: 8,
            len: 2,
        };
        assert_eq!(pairs(&m, 2), [(0, 8), (1, 9)]);
        assert!(!m.check(2, 9));
        let g = ChannelMap::DivMod { div: 1, modulo: 2 };
        assert_eq!(pairs(&g, 4), [(0, 0), (1, 1), (2, 0), (3, 1)]);
        assert_eq!(g.to_string(), "%2");
    }
}
