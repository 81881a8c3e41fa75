//! What each ONNX op is to the code that classifies nodes and tensors: which input slots hold a
//! layer's kernel, its learned per-channel vectors or running statistics, whether it is a
//! layer, a normalization, an activation or a layout-only op, and whether its output channel
//! `c` depends only on input channel `c`.
//!
//! One table, [`OP_FACTS`], read by parameter counting ([`crate::cost`]), the dependency graph's
//! weight detection and statistics, plan building (weights behind layout ops), the pruner's
//! parameter roles and activation criteria, and recovery. It lives here, in the lowest crate,
//! because parameter counting needs it and sits below the graph; the coupling rules in
//! `shears_graph::rules::RULES` state how channels are tied, these facts what the slots are.
//! A test in `shears-graph` checks that every op listed here has a coupling rule or is listed
//! as deliberately opaque.

use std::sync::OnceLock;

use crate::ir::Node;

/// The part an op plays for tools that look at layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpRole {
    /// Mixes channels through a kernel or matrix (Conv, Gemm, MatMul...).
    Layer,
    /// Normalizes with a learned per-channel scale in its `scale_slot`.
    Norm,
    /// An element-wise activation function: its output is "after the activation".
    Activation,
    /// Moves or relabels elements without computing (Transpose, Identity, Cast), or only
    /// rescales them (`DequantizeLinear`): exporters and quantizers put these between a weight
    /// and its layer. [`layout_perm`] says where each axis goes.
    Layout,
    /// Anything else.
    Other,
}

/// Which axis of a quantized integer weight per-axis scales and zero points run along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantizedAxis {
    /// The op's `axis` and `block_size` attributes decide, as shape inference and the coupling
    /// rule read them (`shape::quant::quant_axis`): `DequantizeLinear`.
    Attribute,
    /// Axis 0, a convolution kernel's output channels.
    First,
    /// The rows of a matrix product's left operand (the second-to-last axis).
    Rows,
    /// The columns of a matrix product's right operand (the last axis).
    Columns,
}

/// How an op reads the quantized integer weight in one of its slots: where its scale and zero
/// point are, and along which axis they run when per-axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizedRead {
    /// The slot of the integer weight; one of the op's `quantized_slots`.
    pub slot: usize,
    /// The slot of its scale; `None` when the integers are the values (`ConvInteger`,
    /// `MatMulInteger`).
    pub scale_slot: Option<usize>,
    /// The slot of its zero point.
    pub zero_point_slot: usize,
    pub axis: QuantizedAxis,
}

/// The facts of one or more ops.
///
/// Invariants: the slot lists are sorted and disjoint; `scale_slot` is `Some` exactly for
/// [`OpRole::Norm`] and is one of `vector_slots`; `quantized_reads` are sorted by slot, each
/// reading one of `quantized_slots` with parameters in `metadata_slots`; an op appears in at
/// most one entry of [`OP_FACTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpFacts {
    /// The domain of `ops`, canonical ([`canonical_domain`]): `""` for the default ONNX domain,
    /// [`MS_DOMAIN`] for onnxruntime's contrib ops. An op is looked up by domain and type
    /// together, never by type alone.
    pub domain: &'static str,
    /// ONNX op types (in `domain`) these facts describe.
    pub ops: &'static [&'static str],
    pub role: OpRole,
    /// Slots holding a layer's kernel or matrix: weights whatever their shape.
    pub kernel_slots: &'static [usize],
    /// Slots holding learned per-channel vectors (biases, normalization scale and shift,
    /// PReLU slope): parameters whatever their size.
    pub vector_slots: &'static [usize],
    /// Slots holding running statistics (BatchNorm mean and variance): edited with their
    /// channels, never counted as parameters nor measured.
    pub statistic_slots: &'static [usize],
    /// The normalization's per-channel scale slot.
    pub scale_slot: Option<usize>,
    /// Slots holding a stored integer tensor that stands for float parameters (a
    /// `DequantizeLinear`'s input, a `QLinearConv`'s weight and bias): counted as parameters
    /// whatever their element type.
    pub quantized_slots: &'static [usize],
    /// Slots holding quantization scales and zero points: sliced with their channels when
    /// per-axis, never counted nor measured as parameters.
    pub metadata_slots: &'static [usize],
    /// How the op reads the quantized weights it reads as values: importance measures
    /// `(q - zero_point) * scale`, the values the float model computes with.
    pub quantized_reads: &'static [QuantizedRead],
    /// Applied to stored tensors only, the output still counts as a weight: a pure function
    /// that exporters and weight standardisation put between a stored tensor and its layer
    /// (reshapes, arithmetic, reductions, a BatchNormalization over a reshaped weight).
    /// [`OpRole::Layout`] ops count as such whatever this says.
    pub makes_weights: bool,
    /// Output channel `c` depends only on input channel `c` (element-wise ops, per-channel
    /// normalizations, pooling, layout): removing other channels leaves the kept outputs alone.
    pub channelwise: bool,
}

