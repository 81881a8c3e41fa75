//! Equivalent exports give equivalent groups: for each fixture, the BatchNorm-kept, BN-folded
//! and dynamo exports have the same groups (channel count, prunable or not, mixed or not),
//! whatever their names, node counts, weight layouts (Linear weights behind a Transpose or
//! pre-transposed) and shape arithmetic (computed or constant Reshape targets) look like.

use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// (channels, prunable, mixed) per group, sorted.
fn shape_of_groups(file: &str) -> Vec<(usize, bool, bool)> {
    let mut model = Model::load(format!("{FIXTURES}/{file}")).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&model);
    let mut v: Vec<(usize, bool, bool)> = shears_plan::group_reports(&model, &graph)
        .iter()
        .map(|r| (r.channels, r.prunable, !r.mixed_by.is_empty()))
        .collect();
    v.sort();
    v
}

#[test]
fn the_three_exports_of_each_fixture_have_the_same_groups() {
    for m in [
        "convnext",
        "densenet",
        "efficientnet",
        "inception",
        "mobilenet_v2",
        "regnet",
        "resnet",
        "shufflenet",
        "vgg",
        "vit",
    ] {
        let keepbn = shape_of_groups(&format!("tiny_{m}-keepbn.onnx"));
        assert!(keepbn.len() >= 6, "{m}: {keepbn:?}");
        for v in ["fused", "dynamo"] {
            assert_eq!(
                shape_of_groups(&format!("tiny_{m}-{v}.onnx")),
                keepbn,
                "{m}: {v} differs from keepbn"
            );
        }
    }
}
