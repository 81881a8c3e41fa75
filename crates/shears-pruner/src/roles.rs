//! What a parameter tensor is to the layers that read it, so criteria can choose which coupled
//! slices they measure.

use shears_graph::DependencyGraph;
use shears_onnx::{Model, ValueId};

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

/// Normalization ops whose input 1 is a per-channel scale.
const NORM_OPS: &[&str] = &[
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
];

/// Input slots that hold a layer's weight, per op.
const WEIGHT_SLOTS: &[(&str, &[usize])] = &[
    ("Conv", &[1]),
    ("ConvTranspose", &[1]),
    ("Gemm", &[0, 1]),
    ("MatMul", &[0, 1]),
    ("QLinearConv", &[3]),
    ("QLinearMatMul", &[0, 3]),
    ("ConvInteger", &[1]),
    ("MatMulInteger", &[0, 1]),
];

/// The role of parameter `v` of `model`.
pub fn param_role(model: &Model, graph: &DependencyGraph, v: ValueId) -> ParamRole {
    let g = &model.graph;
    let value = g.value(v);
    for &(node, slot) in &value.consumers {
        if let Ok(c) = &graph.verdicts[node.index()] {
            let n = g.node(node);
            if c.statistics.iter().any(|&s| n.input(s) == Some(v)) {
                return ParamRole::Statistic;
            }
        }
        let op = g.node(node).op_type.as_str();
        if slot == 1 && NORM_OPS.contains(&op) {
            return ParamRole::NormScale;
        }
    }
    let long_axes = value
        .shape
        .as_ref()
        .map_or(0, |s| s.iter().filter(|&&d| d > 1).count());
    let in_weight_slot = value.consumers.iter().any(|&(node, slot)| {
        let op = g.node(node).op_type.as_str();
        WEIGHT_SLOTS
            .iter()
            .any(|(o, slots)| *o == op && slots.contains(&slot))
    });
    if long_axes >= 2 || in_weight_slot {
        ParamRole::Weight
    } else {
        ParamRole::Vector
    }
}
