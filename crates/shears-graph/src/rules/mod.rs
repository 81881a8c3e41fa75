//! Coupling rules: one per op kind, in one table.
//!
//! A rule looks at one node (with static shapes) and states how the axes of its inputs and
//! outputs are tied: a list of [`Link`]s, each carrying a [`ChannelMap`]. Every axis of every
//! data input and output that no link mentions is *fixed*: its size must not change, so the
//! graph builder blocks it. An op with no rule fixes everything it touches: channels that
//! cross it are not prunable, and the reason names the op. Rules never guess.
//!
//! Each family lives in its own file, opening with what the ONNX spec says and which opsets
//! differ; [`RULES`] is the only table. The builder never matches on op types itself.

use rustc_hash::FxHashMap;
use std::sync::OnceLock;

use shears_onnx::{Model, Node, NodeId, ValueId};

use crate::channel_map::ChannelMap;

mod contrib;
mod conv;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod quant;
mod reshape;
mod shape_ops;
pub mod shape_trace;

pub use reshape::Factorization;

/// One side of a link: an axis of a value, or a virtual dimension local to the node (used to
/// state "same position in every group" constraints).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimRef {
    Axis(ValueId, usize),
    Virtual(usize),
}

/// `a` and `b` are tied index by index through `map` (read from `a` to `b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub a: DimRef,
    pub b: DimRef,
    pub map: ChannelMap,
}

impl Link {
    pub fn new(a: DimRef, b: DimRef, map: ChannelMap) -> Self {
        Link { a, b, map }
    }
    pub fn identity(a: (ValueId, usize), b: (ValueId, usize)) -> Self {
        Link::new(
            DimRef::Axis(a.0, a.1),
            DimRef::Axis(b.0, b.1),
            ChannelMap::Identity,
        )
    }
}

/// What a rule says about one node.
///
/// Invariant: every `DimRef::Virtual(k)` used in `links` has `k < virtuals.len()`.
#[derive(Clone, Debug, Default)]
pub struct Coupling {
    pub links: Vec<Link>,
    /// Sizes of the node's virtual dimensions.
    pub virtuals: Vec<usize>,
    /// Dims whose channels the op mixes without a weight (LayerNormalization over channels,
    /// Softmax, attention products, a mean over channels): prunable (not fixed by this op,
    /// even when no link mentions them), but pruning changes the numerics there.
    pub mixing: Vec<(ValueId, usize)>,
    /// Input slots whose *data* the op does not read (Shape reads only the shape), so their
    /// axes are neither linked nor fixed by this node.
    pub shape_only: Vec<usize>,
    /// Dims fixed for a stated reason (beyond the implicit "not linked by this op"), written
    /// to follow the op's name: `regroups [16, 8, 8] into [4, 256], ...`.
    pub fixed: Vec<(ValueId, usize, String)>,
    /// The parameter axis that `--layer` names for this node: a weight's output-channel axis.
    pub out_channels: Option<(ValueId, usize)>,
    /// A Reshape/Flatten whose split or merged axes are resolved once all other links are known.
    pub deferred: Option<Factorization>,
    /// The node makes its outputs from attributes alone (Constant): their axes are free, not
    /// fixed by it.
    pub source: bool,
    /// Output axes the node makes from a literal entry of a shape input that its rewrite follows
    /// (Expand's broadcast axes): free, not fixed by it, like a source's.
    pub made: Vec<(ValueId, usize)>,
    /// Axes that index attention heads: the batch axes of a product of two activations
    /// (`Q·Kᵀ`, `scores·V`). When whole heads are the units
    /// ([`crate::Granularity::Heads`]), Reshape factors tied to them carry the channels.
    pub head_axes: Vec<(ValueId, usize)>,
    /// Input slots holding running statistics rather than learned parameters (BatchNorm's mean
    /// and variance): removed with their channels, but not counted as parameters.
    pub statistics: Vec<usize>,
    /// Input slots whose stored integer tensor holds a layer's quantized weights
    /// (`DequantizeLinear`'s x, `QLinearConv`'s w and bias): parameters whatever their type.
    pub quantized: Vec<usize>,
    /// Input slots holding quantization scales and zero points: sliced with the channels they
    /// describe (when per channel), never parameters.
    pub quant_params: Vec<usize>,
    /// The node only passes a stored tensor on, axis for axis (the `DequantizeLinear` of a
    /// quantized weight): an axis it links carries channels only if another node (the layer)
    /// links it too, as a float weight's kernel axes, linked by no rule, carry none.
    pub relay: bool,
}

/// The node being coupled, with its model, for rules to read shapes and constants.
pub struct Ctx<'a> {
    pub model: &'a Model,
    pub id: NodeId,
    pub node: &'a Node,
    /// The graph being built: what a unit of attention is. Only ops that hold heads inside one
    /// node (onnxruntime's fused Attention) read it; everywhere else heads come from Reshape
    /// factors, which the graph resolves.
    pub granularity: crate::Granularity,
}

