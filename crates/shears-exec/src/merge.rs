//! Merging a batch of plans into one set of cuts per tensor axis, checked against the model.

use std::collections::BTreeMap;

use shears_onnx::{Model, ValueId};
use shears_plan::{PruningPlan, TensorKind};

use crate::ExecError;

/// The union of a batch's removals: per (value, axis), the removed original indices (sorted),
/// and which values are stored tensors (parameters and statistics) rather than activations.
///
/// Invariant: every index list is sorted, unique, in range, and leaves at least one index.
#[derive(Clone, Debug, Default)]
pub struct Cuts {
    pub removed: BTreeMap<(ValueId, usize), Vec<u32>>,
    pub stored: BTreeMap<ValueId, ()>,
}

impl shears_graph::rules::Removed for Cuts {
    fn removed(&self, v: ValueId, axis: usize) -> &[u32] {
        self.removed.get(&(v, axis)).map_or(&[], |x| x.as_slice())
    }
}

/// Checks every plan against `model` and merges them; overlapping removals are an error.
pub fn merge(model: &Model, plans: &[PruningPlan]) -> Result<Cuts, ExecError> {
    let g = &model.graph;
    // Every (value, axis, plan, indices) of the batch, sorted once at the end so each axis's
    // plans are merged together (maps filled entry by entry cost more than the rest).
    let mut owner: Vec<((ValueId, usize), usize, &[u32])> = Vec::new();
    let mut stored: Vec<ValueId> = Vec::new();
    for (p, plan) in plans.iter().enumerate() {
        for e in &plan.entries {
            let v = g
                .value_id(&e.tensor)
                .ok_or_else(|| ExecError::UnknownTensor {
                    plan: p,
                    tensor: e.tensor.clone(),
                })?;
            let actual = g
                .value(v)
                .shape
                .as_ref()
                .and_then(|s| s.get(e.axis).copied())
                .ok_or_else(|| ExecError::Tensor {
                    tensor: e.tensor.clone(),
                    reason: format!("has no static axis {}", e.axis),
                })?;
            if actual != e.size {
                return Err(ExecError::SizeMismatch {
                    plan: p,
                    tensor: e.tensor.clone(),
                    axis: e.axis,
                    expected: e.size,
                    actual,
                });
            }
            if e.kind != TensorKind::Activation {
                stored.push(v);
            }
            if let Some(&i) = e.indices.iter().find(|&&i| i as usize >= actual) {
                return Err(ExecError::OutOfRange {
                    plan: p,
                    tensor: e.tensor.clone(),
                    axis: e.axis,
                    index: i,
                    size: actual,
                });
            }
            owner.push(((v, e.axis), p, &e.indices));
        }
    }
    // Stable: an axis's plans stay in batch order.
    owner.sort_by_key(|o| o.0);
    stored.sort_unstable();
    stored.dedup();
    let mut removed: Vec<((ValueId, usize), Vec<u32>)> = Vec::new();
    for by_plan in owner.chunk_by(|a, b| a.0 == b.0) {
        let (v, axis) = by_plan[0].0;
        let size = g.value(v).shape.as_ref().map_or(0, |s| s[axis]);
        // Most axes are cut by one plan, whose indices ascend: nothing to merge or check but
        // that.
        if let [(_, _, indices)] = by_plan {
            if indices.windows(2).all(|w| w[0] < w[1]) {
                if indices.len() >= size {
                    return Err(ExecError::Emptied {
                        tensor: g.value(v).name.clone(),
                        axis,
                        size,
                    });
                }
                removed.push(((v, axis), indices.to_vec()));
                continue;
            }
        }
        // Every removed index with the plan removing it, sorted: a repeat is an overlap.
        let mut seen: Vec<(u32, usize)> = by_plan
            .iter()
            .flat_map(|&(_, p, indices)| indices.iter().map(move |&i| (i, p)))
            .collect();
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ExecError::Overlap {
                tensor: g.value(v).name.clone(),
                axis,
                index: w[0].0,
                first: w[0].1,
                second: w[1].1,
            });
        }
        if seen.len() >= size {
            return Err(ExecError::Emptied {
                tensor: g.value(v).name.clone(),
                axis,
                size,
            });
        }
        removed.push(((v, axis), seen.into_iter().map(|(i, _)| i).collect()));
    }
    // Both in key order already: built in bulk.
    Ok(Cuts {
        removed: removed.into_iter().collect(),
        stored: stored.into_iter().map(|v| (v, ())).collect(),
    })
}
