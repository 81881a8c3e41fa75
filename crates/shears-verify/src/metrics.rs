//! Classification metrics over output rows: accuracy against labels, and fidelity of a model's
//! outputs to a reference model's on the same inputs. One row is everything an output holds
//! for one sample (the batch axis removed), read as class scores. Sums are accumulated in f64
//! in row order, so results are deterministic.

use serde::Serialize;

use crate::compare::TINY;

/// The position of `label` among `scores` sorted by decreasing score, ties toward the lower
/// index (numpy's `argsort(-s, kind="stable")`): the number of classes ranked before it.
/// A NaN score is ranked after every number; a NaN label score ranks last.
pub fn rank_of(scores: &[f32], label: usize) -> usize {
    let s = scores[label];
    if s.is_nan() {
        return scores.len();
    }
    scores
        .iter()
        .enumerate()
        .filter(|&(j, &x)| x > s || (x == s && j < label))
        .count()
}

/// The class with the highest score, ties toward the lower index (numpy's `argmax` for finite
/// scores); NaN scores are never chosen unless every score is NaN (then 0).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (j, &x) in scores.iter().enumerate() {
        if x > scores[best] || (scores[best].is_nan() && !x.is_nan()) {
            best = j;
        }
    }
    best
}

/// Counts of top-1 and top-5 hits.
///
/// Invariant: `top1 <= top5 <= rows`. Top-5 is top-`min(5, classes)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccuracyCounter {
    pub rows: usize,
    pub top1: usize,
    pub top5: usize,
}

impl AccuracyCounter {
    /// Adds one row: `scores` for every class, `label` < `scores.len()`.
    pub fn add(&mut self, scores: &[f32], label: usize) {
        let r = rank_of(scores, label);
        self.rows += 1;
        self.top1 += usize::from(r < 1);
        self.top5 += usize::from(r < 5);
    }

    pub fn report(&self) -> Accuracy {
        let frac = |n: usize| n as f64 / self.rows.max(1) as f64;
        Accuracy {
            samples: self.rows,
            top1_correct: self.top1,
            top5_correct: self.top5,
            top1: frac(self.top1),
            top5: frac(self.top5),
        }
    }
}

/// Accuracy against labels.
///
/// Invariant: `top1 = top1_correct / samples`, `top5 = top5_correct / samples` (fractions, not
/// percentages).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    pub samples: usize,
    pub top1_correct: usize,
    pub top5_correct: usize,
    pub top1: f64,
    pub top5: f64,
}

/// Running sums of the per-row fidelity measures (see [`Fidelity`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FidelityCounter {
    pub rows: usize,
    pub agree: usize,
    pub rel_error: f64,
    pub cosine: f64,
    pub kl: f64,
}

