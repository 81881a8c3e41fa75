//! Corrupted models never panic: random byte flips and truncations of real fixtures either load
//! or give an error, and whatever loads goes through shape inference, the evaluator, the
//! dependency graph, plans and the executor with errors, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

const FIXTURES: &[&str] = &[
    "tiny_resnet-keepbn.onnx",
    "tiny_densenet-fused.onnx",
    "tiny_shufflenet-dynamo.onnx",
    "tiny_vit-keepbn.onnx",
];

fn fixture(i: usize) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(FIXTURES[i % FIXTURES.len()]);
    std::fs::read(p).expect("fixture")
}

/// Everything a user's command would run on a model; errors are fine, panics are not.
fn exercise(bytes: Vec<u8>) {
    let Ok(mut model) = Model::from_bytes(bytes.into(), "fuzzed") else {
        return;
    };
    if shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).is_err() {
        return;
    }
    let _ = shears_onnx::cost::analyze(&model);
    if let Ok(eval) = shears_verify::Evaluator::new(&model) {
        if let Ok(inputs) = InputShapes::default().resolve(&model.graph) {
            let mut rng = shears_verify::Rng::new(0);
            if let Ok(x) = shears_verify::random_inputs(&model, &inputs, &mut rng) {
                let _ = eval.eval(&x);
            }
        }
    }
    let graph = DependencyGraph::build(&model);
    for report in shears_plan::group_reports(&model, &graph).iter().take(4) {
        let Some((root, _)) = report.root.rsplit_once('[') else {
            continue;
        };
        if let Ok(plan) = shears_plan::plan(&model, &graph, root, &[0]) {
            let _ = shears_exec::apply(&model, &[plan]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn flipped_bytes_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = fixture(which);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(bytes)));
        prop_assert!(outcome.is_ok(), "panicked on a corrupted model");
    }

    #[test]
    fn truncated_models_never_panic(which in 0usize..4, keep in any::<prop::sample::Index>()) {
        let mut bytes = fixture(which);
        bytes.truncate(keep.index(bytes.len()));
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(bytes)));
        prop_assert!(outcome.is_ok(), "panicked on a truncated model");
    }
}

/// A structural mutation of a decoded model: the kinds of inconsistency a broken exporter or a
/// hand-edited file produces, which byte flips rarely reach (weights fill most of the bytes).
#[derive(Debug, Clone)]
enum Mutation {
    /// Set an integer attribute (group, axis, keepdims, transB...) of node `node % n`.
    AttrInt {
        node: usize,
        attr: usize,
        value: i64,
    },
    /// Replace an integer-list attribute (perm, pads, strides, kernel_shape...).
    AttrInts {
        node: usize,
        attr: usize,
        value: Vec<i64>,
    },
    /// Point input `slot` of a node at another value of the graph.
    Rewire { node: usize, slot: usize, to: usize },
    /// Change a node's op type to another known op.
    OpType { node: usize, op: usize },
    /// Overwrite an integer initializer's values (Reshape targets, Slice bounds, axes,
    /// ConstantOfShape shapes), with any `i64`.
    IntConstant { init: usize, value: i64 },
    /// Declare dims `from..` of a graph input as any `i64` (2^40, negative, zero...): several
    /// large dims at once are what overflow products (H = W = 2^30).
    InputDims {
        input: usize,
        from: usize,
        value: i64,
    },
    /// Change one dim of an initializer, leaving its payload as it was.
    TensorDim {
        init: usize,
        axis: usize,
        value: i64,
    },
    /// Drop a node (its outputs become undefined).
    Drop { node: usize },
}

