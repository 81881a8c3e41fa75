//! Sparsity facts for `shears inspect`: each sparsifiable weight's zeros and which N:M
//! patterns it satisfies, and the model's zeros over all float initializers.

use shears_onnx::{tensor, Model};

use crate::nm::NmPattern;
use crate::weights;
use crate::SparsifyError;

/// One weight's sparsity.
///
/// Invariant: `patterns` follows the order asked; a pattern is `None` when the weight's
/// reduction size is not a multiple of its M.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WeightSparsity {
    pub weight: String,
    pub layer: String,
    pub op_type: String,
    pub elements: u64,
    pub zeros: u64,
    pub patterns: Vec<(String, Option<bool>)>,
}

/// Every sparsifiable weight of `model` (node order) with its zeros and whether it satisfies
/// each of `patterns`.
pub fn layer_sparsity(
    model: &Model,
    patterns: &[NmPattern],
) -> Result<Vec<WeightSparsity>, SparsifyError> {
    let (found, _) = weights::find(model);
    let mut out = Vec::with_capacity(found.len());
    for w in found {
        let t = model
            .initializer(w.value)
            .ok_or_else(|| SparsifyError::Lost(w.name.clone()))?;
        let v = model.f32s(t)?;
        out.push(WeightSparsity {
            zeros: v.iter().filter(|&&x| x == 0.0).count() as u64,
            elements: v.len() as u64,
            patterns: patterns
                .iter()
                .map(|p| (p.to_string(), p.satisfied_by(&w.layout, &v)))
                .collect(),
            weight: w.name,
            layer: w.layer,
            op_type: w.op_type,
        });
    }
    Ok(out)
}

/// Zeros and elements over every float initializer of `model` (f32, f64, f16, bf16).
pub fn model_zeros(model: &Model) -> Result<(u64, u64), SparsifyError> {
    let mut zeros = 0;
    let mut total = 0;
    if let Some(g) = model.proto.graph.as_ref() {
        for t in &g.initializer {
            if !weights::is_float(t.data_type) {
                continue;
            }
            let v = tensor::decode_f32(t, &model.external)?;
            zeros += v.iter().filter(|&&x| x == 0.0).count() as u64;
            total += v.len() as u64;
        }
    }
    Ok((zeros, total))
}