impl OpFacts {
    /// The facts of an op nothing is known about: no slots, role [`OpRole::Other`], not
    /// channel-wise. Entries spell out what differs and take the rest from here.
    pub const NONE: OpFacts = OpFacts {
        domain: "",
        ops: &[],
        role: OpRole::Other,
        kernel_slots: &[],
        vector_slots: &[],
        statistic_slots: &[],
        scale_slot: None,
        quantized_slots: &[],
        metadata_slots: &[],
        quantized_reads: &[],
        makes_weights: false,
        channelwise: false,
    };

    /// Whether input `slot` holds a parameter whatever its size (a kernel or a vector).
    pub fn is_parameter_slot(&self, slot: usize) -> bool {
        self.kernel_slots.contains(&slot) || self.vector_slots.contains(&slot)
    }

    /// How the op reads a quantized weight in input `slot`, if it does.
    pub fn quantized_read(&self, slot: usize) -> Option<&'static QuantizedRead> {
        self.quantized_reads.iter().find(|r| r.slot == slot)
    }

    /// Whether the output of the op over stored tensors only is still a weight: a layout op,
    /// or one that [`makes_weights`](Self::makes_weights).
    pub fn passes_weights(&self) -> bool {
        self.makes_weights || self.role == OpRole::Layout
    }
}

/// A quantized read along `axis`, with `(scale, zero point)` slots.
const fn qread(
    slot: usize,
    scale_slot: Option<usize>,
    zero_point_slot: usize,
    axis: QuantizedAxis,
) -> QuantizedRead {
    QuantizedRead {
        slot,
        scale_slot,
        zero_point_slot,
        axis,
    }
}

const CHANNELWISE: OpFacts = OpFacts {
    channelwise: true,
    ..OpFacts::NONE
};

const NORM: OpFacts = OpFacts {
    role: OpRole::Norm,
    vector_slots: &[1, 2],
    scale_slot: Some(1),
    ..OpFacts::NONE
};

/// onnxruntime's contrib-op domain, where its transformer optimizer writes the fused ops
/// (docs/fused.md).
pub const MS_DOMAIN: &str = "com.microsoft";

/// The canonical spelling of a node's domain: `""` for the default ONNX domain (which files
/// may also spell `ai.onnx`), the domain itself otherwise.
pub fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ""
    } else {
        domain
    }
}

