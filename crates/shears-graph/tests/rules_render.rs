//! The one-line rendering of every node's coupling, pinned for zoo models that cover each rule
//! family. A change to any rule shows up here as a readable line diff.
//!
//! Notation (see `rules::render`): `in0.1=out0.1` ties axis 1 of input 0 to axis 1 of output 0
//! index by index; `[a..b]=[c..d]` is an offset map; `%n` and `/d%n` are `(i / d) % n` maps
//! read from left to right; `factors[1~(1:2,2:4)]` is a reshape's deferred split of axis 1
//! into axes 1 (size 2) and 2 (size 4); `| mixes` lists mixed axes and `| out` the axis that
//! `--layer` names. Axes not mentioned are fixed.

use shears_graph::{rules, DependencyGraph};
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_int, zoo, ModelBuilder};

/// Builds zoo model `name`, infers shapes, and compares `node name => rule line` for every node
/// with `expect` (one line per node, in node order).
fn check(name: &str, expect: &str) {
    let (_, build) = zoo::MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no zoo model {name}"));
    check_proto(name, build(), expect);
}

fn check_proto(name: &str, proto: shears_onnx::proto::ModelProto, expect: &str) {
    let mut model = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&model);
    let got: Vec<String> = model
        .graph
        .node_ids()
        .map(|id| {
            let line = rules::render(&model, id, &graph.verdicts[id.index()]);
            format!("{} => {line}", model.graph.node(id).name)
        })
        .collect();
    let want: Vec<&str> = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if got != want {
        panic!(
            "{name}: rule lines differ\n--- want\n{}\n--- got\n{}",
            want.join("\n"),
            got.join("\n")
        );
    }
}

/// LayerNorm written out: the ReduceMeans over the hidden axis mix it (prunable, not exact) and their size-1 outputs broadcast back.
#[test]
fn layernorm_decomposed() {
    check(
        "layernorm_decomposed",
        r#"
        /blocks.0.norm1/ReduceMean => ReduceMean: in0.0=out0.0 in0.1=out0.1 | mixes in0.2
        /blocks.0.norm1/Sub => Sub: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1
        /blocks.0.norm1/Pow => Pow: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /blocks.0.norm1/ReduceMean_1 => ReduceMean: in0.0=out0.0 in0.1=out0.1 | mixes in0.2
        /blocks.0.norm1/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /blocks.0.norm1/Sqrt => Sqrt: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /blocks.0.norm1/Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1
        /blocks.0.norm1/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /blocks.0.norm1/Add_1 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /blocks.0.mlp.fc1/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /blocks.0.mlp.fc1/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /Erf => Erf: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2
        /Mul_1 => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /blocks.0.mlp.fc2/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /blocks.0.mlp.fc2/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /Add_1 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
"#,
    );
}

