//! Static shape inference: every value's concrete shape and element type, and the integer
//! contents of small shape tensors, computed once the graph inputs have static shapes.
//!
//! The driver ([`infer_shapes`]) walks the nodes in topological order and asks the op's rule
//! for its outputs. Rules live one file per op family (`conv`, `pool`, `elementwise`, `norm`,
//! `matmul`, `shape_ops`, `slicing`, `constant`, `resize`, `reduce`, `quant`); `rule` looks an op up in
//! their tables.
//!
//! **Constant folding.** Shape subgraphs (`Shape -> Gather -> Unsqueeze -> Concat -> Reshape`, as
//! the TorchScript exporter writes them) are evaluated on the fly: integer and bool tensors of at
//! most [`FOLD_LIMIT`] elements whose contents are known (initializers, `Constant` outputs, and
//! the results of foldable ops on known contents) carry them in [`crate::Value::folded`]. Floating
//! point tensors are never folded, so a shape computed through a float `Cast` stays unknown.
//!
//! **Unknown ops.** A node whose op has no rule (a `Loop`, a custom domain op), or whose rule needs
//! contents that are not known statically, leaves its outputs unknown (`shape == None`), and so
//! do the nodes downstream of it; inference goes on with the rest of the graph and does not fail.
//! Whoever *needs* such a shape asks [`require_shape`], which errors naming the node where
//! inference stopped and why; [`blockers`] lists those nodes.
//!
//! **Errors.** A node a rule understands but finds inconsistent (a Conv whose weight does not
//! match its input channels, a Reshape to a different element count, an axis out of range) is an
//! error naming the node. So is an inferred shape or type that disagrees with what the file
//! declares for the value (`value_info`, graph outputs), and an `--input-shape` that contradicts
//! a fixed dimension the file declares for that input: user shapes may only fill in dynamic
//! dimensions.

mod constant;
pub mod contrib;
mod conv;
mod elementwise;
mod fold;
mod matmul;
mod norm;
mod pool;
pub mod quant;
mod reduce;
mod resize;
mod shape_ops;
mod slicing;
pub mod symbolic;

#[cfg(test)]
pub(crate) mod testutil;

pub(crate) use matmul::{gemm_dims, matmul_dims};

use crate::error::{OnnxError, Result};
use crate::input_shapes::InputShapes;
use crate::ir::{Dim, Node, NodeId, Value, ValueId, ValueKind};
use crate::model::Model;
use crate::proto::tensor_proto::DataType;
use crate::tensor;

/// The largest integer tensor (in elements) whose contents are tracked in
/// [`crate::Value::folded`]. Shape tensors have one element per dimension, so this is generous
/// for them while keeping weights and index tables out.
pub const FOLD_LIMIT: usize = 64;

/// A shape rule: the node's outputs by slot from its inputs (as the [`Ctx`] sees them).
pub(crate) type ShapeFn = fn(&Ctx<'_>) -> Result<Vec<Out>, Fail>;

/// Why a rule gave no outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Something the rule needs is not known (an input shape left unknown upstream, contents
    /// that cannot be folded): the outputs stay unknown, inference continues.
    Unknown,
    /// The node is inconsistent; inference stops with this reason.
    Invalid(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Invalid(s)
    }
}

/// Shorthand for an [`Fail::Invalid`] error.
pub(crate) fn invalid<T>(reason: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Invalid(reason.into()))
}

/// One inferred output.
///
/// Invariant: `folded`, when present, has exactly `numel(shape)` elements, at most
/// [`FOLD_LIMIT`], and `dtype` is an integer or bool type ([`Out::with_data`] enforces it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Out {
    pub shape: Vec<usize>,
    pub dtype: i32,
    pub folded: Option<Vec<i64>>,
}

impl Out {
    pub fn new(shape: Vec<usize>, dtype: i32) -> Out {
        Out {
            shape,
            dtype,
            folded: None,
        }
    }

    /// An output whose contents may be known; they are kept only within the folding limits.
    pub fn with_data(shape: Vec<usize>, dtype: i32, data: Option<Vec<i64>>) -> Out {
        let keep = |d: &Vec<i64>| {
            is_integer(dtype) && d.len() <= FOLD_LIMIT && Some(d.len()) == numel(&shape).ok()
        };
        let folded = data.filter(keep);
        Out {
            shape,
            dtype,
            folded,
        }
    }
}

