//! Parameter counts and multiply-accumulates (MACs) per node, from the inferred shapes.
//!
//! **Parameters** are the elements of the floating-point constant tensors (initializers and
//! `Constant` outputs) that nodes read, each tensor counted once, at its first reader in
//! topological order (through `Identity` chains, which exporters use to de-duplicate equal
//! tensors: the reader behind the `Identity` decides the role):
//! - every such tensor a *layer* reads in a parameter slot ([`crate::ops::OpFacts`]: kernel or
//!   vector slots, e.g. `Conv`/`ConvTranspose` W and B, `Gemm` A/B/C, `MatMul` either side,
//!   normalization scale and bias, `PRelu` slope), whatever its size;
//! - any other floating-point constant with more than one element (a position embedding fed to
//!   an `Add`, a layer scale fed to a `Mul`, a weight that reaches its `MatMul` through a
//!   `Transpose`).
//!
//! Not parameters: running statistics (the op's statistic slots: `BatchNormalization` mean and
//! variance), counted apart; single-element constants outside weight slots (`Clip`
//! bounds, the GELU and attention-scale scalars exporters emit); integer tensors (shapes,
//! indices). This matches what PyTorch counts as parameters for models exported without
//! constant folding.
//!
//! **MACs** (one multiply and one add), batch included, bias additions not counted:
//! - `Conv`: `N * Cout * prod(out spatial) * (Cin / group) * prod(kernel)`;
//! - `ConvTranspose`: `N * Cin * prod(in spatial) * (Cout / group) * prod(kernel)`;
//! - `Gemm`: `M * N * K`; `MatMul`: `batch * M * N * K` (broadcast batch dims);
//! - every other op: 0 (element-wise ops, normalisation, pooling and activations are not
//!   counted).

use std::collections::HashSet;

use crate::error::{OnnxError, Result};
use crate::ir::{NodeId, ValueId};
use crate::model::Model;
use crate::shape::{self, matmul_dims};

/// What one node owns and computes.
///
/// Invariant: `macs` is `None` only when the node's op has a MAC formula and a shape it needs
/// is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCost {
    pub node: NodeId,
    /// Parameter elements first read by this node.
    pub parameters: u64,
    /// BatchNormalization running-statistic elements first read by this node.
    pub statistics: u64,
    pub macs: Option<u64>,
}

/// Costs of every node, in topological order, and the totals.
///
/// Invariant: the totals are the sums over `nodes` (`macs` over the known ones);
/// `macs_unknown` lists the nodes whose `macs` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostReport {
    pub nodes: Vec<NodeCost>,
    pub parameters: u64,
    pub statistics: u64,
    pub macs: u64,
    pub macs_unknown: Vec<NodeId>,
}

/// The tensor that input `v` of node `reader` counts as: `v`, or the constant an `Identity`
/// chain copies (exporters de-duplicate equal tensors, BatchNorm statistics included, behind
/// an `Identity`), so that it is counted once, in the role of a real reader. `None` for the
/// input of an `Identity` whose output is read: its readers count it.
fn counted_as(model: &Model, reader: NodeId, v: ValueId) -> Option<ValueId> {
    let g = &model.graph;
    let is_identity = |n: &crate::ir::Node| {
        n.op_type == "Identity" && (n.domain.is_empty() || n.domain == "ai.onnx")
    };
    let r = g.node(reader);
    if is_identity(r)
        && r.output(0)
            .is_some_and(|o| !g.value(o).consumers.is_empty())
    {
        return None;
    }
    let mut v = v;
    // Terminates: producers come earlier in the topological order.
    while let Some(p) = g.producer(v) {
        let n = g.node(p);
        match n.input(0) {
            Some(src) if is_identity(n) => v = src,
            _ => break,
        }
    }
    Some(v)
}

