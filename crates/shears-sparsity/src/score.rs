//! Element scores for `sparsify`: the lowest are zeroed first. Elements already zero score
//! below everything else (-1; every criterion's scores are >= 0), which is what makes masks
//! compose.

use std::collections::HashMap;

use shears_onnx::Model;
use shears_pruner::calib::Sample;
use shears_verify::candle_core::DType;
use shears_verify::Evaluator;

use crate::weights::Weight;
use crate::SparsifyError;

/// How elements are ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// `|w|` (torch's `l1_unstructured`, FluxPrune's `LevelPrune`).
    #[default]
    L1,
    /// A seeded uniform score per element, independent of the weight's values.
    Random,
    /// Wanda (Sun et al., 2023): `|w| * ||x_j||_2`, the L2 norm of the input channel the
    /// element multiplies over the calibration set, compared within each output row.
    Wanda,
}

impl Criterion {
    /// Whether a fraction target is met row by row (Wanda's comparison group).
    pub fn per_row(self) -> bool {
        self == Criterion::Wanda
    }
}

/// The score of every element of `w` (`values` decoded). `norms` are `w`'s input channel
/// norms (Wanda only).
pub fn scores(
    w: &Weight,
    values: &[f32],
    criterion: Criterion,
    seed: u64,
    norms: Option<&[f64]>,
) -> Vec<f32> {
    let l = w.layout;
    let mut s: Vec<f32> = match (criterion, norms) {
        (Criterion::Random, _) => {
            let base = seed ^ fnv1a(w.name.as_bytes());
            (0..values.len())
                .map(|e| {
                    (splitmix64(base.wrapping_add(e as u64)) >> 40) as f32 / (1u64 << 24) as f32
                })
                .collect()
        }
        (Criterion::Wanda, Some(norms)) => {
            let mut s = vec![0.0f32; values.len()];
            for o in 0..l.outer {
                for r in 0..l.reduce {
                    let c = l.channel(o, r);
                    let n = norms.get(c).copied().unwrap_or(0.0);
                    for i in 0..l.inner {
                        let e = (o * l.reduce + r) * l.inner + i;
                        s[e] = (f64::from(values[e].abs()) * n) as f32;
                    }
                }
            }
            s
        }
        _ => values.iter().map(|v| v.abs()).collect(),
    };
    for (x, v) in s.iter_mut().zip(values) {
        if *v == 0.0 {
            *x = -1.0;
        }
    }
    s
}

/// Per weight, the L2 norm of each channel of its data input (`Weight::activation`) over
/// `samples`, observed as `model` runs.
pub fn activation_norms(
    model: &Model,
    ws: &[&Weight],
    samples: &[Sample],
) -> Result<Vec<Vec<f64>>, SparsifyError> {
    let g = &model.graph;
    let eval = Evaluator::new(model)?;
    let mut sums: Vec<Vec<f64>> = ws
        .iter()
        .map(|w| {
            let (v, a) = w.activation;
            let size = g.value(v).shape.as_ref().and_then(|s| s.get(a)).copied();
            vec![0.0; size.unwrap_or(0)]
        })
        .collect();
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, w) in ws.iter().enumerate() {
        by_name
            .entry(g.value(w.activation.0).name.as_str())
            .or_default()
            .push(k);
    }
    for (n, sample) in samples.iter().enumerate() {
        let mut failure = None;
        eval.eval_observed(sample, |name, t| {
            let Some(ks) = by_name.get(name) else { return };
            let data: Vec<f32> = match t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
            {
                Ok(d) => d,
                Err(e) => {
                    failure.get_or_insert(SparsifyError::Calibration(format!(
                        "sample {n}: activation '{name}': {e}"
                    )));
                    return;
                }
            };
            let dims = t.dims();
            for &k in ks {
                let axis = ws[k].activation.1;
                let acc = &mut sums[k];
                if axis >= dims.len() || dims[axis] != acc.len() {
                    continue;
                }
                let inner: usize = dims[axis + 1..].iter().product();
                let c = dims[axis];
                for (i, x) in data.iter().enumerate() {
                    acc[(i / inner) % c] += f64::from(*x) * f64::from(*x);
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(sums
        .into_iter()
        .map(|s| s.into_iter().map(f64::sqrt).collect())
        .collect())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
