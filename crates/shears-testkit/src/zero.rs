//! The exactness check: a plan is exact when the channels it removes cannot reach any output.
//!
//! [`zero_removed_inputs`] makes that true in the *original* model by zeroing every consumer
//! slice the plans remove: the input-channel slices (role `in`) of the weights that read the
//! removed channels (Conv input channels respecting groups, Gemm/MatMul rows, ...). The pruned
//! model must then compute the same outputs as the zeroed original, to float rounding, on any
//! input. A wrong index, a missed member or a wrong offset shows up as a large difference.
//! Plans whose channels also pass through an op that mixes channels without a weight
//! (`PruningPlan::mixed_by`: LayerNorm over channels, Softmax, attention products, sizes read
//! into float math) are checked for validity only.

use shears_onnx::proto::ModelProto;
use shears_onnx::{tensor, InputShapes, Model, ValueKind};
use shears_plan::{PruningPlan, TensorKind};

use shears_exec::ExecError;

/// The original proto with every `in` parameter slice of `plans` set to zero.
pub fn zero_removed_inputs(model: &Model, plans: &[PruningPlan]) -> Result<ModelProto, ExecError> {
    let mut proto = model.proto.clone();
    let g = &model.graph;
    for e in plans.iter().flat_map(|p| &p.entries) {
        // The plan's role sees through layout ops (a Linear weight read through a Transpose
        // is the MatMul's input axis): `in` slices are exactly the ones that read the channels.
        if e.kind != TensorKind::Parameter || e.role != "in" {
            continue;
        }
        let v = g
            .value_id(&e.tensor)
            .ok_or_else(|| ExecError::UnknownTensor {
                plan: 0,
                tensor: e.tensor.clone(),
            })?;
        let graph = proto.graph.as_mut().expect("checked at load");
        let t = match g.value(v).kind {
            ValueKind::Initializer(i) => &mut graph.initializer[i],
            ValueKind::NodeOutput { node, .. } => {
                let pi = g.node(node).proto_index;
                match graph.node[pi]
                    .attribute
                    .first_mut()
                    .and_then(|a| a.t.as_mut())
                {
                    Some(t) => t,
                    None => {
                        return Err(ExecError::Tensor {
                            tensor: e.tensor.clone(),
                            reason: "only Constant `value` tensors can be zeroed".into(),
                        })
                    }
                }
            }
            ValueKind::Input => continue,
        };
        let elem = tensor::elem_size(t.data_type).ok_or_else(|| ExecError::Tensor {
            tensor: e.tensor.clone(),
            reason: "unsupported element type".into(),
        })?;
        let dims = tensor::dims(t)?;
        let mut data = model.payload(t)?.to_vec();
        zero_axis(&mut data, &dims, elem, e.axis, &e.indices);
        tensor::set_raw(t, data, &dims);
    }
    Ok(proto)
}

/// Zeroes indices `idx` along `axis` of a row-major tensor of `dims` with `elem`-byte elements
/// (all-zero bytes are 0 for every numeric type).
pub fn zero_axis(data: &mut [u8], dims: &[usize], elem: usize, axis: usize, idx: &[u32]) {
    let outer: usize = dims[..axis].iter().product();
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product::<usize>() * elem;
    for o in 0..outer {
        for &i in idx {
            let s = (o * n + i as usize) * inner;
            data[s..s + inner].fill(0);
        }
    }
}

/// What the exactness check found for a batch of plans.
#[derive(Clone, Debug)]
pub struct Exactness {
    /// Whether the plans promise exactness (no weightless mixing op on the way).
    pub exact_expected: bool,
    /// Largest relative difference over all outputs and samples, pruned vs zeroed original.
    pub max_rel: f64,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Whether every output kept its shape.
    pub shapes_equal: bool,
}

/// Applies `plans`, zeroes the original's removed input slices, evaluates both on `samples`
/// seeded random inputs and compares them.
pub fn check_exactness(
    model: &Model,
    plans: &[PruningPlan],
    shapes: &InputShapes,
    samples: usize,
    seed: u64,
) -> Result<Exactness, Box<dyn std::error::Error + Send + Sync>> {
    let applied = shears_exec::apply(model, plans)?;
    let store = || match model.external.model_file() {
        Some(f) => shears_onnx::external::ExternalStore::for_model_file(f),
        None => shears_onnx::external::ExternalStore::none(),
    };
    let mut pruned =
        Model::from_proto(applied.proto, format!("{} (pruned)", model.source), store())?;
    shears_onnx::shape::infer_shapes(&mut pruned, shapes)?;
    let mut zeroed = Model::from_proto(
        zero_removed_inputs(model, plans)?,
        format!("{} (zeroed)", model.source),
        store(),
    )?;
    // Element types come with the shapes (a quantizer saturates to its output's type).
    shears_onnx::shape::infer_shapes(&mut zeroed, shapes)?;
    let report = shears_verify::verify(&zeroed, &pruned, shapes, samples, seed)?;
    let nan_max = |it: &mut dyn Iterator<Item = Option<f64>>| {
        it.map(|x| x.unwrap_or(f64::INFINITY)).fold(0.0f64, |a, b| {
            if b.is_nan() || a.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        })
    };
    Ok(Exactness {
        exact_expected: plans.iter().all(|p| p.mixed_by.is_empty()),
        max_rel: nan_max(&mut report.outputs.iter().map(|o| o.max_rel)),
        max_abs: nan_max(&mut report.outputs.iter().map(|o| o.max_abs)),
        shapes_equal: report.shapes_equal,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroes_only_the_named_slices() {
        let mut d = vec![1u8; 12]; // 2x3x2 of bytes
        super::zero_axis(&mut d, &[2, 3, 2], 1, 1, &[1]);
        assert_eq!(d, vec![1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]);
    }
}
