//! Plans pinned as insta snapshots (text and JSON), one per coupling kind, on builder models.
//!
//! Each case names the coupling it shows and the indices a reader should find in the snapshot,
//! worked out by hand in the comment; the snapshots were reviewed against those.
//!
//! Zoo models end in a graph output, which keeps its shape and so blocks whatever channels
//! reach it. Where that would hide the coupling under test (a residual stream, a dense block's
//! concatenation) the case builds the same block followed by a consumer conv.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{zoo, ModelBuilder};

fn load(name: &str, proto: ModelProto) -> (Model, DependencyGraph) {
    let mut model = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&model);
    (model, graph)
}

fn zoo_model(name: &str) -> (Model, DependencyGraph) {
    let (_, build) = zoo::MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no zoo model {name}"));
    load(name, build())
}

/// Plans `layer`/`idxs` and pins the text and the JSON under `snap`.
fn check(snap: &str, (model, graph): &(Model, DependencyGraph), layer: &str, idxs: &[usize]) {
    let plan = shears_plan::plan(model, graph, layer, idxs)
        .unwrap_or_else(|e| panic!("{snap}: {layer} {idxs:?}: {e}"));
    insta::assert_snapshot!(format!("{snap}_text"), shears_plan::render_text(&plan));
    insta::assert_json_snapshot!(format!("{snap}_json"), plan);
}

/// Pins the error a request gets.
fn check_error(snap: &str, (model, graph): &(Model, DependencyGraph), layer: &str, idxs: &[usize]) {
    let err = shears_plan::plan(model, graph, layer, idxs)
        .map(|_| ())
        .expect_err("the request must fail");
    insta::assert_snapshot!(snap, err.to_string());
}