/// GroupNorm's classic decomposition: [16, 8, 8] -> [4, 256] nests the channels in the groups (channel c lies in group c / 4), so channels go in whole groups; the spatial axes of the run keep their size.
#[test]
fn group_norm_decomposed() {
    check(
        "group_norm_decomposed",
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /gn1/Reshape => Reshape: in0.1/4%4out0.1 | fixed in0.2 in0.3 out0.2
        /gn1/InstanceNormalization => InstanceNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.1 in2.0=out0.1 | out in1.0
        /gn1/Reshape_1 => Reshape: out0.1/4%4in0.1 | fixed in0.2 out0.2 out0.3
        /gn1/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1
        /gn1/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /conv2/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// Concat offsets, then the shuffle: the split Reshape defers its channel factors, the Transpose swaps them, the merging Reshape defers again.
#[test]
fn channel_shuffle() {
    check(
        "channel_shuffle",
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /bn1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.0.branch1.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stage2.0.branch1.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.0.branch2.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stage2.0.branch2.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu_2 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.0/Concat => Concat: in0.0=out0.0 in0.1[0..4]=[0..4]out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1[0..4]=[4..8]out0.1 in1.2=out0.2 in1.3=out0.3
        /Reshape => Reshape: in0.2=out0.3 in0.3=out0.4 factors[1~(1:2,2:4)]
        /Transpose => Transpose: in0.0=out0.0 in0.2=out0.1 in0.1=out0.2 in0.3=out0.3 in0.4=out0.4
        /Reshape_1 => Reshape: in0.3=out0.2 in0.4=out0.3 factors[1~(1:4,2:2)]
        /stage2.1.conv/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stage2.1.bn/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu_3 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// Split halves by offset; a depthwise conv ties output channel c to input channel c.
#[test]
fn channel_split_shuffle() {
    check(
        "channel_split_shuffle",
        r#"
        /conv1.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /conv1.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.1/Split => Split: in0.0=out0.0 out0.1[0..4]=[0..4]in0.1 in0.2=out0.2 in0.3=out0.3 in0.0=out1.0 out1.1[0..4]=[4..8]in0.1 in0.2=out1.2 in0.3=out1.3
        /stage2.1.branch2.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stage2.1.branch2.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /stage2.1/Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.1.branch2.3/Conv => Conv: in0.0=out0.0 in1.0=out0.1 out0.1%4in0.1 | out in1.0
        /stage2.1.branch2.4/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /stage2.1.branch2.5/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stage2.1.branch2.6/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /stage2.1/Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage2.1/Concat => Concat: in0.0=out0.0 in0.1[0..4]=[0..4]out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1[0..4]=[4..8]out0.1 in1.2=out0.2 in1.3=out0.3
        /stage2.1/Reshape => Reshape: in0.2=out0.3 in0.3=out0.4 factors[1~(1:2,2:4)]
        /stage2.1/Transpose => Transpose: in0.0=out0.0 in0.2=out0.1 in0.1=out0.2 in0.3=out0.3 in0.4=out0.4
        /stage2.1/Reshape_1 => Reshape: in0.3=out0.2 in0.4=out0.3 factors[1~(1:4,2:2)]
        /conv5.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /conv5.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// A grouped conv (4 groups of 8): input channel c is weight position c % 8, output channel o is position o % 8 of a per-group virtual axis.
#[test]
fn grouped_conv() {
    check(
        "grouped_conv",
        r#"
        /stem.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /stem.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /trunk_output.block1.block1-0.f.a.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /trunk_output.block1.block1-0.f.a.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /trunk_output.block1.block1-0/Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /trunk_output.block1.block1-0.f.b.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1%8in1.1 out0.1%8v0 | out in1.0
        /trunk_output.block1.block1-0.f.b.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /trunk_output.block1.block1-0/Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /trunk_output.block1.block1-0.f.c.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /trunk_output.block1.block1-0.f.c.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /trunk_output.block1.block1-0.proj.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /trunk_output.block1.block1-0.proj.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /trunk_output.block1.block1-0/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in1.3=out0.3
        /trunk_output.block1.block1-0/Relu_2 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// Clip passes every axis; the depthwise conv ties output and input channels.
#[test]
fn mobilenetv2_inverted_residual() {
    check(
        "mobilenetv2_inverted_residual",
        r#"
        /features.0.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /features.0.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /Clip => Clip: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.conv.0.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /features.1.conv.0.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /features.1/Clip => Clip: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.conv.1.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 out0.1%32in0.1 | out in1.0
        /features.1.conv.1.1/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /features.1/Clip_1 => Clip: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.conv.2/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /features.1.conv.3/BatchNormalization => BatchNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1 in2.0=out0.1 in3.0=out0.1 in4.0=out0.1 | out in1.0
        /features.1/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in1.3=out0.3
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// Flatten of [1,16,4,4] defers the merge of channels and spatial axes; pools keep only N and C.
#[test]
fn flatten_gemm() {
    check(
        "flatten_gemm",
        r#"
        /features.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /MaxPool => MaxPool: in0.0=out0.0 in0.1=out0.1
        /features.3/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /MaxPool_1 => MaxPool: in0.0=out0.0 in0.1=out0.1
        /Flatten => Flatten: factors[1~(1:16,2:4,3:4)]
        /classifier.0/Gemm => Gemm: in0.0=out0.0 in0.1=in1.1 in1.0=out0.1 in2.0=out0.1 | out in1.0
        /Relu_2 => Relu: in0.0=out0.0 in0.1=out0.1
        /classifier.3/Gemm => Gemm: in0.0=out0.0 in0.1=in1.1 in1.0=out0.1 in2.0=out0.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1
"#,
    );
}

/// Channel-last: Transposes move the channel axis, LayerNorm over it mixes, the Linears are MatMul + Add, layer scale [C,1,1] broadcasts onto axis 1.
#[test]
fn convnext_block() {
    check(
        "convnext_block",
        r#"
        /features.0.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /features.1.0.block.0/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 out0.1%8in0.1 | out in1.0
        /features.1.0/Transpose => Transpose: in0.0=out0.0 in0.2=out0.1 in0.3=out0.2 in0.1=out0.3
        /features.1.0.block.2/LayerNormalization => LayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.3 in2.0=out0.3 | mixes out0.3 | out in1.0
        /features.1.0.block.3/MatMul => MatMul: in0.3=in1.0 in0.2=out0.2 in1.1=out0.3 in0.0=out0.0 in0.1=out0.1 | out in1.1
        /features.1.0.block.3/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.3
        /features.1.0/Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.0/Erf => Erf: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.0/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.0/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in1.3=out0.3
        /features.1.0/Mul_1 => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /features.1.0.block.5/MatMul => MatMul: in0.3=in1.0 in0.2=out0.2 in1.1=out0.3 in0.0=out0.0 in0.1=out0.1 | out in1.1
        /features.1.0.block.5/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.3
        /features.1.0/Transpose_1 => Transpose: in0.0=out0.0 in0.3=out0.1 in0.1=out0.2 in0.2=out0.3
        /features.1.0/Mul_2 => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.1
        /features.1.0/Add_1 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in1.3=out0.3
        /features.2.1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// Heads: the qkv Reshape defers [48] -> [3, 2, 8]; scalar Gathers drop axis 0; the attention MatMuls mix their contracted axes.
#[test]
fn vit_encoder_layer() {
    check(
        "vit_encoder_layer",
        r#"
        /conv_proj/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Reshape => Reshape: in0.1=out0.1 factors[2~(2:2,3:2)]
        /Transpose => Transpose: in0.0=out0.0 in0.2=out0.1 in0.1=out0.2
        /encoder.layers.0.ln_1/LayerNormalization => LayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2 in2.0=out0.2 | mixes out0.2 | out in1.0
        /encoder.layers.0.self_attention.qkv/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /encoder.layers.0.self_attention.qkv/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /encoder.layers.0/Reshape => Reshape: in0.1=out0.1 factors[2~(2:3,3:2,4:8)]
        /encoder.layers.0/Transpose => Transpose: in0.2=out0.0 in0.0=out0.1 in0.3=out0.2 in0.1=out0.3 in0.4=out0.4
        /encoder.layers.0/Gather => Gather: in0.1=out0.0 in0.2=out0.1 in0.3=out0.2 in0.4=out0.3
        /encoder.layers.0/Gather_1 => Gather: in0.1=out0.0 in0.2=out0.1 in0.3=out0.2 in0.4=out0.3
        /encoder.layers.0/Gather_2 => Gather: in0.1=out0.0 in0.2=out0.1 in0.3=out0.2 in0.4=out0.3
        /encoder.layers.0/Transpose_1 => Transpose: in0.0=out0.0 in0.1=out0.1 in0.3=out0.2 in0.2=out0.3
        /encoder.layers.0/MatMul => MatMul: in0.3=in1.2 in0.2=out0.2 in1.3=out0.3 in0.0=out0.0 in0.1=out0.1 in1.0=out0.0 in1.1=out0.1 | mixes in0.3
        /encoder.layers.0/Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /encoder.layers.0/Softmax => Softmax: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 | mixes out0.3
        /encoder.layers.0/MatMul_1 => MatMul: in0.3=in1.2 in0.2=out0.2 in1.3=out0.3 in0.0=out0.0 in0.1=out0.1 in1.0=out0.0 in1.1=out0.1 | mixes in0.3
        /encoder.layers.0/Transpose_2 => Transpose: in0.0=out0.0 in0.2=out0.1 in0.1=out0.2 in0.3=out0.3
        /encoder.layers.0/Reshape_1 => Reshape: in0.1=out0.1 factors[2~(2:2,3:8)]
        /encoder.layers.0.self_attention.out_proj/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /encoder.layers.0.self_attention.out_proj/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /encoder.layers.0/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2
        /encoder.layers.0.ln_2/LayerNormalization => LayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2 in2.0=out0.2 | mixes out0.2 | out in1.0
        /encoder.layers.0.mlp.0/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /encoder.layers.0.mlp.0/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /encoder.layers.0/Div_1 => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /encoder.layers.0/Erf => Erf: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /encoder.layers.0/Add_1 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /encoder.layers.0/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2
        /encoder.layers.0/Mul_1 => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /encoder.layers.0.mlp.3/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /encoder.layers.0.mlp.3/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /encoder.layers.0/Add_2 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2
        /encoder.ln/LayerNormalization => LayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2 in2.0=out0.2 | mixes out0.2 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
"#,
    );
}

/// Reductions over the channel axis: a mean (or sum) over fewer channels is still a mean, so
/// the channel axis stays prunable, mixed; ArgMax returns a position along it, which removing
/// channels would renumber, so its reduced axis is fixed (unmentioned).
#[test]
fn reductions_over_channels() {
    let mut b = ModelBuilder::new(zoo::OPSET).named("reductions");
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, false);
    let mean = b.reduce_mean(&y, &[1], true);
    let centred = b.sub(&y, &mean);
    let idx = b.node(
        "ArgMax",
        &[&centred],
        1,
        vec![attr_int("axis", 1), attr_int("keepdims", 1)],
    );
    b.set_shape(&idx[0], &[1, 1, 8, 8]);
    b.set_dtype(&idx[0], 7);
    b.output(&idx[0]);
    check_proto(
        "reductions",
        b.build(),
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /ReduceMean => ReduceMean: in0.0=out0.0 in0.2=out0.2 in0.3=out0.3 | mixes in0.1
        /Sub => Sub: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.2=out0.2 in1.3=out0.3
        /ArgMax => ArgMax: in0.0=out0.0 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// LRN mixes the channel axis (prunable, not exact); GatherElements passes every axis but the
/// gathered one (constant indices are rewritten, runtime ones share Y's axes).
#[test]
fn lrn_gather_elements() {
    check(
        "lrn_gather_elements",
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /lrn1/LRN => LRN: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 | mixes out0.1
        /conv2/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /GatherElements => GatherElements: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /conv3/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

#[test]
fn gather_elements_with_runtime_indices_shares_their_axes() {
    use shears_onnx::proto::tensor_proto::DataType;
    let mut b = ModelBuilder::new(17);
    b.input("x", &[1, 4, 3]);
    b.input_typed("idx", &[1, 4, 2], DataType::Int64 as i32);
    b.node_with_outputs(
        "ge",
        "GatherElements",
        &["x", "idx"],
        &["y"],
        vec![attr_int("axis", 2)],
    );
    b.set_shape("y", &[1, 4, 2]);
    b.output("y");
    check_proto(
        "gather_elements_runtime",
        b.build(),
        "ge => GatherElements: in1.0=out0.0 in0.0=out0.0 in1.1=out0.1 in0.1=out0.1 in1.2=out0.2",
    );
}

/// Quantized ops: a per-tensor Q/DQ pair on the input ties every axis through; a per-channel
/// DequantizeLinear ties its scale and zero point to the weight's output channels; the
/// operator-format layers couple like Conv and MatMul, with their per-channel weight scales and
/// zero points sliced with the output channels (QLinearConv, ConvInteger) or the columns of B
/// (QLinearMatMul, MatMulInteger); scalar scales and zero points belong to no axis.
#[test]
fn quantized_ops() {
    use shears_onnx::proto::tensor_proto::DataType;
    use shears_onnx::proto::TensorProto;
    use shears_testkit::builder::tensor_f32;
    let int = |name: &str, dims: &[i64], dt: DataType| TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt as i32,
        raw_data: vec![
            1u8;
            dims.iter().product::<i64>() as usize
                * if dt == DataType::Int32 { 4 } else { 1 }
        ]
        .into(),
        ..Default::default()
    };
    let (i8_, u8_, i32_) = (DataType::Int8, DataType::Uint8, DataType::Int32);
    let mut b = ModelBuilder::new(17);
    b.input("x", &[1, 3, 6, 6]);
    b.input_typed("a", &[2, 8], u8_ as i32);
    b.initializer(tensor_f32("s", &[], &[0.1]));
    b.initializer(int("z", &[], u8_));
    b.initializer(int("wq", &[4, 3, 3, 3], i8_));
    b.initializer(tensor_f32("ws", &[4], &[0.1; 4]));
    b.initializer(int("wz", &[4], i8_));
    b.initializer(int("w2q", &[6, 4, 1, 1], i8_));
    b.initializer(tensor_f32("w2s", &[6], &[0.1; 6]));
    b.initializer(int("w2z", &[6], i8_));
    b.initializer(int("b2", &[6], i32_));
    b.initializer(int("w3q", &[5, 6, 1, 1], i8_));
    b.initializer(int("w3z", &[5], i8_));
    b.initializer(int("bq", &[8, 6], i8_));
    b.initializer(int("bz", &[6], i8_));
    b.initializer(int("bq2", &[8, 7], i8_));
    b.initializer(tensor_f32("bs2", &[7], &[0.1; 7]));
    b.initializer(int("bz2", &[7], i8_));
    let mut node = |name: &str, op: &str, ins: &[&str], out: &str, shape: &[i64], attrs| {
        b.node_with_outputs(name, op, ins, &[out], attrs);
        b.set_shape(out, shape);
    };
    node(
        "q",
        "QuantizeLinear",
        &["x", "s", "z"],
        "xq",
        &[1, 3, 6, 6],
        vec![],
    );
    node(
        "dq",
        "DequantizeLinear",
        &["xq", "s", "z"],
        "xd",
        &[1, 3, 6, 6],
        vec![],
    );
    node(
        "dqw",
        "DequantizeLinear",
        &["wq", "ws", "wz"],
        "w",
        &[4, 3, 3, 3],
        vec![attr_int("axis", 0)],
    );
    node("conv", "Conv", &["xd", "w"], "c", &[1, 4, 4, 4], vec![]);
    node(
        "qc",
        "QuantizeLinear",
        &["c", "s", "z"],
        "cq",
        &[1, 4, 4, 4],
        vec![],
    );
    node(
        "qconv",
        "QLinearConv",
        &["cq", "s", "z", "w2q", "w2s", "w2z", "s", "z", "b2"],
        "q2",
        &[1, 6, 4, 4],
        vec![],
    );
    node(
        "iconv",
        "ConvInteger",
        &["q2", "w3q", "z", "w3z"],
        "i3",
        &[1, 5, 4, 4],
        vec![],
    );
    node(
        "imm",
        "MatMulInteger",
        &["a", "bq", "z", "bz"],
        "mi",
        &[2, 6],
        vec![],
    );
    node(
        "qmm",
        "QLinearMatMul",
        &["a", "s", "z", "bq2", "bs2", "bz2", "s", "z"],
        "qm",
        &[2, 7],
        vec![],
    );
    b.set_dtype("i3", i32_ as i32);
    b.set_dtype("mi", i32_ as i32);
    b.set_dtype("qm", u8_ as i32);
    b.output("i3");
    b.output("mi");
    b.output("qm");
    check_proto(
        "quantized_ops",
        b.build(),
        r#"
        q => QuantizeLinear: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        dq => DequantizeLinear: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        dqw => DequantizeLinear: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=in0.0 in2.0=in0.0
        conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out wq.0
        qc => QuantizeLinear: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        qconv => QLinearConv: in0.0=out0.0 in3.0=out0.1 in8.0=out0.1 in0.1=in3.1 in4.0=out0.1 in5.0=out0.1 | out in3.0
        iconv => ConvInteger: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 in3.0=out0.1 | out in1.0
        imm => MatMulInteger: in0.1=in1.0 in0.0=out0.0 in1.1=out0.1 in3.0=in1.1 | out in1.1
        qmm => QLinearMatMul: in0.1=in3.0 in0.0=out0.0 in3.1=out0.1 in4.0=in3.1 in5.0=in3.1 | out in3.1
"#,
    );
}

/// Weight standardisation: the weight's output-channel axis passes through the ReduceMeans
/// (which reduce the other axes, mixing the input channels) and the Sub/Div to the Conv.
#[test]
fn std_conv() {
    check(
        "std_conv",
        r#"
        /stem.conv/ReduceMean => ReduceMean: in0.0=out0.0 | mixes in0.1 in0.2 in0.3
        /stem.conv/Sub => Sub: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0
        /stem.conv/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stem.conv/ReduceMean_1 => ReduceMean: in0.0=out0.0 | mixes in0.1 in0.2 in0.3
        /stem.conv/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stem.conv/Sqrt => Sqrt: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stem.conv/Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0
        /stem.conv/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage.conv/ReduceMean => ReduceMean: in0.0=out0.0 | mixes in0.1 in0.2 in0.3
        /stage.conv/Sub => Sub: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0
        /stage.conv/Mul => Mul: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage.conv/ReduceMean_1 => ReduceMean: in0.0=out0.0 | mixes in0.1 in0.2 in0.3
        /stage.conv/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage.conv/Sqrt => Sqrt: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /stage.conv/Div => Div: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0
        /stage.conv/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu_1 => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /head/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// The same through `reshape(C, -1)` and back: the merged non-channel axes are a deferred
/// factorization, the output-channel axis an identity.
#[test]
fn std_conv_2d() {
    check(
        "std_conv_2d",
        r#"
        /Reshape => Reshape: in0.0=out0.0 factors[1~(1:3,2:3,3:3)]
        /stem.conv/ReduceMean => ReduceMean: in0.0=out0.0 | mixes in0.1
        /stem.conv/Sub => Sub: in0.0=out0.0 in0.1=out0.1 in1.0=out0.0
        /stem.conv/Pow => Pow: in0.0=out0.0 in0.1=out0.1
        /stem.conv/ReduceMean_1 => ReduceMean: in0.0=out0.0 | mixes in0.1
        /stem.conv/Add => Add: in0.0=out0.0 in0.1=out0.1
        /stem.conv/Sqrt => Sqrt: in0.0=out0.0 in0.1=out0.1
        /stem.conv/Div => Div: in0.0=out0.0 in0.1=out0.1 in1.0=out0.0
        /Reshape_1 => Reshape: in0.0=out0.0 factors[1~(1:3,2:3,3:3)]
        /stem.conv/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /head/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// ConstantOfShape and Expand make bias axes from literal shape entries: free, so the bias
/// follows the conv's channels (the entries are rewritten).
#[test]
fn computed_bias() {
    check(
        "computed_bias",
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in0.1=in1.1 | out in1.0
        /ConstantOfShape => ConstantOfShape:
        /Mul => Mul: in0.0=out0.0 in1.0=out0.0
        /Reshape => Reshape: in0.0=out0.1
        /Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1
        /Expand => Expand: in0.0=out0.3 | made out0.1
        /Add_1 => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3 in1.0=out0.0 in1.1=out0.1
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /conv2/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// GatherND with constant indices: data's trailing (hidden) axis passes through; the picked
/// token axis keeps its size.
#[test]
fn gather_nd_tokens() {
    check(
        "gather_nd_tokens",
        r#"
        /fc1/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /fc1/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
        /GatherND => GatherND: in0.2=out0.2
        /fc2/MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /fc2/Add => Add: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2
"#,
    );
}

/// `[8, 16] -> [32, 4]` and back: the channel axis is the leading factor of the merged axis,
/// so channel c owns rows 4c..4c+4; the patch axes keep their size.
#[test]
fn patch_regroup() {
    check(
        "patch_regroup",
        r#"
        /conv1/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /Relu => Relu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
        /Reshape => Reshape: in0.1=out0.1 factors[2~(2:4,3:4)]
        /Reshape_1 => Reshape: out0.1/4%8in0.1 | fixed in0.2 out0.2
        /MatMul => MatMul: in0.2=in1.0 in0.1=out0.1 in1.1=out0.2 in0.0=out0.0 | out in1.1
        /Reshape_2 => Reshape: in0.1/4%8out0.1 | fixed in0.2 out0.2
        /Reshape_3 => Reshape: in0.1=out0.1 factors[2~(2:4,3:4)]
        /conv2/Conv => Conv: in0.0=out0.0 in1.0=out0.1 in2.0=out0.1 in0.1=in1.1 | out in1.0
        /output/Identity => Identity: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in0.3=out0.3
"#,
    );
}

/// A Linear whose weight is standardised in the graph (`(W - mean(W)) / std`): the computed
/// weight counts as the layer's (its output features are what `--layer` names, and the
/// contracted axis is not mixed, as it would be between two activations).
#[test]
fn matmul_with_a_standardised_weight_is_a_layer() {
    use shears_testkit::builder::attr_ints;
    let mut b = ModelBuilder::new(17);
    b.input("x", &[1, 6]);
    let w = b.param_random("fc.weight", &[6, 4]);
    let mean = b.node(
        "ReduceMean",
        &[&w],
        1,
        vec![attr_ints("axes", &[0]), attr_int("keepdims", 1)],
    );
    b.set_shape(&mean[0], &[1, 4]);
    let c = b.node("Sub", &[&w, &mean[0]], 1, vec![]);
    b.set_shape(&c[0], &[6, 4]);
    let y = b.node("MatMul", &["x", &c[0]], 1, vec![]);
    b.set_shape(&y[0], &[1, 4]);
    b.output(&y[0]);
    check_proto(
        "std_linear",
        b.build(),
        "/ReduceMean => ReduceMean: in0.1=out0.1 | mixes in0.0
         /Sub => Sub: in0.0=out0.0 in0.1=out0.1 in1.1=out0.1
         /MatMul => MatMul: in0.1=in1.0 in0.0=out0.0 in1.1=out0.1 | out in1.1",
    );
}
