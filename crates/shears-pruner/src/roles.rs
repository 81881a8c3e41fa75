//! What a parameter tensor is to the layers that read it, so criteria can choose which coupled
//! slices they measure.

use shears_graph::DependencyGraph;
use shears_onnx::{ops, Model, ValueId};

/// The part a parameter tensor plays.
///
/// Invariant: decided from the tensor's shape and its direct readers only, so the same tensor
/// has the same role in every group it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamRole {
    /// Kernels and matrices: at least two axes longer than one, or a weight slot of a layer.
    Weight,
    /// The scale of a normalization layer (BatchNorm's gamma, LayerNorm's weight...).
    NormScale,
    /// Any other per-channel vector: biases, normalization shifts, PReLU slopes, layer scales.
    Vector,
    /// Running statistics (BatchNorm mean and variance): not learned, never measured.
    Statistic,
}

/// The role of parameter `v` of `model`.
pub fn param_role(model: &Model, graph: &DependencyGraph, v: ValueId) -> ParamRole {
    let g = &model.graph;
    let value = g.value(v);
    // One pass, one facts look-up per reader: the first reader that makes it a statistic or
    // a norm's scale decides; otherwise any reader's weight slot makes it a weight.
    let mut in_weight_slot = false;
    for &(node, slot) in &value.consumers {
        let n = g.node(node);
        if let Ok(c) = &graph.verdicts[node.index()] {
            if c.statistics.iter().any(|&s| n.input(s) == Some(v)) {
                return ParamRole::Statistic;
            }
        }
        let facts = ops::facts(n);
        if facts.scale_slot == Some(slot) {
            return ParamRole::NormScale;
        }
        in_weight_slot |= facts.kernel_slots.contains(&slot);
    }
    let long_axes = value
        .shape
        .as_ref()
        .map_or(0, |s| s.iter().filter(|&&d| d > 1).count());
    if long_axes >= 2 || in_weight_slot {
        ParamRole::Weight
    } else {
        ParamRole::Vector
    }
}