/// What a rule sees of its node: inputs with their inferred shapes, types and folded contents,
/// the attributes, and the model (for constant payloads).
pub(crate) struct Ctx<'a> {
    pub model: &'a Model,
    pub node: &'a Node,
}

impl<'a> Ctx<'a> {
    /// The default-domain opset the model imports.
    pub fn opset(&self) -> i64 {
        self.model.graph.opset
    }

    /// Whether input `i` is present (not omitted).
    pub fn has(&self, i: usize) -> bool {
        self.node.input(i).is_some()
    }

    /// Number of input slots (present or omitted).
    pub fn n_inputs(&self) -> usize {
        self.node.inputs.len()
    }

    /// Number of output slots (present or omitted).
    pub fn n_outputs(&self) -> usize {
        self.node.outputs.len()
    }

    fn value(&self, i: usize) -> Result<&'a Value, Fail> {
        match self.node.input(i) {
            Some(v) => Ok(self.model.graph.value(v)),
            None => invalid(format!("input {i} is missing")),
        }
    }

    /// The shape of input `i` (required).
    pub fn shape(&self, i: usize) -> Result<&'a [usize], Fail> {
        self.value(i)?.shape.as_deref().ok_or(Fail::Unknown)
    }

    /// The element type of input `i` (required; 0 when unknown).
    pub fn dtype(&self, i: usize) -> Result<i32, Fail> {
        Ok(self.value(i)?.dtype)
    }

    /// The statically known contents of input `i` (required).
    pub fn folded(&self, i: usize) -> Result<&'a [i64], Fail> {
        self.value(i)?.folded.as_deref().ok_or(Fail::Unknown)
    }

    /// The folded contents of input `i`, if it is present and known.
    pub fn folded_opt(&self, i: usize) -> Option<&'a [i64]> {
        let v = self.node.input(i)?;
        self.model.graph.value(v).folded.as_deref()
    }

    /// Integers held by an optional input: `None` when the input is omitted, an error
    /// ([`Fail::Unknown`]) when it is present but its contents are not known.
    pub fn ints_input(&self, i: usize) -> Result<Option<Vec<i64>>, Fail> {
        if !self.has(i) {
            return Ok(None);
        }
        Ok(Some(self.folded(i)?.to_vec()))
    }

    /// The contents of input `i` as floats: a float constant (initializer or `Constant`) or
    /// folded integers; [`Fail::Unknown`] otherwise.
    pub fn floats(&self, i: usize) -> Result<Vec<f32>, Fail> {
        let v = self.node.input(i).ok_or(Fail::Unknown)?;
        if let Some(d) = &self.model.graph.value(v).folded {
            return Ok(d.iter().map(|&x| x as f32).collect());
        }
        let t = self.model.constant(v).ok_or(Fail::Unknown)?;
        self.model
            .f32s(&t)
            .map_err(|e| Fail::Invalid(format!("input {i}: {e}")))
    }

    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.node.attr_i(name, default)
    }
    pub fn attr_ints(&self, name: &str) -> Option<&'a [i64]> {
        self.node.attr_ints(name)
    }
    pub fn attr_s(&self, name: &str) -> Option<&'a str> {
        self.node.attr_s(name)
    }
}

/// The op families' rule tables.
const FAMILIES: &[&[(&str, ShapeFn)]] = &[
    conv::RULES,
    pool::RULES,
    elementwise::RULES,
    norm::RULES,
    matmul::RULES,
    shape_ops::RULES,
    slicing::RULES,
    constant::RULES,
    resize::RULES,
    reduce::RULES,
    quant::RULES,
];

/// The rule tables of the other domains Shears knows (onnxruntime's fused ops).
const DOMAIN_FAMILIES: &[(&str, &[(&str, ShapeFn)])] = &[(crate::ops::MS_DOMAIN, contrib::RULES)];

