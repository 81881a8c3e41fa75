//! Comparing two models' outputs on the same seeded random inputs.

use candle_core::{DType, Tensor};
use serde::Serialize;
use shears_onnx::{InputShapes, Model};

use crate::error::{Result, VerifyError};
use crate::evaluator::Evaluator;
use crate::random::{random_inputs, Rng};

/// The denominator floor of the relative difference, so that an all-zero reference output
/// gives a finite (huge) ratio instead of a division by zero.
pub const TINY: f64 = f32::MIN_POSITIVE as f64;

/// How one output of the pruned model compares with the original's, over every sample.
///
/// Invariants: `max_abs` and `max_rel` are `None` exactly when the shapes differ;
/// `max_rel` is, per sample, `max|a - b| / max(max|a|, TINY)` with `a` the original's values,
/// and the largest over samples. A NaN in either output makes both differences NaN.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputDiff {
    /// The original model's name for the output (outputs are paired by position).
    pub name: String,
    pub original_shape: Vec<usize>,
    pub pruned_shape: Vec<usize>,
    pub shapes_equal: bool,
    pub max_abs: Option<f64>,
    pub max_rel: Option<f64>,
}

/// The result of [`verify`].
///
/// Invariant: `shapes_equal` is true exactly when every output's shapes are equal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub original: String,
    pub pruned: String,
    pub samples: usize,
    pub seed: u64,
    /// The input shapes both models were evaluated at.
    pub inputs: Vec<(String, Vec<usize>)>,
    pub outputs: Vec<OutputDiff>,
    pub shapes_equal: bool,
}

/// Evaluates `original` and `pruned` on `samples` seeded random inputs (the same for both) and
/// compares their outputs position by position.
pub fn verify(
    original: &Model,
    pruned: &Model,
    shapes: &InputShapes,
    samples: usize,
    seed: u64,
) -> Result<Report> {
    let inputs = shapes.resolve(&original.graph)?;
    let pruned_inputs = shapes.resolve(&pruned.graph)?;
    if inputs != pruned_inputs {
        return Err(VerifyError::Mismatch(format!(
            "the models take different inputs: {} has {}, {} has {}",
            original.source,
            describe(&inputs),
            pruned.source,
            describe(&pruned_inputs)
        )));
    }
    let ea = Evaluator::new(original)?;
    let eb = Evaluator::new(pruned)?;
    let (na, nb) = (ea.output_names().count(), eb.output_names().count());
    if na != nb {
        return Err(VerifyError::Mismatch(format!(
            "{} has {na} outputs but {} has {nb}",
            original.source, pruned.source
        )));
    }
    let mut rng = Rng::new(seed);
    let mut outputs: Vec<OutputDiff> = Vec::new();
    for _ in 0..samples.max(1) {
        let x = random_inputs(original, &inputs, &mut rng)?;
        let ya = ea.eval(&x)?;
        let yb = eb.eval(&x)?;
        for (i, ((name, a), (_, b))) in ya.iter().zip(&yb).enumerate() {
            let d = diff(name, a, b)?;
            match outputs.get_mut(i) {
                None => outputs.push(d),
                Some(acc) => {
                    acc.max_abs = worst(acc.max_abs, d.max_abs);
                    acc.max_rel = worst(acc.max_rel, d.max_rel);
                }
            }
        }
    }
    Ok(Report {
        original: original.source.clone(),
        pruned: pruned.source.clone(),
        samples: samples.max(1),
        seed,
        inputs,
        shapes_equal: outputs.iter().all(|o| o.shapes_equal),
        outputs,
    })
}

fn describe(inputs: &[(String, Vec<usize>)]) -> String {
    inputs
        .iter()
        .map(|(n, d)| format!("{n}{d:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn worst(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) if x.is_nan() || y.is_nan() => Some(f64::NAN),
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => None,
    }
}

/// Compares one output of one sample.
pub fn diff(name: &str, a: &Tensor, b: &Tensor) -> Result<OutputDiff> {
    let shapes_equal = a.dims() == b.dims();
    let (mut max_abs, mut max_rel) = (None, None);
    if shapes_equal {
        let values = |t: &Tensor| -> Result<Vec<f64>> {
            t.flatten_all()
                .and_then(|t| t.to_dtype(DType::F64))
                .and_then(|t| t.to_vec1::<f64>())
                .map_err(|e| VerifyError::Output {
                    output: name.to_string(),
                    reason: crate::ops::candle_message(e),
                })
        };
        let (va, vb) = (values(a)?, values(b)?);
        let mut abs = 0f64;
        let mut scale = 0f64;
        for (&x, &y) in va.iter().zip(&vb) {
            let d = (x - y).abs();
            if d.is_nan() || d > abs {
                abs = d;
            }
            scale = scale.max(x.abs());
            if abs.is_nan() {
                break;
            }
        }
        max_abs = Some(abs);
        max_rel = Some(abs / scale.max(TINY));
    }
    Ok(OutputDiff {
        name: name.to_string(),
        original_shape: a.dims().to_vec(),
        pruned_shape: b.dims().to_vec(),
        shapes_equal,
        max_abs,
        max_rel,
    })
}
