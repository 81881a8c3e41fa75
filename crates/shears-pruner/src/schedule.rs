//! Iterative schedules: the sparsity to reach after each of `steps` stages.

/// The shape of the sparsity curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// `s_t = s_f * t / K`.
    Linear,
    /// Automated gradual pruning (Zhu & Gupta, 2017), as NNI's AGP pruner:
    /// `s_t = s_f + (s_i - s_f) * (1 - t/K)^3` with `s_i = 0`: large steps first, small last.
    Agp,
}

/// `steps` stages following `kind`.
///
/// Invariant: `steps >= 1`; stage `steps` reaches the final sparsity exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Schedule {
    pub steps: usize,
    pub kind: ScheduleKind,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            steps: 1,
            kind: ScheduleKind::Linear,
        }
    }
}

impl Schedule {
    /// The sparsity after stage `t` (1-based) when the final sparsity is `last`.
    pub fn at(&self, last: f64, t: usize) -> f64 {
        let k = self.steps.max(1);
        if t >= k {
            return last;
        }
        let x = t as f64 / k as f64;
        match self.kind {
            ScheduleKind::Linear => last * x,
            ScheduleKind::Agp => last + (0.0 - last) * (1.0 - x).powi(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_and_agp_curves() {
        let lin = Schedule {
            steps: 4,
            kind: ScheduleKind::Linear,
        };
        let s: Vec<f64> = (1..=4).map(|t| lin.at(0.8, t)).collect();
        assert_eq!(s, vec![0.2, 0.4, 0.6000000000000001, 0.8]);
        let agp = Schedule {
            steps: 4,
            kind: ScheduleKind::Agp,
        };
        let s: Vec<f64> = (1..=4).map(|t| agp.at(0.8, t)).collect();
        let want = [
            0.8 * (1.0 - 0.75f64.powi(3)),
            0.8 * (1.0 - 0.5f64.powi(3)),
            0.8 * (1.0 - 0.25f64.powi(3)),
            0.8,
        ];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{s:?}");
        }
        // AGP prunes more early on than linear.
        assert!(agp.at(0.8, 1) > lin.at(0.8, 1));
    }
}