/// The shape rule of op `op_type` in `domain` (either spelling of the default domain), if
/// there is one: an op is found in its own domain's tables only.
pub(crate) fn rule(domain: &str, op_type: &str) -> Option<ShapeFn> {
    let domain = crate::ops::canonical_domain(domain);
    let default = domain.is_empty();
    FAMILIES
        .iter()
        .filter(|_| default)
        .chain(
            DOMAIN_FAMILIES
                .iter()
                .filter(|(d, _)| *d == domain)
                .map(|(_, f)| f),
        )
        .flat_map(|f| f.iter())
        .find(|(name, _)| *name == op_type)
        .map(|&(_, f)| f)
}

/// Whether shape inference has a rule for `node`'s op in its domain.
pub fn has_rule(node: &Node) -> bool {
    rule(&node.domain, &node.op_type).is_some()
}

/// Fills [`Value::shape`], [`Value::dtype`] and [`Value::folded`] for every value of `model`'s
/// main graph it can, from the static input shapes `inputs` resolves to.
///
/// Re-running it (for example with other input shapes) recomputes everything node outputs
/// carry. See the module documentation for what is left unknown and what is an error.
///
/// Input dimensions that are symbolic and left unbound by `inputs` are inferred at
/// [`symbolic::BASE`], and [`Model::symbolic`] records which axes and shape tensors depend on
/// them (see [`symbolic`]).
pub fn infer_shapes(model: &mut Model, inputs: &InputShapes) -> Result<()> {
    let symbols = inputs.symbols(&model.graph)?;
    let base = vec![symbolic::BASE; symbols.len()];
    let resolved = inputs.resolve_with(&model.graph, &symbols, &base)?;
    model.symbolic = symbolic::Symbolic::default();
    infer_resolved(model, resolved)?;
    if !symbols.is_empty() {
        model.symbolic = symbolic::probe(model, inputs, symbols)?;
    }
    Ok(())
}

/// One inference run from concrete input shapes.
fn infer_resolved(model: &mut Model, resolved: Vec<(String, Vec<usize>)>) -> Result<()> {
    for v in &mut model.graph.values {
        if matches!(v.kind, ValueKind::NodeOutput { .. }) {
            v.shape = None;
            v.folded = None;
        }
    }
    for (name, dims) in resolved {
        let Some(id) = model.graph.value_id(&name) else {
            continue;
        };
        let v = model.graph.value_mut(id);
        if let Some(decl) = &v.declared {
            if let Some(reason) = disagreement(decl, &dims) {
                return Err(OnnxError::InputShapeSpec {
                    spec: format!("{name}={}", format_shape(&dims)),
                    reason: format!(
                        "the model declares input '{name}' as {} ({reason}); only dynamic dimensions can be set",
                        format_declared(decl)
                    ),
                });
            }
        }
        v.shape = Some(dims);
        v.folded = None;
    }
    fold_initializers(model)?;

    for i in 0..model.graph.nodes.len() {
        let node = &model.graph.nodes[i];
        let Some(f) = rule(&node.domain, &node.op_type) else {
            continue;
        };
        let outs = f(&Ctx {
            model: &*model,
            node,
        });
        match outs {
            Ok(outs) => apply(model, NodeId(i as u32), outs)?,
            Err(Fail::Unknown) => {}
            Err(Fail::Invalid(reason)) => {
                return Err(OnnxError::Shape {
                    node: node.name.clone(),
                    op_type: node.op_type.clone(),
                    reason,
                })
            }
        }
    }
    Ok(())
}

/// Integer initializers small enough to fold carry their contents.
fn fold_initializers(model: &mut Model) -> Result<()> {
    let mut found = Vec::new();
    for (id, v) in model.graph.values.iter().enumerate() {
        if !matches!(v.kind, ValueKind::Initializer(_)) || !is_integer(v.dtype) {
            continue;
        }
        let Some(t) = model.initializer(ValueId(id as u32)) else {
            continue;
        };
        let n = tensor::num_elements(t)?;
        if n > FOLD_LIMIT {
            continue;
        }
        let data = model.i64s(t)?;
        if data.len() != n {
            return Err(OnnxError::tensor(
                &t.name,
                format!("holds {} values, its dims say {n}", data.len()),
            ));
        }
        found.push((id, data));
    }
    for (id, data) in found {
        model.graph.values[id].folded = Some(data);
    }
    Ok(())
}