/// Elements of `v` if it is a constant (initializer or `Constant` output) of a floating-point
/// type, or of any type when `any_type` (a quantized weight).
fn constant_elements(model: &Model, v: ValueId, any_type: bool) -> Result<Option<u64>> {
    if !model.is_stored(v) {
        return Ok(None);
    }
    let (dtype, n) = match model.initializer(v) {
        Some(t) => (t.data_type, crate::tensor::num_elements(t)? as u64),
        None => {
            let Some(t) = model.constant(v) else {
                return Ok(None);
            };
            (t.data_type, crate::tensor::num_elements(&t)? as u64)
        }
    };
    Ok((any_type || crate::tensor::is_float(dtype)).then_some(n))
}

/// The MACs of `node`: `Some(0)` for ops without a formula, `None` when a needed shape is
/// unknown; an error naming the node when the count does not fit 64 bits (a wrapped or
/// saturated count would be a wrong number in a report).
fn node_macs(model: &Model, id: NodeId) -> Result<Option<u64>> {
    let g = &model.graph;
    let n = g.node(id);
    let shape = |slot: usize| n.input(slot).and_then(|v| g.value(v).shape.as_deref());
    if crate::ops::canonical_domain(&n.domain) == crate::ops::MS_DOMAIN {
        let out = |slot: usize| n.output(slot).and_then(|v| g.value(v).shape.as_deref());
        match n.op_type.as_str() {
            "Attention" => return attention_macs(n, shape(0), shape(1)),
            "MultiHeadAttention" | "GroupQueryAttention" => {
                return head_attention_macs(n, shape(0), shape(1), shape(2), out(1))
            }
            _ => {}
        }
    }
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return Ok(Some(0));
    }
    let out_shape = || n.output(0).and_then(|v| g.value(v).shape.as_deref());
    let overflow = || OnnxError::Overflow {
        what: format!("the MACs of node '{}' ({})", n.name, n.op_type),
    };
    let prod = |parts: &[&[usize]]| -> Result<u64> {
        parts
            .iter()
            .flat_map(|s| s.iter())
            .try_fold(1u64, |p, &d| p.checked_mul(d as u64))
            .ok_or_else(overflow)
    };
    let factors: Option<Vec<&[usize]>> = match n.op_type.as_str() {
        // W = [Cout, Cin/group, k...]; Y = [N, Cout, out...].
        // The quantized layers count like their float ops (ConvInteger's weight is slot 1 too).
        "Conv" | "ConvInteger" => (|| Some(vec![out_shape()?, shape(1)?.get(1..)?]))(),
        "QLinearConv" => (|| Some(vec![out_shape()?, shape(3)?.get(1..)?]))(),
        // W = [Cin, Cout/group, k...]; every input element meets Cout/group * prod(k) weights.
        "ConvTranspose" => (|| Some(vec![shape(0)?, shape(1)?.get(1..)?]))(),
        "Gemm" | "MatMul" | "MatMulInteger" | "QLinearMatMul" => {
            let b_slot = if n.op_type == "QLinearMatMul" { 3 } else { 1 };
            let dims = (|| {
                let (a, b) = (shape(0)?, shape(b_slot)?);
                if n.op_type == "Gemm" {
                    let ta = n.attr_i("transA", 0) != 0;
                    let tb = n.attr_i("transB", 0) != 0;
                    let (m, k, nn) = shape::gemm_dims(a, b, ta, tb).ok()?;
                    Some(vec![m, k, nn])
                } else {
                    let (_, [batch, m, k, nn]) = matmul_dims(a, b).ok()?;
                    Some(vec![batch, m, k, nn])
                }
            })();
            return dims.map(|d| prod(&[&d])).transpose();
        }
        _ => return Ok(Some(0)),
    };
    factors.map(|f| prod(&f)).transpose()
}