/// `log(softmax(x))` in f64, shifted by the maximum so that it cannot overflow.
pub fn log_softmax(x: &[f32]) -> Vec<f64> {
    let max = x
        .iter()
        .map(|&v| v as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    let log_sum = max + sum.ln();
    x.iter().map(|&v| v as f64 - log_sum).collect()
}

impl FidelityCounter {
    /// Adds one row: the reference's scores and the model's, of equal length.
    pub fn add(&mut self, reference: &[f32], model: &[f32]) {
        debug_assert_eq!(reference.len(), model.len());
        self.rows += 1;
        self.agree += usize::from(argmax(reference) == argmax(model));
        let (mut dot, mut na, mut nb, mut nd) = (0f64, 0f64, 0f64, 0f64);
        for (&a, &b) in reference.iter().zip(model) {
            let (a, b) = (a as f64, b as f64);
            dot += a * b;
            na += a * a;
            nb += b * b;
            nd += (a - b) * (a - b);
        }
        self.rel_error += nd.sqrt() / na.sqrt().max(TINY);
        self.cosine += match (na > 0.0, nb > 0.0) {
            (true, true) => dot / (na.sqrt() * nb.sqrt()),
            (false, false) => 1.0,
            _ => 0.0,
        };
        let (lp, lq) = (log_softmax(reference), log_softmax(model));
        self.kl += lp
            .iter()
            .zip(&lq)
            .map(|(&p, &q)| if p == q { 0.0 } else { p.exp() * (p - q) })
            .sum::<f64>();
    }

    pub fn report(&self, reference: &str) -> Fidelity {
        let n = self.rows.max(1) as f64;
        Fidelity {
            reference: reference.to_string(),
            samples: self.rows,
            top1_agreeing: self.agree,
            top1_agreement: self.agree as f64 / n,
            mean_relative_error: self.rel_error / n,
            mean_cosine_similarity: self.cosine / n,
            mean_kl_divergence: self.kl / n,
        }
    }
}

/// How closely a model's outputs follow a reference model's on the same rows.
///
/// Definitions, per row with `a` the reference's scores and `b` the model's, then averaged:
/// - top-1 agreement: `argmax a == argmax b` (ties toward the lower class);
/// - relative error: `‖b − a‖₂ / ‖a‖₂`;
/// - cosine similarity: `a·b / (‖a‖₂‖b‖₂)` (1 when both are zero, 0 when one is);
/// - KL divergence `KL(softmax a ‖ softmax b) = Σ pᵢ (log pᵢ − log qᵢ)`, in nats; exactly 0
///   for identical rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fidelity {
    pub reference: String,
    pub samples: usize,
    pub top1_agreeing: usize,
    pub top1_agreement: f64,
    pub mean_relative_error: f64,
    pub mean_cosine_similarity: f64,
    pub mean_kl_divergence: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_break_ties_toward_the_lower_class() {
        // Scores: class 2 and 4 tie at the top; 1, 3, 5 and 6 tie below.
        let s = [0.0, 0.5, 0.9, 0.5, 0.9, 0.5, 0.5];
        assert_eq!(rank_of(&s, 2), 0);
        assert_eq!(rank_of(&s, 4), 1);
        assert_eq!(rank_of(&s, 1), 2);
        assert_eq!(rank_of(&s, 5), 4);
        assert_eq!(rank_of(&s, 6), 5);
        assert_eq!(rank_of(&s, 0), 6);
        assert_eq!(argmax(&s), 2);
        let mut acc = AccuracyCounter::default();
        for label in [2, 4, 5, 6, 0] {
            acc.add(&s, label);
        }
        // Top-1: only class 2; top-5: ranks 0, 1, 4 are within the first five.
        assert_eq!((acc.rows, acc.top1, acc.top5), (5, 1, 3));
        let r = acc.report();
        assert_eq!((r.top1, r.top5), (0.2, 0.6));
    }

    #[test]
    fn nan_scores_never_win() {
        let s = [f32::NAN, 1.0, 2.0];
        assert_eq!(argmax(&s), 2);
        assert_eq!(rank_of(&s, 0), 3);
        assert_eq!(rank_of(&s, 2), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
    }

    #[test]
    fn identical_outputs_have_zero_error_and_divergence() {
        let a = [1.0f32, -2.0, 3.5, 100.0];
        let mut f = FidelityCounter::default();
        f.add(&a, &a);
        let r = f.report("ref");
        assert_eq!(r.top1_agreement, 1.0);
        assert_eq!(r.mean_relative_error, 0.0);
        assert_eq!(r.mean_kl_divergence, 0.0);
        assert!((r.mean_cosine_similarity - 1.0).abs() < 1e-15);
    }

    #[test]
    fn fidelity_matches_hand_computed_values() {
        let mut f = FidelityCounter::default();
        // Orthogonal rows, different argmax: cosine 0, relative error sqrt(2).
        f.add(&[1.0, 0.0], &[0.0, 1.0]);
        // Opposite rows: cosine -1, relative error 2, same argmax? [3,0] vs [-3,0]: 0 vs 1.
        f.add(&[3.0, 0.0], &[-3.0, 0.0]);
        let r = f.report("ref");
        assert_eq!(r.samples, 2);
        assert_eq!(r.top1_agreeing, 0);
        assert!((r.mean_cosine_similarity - (-0.5)).abs() < 1e-12);
        assert!((r.mean_relative_error - (2f64.sqrt() + 2.0) / 2.0).abs() < 1e-12);
        // KL(p||q) for p = softmax(1,0), q = softmax(0,1): (2p0 - 1) * 1 with p0 = e/(e+1);
        // for p = softmax(3,0), q = softmax(-3,0): p0*6 + log(1+e^-3) - log(1+e^3)... computed
        // directly from the definition.
        let kl = |a: [f64; 2], b: [f64; 2]| {
            let za = a[0].exp() + a[1].exp();
            let zb = b[0].exp() + b[1].exp();
            (0..2)
                .map(|i| {
                    let p = a[i].exp() / za;
                    let q = b[i].exp() / zb;
                    p * (p / q).ln()
                })
                .sum::<f64>()
        };
        let want = (kl([1.0, 0.0], [0.0, 1.0]) + kl([3.0, 0.0], [-3.0, 0.0])) / 2.0;
        assert!(
            (r.mean_kl_divergence - want).abs() < 1e-12,
            "{}",
            r.mean_kl_divergence
        );
        let e = std::f64::consts::E;
        assert!((kl([1.0, 0.0], [0.0, 1.0]) - (e - 1.0) / (e + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn zero_rows_have_defined_cosine() {
        let mut f = FidelityCounter::default();
        f.add(&[0.0, 0.0], &[0.0, 0.0]);
        f.add(&[0.0, 0.0], &[1.0, 0.0]);
        assert_eq!(f.cosine, 1.0);
        assert!(f.rel_error.is_finite());
    }

    #[test]
    fn log_softmax_does_not_overflow() {
        let l = log_softmax(&[1000.0, 1000.0]);
        assert!((l[0] - 0.5f64.ln()).abs() < 1e-12 && l[0] == l[1]);
    }
}
