//! Streaming normal equations and their ridge-regularised Cholesky solve.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Par, Side};

/// XᵀX and XᵀY accumulated over row blocks, never holding the rows themselves.
///
/// Invariant: `xtx` is (d × d) symmetric, `xty` is (d × m); `rows` counts the rows added.
pub(crate) struct Normal {
    pub xtx: Mat<f64>,
    pub xty: Mat<f64>,
    pub rows: usize,
}

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
        }
    }

    /// Adds a block of rows `x` (r × d) with targets `y` (r × m).
    pub fn add(&mut self, x: &Mat<f64>, y: &Mat<f64>) {
        matmul(
            self.xtx.as_mut(),
            Accum::Add,
            x.transpose(),
            x.as_ref(),
            1.0,
            Par::Seq,
        );
        matmul(
            self.xty.as_mut(),
            Accum::Add,
            x.transpose(),
            y.as_ref(),
            1.0,
            Par::Seq,
        );
        self.rows += x.nrows();
    }

    /// Θ minimising ‖XΘ − Y‖² + λ‖Θ‖² with λ = `ridge` · trace(XᵀX) / d, by Cholesky; when the
    /// system is not positive definite (or the solution not finite), λ grows 10x, up to six
    /// times. `None` when every attempt failed.
    pub fn solve(&self, ridge: f64) -> Option<Solution> {
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
        n.add(&x, &y);
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
        n.add(&x, &y);
        let s = n.solve(0.0).unwrap();
        assert!(s.stronger);
        assert!(s.theta[(0, 0)].is_finite() && s.theta[(1, 0)].is_finite());
    }
}