/// onnxruntime's fused `Attention` (docs/fused.md): the packed projection `B·S·H_in·(q + k +
/// v)`, then per head the scores and the context, `B·S·S·(q + v)` over all heads.
fn attention_macs(
    n: &crate::Node,
    x: Option<&[usize]>,
    w: Option<&[usize]>,
) -> Result<Option<u64>> {
    let (Some(&[b, s, hin]), Some(&[_, total])) = (x, w) else {
        return Ok(None);
    };
    let overflow = || OnnxError::Overflow {
        what: format!("the MACs of node '{}' ({})", n.name, n.op_type),
    };
    let Ok([q, _, v]) = crate::shape::contrib::qkv_sizes(n.attr_ints("qkv_hidden_sizes"), total)
    else {
        return Ok(None);
    };
    let mul = |xs: &[usize]| {
        xs.iter()
            .try_fold(1u64, |p, &d| p.checked_mul(d as u64))
            .ok_or_else(overflow)
    };
    let macs = mul(&[b, s, hin, total])?
        .checked_add(mul(&[b, s, s, q + v])?)
        .ok_or_else(overflow)?;
    Ok(Some(macs))
}

/// onnxruntime's `MultiHeadAttention` and `GroupQueryAttention` (docs/fused.md), projections
/// outside: over all heads the scores `B·S·T·Dq` and the context `B·S·T·Dv` (GQA: `Dv = Dq`,
/// each query head reads its group's value head), `T` the attended length: the present cache's
/// length when the node writes one (past + new), else the key's. `None` for the packed forms
/// or unknown shapes.
fn head_attention_macs(
    n: &crate::Node,
    q: Option<&[usize]>,
    k: Option<&[usize]>,
    v: Option<&[usize]>,
    present_key: Option<&[usize]>,
) -> Result<Option<u64>> {
    let (Some(&[b, s, dq]), Some(&[_, l, _]), Some(&[_, _, dv])) = (q, k, v) else {
        return Ok(None);
    };
    let t = match present_key {
        Some(&[_, _, t, _]) => t,
        _ => l,
    };
    let dv = if n.op_type == "GroupQueryAttention" {
        dq
    } else {
        dv
    };
    let overflow = || OnnxError::Overflow {
        what: format!("the MACs of node '{}' ({})", n.name, n.op_type),
    };
    [b, s, t, dq + dv]
        .iter()
        .try_fold(1u64, |p, &d| p.checked_mul(d as u64))
        .ok_or_else(overflow)
        .map(Some)
}

/// Parameters, statistics and MACs of every node of `model` (shapes from
/// [`crate::shape::infer_shapes`]; MACs of layers whose shapes are unknown are `None`).
pub fn analyze(model: &Model) -> Result<CostReport> {
    let g = &model.graph;
    let mut seen: HashSet<ValueId> = HashSet::new();
    let mut report = CostReport {
        nodes: Vec::with_capacity(g.nodes.len()),
        parameters: 0,
        statistics: 0,
        macs: 0,
        macs_unknown: Vec::new(),
    };
    for id in g.node_ids() {
        let n = g.node(id);
        let facts = crate::ops::facts(n);
        let mut cost = NodeCost {
            node: id,
            parameters: 0,
            statistics: 0,
            macs: node_macs(model, id)?,
        };
        for (slot, v) in n.inputs.iter().enumerate() {
            let Some(v) = v.and_then(|v| counted_as(model, id, v)) else {
                continue;
            };
            if seen.contains(&v) || facts.metadata_slots.contains(&slot) {
                continue;
            }
            let Some(elems) = constant_elements(model, v, facts.quantized_slots.contains(&slot))?
            else {
                continue;
            };
            if facts.statistic_slots.contains(&slot) {
                cost.statistics = add(cost.statistics, elems, "the statistics of", n)?;
            } else if facts.is_parameter_slot(slot) || elems > 1 {
                cost.parameters = add(cost.parameters, elems, "the parameters of", n)?;
            } else {
                continue;
            }
            seen.insert(v);
        }
        report.parameters = add(
            report.parameters,
            cost.parameters,
            "the parameters up to",
            n,
        )?;
        report.statistics = add(
            report.statistics,
            cost.statistics,
            "the statistics up to",
            n,
        )?;
        match cost.macs {
            Some(m) => report.macs = add(report.macs, m, "the MACs up to", n)?,
            None => report.macs_unknown.push(id),
        }
        report.nodes.push(cost);
    }
    Ok(report)
}