/// Stem, a basic block with an identity shortcut (`layer1.0`), a basic block with a strided
/// 1x1-conv downsample shortcut (`layer2.0`, 8 -> 16), and a 1x1 `head` conv reading the sum.
fn resnet_stage() -> ModelProto {
    let mut b = ModelBuilder::new(zoo::OPSET).named("resnet_stage");
    let x = b.input("input", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = basic_block(&mut b, &stem, "layer1.0", 8, 1);
    let y = basic_block(&mut b, &y, "layer2.0", 16, 2);
    let y = b.conv(&y, "head", 4, 1, 1, 0, 1, true);
    b.output(&y);
    b.build()
}

fn basic_block(b: &mut ModelBuilder, x: &str, name: &str, out: i64, stride: i64) -> String {
    let n = |s: &str| format!("{name}.{s}");
    let y = b.conv_bn_relu(x, &n("conv1"), &n("bn1"), out, 3, stride, 1, 1);
    let y = b.conv(&y, &n("conv2"), out, 3, 1, 1, 1, false);
    let y = b.bn(&y, &n("bn2"));
    let short = if stride != 1 {
        let s = b.conv(x, &n("downsample.0"), out, 1, stride, 0, 1, false);
        b.bn(&s, &n("downsample.1"))
    } else {
        x.to_string()
    };
    let y = b.add(&y, &short);
    b.relu(&y)
}

/// A DenseNet block (stem 8, two layers of growth 4, each BN-Relu-1x1(8)-BN-Relu-3x3(4) on the
/// Concat of all earlier maps), then a transition BN-Relu-1x1 conv on the final Concat.
fn dense_stage() -> ModelProto {
    let mut b = ModelBuilder::new(zoo::OPSET).named("dense_stage");
    let x = b.input("input", &[1, 3, 8, 8]);
    let stem = b.conv(&x, "features.conv0", 8, 3, 1, 1, 1, false);
    let mut feats = vec![stem];
    for i in 1..=2 {
        let n = |s: &str| format!("features.denseblock1.denselayer{i}.{s}");
        let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
        let cat = if refs.len() == 1 {
            refs[0].to_string()
        } else {
            b.concat(&refs, 1)
        };
        let y = b.bn(&cat, &n("norm1"));
        let y = b.relu(&y);
        let y = b.conv(&y, &n("conv1"), 8, 1, 1, 0, 1, false);
        let y = b.bn(&y, &n("norm2"));
        let y = b.relu(&y);
        let y = b.conv(&y, &n("conv2"), 4, 3, 1, 1, 1, false);
        feats.push(y);
    }
    let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
    let cat = b.concat(&refs, 1);
    let y = b.bn(&cat, "features.transition1.norm");
    let y = b.relu(&y);
    let y = b.conv(&y, "features.transition1.conv", 8, 1, 1, 0, 1, false);
    b.output(&y);
    b.build()
}

/// Residual stream: conv1's channels run through bn1, layer1.0's identity shortcut (so
/// layer1.0.conv2 and bn2 lose the same indices), and end at the two readers of layer1.0's
/// output, layer2.0.conv1 and the downsample conv: indices [2, 6] everywhere.
#[test]
fn residual_stream_into_downsample_block() {
    check(
        "residual_stream",
        &load("resnet_stage", resnet_stage()),
        "conv1.weight",
        &[2, 6],
    );
}

/// Downsample shortcut: layer2.0.conv2's output is added to downsample.1's, so pruning it
/// prunes downsample.0's output channels and downsample.1 too, and head reads [1, 3, 15].
#[test]
fn downsample_shortcut_shares_the_sum() {
    check(
        "downsample_shortcut",
        &load("resnet_stage", resnet_stage()),
        "layer2.0.conv2.weight",
        &[1, 3, 15],
    );
}

/// Dense block, segment 0 of every Concat: conv0's channels [1, 5] are channels [1, 5] of both
/// Concats (8+4 and 8+4+4 wide), so denselayer1.norm1 (8), denselayer2.norm1 (12) and the
/// transition norm (16) lose [1, 5], and their convs' input axes too.
#[test]
fn dense_block_stem_segment() {
    check(
        "dense_stem",
        &load("dense_stage", dense_stage()),
        "features.conv0.weight",
        &[1, 5],
    );
}

/// Dense block, a middle segment: denselayer1.conv2's channels [0, 3] sit at offset 8 of both
/// later Concats: [8, 11] in denselayer2.norm1 and in the transition.
#[test]
fn dense_block_offset_segment() {
    check(
        "dense_offset",
        &load("dense_stage", dense_stage()),
        "features.denseblock1.denselayer1.conv2.weight",
        &[0, 3],
    );
}

/// Inception: branch2's 3x3 conv owns Concat channels 4..10 (after branch1's 4), so its
/// channels [1, 4] are input channels [5, 8] of inception3b.branch1.conv.
#[test]
fn inception_branch_offset() {
    check(
        "inception_branch2",
        &zoo_model("inception_block"),
        "inception3a.branch2.1.conv.weight",
        &[1, 4],
    );
}

/// MobileNetV2: the expand conv's channels [0, 31] are the depthwise conv's input and output
/// channels (one group each, so `group` 32 -> 30) and the project conv's input channels.
#[test]
fn mobilenet_expand_through_depthwise() {
    check(
        "mobilenet_expand",
        &zoo_model("mobilenetv2_inverted_residual"),
        "features.1.conv.0.0.weight",
        &[0, 31],
    );
}

/// Channel shuffle (2 groups of 4): Concat channel `i*4 + j` lands at `j*2 + i`. Shears prunes
/// by position in every group, so branch1's channels [1, 3] go with branch2's [1, 3] (Concat
/// [1, 3, 5, 7]) and the consumer loses shuffled channels [2, 3, 6, 7].
#[test]
fn channel_shuffle_permutation() {
    check(
        "channel_shuffle",
        &zoo_model("channel_shuffle"),
        "stage2.0.branch1.0.weight",
        &[1, 3],
    );
}

/// Squeeze-excitation: the trunk channels [3, 7] are fc1's input channels and fc2's output
/// channels (the scale broadcast over HxW multiplies them), and features.2.0's inputs.
#[test]
fn squeeze_excitation_scale() {
    check(
        "se_trunk",
        &zoo_model("squeeze_excitation"),
        "features.0.0.weight",
        &[3, 7],
    );
}

/// SE bottleneck: fc1's channel [1] is fc2's input [1] only.
#[test]
fn squeeze_excitation_bottleneck() {
    check(
        "se_fc1",
        &zoo_model("squeeze_excitation"),
        "features.1.se.fc1.weight",
        &[1],
    );
}

/// ConvNeXt: the stem's channels [0, 5] go through the depthwise conv, the NHWC Transpose
/// (axis 1 -> 3), the LayerNorm (mixed), block.3's input rows, block.5's output columns and
/// bias, back through the Transpose, layer_scale[0] and the residual Add into features.2.1.
#[test]
fn convnext_channel_last() {
    check(
        "convnext_stream",
        &zoo_model("convnext_block"),
        "features.0.0.weight",
        &[0, 5],
    );
}

/// ConvNeXt MLP: block.3's output columns [4, 5, 6, 7] are block.5's input rows.
#[test]
fn convnext_mlp() {
    check(
        "convnext_mlp",
        &zoo_model("convnext_block"),
        "features.1.0.block.3.weight",
        &[4, 5, 6, 7],
    );
}

/// Flatten into Gemm: features.3's channels [1, 14] own features [16..32) and [224..240) of
/// the flattened 16x4x4 map, classifier.0's input columns.
#[test]
fn flatten_block_expansion() {
    check(
        "flatten_gemm",
        &zoo_model("flatten_gemm"),
        "features.3.weight",
        &[1, 14],
    );
}

/// ViT attention: the qkv Linear's 48 outputs are [q|k|v] x 2 heads x 8 head dims; head-dim
/// positions [2, 5] go from every head of q, k and v (columns 2, 5, 10, 13, 18, 21, 26, 29,
/// 34, 37, 42, 45), and from out_proj's input rows [2, 5, 10, 13].
#[test]
fn vit_head_dim_positions() {
    check(
        "vit_head_dim",
        &zoo_model("vit_encoder_layer"),
        "encoder.layers.0.self_attention.qkv.weight",
        &[2, 5],
    );
}

/// ViT residual stream: it reaches the graph output, so it is blocked, with the reason.
#[test]
fn vit_residual_stream_is_blocked() {
    check_error(
        "vit_residual_blocked",
        &zoo_model("vit_encoder_layer"),
        "conv_proj.weight",
        &[0],
    );
}

/// Grouped conv (4 groups of 8): f.a.0's channel 0 is position 0 of every group, so it takes
/// channels [0, 8, 16, 24] with it; f.b.0's weight loses input position [0].
#[test]
fn grouped_conv_input_positions() {
    check(
        "grouped_conv_input",
        &zoo_model("grouped_conv"),
        "trunk_output.block1.block1-0.f.a.0.weight",
        &[0],
    );
}

/// Grouped conv outputs: f.b.0's output 3 is position 3 of every group: [3, 11, 19, 27], read
/// by f.c.0.
#[test]
fn grouped_conv_output_positions() {
    check(
        "grouped_conv_output",
        &zoo_model("grouped_conv"),
        "trunk_output.block1.block1-0.f.b.0.weight",
        &[3],
    );
}

/// Slice: conv1's channels [0:4] and [4:8] feed different convs; [1, 6] are branch_lo's input
/// 1 and branch_hi's input 2, and the second Slice now starts at 3.
#[test]
fn slice_segments() {
    check(
        "channel_slice",
        &zoo_model("channel_slice"),
        "conv1.weight",
        &[1, 6],
    );
}

/// Split: conv1.0's halves go different ways (the first passes to the shuffle, the second into
/// branch2). [0, 5]: Split sizes [4, 4] -> [3, 3]; half one's channel 0 goes with
/// branch2.5's channel 0 through the shuffle, read by conv5.0 at [0, 1].
#[test]
fn split_segments() {
    check(
        "channel_split",
        &zoo_model("channel_split_shuffle"),
        "conv1.0.weight",
        &[0, 5],
    );
}
