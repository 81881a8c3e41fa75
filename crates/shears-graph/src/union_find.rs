//! Union-find over channel atoms with a "fixed" flag per set.
//!
//! petgraph's `UnionFind` has no per-set payload; the reshape resolution needs to ask "is this
//! set already fixed?" between unions, so the flag is kept at each root.

/// Disjoint sets of `u32` atoms; each set carries a `fixed` flag (the OR of its members').
#[derive(Clone, Debug, Default)]
pub struct UnionFind {
    parent: Vec<u32>,
    rank: Vec<u8>,
    fixed: Vec<bool>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            rank: vec![0; n],
            fixed: vec![false; n],
        }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Adds `n` new singleton atoms.
    pub fn grow(&mut self, n: usize) {
        let start = self.parent.len() as u32;
        self.parent.extend(start..start + n as u32);
        self.rank.resize(self.parent.len(), 0);
        self.fixed.resize(self.parent.len(), false);
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (hi, lo) = if self.rank[ra as usize] >= self.rank[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[lo as usize] = hi;
        if self.rank[hi as usize] == self.rank[lo as usize] {
            self.rank[hi as usize] += 1;
        }
        self.fixed[hi as usize] |= self.fixed[lo as usize];
    }

    pub fn set_fixed(&mut self, a: u32) {
        let r = self.find(a);
        self.fixed[r as usize] = true;
    }

    pub fn is_fixed(&mut self, a: u32) -> bool {
        let r = self.find(a);
        self.fixed[r as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_flag_spreads_through_unions() {
        let mut uf = UnionFind::new(4);
        uf.set_fixed(0);
        uf.union(1, 2);
        assert!(!uf.is_fixed(2));
        uf.union(2, 0);
        assert!(uf.is_fixed(1));
        assert!(!uf.is_fixed(3));
        assert_eq!(uf.find(1), uf.find(0));
    }
}
