//! Streaming normal equations and their ridge-regularised Cholesky solve.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Side};

/// XᵀX and XᵀY accumulated over row blocks, never holding the rows themselves.
///
/// Invariant: `xtx` is (d × d), of which only the lower triangle (diagonal included) is
/// accumulated and read: XᵀX is symmetric and the Cholesky factorisation reads that half, so
/// the upper half would cost as many multiplications again for nothing. `xty` is (d × m);
/// `rows` counts the rows added.
pub(crate) struct Normal {
    pub xtx: Mat<f64>,
    pub xty: Mat<f64>,
    pub rows: usize,
    /// Row blocks not yet accumulated, and their row count: a sample of a deep layer has few
    /// rows (one per output position), and adding them one sample at a time would stream the
    /// whole d × d accumulator through memory for a handful of rows each time.
    pending: Vec<(Mat<f64>, Mat<f64>)>,
    pending_rows: usize,
}

/// Rows gathered before they are added to XᵀX: enough for the product to run at full speed,
/// few enough that the gathered block stays small next to the accumulator.
const BLOCK_ROWS: usize = 256;

/// How a system was solved.
pub(crate) struct Solution {
    pub theta: Mat<f64>,
    /// The configured ridge was not enough: a 10x (or more) stronger one was used.
    pub stronger: bool,
}

impl Normal {
    pub fn new(d: usize, m: usize) -> Self {
        Normal {
            xtx: Mat::zeros(d, d),
            xty: Mat::zeros(d, m),
            rows: 0,
            pending: Vec::new(),
            pending_rows: 0,
        }
    }

    /// Adds a block of rows `x` (r × d) with targets `y` (r × m); blocks are gathered until
    /// [`BLOCK_ROWS`] rows are pending.
    pub fn add(&mut self, x: Mat<f64>, y: Mat<f64>) {
        self.pending_rows += x.nrows();
        self.pending.push((x, y));
        if self.pending_rows >= BLOCK_ROWS {
            self.flush();
        }
    }

    /// Accumulates the pending rows.
    fn flush(&mut self) {
        let blocks = std::mem::take(&mut self.pending);
        let rows = std::mem::take(&mut self.pending_rows);
        match blocks.len() {
            0 => {}
            1 => self.accumulate(&blocks[0].0, &blocks[0].1),
            _ => {
                let (d, m) = (self.xtx.nrows(), self.xty.ncols());
                let mut x = Mat::<f64>::zeros(rows, d);
                let mut y = Mat::<f64>::zeros(rows, m);
                let mut at = 0;
                for (bx, by) in &blocks {
                    let r = bx.nrows();
                    x.as_mut().submatrix_mut(at, 0, r, d).copy_from(bx);
                    y.as_mut().submatrix_mut(at, 0, r, m).copy_from(by);
                    at += r;
                }
                drop(blocks);
                self.accumulate(&x, &y);
            }
        }
    }

    fn accumulate(&mut self, x: &Mat<f64>, y: &Mat<f64>) {
        triangular::matmul(
            self.xtx.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            x.transpose(),
            BlockStructure::Rectangular,
            x.as_ref(),
            BlockStructure::Rectangular,
            1.0,
            faer::get_global_parallelism(),
        );
        matmul(
            self.xty.as_mut(),
            Accum::Add,
            x.transpose(),
            y.as_ref(),
            1.0,
            faer::get_global_parallelism(),
        );
        self.rows += x.nrows();
    }

    /// Θ minimising ‖XΘ − Y‖² + λ‖Θ‖² with λ = `ridge` · trace(XᵀX) / d, by Cholesky; when the
    /// system is not positive definite (or the solution not finite), λ grows 10x, up to six
    /// times. `None` when every attempt failed.
    pub fn solve(&mut self, ridge: f64) -> Option<Solution> {
        self.flush();
        let d = self.xtx.nrows();
        let trace: f64 = (0..d).map(|i| self.xtx[(i, i)]).sum();
        // An all-zero input still needs a positive diagonal.
        let scale = if trace > 0.0 && trace.is_finite() {
            trace / d as f64
        } else {
            1.0
        };
        let mut lambda = ridge * scale;
        for attempt in 0..7 {
            let mut a = self.xtx.clone();
            for i in 0..d {
                a[(i, i)] += lambda;
            }
            if let Ok(llt) = a.llt(Side::Lower) {
                let theta = llt.solve(&self.xty);
                let finite =
                    (0..theta.ncols()).all(|j| theta.col(j).iter().all(|v: &f64| v.is_finite()));
                if finite {
                    return Some(Solution {
                        theta,
                        stronger: attempt > 0,
                    });
                }
            }
            lambda = if lambda > 0.0 {
                lambda * 10.0
            } else {
                1e-6 * scale
            };
        }
        None
    }
}