/// Every op with a fact worth stating. Ops not listed get [`OpFacts::NONE`].
pub static OP_FACTS: &[OpFacts] = &[
    OpFacts {
        ops: &["Conv", "ConvTranspose"],
        role: OpRole::Layer,
        kernel_slots: &[1],
        vector_slots: &[2],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["Gemm"],
        role: OpRole::Layer,
        kernel_slots: &[0, 1],
        vector_slots: &[2],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["MatMul"],
        role: OpRole::Layer,
        kernel_slots: &[0, 1],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["BatchNormalization"],
        statistic_slots: &[3, 4],
        makes_weights: true,
        channelwise: true,
        ..NORM
    },
    OpFacts {
        ops: &["InstanceNormalization"],
        channelwise: true,
        ..NORM
    },
    // Statistics over several channels: not channel-wise.
    OpFacts {
        ops: &["LayerNormalization", "GroupNormalization"],
        ..NORM
    },
    OpFacts {
        ops: &[
            "Relu",
            "LeakyRelu",
            "Elu",
            "Selu",
            "Celu",
            "Gelu",
            "Sigmoid",
            "HardSigmoid",
            "HardSwish",
            "Tanh",
            "Softplus",
            "Softsign",
            "Clip",
            "Mish",
            "ThresholdedRelu",
        ],
        role: OpRole::Activation,
        channelwise: true,
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["PRelu"],
        role: OpRole::Activation,
        vector_slots: &[1],
        channelwise: true,
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["Transpose", "Identity", "Cast"],
        role: OpRole::Layout,
        channelwise: true,
        ..OpFacts::NONE
    },
    // Quantization (docs/quantized.md): a quantized weight reaches its layer through its
    // DequantizeLinear, axes unchanged; scales and zero points are metadata.
    OpFacts {
        ops: &["DequantizeLinear"],
        role: OpRole::Layout,
        quantized_slots: &[0],
        metadata_slots: &[1, 2],
        quantized_reads: &[qread(0, Some(1), 2, QuantizedAxis::Attribute)],
        channelwise: true,
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["QuantizeLinear"],
        metadata_slots: &[1, 2],
        channelwise: true,
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["QLinearConv"],
        role: OpRole::Layer,
        kernel_slots: &[3],
        vector_slots: &[8],
        quantized_slots: &[3, 8],
        metadata_slots: &[1, 2, 4, 5, 6, 7],
        quantized_reads: &[qread(3, Some(4), 5, QuantizedAxis::First)],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["QLinearMatMul"],
        role: OpRole::Layer,
        kernel_slots: &[0, 3],
        quantized_slots: &[0, 3],
        metadata_slots: &[1, 2, 4, 5, 6, 7],
        quantized_reads: &[
            qread(0, Some(1), 2, QuantizedAxis::Rows),
            qread(3, Some(4), 5, QuantizedAxis::Columns),
        ],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["ConvInteger"],
        role: OpRole::Layer,
        kernel_slots: &[1],
        quantized_slots: &[1],
        metadata_slots: &[2, 3],
        quantized_reads: &[qread(1, None, 3, QuantizedAxis::First)],
        ..OpFacts::NONE
    },
    OpFacts {
        ops: &["MatMulInteger"],
        role: OpRole::Layer,
        kernel_slots: &[0, 1],
        quantized_slots: &[0, 1],
        metadata_slots: &[2, 3],
        quantized_reads: &[
            qread(0, None, 2, QuantizedAxis::Rows),
            qread(1, None, 3, QuantizedAxis::Columns),
        ],
        ..OpFacts::NONE
    },
    // Pure functions exporters and weight standardisation compute weights with.
    OpFacts {
        ops: &[
            "Abs",
            "Add",
            "Div",
            "Flatten",
            "Mul",
            "Neg",
            "Pow",
            "Reciprocal",
            "Reshape",
            "Sqrt",
            "Squeeze",
            "Sub",
            "Unsqueeze",
        ],
        makes_weights: true,
        ..CHANNELWISE
    },
    OpFacts {
        ops: &[
            "AveragePool",
            "Ceil",
            "Concat",
            "Dropout",
            "Erf",
            "Exp",
            "Floor",
            "GlobalAveragePool",
            "GlobalMaxPool",
            "Log",
            "Max",
            "MaxPool",
            "Min",
            "Pad",
            "Resize",
            "Sign",
            "Split",
            "Upsample",
            "Where",
        ],
        ..CHANNELWISE
    },
    // onnxruntime's RMSNorm, which its optimizer writes in the default domain (as onnxruntime
    // registers it): `(X, scale) -> (Y, inv_std_var)`.
    OpFacts {
        ops: &["SimplifiedLayerNormalization"],
        vector_slots: &[1],
        ..NORM
    },
    // onnxruntime's fused transformer ops (com.microsoft; docs/fused.md). The skip
    // normalizations read `(input, skip, gamma, beta?, bias?)` and `(input, skip, gamma,
    // bias?)`: gamma is the scale, every vector is per hidden unit.
    OpFacts {
        domain: MS_DOMAIN,
        ops: &["SkipLayerNormalization"],
        vector_slots: &[2, 3, 4],
        scale_slot: Some(2),
        ..NORM
    },
    OpFacts {
        domain: MS_DOMAIN,
        ops: &["SkipSimplifiedLayerNormalization"],
        vector_slots: &[2, 3],
        scale_slot: Some(2),
        ..NORM
    },
    // `Gelu(X + bias)`: the bias is per channel of X's last axis (optional for FastGelu).
    OpFacts {
        domain: MS_DOMAIN,
        ops: &["BiasGelu", "FastGelu"],
        role: OpRole::Activation,
        vector_slots: &[1],
        channelwise: true,
        ..OpFacts::NONE
    },
    // `Attention(input, weights, bias?, mask_index?, ...)`: q, k and v projections packed in
    // one weight `[input_hidden, q + k + v]` and bias.
    OpFacts {
        domain: MS_DOMAIN,
        ops: &["Attention"],
        role: OpRole::Layer,
        kernel_slots: &[1],
        vector_slots: &[2],
        ..OpFacts::NONE
    },
    OpFacts {
        domain: MS_DOMAIN,
        ops: &["Gelu"],
        role: OpRole::Activation,
        channelwise: true,
        ..OpFacts::NONE
    },
    // Reductions of weight standardisation (a kernel's mean and norm): across channels.
    OpFacts {
        ops: &["ReduceL2", "ReduceMean", "ReduceSum", "ReduceSumSquare"],
        makes_weights: true,
        ..OpFacts::NONE
    },
];

