//! Which tensors `sparsify` may zero, and how their elements line up with the layer's
//! reduction axis, output rows and input channels.
//!
//! Only the weight operand of Conv, ConvTranspose, Gemm and MatMul is a candidate (never biases,
//! norms or statistics), and only when it is a float initializer whose payload agrees with its
//! inferred shape.

use std::collections::HashSet;

use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::{tensor, Model, NodeId, ValueId};

/// A weight viewed as `[outer, reduce, inner]` (row-major): element `(o, r, i)` is at
/// `(o * reduce + r) * inner + i`. `reduce` is the layer's reduction axis: a Conv's input
/// channels of one group, a ConvTranspose's input channels of one group, a Gemm's or MatMul's K.
///
/// Invariant: `outer * reduce * inner` is the tensor's element count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub outer: usize,
    pub reduce: usize,
    pub inner: usize,
    /// Which output row (neuron) an element feeds, for per-row criteria.
    pub rows: Rows,
    /// Which channel of the layer's data input an element multiplies.
    pub channels: Channels,
}

/// How an element `(o, r, i)` maps to an output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Row `o` (a Conv's output channel, a transposed Gemm weight's N).
    Outer,
    /// Row `o * inner + i` (a Gemm/MatMul weight `[.., K, N]`: each N of each batch).
    OuterInner,
    /// Row `o * (inner / k) + i / k` (a ConvTranspose: output channel of a group, `k` kernel
    /// positions per output channel).
    OuterInnerDiv(usize),
}

/// How an element `(o, r, i)` maps to a channel of the layer's data input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    /// Channel `r` (Gemm, MatMul).
    Reduce,
    /// Channel `(o / per_group) * reduce + r` (grouped convolutions: `per_group` outer indices
    /// share one group of input channels).
    Grouped { per_group: usize },
}

impl Layout {
    pub fn len(&self) -> usize {
        self.outer * self.reduce * self.inner
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of output rows.
    pub fn row_count(&self) -> usize {
        match self.rows {
            Rows::Outer => self.outer,
            Rows::OuterInner => self.outer * self.inner,
            Rows::OuterInnerDiv(k) => self.outer * (self.inner / k.max(1)),
        }
    }

    /// The output row of element `(o, i)` (any `r`).
    pub fn row(&self, o: usize, i: usize) -> usize {
        match self.rows {
            Rows::Outer => o,
            Rows::OuterInner => o * self.inner + i,
            Rows::OuterInnerDiv(k) => o * (self.inner / k.max(1)) + i / k.max(1),
        }
    }

    /// The data input's channel that element `(o, r)` multiplies.
    pub fn channel(&self, o: usize, r: usize) -> usize {
        match self.channels {
            Channels::Reduce => r,
            Channels::Grouped { per_group } => (o / per_group.max(1)) * self.reduce + r,
        }
    }
}

/// A weight `sparsify` may zero.
///
/// Invariant: `value` is a float initializer (f32, f64, f16 or bf16) of `layout.len()`
/// elements; `layer` is the first node (in topological order) reading it as its weight.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The initializer's name.
    pub name: String,
    pub value: ValueId,
    pub node: NodeId,
    /// The node's name.
    pub layer: String,
    pub op_type: String,
    pub layout: Layout,
    /// The value and axis whose channels the weight multiplies (for activation criteria).
    pub activation: (ValueId, usize),
}

impl Weight {
    /// The names a layer pattern is matched against: the weight and the node.
    pub fn names(&self) -> [&str; 2] {
        [&self.name, &self.layer]
    }
}

/// Float element types `sparsify` reads and zeroes.
pub fn is_float(data_type: i32) -> bool {
    [
        DataType::Float,
        DataType::Double,
        DataType::Float16,
        DataType::Bfloat16,
    ]
    .iter()
    .any(|&d| d as i32 == data_type)
}

/// Every weight of `model` that can be sparsified, in node order (each tensor once), and the
/// weights of candidate layers that cannot, with the reason (sorted by layer).
pub fn find(model: &Model) -> (Vec<Weight>, Vec<(String, String)>) {
    let g = &model.graph;
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let mut refused = Vec::new();
    for id in g.node_ids() {
        let n = g.node(id);
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            continue;
        }
        let slot = match n.op_type.as_str() {
            "Conv" | "ConvTranspose" | "Gemm" => 1,
            "MatMul" => match (n.input(0), n.input(1)) {
                (_, Some(b)) if model.initializer(b).is_some() => 1,
                (Some(a), _) if model.initializer(a).is_some() => 0,
                _ => continue,
            },
            _ => continue,
        };
        let Some(w) = n.input(slot) else { continue };
        if model.initializer(w).is_none() || !seen.insert(w) {
            // Computed weights are not stored, so there is nothing to zero.
            continue;
        }
        match describe(model, id, slot, w) {
            Ok(weight) => found.push(weight),
            Err(reason) => refused.push((g.value(w).name.clone(), reason)),
        }
    }
    refused.sort();
    (found, refused)
}