/// `a + b`, or an error naming what overflowed 64 bits.
fn add(a: u64, b: u64, what: &str, n: &crate::ir::Node) -> Result<u64> {
    a.checked_add(b).ok_or_else(|| OnnxError::Overflow {
        what: format!("{what} node '{}' ({})", n.name, n.op_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::testutil::*;

    fn costs(b: &GraphBuilder) -> (Model, CostReport) {
        let m = b.infer(&[]).unwrap();
        let r = analyze(&m).unwrap();
        (m, r)
    }

    #[test]
    fn conv_bn_gemm_counts() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[2, 3, 8, 8]);
        b.init_f32("w", &[16, 3, 3, 3]).init_f32("cb", &[16]);
        for t in ["scale", "bias", "mean", "var"] {
            b.init_f32(t, &[16]);
        }
        b.init_f32("fw", &[10, 16]).init_f32("fb", &[10]);
        b.node(
            "Conv",
            &["x", "w", "cb"],
            &["c"],
            vec![aints("pads", &[1, 1, 1, 1])],
        );
        b.node(
            "BatchNormalization",
            &["c", "scale", "bias", "mean", "var"],
            &["bn"],
            vec![],
        );
        b.node("GlobalAveragePool", &["bn"], &["p"], vec![]);
        b.node("Flatten", &["p"], &["f"], vec![]);
        b.node("Gemm", &["f", "fw", "fb"], &["y"], vec![ai("transB", 1)]);
        b.output("y");
        let (_, r) = costs(&b);
        let per: Vec<(u64, u64, Option<u64>)> = r
            .nodes
            .iter()
            .map(|c| (c.parameters, c.statistics, c.macs))
            .collect();
        assert_eq!(
            per,
            vec![
                (16 * 27 + 16, 0, Some(2 * 16 * 64 * 27)),
                (32, 32, Some(0)),
                (0, 0, Some(0)),
                (0, 0, Some(0)),
                (170, 0, Some(2 * 10 * 16)),
            ]
        );
        assert_eq!(r.parameters, 448 + 32 + 170);
        assert_eq!(r.statistics, 32);
        assert_eq!(r.macs, 2 * 16 * 64 * 27 + 320);
    }

    #[test]
    fn grouped_conv_transpose_and_batched_matmul() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 8, 4, 4]);
        b.init_f32("dw", &[8, 1, 3, 3]);
        b.init_f32("tw", &[8, 2, 2, 2]);
        b.node(
            "Conv",
            &["x", "dw"],
            &["d"],
            vec![ai("group", 8), aints("pads", &[1, 1, 1, 1])],
        );
        b.node(
            "ConvTranspose",
            &["d", "tw"],
            &["t"],
            vec![aints("strides", &[2, 2])],
        );
        b.init_ints("shape", &[3], &[2, 8, 8]);
        b.node("Reshape", &["t", "shape"], &["r"], vec![]);
        b.node(
            "Transpose",
            &["r"],
            &["r2"],
            vec![aints("perm", &[0, 2, 1])],
        );
        b.node("MatMul", &["r", "r2"], &["mm"], vec![]);
        b.output("mm");
        let (m, r) = costs(&b);
        let macs = |name: &str| {
            let id = m.graph.node_id(name).unwrap();
            r.nodes[id.index()].macs
        };
        assert_eq!(macs("Conv_0"), Some(8 * 16 * 9));
        // ConvTranspose: every input element (8 * 4 * 4) meets 2 * 2 * 2 weights.
        assert_eq!(macs("ConvTranspose_1"), Some(8 * 16 * 8));
        // [2, 8, 8] @ [2, 8, 8]: 2 * 8 * 8 * 8.
        assert_eq!(macs("MatMul_4"), Some(2 * 8 * 8 * 8));
        assert_eq!(r.parameters, 72 + 64);
    }

    #[test]
    fn counts_past_64_bits_are_errors_naming_the_node_not_wrapped_numbers() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1 << 31, 1 << 31, 4]);
        b.init_f32("w", &[4, 4]);
        b.node_named("fc", "MatMul", &["x", "w"], &["y"], vec![]);
        b.output("y");
        let e = analyze(&b.infer(&[]).unwrap()).unwrap_err().to_string();
        assert_eq!(e, "the MACs of node 'fc' (MatMul) overflow 64 bits");

        // Each node fits (2^63 MACs), their sum does not.
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1 << 30, 1 << 29, 4]);
        b.init_f32("w", &[4, 4]);
        b.node_named("fc1", "MatMul", &["x", "w"], &["a"], vec![]);
        b.node_named("fc2", "MatMul", &["a", "w"], &["y"], vec![]);
        b.output("y");
        let m = b.infer(&[]).unwrap();
        assert_eq!(node_macs(&m, NodeId(0)).unwrap(), Some(1 << 63));
        let e = analyze(&m).unwrap_err().to_string();
        assert_eq!(e, "the MACs up to node 'fc2' (MatMul) overflow 64 bits");
    }

    #[test]
    fn scalars_are_not_parameters_but_other_constant_tensors_are() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 17, 2]);
        b.init_f32("pos", &[1, 17, 2]);
        b.init_f32("half", &[]);
        b.init_f32("lo", &[]);
        b.init_f32("hi", &[]);
        b.node("Add", &["x", "pos"], &["a"], vec![]);
        b.node("Mul", &["a", "half"], &["m"], vec![]);
        b.node("Clip", &["m", "lo", "hi"], &["y"], vec![]);
        b.node(
            "Constant",
            &[],
            &["k"],
            vec![afloats("value_floats", &[1.0, 2.0])],
        );
        b.node("Mul", &["y", "k"], &["z"], vec![]);
        b.output("z");
        let (_, r) = costs(&b);
        assert_eq!(r.parameters, 17 * 2 + 2);
        assert_eq!(r.macs, 0);
    }

    #[test]
    fn a_tensor_shared_through_identity_counts_once_in_its_readers_role() {
        // The exporter de-duplicated BN2's running mean behind an Identity placed first: it is
        // one statistic tensor, not a parameter; a weight shared the same way counts once.
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 4, 2, 2]);
        for t in ["s1", "b1", "m1", "v1", "s2", "b2", "v2"] {
            b.init_f32(t, &[4]);
        }
        b.init_f32("w", &[4, 4, 1, 1]);
        b.node("Identity", &["m1"], &["m2"], vec![]);
        b.node("Identity", &["w"], &["w_copy"], vec![]);
        b.node("Identity", &["w_copy"], &["w2"], vec![]);
        b.node(
            "BatchNormalization",
            &["x", "s1", "b1", "m1", "v1"],
            &["y1"],
            vec![],
        );
        b.node("Conv", &["y1", "w"], &["c1"], vec![]);
        b.node(
            "BatchNormalization",
            &["c1", "s2", "b2", "m2", "v2"],
            &["y2"],
            vec![],
        );
        b.node("Conv", &["y2", "w2"], &["y"], vec![]);
        b.output("y");
        let (_, r) = costs(&b);
        assert_eq!(r.statistics, 3 * 4, "m1 once, v1, v2");
        assert_eq!(r.parameters, 4 * 4 + 16, "s1 b1 s2 b2, and w once");
        let per: Vec<(u64, u64)> = r
            .nodes
            .iter()
            .map(|c| (c.parameters, c.statistics))
            .collect();
        assert_eq!(
            per,
            [(0, 0), (0, 0), (0, 0), (8, 8), (16, 0), (8, 4), (0, 0)]
        );
    }

    #[test]
    fn shared_weights_count_once_and_unknown_shapes_leave_macs_unknown() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 4]);
        b.init_f32("w", &[4, 4]);
        b.node("MatMul", &["x", "w"], &["a"], vec![]);
        b.node("MatMul", &["a", "w"], &["c"], vec![]);
        b.node("Custom", &["c"], &["u"], vec![]);
        b.node("MatMul", &["u", "w"], &["y"], vec![]);
        b.output("y");
        let (_, r) = costs(&b);
        assert_eq!(r.parameters, 16);
        assert_eq!(r.macs, 2 * 16);
        assert_eq!(r.macs_unknown.len(), 1);
        assert_eq!(r.nodes[3].macs, None);
    }
}
