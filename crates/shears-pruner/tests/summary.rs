//! `PruneSummary`: the before/after figures of a prune list exactly the layers that changed,
//! with their channels, parameters and MACs, in node order.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{cost, InputShapes, Model};
use shears_pruner::{LayerRow, PruneSummary};
use shears_testkit::builder::zoo;

fn inferred(proto: shears_onnx::proto::ModelProto, name: &str) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

#[test]
fn the_summary_lists_the_layers_whose_channels_or_costs_changed() {
    // conv1 (3 -> 8, 3x3) -> bn1 -> conv2 (8 -> 16, 3x3, stride 2) -> bn2 -> conv3 (16 -> 16),
    // on a 1x3x16x16 input; two of conv1's filters go.
    let original = inferred(zoo::conv_bn_relu_chain(), "chain.onnx");
    let graph = DependencyGraph::build(&original);
    let plan = shears_plan::plan(&original, &graph, "conv1.weight", &[0, 1]).unwrap();
    let applied = shears_exec::apply(&original, &[plan]).unwrap();
    let pruned = inferred(applied.proto, "pruned.onnx");
    let before = cost::analyze(&original).unwrap();
    let after = cost::analyze(&pruned).unwrap();
    let s = PruneSummary::new(
        (&original, &before),
        (&pruned, &after),
        "out.onnx".into(),
        123,
        applied.rewrites.len(),
    );
    assert_eq!(
        (s.input.as_str(), s.output.as_str()),
        ("chain.onnx", "out.onnx")
    );
    assert_eq!(s.file_bytes, (0, 123));
    // conv1 loses 2 of 8 filters (2 x 27 weights), bn1 2 x 2 parameters, conv2 2 of its 8
    // input channels (16 x 2 x 9 weights).
    assert_eq!(s.parameters.0 - s.parameters.1, 54 + 4 + 288);
    let row = |node: &str, channels, parameters, macs| LayerRow {
        node: node.into(),
        channels,
        parameters,
        macs,
    };
    assert_eq!(
        s.layers,
        [
            // 16x16 outputs x 27 MACs each, per filter.
            row(
                "/conv1/Conv",
                (8, 6),
                (216, 162),
                (8 * 256 * 27, 6 * 256 * 27)
            ),
            // 8x8 outputs (stride 2) x 9 MACs per input channel, per filter.
            row(
                "/conv2/Conv",
                (16, 16),
                (1152, 864),
                (16 * 64 * 72, 16 * 64 * 54)
            ),
        ]
    );
    assert_eq!(s.macs.0 - s.macs.1, 2 * 256 * 27 + 16 * 64 * 18);
}