const OPS: &[&str] = &[
    "Relu",
    "Conv",
    "Add",
    "Concat",
    "Reshape",
    "Transpose",
    "Gemm",
    "MatMul",
    "Flatten",
    "BatchNormalization",
    "GlobalAveragePool",
    "Split",
    "Slice",
    "Gather",
    "Softmax",
    "LayerNormalization",
    "ReduceMean",
    "MaxPool",
    "Mul",
    "Unknown",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), -4i64..64)
            .prop_map(|(node, attr, value)| Mutation::AttrInt { node, attr, value }),
        (
            any::<usize>(),
            any::<usize>(),
            proptest::collection::vec(-3i64..8, 0..6)
        )
            .prop_map(|(node, attr, value)| Mutation::AttrInts { node, attr, value }),
        (any::<usize>(), 0usize..3, any::<usize>()).prop_map(|(node, slot, to)| Mutation::Rewire {
            node,
            slot,
            to
        }),
        (any::<usize>(), 0..OPS.len()).prop_map(|(node, op)| Mutation::OpType { node, op }),
        (any::<usize>(), -3i64..300)
            .prop_map(|(init, value)| Mutation::IntConstant { init, value }),
        (any::<usize>(), huge()).prop_map(|(init, value)| Mutation::IntConstant { init, value }),
        (any::<usize>(), any::<usize>(), huge())
            .prop_map(|(input, from, value)| { Mutation::InputDims { input, from, value } }),
        (any::<usize>(), any::<usize>(), huge())
            .prop_map(|(init, axis, value)| Mutation::TensorDim { init, axis, value }),
        any::<usize>().prop_map(|node| Mutation::Drop { node }),
    ]
}

/// Any `i64`, weighted toward the values that overflow products and allocations.
fn huge() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        (0u32..63).prop_map(|k| 1i64 << k),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1i64),
        Just(0i64),
    ]
}

fn mutate(bytes: &[u8], ms: &[Mutation]) -> Vec<u8> {
    use prost::Message;
    use shears_onnx::proto::{tensor_proto::DataType, ModelProto};
    let mut m = ModelProto::decode(bytes).expect("fixture decodes");
    let g = m.graph.as_mut().expect("graph");
    let names: Vec<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.clone())
        .chain(g.initializer.iter().map(|t| t.name.clone()))
        .collect();
    for mu in ms {
        let n = g.node.len();
        if n == 0 {
            break;
        }
        match mu {
            Mutation::AttrInt { node, attr, value } => {
                let a = &mut g.node[node % n].attribute;
                if !a.is_empty() {
                    let k = attr % a.len();
                    a[k].i = *value;
                }
            }
            Mutation::AttrInts { node, attr, value } => {
                let a = &mut g.node[node % n].attribute;
                if !a.is_empty() {
                    let k = attr % a.len();
                    a[k].ints = value.clone();
                }
            }
            Mutation::Rewire { node, slot, to } => {
                let inputs = &mut g.node[node % n].input;
                if !inputs.is_empty() && !names.is_empty() {
                    let s = slot % inputs.len();
                    inputs[s] = names[to % names.len()].clone();
                }
            }
            Mutation::OpType { node, op } => g.node[node % n].op_type = OPS[*op].to_string(),
            Mutation::IntConstant { init, value } => {
                let ints: Vec<usize> = (0..g.initializer.len())
                    .filter(|&i| g.initializer[i].data_type == DataType::Int64 as i32)
                    .collect();
                if !ints.is_empty() {
                    let t = &mut g.initializer[ints[init % ints.len()]];
                    let len = t.raw_data.len() / 8;
                    let raw: Vec<u8> = (0..len).flat_map(|_| value.to_le_bytes()).collect();
                    t.raw_data = raw.into();
                    t.int64_data.clear();
                }
            }
            Mutation::Drop { node } => {
                g.node.remove(node % n);
            }
            Mutation::InputDims { input, from, value } => {
                use shears_onnx::proto::tensor_shape_proto::dimension;
                use shears_onnx::proto::type_proto;
                let k = g.input.len();
                let Some(vi) = g.input.get_mut(input % k.max(1)) else {
                    continue;
                };
                let Some(type_proto::Value::TensorType(t)) =
                    vi.r#type.as_mut().and_then(|t| t.value.as_mut())
                else {
                    continue;
                };
                let Some(shape) = t.shape.as_mut() else {
                    continue;
                };
                let r = shape.dim.len();
                for d in shape.dim.iter_mut().skip(from % r.max(1)) {
                    d.value = Some(dimension::Value::DimValue(*value));
                }
            }
            Mutation::TensorDim { init, axis, value } => {
                let k = g.initializer.len();
                if let Some(t) = g.initializer.get_mut(init % k.max(1)) {
                    let r = t.dims.len();
                    if r > 0 {
                        t.dims[axis % r] = *value;
                    }
                }
            }
        }
    }
    m.encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn structurally_broken_models_never_panic(
        which in 0usize..4,
        ms in proptest::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(&fixture(which), &ms);
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(bytes)));
        prop_assert!(outcome.is_ok(), "panicked after {ms:?}");
    }
}