/// Stores a rule's outputs, checking them against what the file declares.
fn apply(model: &mut Model, id: NodeId, outs: Vec<Out>) -> Result<()> {
    let node = model.graph.node(id);
    let err = |reason: String| OnnxError::Shape {
        node: node.name.clone(),
        op_type: node.op_type.clone(),
        reason,
    };
    let mut updates = Vec::with_capacity(outs.len());
    for (slot, out) in outs.into_iter().enumerate() {
        let Some(vid) = node.output(slot) else {
            continue;
        };
        let v = model.graph.value(vid);
        if let Some(decl) = &v.declared {
            if let Some(reason) = disagreement(decl, &out.shape) {
                return Err(err(format!(
                    "output '{}': inferred shape {} but the file declares {} ({reason})",
                    v.name,
                    format_shape(&out.shape),
                    format_declared(decl)
                )));
            }
        }
        if v.dtype != 0 && out.dtype != 0 && v.dtype != out.dtype {
            return Err(err(format!(
                "output '{}': inferred type {} but the file declares {}",
                v.name,
                tensor::dtype_name(out.dtype),
                tensor::dtype_name(v.dtype)
            )));
        }
        updates.push((vid, out));
    }
    for (vid, out) in updates {
        let v = model.graph.value_mut(vid);
        if out.dtype != 0 {
            v.dtype = out.dtype;
        }
        v.shape = Some(out.shape);
        v.folded = out.folded;
    }
    Ok(())
}

/// Why `shape` contradicts the declared dims, if it does (dynamic dims accept anything).
fn disagreement(declared: &[Dim], shape: &[usize]) -> Option<String> {
    if declared.len() != shape.len() {
        return Some(format!(
            "rank {} vs declared rank {}",
            shape.len(),
            declared.len()
        ));
    }
    declared
        .iter()
        .zip(shape)
        .enumerate()
        .find_map(|(i, (d, &s))| match d {
            Dim::Known(k) if *k != s => Some(format!("dimension {i} is {s}, declared {k}")),
            _ => None,
        })
}

/// `1x3x224x224`; a scalar is `[]`.
pub fn format_shape(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "[]".into();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// A declared shape, symbolic dimensions by name (`batchx3x224x224`; `?` when unnamed).
pub fn format_declared(decl: &[Dim]) -> String {
    if decl.is_empty() {
        return "[]".into();
    }
    decl.iter()
        .map(|d| match d {
            Dim::Known(k) => k.to_string(),
            Dim::Dynamic(p) if p.is_empty() => "?".into(),
            Dim::Dynamic(p) => p.clone(),
        })
        .collect::<Vec<_>>()
        .join("x")
}

/// Why a node's outputs were left unknown although its inputs are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Shape inference has no rule for the op (or its domain).
    NoRule,
    /// The rule needs the contents of an input (a shape, axes, pads...) that are not known
    /// statically.
    UnknownContents,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blocker::NoRule => "shape inference has no rule for this op",
            Blocker::UnknownContents => {
                "an input whose contents the output shape depends on is not known statically"
            }
        })
    }
}

/// The nodes where inference stopped: some output is unknown although every input is known,
/// in topological order. Everything else left unknown lies downstream of these.
pub fn blockers(model: &Model) -> Vec<(NodeId, Blocker)> {
    let g = &model.graph;
    g.node_ids()
        .filter_map(|id| {
            let n = g.node(id);
            let inputs_known = n
                .inputs
                .iter()
                .flatten()
                .all(|&v| g.value(v).shape.is_some());
            let outputs_known = n
                .outputs
                .iter()
                .flatten()
                .all(|&v| g.value(v).shape.is_some());
            if !inputs_known || outputs_known {
                return None;
            }
            let why = if has_rule(n) {
                Blocker::UnknownContents
            } else {
                Blocker::NoRule
            };
            Some((id, why))
        })
        .collect()
}

