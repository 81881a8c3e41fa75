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
    // Per (value, axis): every removed index with the plan removing it, sorted once at the end
    // (a map per index costs more than the rest of the merge).
    let mut owner: BTreeMap<(ValueId, usize), Vec<(u32, usize)>> = BTreeMap::new();
    let mut cuts = Cuts::default();
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
                cuts.stored.insert(v, ());
            }
            let seen = owner.entry((v, e.axis)).or_default();
            for &i in &e.indices {
                if i as usize >= actual {
                    return Err(ExecError::OutOfRange {
                        plan: p,
                        tensor: e.tensor.clone(),
                        axis: e.axis,
                        index: i,
                        size: actual,
                    });
                }
                seen.push((i, p));
            }
        }
    }
    for ((v, axis), mut seen) in owner {
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
        let size = g.value(v).shape.as_ref().map_or(0, |s| s[axis]);
        if seen.len() >= size {
            return Err(ExecError::Emptied {
                tensor: g.value(v).name.clone(),
                axis,
                size,
            });
        }
        cuts.removed
            .insert((v, axis), seen.into_iter().map(|(i, _)| i).collect());
    }
    Ok(cuts)
}