impl<'a> Ctx<'a> {
    pub fn new(model: &'a Model, id: NodeId) -> Self {
        Ctx {
            model,
            id,
            node: model.graph.node(id),
            granularity: crate::Granularity::HeadDims,
        }
    }
    /// Input value at `slot`, if present.
    pub fn input(&self, slot: usize) -> Option<ValueId> {
        self.node.input(slot)
    }
    /// Output value at `slot`, if present.
    pub fn output(&self, slot: usize) -> Option<ValueId> {
        self.node.output(slot)
    }
    /// Static shape of a value.
    pub fn shape(&self, v: ValueId) -> Option<&'a [usize]> {
        self.model.graph.value(v).shape.as_deref()
    }
    /// Static shape of input `slot`; an error naming the slot when unknown.
    pub fn in_shape(&self, slot: usize) -> Result<&'a [usize], String> {
        let v = self
            .input(slot)
            .ok_or_else(|| format!("input {slot} is missing"))?;
        self.shape(v)
            .ok_or_else(|| format!("shape of '{}' is unknown", self.model.graph.value(v).name))
    }
    /// Static shape of output `slot`; an error naming the slot when unknown.
    pub fn out_shape(&self, slot: usize) -> Result<&'a [usize], String> {
        let v = self
            .output(slot)
            .ok_or_else(|| format!("output {slot} is missing"))?;
        self.shape(v)
            .ok_or_else(|| format!("shape of '{}' is unknown", self.model.graph.value(v).name))
    }
    /// Statically known integer contents of input `slot` (constants and folded shape math).
    pub fn folded(&self, slot: usize) -> Option<&'a [i64]> {
        let v = self.input(slot)?;
        self.model.graph.value(v).folded.as_deref()
    }
    /// Integer contents of input `slot` when it is a constant tensor (initializer or Constant).
    pub fn const_ints(&self, slot: usize) -> Option<Vec<i64>> {
        let v = self.input(slot)?;
        let t = self.model.constant(v)?;
        self.model.i64s(&t).ok()
    }
    /// The stored tensor `v` dequantizes, when `v` is a `DequantizeLinear` output of one (same
    /// axes): the quantized weight a layer's `--layer` axis names; otherwise `v`.
    pub fn dequantized_source(&self, v: ValueId) -> ValueId {
        let g = &self.model.graph;
        let Some(p) = g.producer(v) else { return v };
        let n = g.node(p);
        // A layout op reading a quantized tensor at slot 0: DequantizeLinear (the op facts).
        let facts = shears_onnx::ops::facts(n);
        let dequantizes =
            facts.role == shears_onnx::ops::OpRole::Layout && facts.quantized_slots.contains(&0);
        match n.input(0) {
            Some(src) if dequantizes && is_stored(self.model, src) => src,
            _ => v,
        }
    }
    /// Whether `v` is a weight: a constant, or a value computed from constants alone by
    /// layout-only ops ([`shears_onnx::ops::OpRole::Layout`]: Transpose, Identity, Cast, as
    /// exporters emit `Linear` weights, and the `DequantizeLinear` of a quantized weight) or by
    /// the arithmetic of weight standardisation (element-wise ops, reductions, Reshape, a
    /// BatchNormalization over a reshaped weight), so a standardised weight is the layer's.
    pub fn is_weight(&self, v: ValueId) -> bool {
        computed_from_constants(self.model, v, 10)
    }
    pub fn opset(&self) -> i64 {
        self.model.graph.opset
    }
    /// Identity links between every axis of `a` and the same axis of `b` (same shapes).
    pub fn same_axes(&self, a: ValueId, b: ValueId, rank: usize) -> Vec<Link> {
        (0..rank)
            .map(|ax| Link::identity((a, ax), (b, ax)))
            .collect()
    }
}

/// Whether `v` is stored, or made from stored values only by ops whose facts pass weights on
/// ([`shears_onnx::ops::OpFacts::passes_weights`]: layout ops and pure functions such as
/// reshapes, arithmetic and reductions), within `depth` producers.
fn computed_from_constants(model: &Model, v: ValueId, depth: usize) -> bool {
    if is_stored(model, v) {
        return true;
    }
    let g = &model.graph;
    let Some(p) = g.producer(v) else { return false };
    let n = g.node(p);
    // `facts` knows only the default domain: another domain's op never passes weights.
    if depth == 0 || !shears_onnx::ops::facts(n).passes_weights() {
        return false;
    }
    n.inputs
        .iter()
        .flatten()
        .all(|&i| computed_from_constants(model, i, depth - 1))
}