fn describe(model: &Model, node: NodeId, slot: usize, w: ValueId) -> Result<Weight, String> {
    let g = &model.graph;
    let n = g.node(node);
    let t = model.initializer(w).ok_or("not an initializer")?;
    if !is_float(t.data_type) {
        return Err(format!(
            "{} weight (only float weights are sparsified)",
            tensor::dtype_name(t.data_type)
        ));
    }
    let shape = g
        .value(w)
        .shape
        .clone()
        .ok_or_else(|| "shape unknown".to_string())?;
    if tensor::num_elements(t).ok() != Some(shape.iter().product()) {
        return Err("payload does not match its shape".into());
    }
    let data_in = n
        .input(if slot == 0 { 1 } else { 0 })
        .ok_or("no data input")?;
    let rank_in = g.value(data_in).shape.as_ref().map(Vec::len);
    let group = usize::try_from(n.attr_i("group", 1)).unwrap_or(1).max(1);
    let (layout, axis) = match (n.op_type.as_str(), shape.as_slice()) {
        ("Conv", [o, ipg, k @ ..]) => {
            let k: usize = k.iter().product();
            if *o % group != 0 {
                return Err(format!("{o} output channels in {group} groups"));
            }
            let layout = Layout {
                outer: *o,
                reduce: *ipg,
                inner: k,
                rows: Rows::Outer,
                channels: Channels::Grouped {
                    per_group: *o / group,
                },
            };
            (layout, 1)
        }
        ("ConvTranspose", [i, opg, k @ ..]) => {
            let k: usize = k.iter().product();
            if *i % group != 0 {
                return Err(format!("{i} input channels in {group} groups"));
            }
            let layout = Layout {
                outer: group,
                reduce: *i / group,
                inner: *opg * k,
                rows: Rows::OuterInnerDiv(k.max(1)),
                channels: Channels::Grouped { per_group: 1 },
            };
            (layout, 1)
        }
        ("Gemm", [a, b]) => {
            let trans_b = n.attr_i("transB", 0) != 0;
            let axis = if n.attr_i("transA", 0) != 0 { 0 } else { 1 };
            let layout = if trans_b {
                Layout {
                    outer: *a,
                    reduce: *b,
                    inner: 1,
                    rows: Rows::Outer,
                    channels: Channels::Reduce,
                }
            } else {
                Layout {
                    outer: 1,
                    reduce: *a,
                    inner: *b,
                    rows: Rows::OuterInner,
                    channels: Channels::Reduce,
                }
            };
            (layout, axis)
        }
        ("MatMul", s) if s.len() >= 2 && slot == 1 => {
            let (k, nn) = (s[s.len() - 2], s[s.len() - 1]);
            let layout = Layout {
                outer: s[..s.len() - 2].iter().product(),
                reduce: k,
                inner: nn,
                rows: Rows::OuterInner,
                channels: Channels::Reduce,
            };
            (
                layout,
                rank_in.ok_or("input shape unknown")?.saturating_sub(1),
            )
        }
        ("MatMul", s) if s.len() >= 2 && slot == 0 => {
            // A constant left operand `[.., M, K]`: its rows are the outputs, K is read
            // along the right operand's axis -2.
            let k = s[s.len() - 1];
            let layout = Layout {
                outer: s[..s.len() - 1].iter().product(),
                reduce: k,
                inner: 1,
                rows: Rows::Outer,
                channels: Channels::Reduce,
            };
            (
                layout,
                rank_in.ok_or("input shape unknown")?.saturating_sub(2),
            )
        }
        (op, s) => return Err(format!("{op} weight of rank {}", s.len())),
    };
    Ok(Weight {
        name: g.value(w).name.clone(),
        value: w,
        node,
        layer: n.name.clone(),
        op_type: n.op_type.clone(),
        layout,
        activation: (data_in, axis),
    })
}