/// The facts of op type `op` in the default domain, [`OpFacts::NONE`] when unlisted.
pub fn facts_of(op: &str) -> &'static OpFacts {
    facts_in("", op)
}

/// The facts of op type `op` in `domain` (either spelling of the default domain),
/// [`OpFacts::NONE`] when unlisted: a contrib op never answers for a default-domain op of the
/// same name, nor the reverse.
pub fn facts_in(domain: &str, op: &str) -> &'static OpFacts {
    // Looked up for every node by every pass: a fast hash of two short keys.
    type Table = rustc_hash::FxHashMap<(&'static str, &'static str), &'static OpFacts>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut m = Table::default();
        for f in OP_FACTS {
            for op in f.ops {
                let prev = m.insert((f.domain, *op), f);
                debug_assert!(prev.is_none(), "{}:{op} has two fact entries", f.domain);
            }
        }
        m
    });
    table
        .get(&(canonical_domain(domain), op))
        .copied()
        .unwrap_or(&OpFacts::NONE)
}

/// The facts of `node`'s op in its domain; [`OpFacts::NONE`] for an op nothing is known about.
pub fn facts(node: &Node) -> &'static OpFacts {
    facts_in(&node.domain, &node.op_type)
}

/// For a layout-only node whose input has `rank` axes: output axis `i` is input axis
/// `perm[i]` (Transpose's `perm`, reversed axes by default; the identity for the others).
/// `None` for other ops, or a `perm` that is not a permutation of `0..rank`.
pub fn layout_perm(node: &Node, rank: usize) -> Option<Vec<usize>> {
    if facts(node).role != OpRole::Layout {
        return None;
    }
    if node.op_type != "Transpose" {
        return Some((0..rank).collect());
    }
    let perm: Vec<usize> = match node.attr_ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).ok())
            .collect::<Option<_>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    for &a in &perm {
        if a >= rank || std::mem::replace(&mut seen[a], true) {
            return None;
        }
    }
    (perm.len() == rank).then_some(perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_keeps_its_invariants() {
        let mut seen = std::collections::HashSet::new();
        for f in OP_FACTS {
            assert_eq!(canonical_domain(f.domain), f.domain, "{:?}", f.ops);
            for op in f.ops {
                assert!(seen.insert((f.domain, *op)), "{op} has two entries");
                assert!(
                    std::ptr::eq(facts_in(f.domain, op), f),
                    "{op} looks up another entry"
                );
            }
            for slots in [
                f.kernel_slots,
                f.vector_slots,
                f.statistic_slots,
                f.quantized_slots,
                f.metadata_slots,
            ] {
                assert!(slots.windows(2).all(|w| w[0] < w[1]), "{:?}", f.ops);
            }
            for s in f.quantized_slots {
                assert!(
                    f.is_parameter_slot(*s) || f.role == OpRole::Layout,
                    "{:?}: a quantized slot is a parameter, or passes one on",
                    f.ops
                );
            }
            for s in f.kernel_slots.iter().chain(f.vector_slots) {
                assert!(!f.statistic_slots.contains(s), "{:?}", f.ops);
                assert!(!f.metadata_slots.contains(s), "{:?}", f.ops);
                assert!(
                    !(f.kernel_slots.contains(s) && f.vector_slots.contains(s)),
                    "{:?}",
                    f.ops
                );
            }
            assert_eq!(
                f.scale_slot.is_some(),
                f.role == OpRole::Norm,
                "{:?}",
                f.ops
            );
            if let Some(s) = f.scale_slot {
                assert!(f.vector_slots.contains(&s), "{:?}", f.ops);
            }
            assert!(
                f.quantized_reads.windows(2).all(|w| w[0].slot < w[1].slot),
                "{:?}",
                f.ops
            );
            for r in f.quantized_reads {
                assert!(f.quantized_slots.contains(&r.slot), "{:?}", f.ops);
                for p in r.scale_slot.iter().chain([&r.zero_point_slot]) {
                    assert!(f.metadata_slots.contains(p), "{:?}", f.ops);
                }
            }
        }
        assert_eq!(facts_of("NoSuchOp"), &OpFacts::NONE);
    }

    #[test]
    fn an_op_is_found_in_its_own_domain_only() {
        // com.microsoft's Gelu and the default domain's Gelu are two entries; a contrib op is
        // unknown in the default domain and a default op unknown in a custom one.
        assert!(std::ptr::eq(facts_in("ai.onnx", "Relu"), facts_of("Relu")));
        assert_eq!(facts_in(MS_DOMAIN, "Relu"), &OpFacts::NONE);
        assert_eq!(facts_of("SkipLayerNormalization"), &OpFacts::NONE);
        assert_eq!(facts_in("org.example", "BiasGelu"), &OpFacts::NONE);
        let ms_gelu = facts_in(MS_DOMAIN, "Gelu");
        assert_eq!(ms_gelu.domain, MS_DOMAIN);
        assert!(!std::ptr::eq(ms_gelu, facts_of("Gelu")));
        let skip = facts_in(MS_DOMAIN, "SkipLayerNormalization");
        assert_eq!((skip.role, skip.scale_slot), (OpRole::Norm, Some(2)));
        assert!(skip.is_parameter_slot(4) && !skip.is_parameter_slot(1));
        assert!(facts_in(MS_DOMAIN, "BiasGelu").is_parameter_slot(1));
    }

    #[test]
    fn layout_perm_follows_transpose_and_refuses_what_is_not_a_permutation() {
        use crate::shape::testutil::{aints, GraphBuilder};
        let mut b = GraphBuilder::new(17);
        b.input("x", &[2, 3, 4]);
        b.node("Transpose", &["x"], &["t"], vec![aints("perm", &[2, 0, 1])]);
        b.node("Transpose", &["t"], &["r"], vec![]);
        b.node(
            "Transpose",
            &["x"],
            &["bad"],
            vec![aints("perm", &[0, 0, 1])],
        );
        b.node("Cast", &["r"], &["c"], vec![]);
        b.node("Relu", &["c"], &["y"], vec![]);
        for o in ["bad", "y"] {
            b.output(o);
        }
        let m = b.model();
        let perm = |i: usize| layout_perm(&m.graph.nodes[i], 3);
        assert_eq!(perm(0), Some(vec![2, 0, 1]));
        assert_eq!(perm(1), Some(vec![2, 1, 0]));
        assert_eq!(perm(2), None);
        assert_eq!(perm(3), Some(vec![0, 1, 2]));
        assert_eq!(perm(4), None);
    }
}