/// Whether `v` is stored in the model: an initializer or a Constant node's output (checked
/// without copying the tensor, as `Model::constant` would for a Constant).
pub fn is_stored(model: &Model, v: ValueId) -> bool {
    model.is_stored(v)
}

/// A rule's verdict: the coupling, or why the node is opaque.
pub type RuleResult = Result<Coupling, String>;

/// Removed indices (original coordinates, sorted) of a node's dims, for rewrites.
pub trait Removed {
    fn removed(&self, v: ValueId, axis: usize) -> &[u32];
}

/// A change to an attribute or a shape constant that a plan implies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rewrite {
    /// Integer attribute `attr` of node `node` (IR name) changes from `old` to `new`.
    AttrInt {
        node: String,
        attr: String,
        old: i64,
        new: i64,
    },
    /// Integer-list attribute of `node` changes.
    AttrInts {
        node: String,
        attr: String,
        old: Vec<i64>,
        new: Vec<i64>,
    },
    /// The constant integer tensor read by input `slot` of `node` changes contents (and dims,
    /// when entries are dropped).
    ConstInts {
        node: String,
        slot: usize,
        tensor: String,
        old: Vec<i64>,
        new: Vec<i64>,
        new_dims: Vec<usize>,
    },
    /// A Split with implicit sizes (equal parts, or `num_outputs`) gets explicit sizes `new`
    /// (its parts were `old`): the `split` attribute before opset 13, a new constant input 1
    /// from 13 (replacing `num_outputs`, which the spec forbids beside it).
    SplitSizes {
        node: String,
        old: Vec<i64>,
        new: Vec<i64>,
    },
    /// Input `slot` of `node` reads `tensor`, a 1-D shape tensor computed at run time that
    /// other nodes read too; the literal entries that must change for this node only (each
    /// `(index, old, new)`, sorted by index) are overlaid on a private copy,
    /// `Where(mask, values, tensor)`, so the other readers and the run-time entries are
    /// untouched.
    ShapeOverlay {
        node: String,
        slot: usize,
        tensor: String,
        entries: Vec<(usize, i64, i64)>,
    },
}

/// Computes the rewrites a node needs once the removed indices of its dims are known.
pub type RewriteFn = fn(&Ctx, &dyn Removed) -> Result<Vec<Rewrite>, String>;

/// The rule for one or more op types.
pub struct OpRule {
    /// ONNX op types this rule handles, in the domain of the table listing it ([`RULES`]: the
    /// default domain; [`DOMAIN_RULES`]: the domain named there).
    pub ops: &'static [&'static str],
    /// States the coupling of one node.
    pub couple: fn(&Ctx) -> RuleResult,
    /// The attribute and shape-constant rewrites removing channels implies, if any.
    pub rewrite: Option<RewriteFn>,
}

/// Every rule, by family. Adding an op means adding its rule to its family file and listing it
/// here, with tests.
pub static RULES: &[&OpRule] = &[
    &conv::CONV,
    &conv::CONV_TRANSPOSE,
    &norm::BATCH_NORM,
    &norm::INSTANCE_NORM,
    &norm::LAYER_NORM,
    &norm::GROUP_NORM,
    &norm::LRN,
    &elementwise::UNARY,
    &elementwise::BROADCAST,
    &elementwise::PRELU,
    &elementwise::SOFTMAX,
    &matmul::GEMM,
    &matmul::MATMUL,
    &pool::POOL,
    &pool::GLOBAL_POOL,
    &pool::REDUCE,
    &shape_ops::TRANSPOSE,
    &shape_ops::CONCAT,
    &shape_ops::SPLIT,
    &shape_ops::SLICE,
    &shape_ops::SHAPE,
    &shape_ops::SQUEEZE,
    &shape_ops::UNSQUEEZE,
    &shape_ops::GATHER,
    &shape_ops::GATHER_ELEMENTS,
    &shape_ops::GATHER_ND,
    &shape_ops::PAD,
    &shape_ops::RESIZE,
    &shape_ops::EXPAND,
    &shape_ops::CONSTANT,
    &reshape::RESHAPE,
    &reshape::FLATTEN,
    &quant::QUANTIZE,
    &quant::QLINEAR_CONV,
    &quant::CONV_INTEGER,
    &quant::QLINEAR_MATMUL,
    &quant::MATMUL_INTEGER,
    &contrib::SIMPLIFIED_LAYER_NORM,
];

/// The rules of ops outside the default domain, one table per domain (canonical spelling,
/// [`shears_onnx::ops::canonical_domain`]): onnxruntime's fused transformer ops.
pub static DOMAIN_RULES: &[(&str, &[&OpRule])] = &[(
    shears_onnx::ops::MS_DOMAIN,
    &[
        &contrib::SKIP_NORM,
        &contrib::BIAS_GELU,
        &contrib::GELU,
        &contrib::ATTENTION,
        &contrib::MULTI_HEAD_ATTENTION,
        &contrib::GROUP_QUERY_ATTENTION,
        &contrib::ROTARY_EMBEDDING,
    ],
)];