/// The static shape of `v`, or an error naming the node where inference stopped on the way to
/// it (see [`blockers`]). For callers that cannot work without the shape.
pub fn require_shape(model: &Model, v: ValueId) -> Result<&[usize]> {
    let g = &model.graph;
    if let Some(s) = &g.value(v).shape {
        return Ok(s);
    }
    let name = &g.value(v).name;
    // Walk up through unknown values to the first node whose inputs are all known.
    let mut stack = vec![v];
    let mut seen = std::collections::HashSet::new();
    while let Some(cur) = stack.pop() {
        if !seen.insert(cur) {
            continue;
        }
        let Some(p) = g.producer(cur) else {
            // A graph input without a shape: inference has not run.
            return Err(OnnxError::tensor(
                g.value(cur).name.clone(),
                format!("shape unknown (needed for '{name}'): shape inference has not run"),
            ));
        };
        let n = g.node(p);
        let unknown: Vec<ValueId> = n
            .inputs
            .iter()
            .flatten()
            .copied()
            .filter(|&i| g.value(i).shape.is_none())
            .collect();
        if unknown.is_empty() {
            let why = if has_rule(n) {
                Blocker::UnknownContents
            } else {
                Blocker::NoRule
            };
            return Err(OnnxError::Shape {
                node: n.name.clone(),
                op_type: n.op_type.clone(),
                reason: format!("the shape of '{name}' is unknown because {why}"),
            });
        }
        stack.extend(unknown);
    }
    Err(OnnxError::tensor(name.clone(), "shape unknown"))
}

// ---- helpers shared by the rule families ----

pub(crate) const FLOAT: i32 = DataType::Float as i32;
pub(crate) const INT64: i32 = DataType::Int64 as i32;
pub(crate) const BOOL: i32 = DataType::Bool as i32;

pub(crate) use crate::tensor::is_integer;

/// Number of elements of `shape`, or an error on overflow.
pub(crate) fn numel(shape: &[usize]) -> Result<usize, Fail> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Fail::Invalid(format!("shape {} overflows", format_shape(shape))))
}

/// `axis` (possibly negative) as an index into a rank-`rank` shape.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize, Fail> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return invalid(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Distinct normalised axes, sorted.
pub(crate) fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, Fail> {
    let mut out = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    let n = out.len();
    out.dedup();
    if out.len() != n {
        return invalid(format!("axes {axes:?} repeat an axis"));
    }
    Ok(out)
}

/// The multidirectional (numpy) broadcast of `shapes`, or `None` when they do not broadcast.
/// Shape inference and the evaluator both use it, so they agree by construction.
pub fn broadcast_dims(shapes: &[&[usize]]) -> Option<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

/// [`broadcast_dims`], with an error naming the shapes.
pub(crate) fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>, Fail> {
    match broadcast_dims(shapes) {
        Some(out) => Ok(out),
        None => {
            let all: Vec<String> = shapes.iter().map(|s| format_shape(s)).collect();
            invalid(format!("shapes {} do not broadcast", all.join(", ")))
        }
    }
}