impl Normal {
    /// [`Normal::solve`] with a sparsity mask: output `j` may only use the columns `f` with
    /// `keep(f, j)` (its other coefficients are exactly 0), so each output gets its own
    /// system over its kept columns, with the same λ as the unmasked solve and the same
    /// stronger-ridge retry. `None` when some output's system failed every attempt.
    pub fn solve_masked(
        &mut self,
        ridge: f64,
        keep: impl Fn(usize, usize) -> bool,
    ) -> Option<Solution> {
        self.flush();
        let (d, m) = (self.xtx.nrows(), self.xty.ncols());
        let trace: f64 = (0..d).map(|i| self.xtx[(i, i)]).sum();
        let scale = if trace > 0.0 && trace.is_finite() {
            trace / d as f64
        } else {
            1.0
        };
        let mut theta = Mat::<f64>::zeros(d, m);
        let mut stronger = false;
        for j in 0..m {
            let cols: Vec<usize> = (0..d).filter(|&f| keep(f, j)).collect();
            if cols.is_empty() {
                continue;
            }
            let k = cols.len();
            let mut lambda = ridge * scale;
            let mut solved = false;
            for attempt in 0..7 {
                // Only the lower triangle of XᵀX is accumulated: read (max, min).
                let mut a = Mat::<f64>::from_fn(k, k, |p, q| {
                    let (r, c) = (cols[p].max(cols[q]), cols[p].min(cols[q]));
                    self.xtx[(r, c)]
                });
                for i in 0..k {
                    a[(i, i)] += lambda;
                }
                let b = Mat::<f64>::from_fn(k, 1, |p, _| self.xty[(cols[p], j)]);
                if let Ok(llt) = a.llt(Side::Lower) {
                    let x = llt.solve(&b);
                    if x.col(0).iter().all(|v: &f64| v.is_finite()) {
                        for (p, &f) in cols.iter().enumerate() {
                            theta[(f, j)] = x[(p, 0)];
                        }
                        stronger |= attempt > 0;
                        solved = true;
                        break;
                    }
                }
                lambda = if lambda > 0.0 {
                    lambda * 10.0
                } else {
                    1e-6 * scale
                };
            }
            if !solved {
                return None;
            }
        }
        Some(Solution { theta, stronger })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_exact_coefficients_with_a_tiny_ridge() {
        // y = 2 x0 - 3 x1 + 0.5, rows spanning the plane.
        let xs = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [-1.0, 3.0]];
        let mut x = Mat::<f64>::zeros(xs.len(), 3);
        let mut y = Mat::<f64>::zeros(xs.len(), 1);
        for (r, p) in xs.iter().enumerate() {
            x[(r, 0)] = p[0];
            x[(r, 1)] = p[1];
            x[(r, 2)] = 1.0;
            y[(r, 0)] = 2.0 * p[0] - 3.0 * p[1] + 0.5;
        }
        let mut n = Normal::new(3, 1);
        n.add(x, y);
        let s = n.solve(1e-12).unwrap();
        assert!(!s.stronger);
        for (i, want) in [2.0, -3.0, 0.5].iter().enumerate() {
            assert!(
                (s.theta[(i, 0)] - want).abs() < 1e-8,
                "{i}: {}",
                s.theta[(i, 0)]
            );
        }
    }

    #[test]
    fn singular_systems_get_a_stronger_ridge_not_nan() {
        // Without a ridge, a feature that is always zero makes the system singular.
        let mut x = Mat::<f64>::zeros(4, 2);
        let mut y = Mat::<f64>::zeros(4, 1);
        for r in 0..4 {
            x[(r, 0)] = r as f64 + 1.0;
            y[(r, 0)] = r as f64;
        }
        let mut n = Normal::new(2, 1);
        n.add(x, y);
        let s = n.solve(0.0).unwrap();
        assert!(s.stronger);
        assert!(s.theta[(0, 0)].is_finite() && s.theta[(1, 0)].is_finite());
    }

    #[test]
    fn gathered_blocks_accumulate_like_one_block() {
        // 300 rows in blocks of 7: two flushes (at 256 pending rows, then at the solve).
        let (r, d) = (300, 5);
        let x = Mat::from_fn(r, d, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let y = Mat::from_fn(r, 2, |i, j| ((i + 2 * j) % 5) as f64);
        let mut whole = Normal::new(d, 2);
        whole.add(x.clone(), y.clone());
        let mut parts = Normal::new(d, 2);
        let mut at = 0;
        while at < r {
            let n = 7.min(r - at);
            parts.add(
                x.as_ref().submatrix(at, 0, n, d).to_owned(),
                y.as_ref().submatrix(at, 0, n, 2).to_owned(),
            );
            at += n;
        }
        let (a, b) = (whole.solve(0.01).unwrap(), parts.solve(0.01).unwrap());
        assert_eq!((whole.rows, parts.rows), (r, r));
        for i in 0..d {
            for j in 0..=i {
                assert!((whole.xtx[(i, j)] - parts.xtx[(i, j)]).abs() < 1e-9);
            }
            for j in 0..2 {
                assert!((a.theta[(i, j)] - b.theta[(i, j)]).abs() < 1e-9);
            }
        }
    }
}