/// Every `(domain, op, rule)`, the default domain's (`""`) first: what [`rule_for`] looks up.
pub fn all_rules() -> impl Iterator<Item = (&'static str, &'static str, &'static OpRule)> {
    let default = RULES.iter().map(|r| ("", *r));
    let others = DOMAIN_RULES
        .iter()
        .flat_map(|(d, rules)| rules.iter().map(move |r| (*d, *r)));
    default
        .chain(others)
        .flat_map(|(d, r)| r.ops.iter().map(move |op| (d, *op, r)))
}

/// The rule for `node`'s op in its domain, if any: a contrib op is never matched by its name
/// in the default domain, nor a default-domain op in another domain.
pub fn rule_for(node: &Node) -> Option<&'static OpRule> {
    // Looked up for every node by every pass: a fast hash of two short keys.
    type Table = FxHashMap<(&'static str, &'static str), &'static OpRule>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut m = Table::default();
        for (domain, op, r) in all_rules() {
            let prev = m.insert((domain, op), r);
            debug_assert!(prev.is_none(), "two rules for {domain}:{op}");
        }
        m
    });
    let domain = shears_onnx::ops::canonical_domain(&node.domain);
    table.get(&(domain, node.op_type.as_str())).copied()
}

/// The coupling of one node, or the reason it is opaque.
pub fn couple(model: &Model, id: NodeId) -> RuleResult {
    couple_at(model, id, crate::Granularity::HeadDims)
}

/// [`couple`] for a graph of `granularity`.
pub fn couple_at(model: &Model, id: NodeId, granularity: crate::Granularity) -> RuleResult {
    let node = model.graph.node(id);
    let rule = rule_for(node).ok_or_else(|| {
        if node.domain.is_empty() {
            format!("no coupling rule for op {}", node.op_type)
        } else {
            format!("no coupling rule for op {}:{}", node.domain, node.op_type)
        }
    })?;
    let mut ctx = Ctx::new(model, id);
    ctx.granularity = granularity;
    (rule.couple)(&ctx)
}

/// Renders a coupling in one line, for tests: `Conv: in0.1=in1.1 in1.0=out0.1 | out in1.0`,
/// then `| mixes` (mixed axes), `| fixed` (axes fixed with a stated reason), `| made` (axes a
/// shape entry makes) and `| out` (the axis `--layer` names).
pub fn render(model: &Model, id: NodeId, c: &RuleResult) -> String {
    let g = &model.graph;
    let node = g.node(id);
    let slot_name = |v: ValueId| -> String {
        if let Some(s) = node.inputs.iter().position(|x| *x == Some(v)) {
            format!("in{s}")
        } else if let Some(s) = node.outputs.iter().position(|x| *x == Some(v)) {
            format!("out{s}")
        } else {
            g.value(v).name.clone()
        }
    };
    let dim = |d: &DimRef| match d {
        DimRef::Axis(v, a) => format!("{}.{a}", slot_name(*v)),
        DimRef::Virtual(k) => format!("v{k}"),
    };
    match c {
        Err(reason) => format!("{}: opaque ({reason})", node.op_type),
        Ok(c) => {
            let mut parts: Vec<String> = c
                .links
                .iter()
                .map(|l| match l.map {
                    ChannelMap::Identity => format!("{}={}", dim(&l.a), dim(&l.b)),
                    ref m => format!("{}{m}{}", dim(&l.a), dim(&l.b)),
                })
                .collect();
            if let Some(f) = &c.deferred {
                parts.push(f.to_string());
            }
            let mut s = format!("{}:", node.op_type);
            for p in &parts {
                s.push(' ');
                s.push_str(p);
            }
            if !c.mixing.is_empty() {
                let m: Vec<String> = c
                    .mixing
                    .iter()
                    .map(|&(v, a)| format!("{}.{a}", slot_name(v)))
                    .collect();
                s.push_str(&format!(" | mixes {}", m.join(" ")));
            }
            if !c.fixed.is_empty() {
                let f: Vec<String> = c
                    .fixed
                    .iter()
                    .map(|(v, a, _)| format!("{}.{a}", slot_name(*v)))
                    .collect();
                s.push_str(&format!(" | fixed {}", f.join(" ")));
            }
            if !c.made.is_empty() {
                let m: Vec<String> = c
                    .made
                    .iter()
                    .map(|&(v, a)| format!("{}.{a}", slot_name(v)))
                    .collect();
                s.push_str(&format!(" | made {}", m.join(" ")));
            }
            if let Some((v, a)) = c.out_channels {
                s.push_str(&format!(" | out {}.{a}", slot_name(v)));
            }
            s
        }
    }
}