/// A usize from an i64 that must be non-negative.
pub(crate) fn dim_of(v: i64, what: &str) -> Result<usize, Fail> {
    usize::try_from(v).map_err(|_| Fail::Invalid(format!("{what} {v} is negative")))
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn no_op_has_two_rules() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in FAMILIES.iter().flat_map(|f| f.iter()) {
            assert!(seen.insert(*name), "{name} has two rules");
        }
    }

    #[test]
    fn shape_subgraphs_fold_into_a_reshape_target() {
        // TorchScript style: the target [B, T, 4, -1] of a Reshape is computed from the input's
        // shape at run time (Shape -> Gather -> Unsqueeze -> Concat); here it folds statically,
        // and so does a mask computed from it (Equal -> Where) that an Expand then uses.
        let mut b = GraphBuilder::new(13);
        b.input("x", &[2, 17, 32]);
        b.init_ints("i0", &[], &[0]);
        b.init_ints("i1", &[], &[1]);
        b.init_ints("ax", &[1], &[0]);
        b.init_ints("tail", &[2], &[4, -1]);
        b.init_ints("minus1", &[], &[-1]);
        b.init_ints("one", &[], &[1]);
        b.node("Shape", &["x"], &["s"], vec![]);
        b.node("Gather", &["s", "i0"], &["b"], vec![ai("axis", 0)]);
        b.node("Gather", &["s", "i1"], &["t"], vec![ai("axis", 0)]);
        b.node("Unsqueeze", &["b", "ax"], &["bu"], vec![]);
        b.node("Unsqueeze", &["t", "ax"], &["tu"], vec![]);
        b.node(
            "Concat",
            &["bu", "tu", "tail"],
            &["target"],
            vec![ai("axis", 0)],
        );
        b.node("Reshape", &["x", "target"], &["y"], vec![]);
        b.node("Equal", &["target", "minus1"], &["is_inferred"], vec![]);
        b.node(
            "Where",
            &["is_inferred", "one", "target"],
            &["expand_to"],
            vec![],
        );
        b.node("Expand", &["y", "expand_to"], &["big"], vec![]);
        b.output("big");
        let m = b.infer(&[]).unwrap();
        let g = &m.graph;
        let v = |n: &str| g.value(g.value_id(n).unwrap());
        assert_eq!(v("s").folded, Some(vec![2, 17, 32]));
        assert_eq!(v("b").shape, Some(vec![]));
        assert_eq!(v("b").folded, Some(vec![2]));
        assert_eq!(v("target").folded, Some(vec![2, 17, 4, -1]));
        assert_eq!(v("y").shape, Some(vec![2, 17, 4, 8]));
        assert_eq!(v("y").folded, None, "float data is never folded");
        assert_eq!(v("is_inferred").folded, Some(vec![0, 0, 0, 1]));
        assert_eq!(v("expand_to").folded, Some(vec![2, 17, 4, 1]));
        assert_eq!(v("big").shape, Some(vec![2, 17, 4, 8]));
    }

    #[test]
    fn absurd_attributes_and_sizes_are_errors_or_left_unfolded_not_panics() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 3, 8, 8]);
        b.init_f32("w", &[4, 3, 3, 3]);
        b.node_named(
            "c",
            "Conv",
            &["x", "w"],
            &["y"],
            vec![aints("dilations", &[i64::MAX, 1])],
        );
        b.output("y");
        let e = b.infer(&[]).unwrap_err().to_string();
        assert!(e.contains("implausibly large"), "{e}");

        let mut b = GraphBuilder::new(17);
        b.init_ints("one", &[1], &[7]);
        b.init_ints("huge", &[2], &[1 << 20, 1 << 20]);
        b.node("Expand", &["one", "huge"], &["y"], vec![]);
        b.output("y");
        let m = b.infer(&[]).unwrap();
        let y = m.graph.value(m.graph.value_id("y").unwrap());
        assert_eq!(y.shape, Some(vec![1 << 20, 1 << 20]));
        assert_eq!(y.folded, None);
    }

    #[test]
    fn broadcasting() {
        let ok: &[(&[&[usize]], &[usize])] = &[
            (&[&[2, 3, 4], &[4]], &[2, 3, 4]),
            (&[&[2, 1, 4], &[3, 1]], &[2, 3, 4]),
            (&[&[], &[5]], &[5]),
            (&[&[1], &[0]], &[0]),
            (&[&[8, 1, 6, 1], &[7, 1, 5]], &[8, 7, 6, 5]),
        ];
        for (ins, out) in ok {
            assert_eq!(broadcast(ins).unwrap(), *out, "{ins:?}");
        }
        assert!(broadcast(&[&[2, 3], &[4, 3]]).is_err());
    }

    #[test]
    fn unknown_op_leaves_outputs_unknown_and_the_rest_goes_on() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 4, 8, 8]);
        b.node("Custom", &["x"], &["y"], vec![]);
        b.node("Relu", &["y"], &["z"], vec![]);
        b.node("Relu", &["x"], &["w"], vec![]);
        b.output("z");
        b.output("w");
        let m = b.infer(&[]).unwrap();
        let g = &m.graph;
        assert_eq!(g.value(g.value_id("y").unwrap()).shape, None);
        assert_eq!(g.value(g.value_id("z").unwrap()).shape, None);
        assert_eq!(
            g.value(g.value_id("w").unwrap()).shape,
            Some(vec![1, 4, 8, 8])
        );
        let blockers = blockers(&m);
        assert_eq!(blockers.len(), 1);
        assert_eq!(g.node(blockers[0].0).op_type, "Custom");
        assert_eq!(blockers[0].1, Blocker::NoRule);
        let e = require_shape(&m, g.value_id("z").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("Custom") && e.contains("'z'"), "{e}");
    }

    #[test]
    fn a_declared_shape_that_disagrees_is_an_error_naming_the_value() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 4]);
        b.node("Relu", &["x"], &["y"], vec![]);
        b.declare("y", &[1, 5]);
        b.output("y");
        let e = b.infer(&[]).unwrap_err().to_string();
        assert!(
            e.contains("'y'") && e.contains("1x4") && e.contains("1x5"),
            "{e}"
        );
    }

    #[test]
    fn input_shapes_fill_dynamic_dims_only() {
        let mut b = GraphBuilder::new(17);
        b.input_dyn("x", &[None, Some(3)]);
        b.node("Relu", &["x"], &["y"], vec![]);
        b.output("y");
        let m = b.clone().infer(&["x=2,3"]).unwrap();
        assert_eq!(
            m.graph.value(m.graph.value_id("y").unwrap()).shape,
            Some(vec![2, 3])
        );
        assert!(m.symbolic.is_empty(), "a bound dimension is not symbolic");
        let e = b.infer(&["x=2,4"]).unwrap_err().to_string();
        assert!(e.contains("dimension 1 is 4, declared 3"), "{e}");
    }

    #[test]
    fn an_unbound_dimension_is_inferred_at_the_placeholder_and_its_dependents_recorded() {
        // x: [N, 4, 6]. y = Relu(x) keeps N on axis 0; z merges N into axis 0 (Reshape to
        // [-1, 6]: 4N); the Shape of x folds to contents that depend on N; w is a weight
        // product that depends on nothing symbolic.
        let mut b = GraphBuilder::new(17);
        b.input_dyn("x", &[None, Some(4), Some(6)]);
        b.init_ints("t", &[2], &[-1, 6]);
        b.init_f32("a", &[6, 5]);
        b.node("Relu", &["x"], &["y"], vec![]);
        b.node("Reshape", &["y", "t"], &["z"], vec![]);
        b.node("MatMul", &["z", "a"], &["w"], vec![]);
        b.node("Shape", &["x"], &["s"], vec![]);
        b.output("w");
        b.output("s");
        let m = b.infer(&[]).unwrap();
        let g = &m.graph;
        let id = |n: &str| g.value_id(n).unwrap();
        assert_eq!(g.value(id("y")).shape, Some(vec![symbolic::BASE, 4, 6]));
        assert_eq!(g.value(id("z")).shape, Some(vec![4 * symbolic::BASE, 6]));
        assert_eq!(
            g.value(id("s")).folded,
            Some(vec![symbolic::BASE as i64, 4, 6])
        );
        let sym = &m.symbolic;
        assert_eq!(sym.symbols.len(), 1);
        assert_eq!(sym.symbols[0].to_string(), "'N'");
        assert_eq!(sym.axes[&id("y")], vec![(0, 0)]);
        assert_eq!(
            sym.axes[&id("z")],
            vec![(0, 0)],
            "4N depends on N, 6 does not"
        );
        assert_eq!(sym.axes[&id("w")], vec![(0, 0)]);
        assert!(sym.axis(id("y"), 1).is_none());
        assert_eq!(sym.contents(id("s")).map(|s| s.param.as_str()), Some("N"));
        assert!(!sym.contents.contains_key(&id("t")));
        assert!(sym.only_batch());
    }

    #[test]
    fn a_model_that_only_holds_at_the_placeholder_is_an_error_naming_the_dimension() {
        // The file declares the output with a fixed first dimension of 1: true at the
        // placeholder, false at any other size of 'N'.
        let mut b = GraphBuilder::new(17);
        b.input_dyn("x", &[None, Some(3)]);
        b.node_named("r", "Relu", &["x"], &["y"], vec![]);
        b.declare("y", &[1, 3]);
        b.output("y");
        let e = b.clone().infer(&[]).unwrap_err().to_string();
        assert!(
            e.contains("symbolic dimension 'N'")
                && e.contains("'r'")
                && e.contains("--input-shape"),
            "{e}"
        );
        b.infer(&["x=1,3"]).unwrap();
    }

    #[test]
    fn inconsistent_node_is_an_error_naming_it() {
        let mut b = GraphBuilder::new(17);
        b.input("a", &[2, 3]);
        b.input("b", &[4, 5]);
        b.node_named("mm", "MatMul", &["a", "b"], &["y"], vec![]);
        b.output("y");
        let e = b.infer(&[]).unwrap_err().to_string();
        assert!(e.starts_with("node 'mm' (MatMul)"), "{e}");
    }
}
