//! Symbolic dimensions on the real exports in `../shared`: the `*-dynbatch` fixtures (batch
//! `batch`) group exactly as their plain originals (`*-fused`, the same opset-17 export with a
//! static batch of 1), and the transformers (sequence `seq`, ViT batch `batch`) group without
//! `--input-shape` exactly as with the sequence bound to the length they were exported at.
#![cfg(feature = "shared-suite")]

mod common;

use common::shared;
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

/// `groups` text of the model at `path` under `shapes`, without the header (which names the
/// file), and whether shape inference left a dimension symbolic.
fn groups(path: &std::path::Path, shapes: &InputShapes) -> (String, bool) {
    let mut model = Model::load(path).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, shapes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let graph = DependencyGraph::build(&model);
    let reports = shears_plan::group_reports(&model, &graph);
    let text = shears_plan::render_groups_text("", &reports);
    let body = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    (body, !model.symbolic.is_empty())
}

#[test]
fn dynbatch_fixtures_group_like_their_plain_originals() {
    let dir = shared().join("fixtures");
    for m in ["tiny_resnet", "tiny_mobilenet_v2", "tiny_densenet"] {
        let (dynbatch, symbolic) = groups(
            &dir.join(format!("styles/{m}-dynbatch.onnx")),
            &InputShapes::default(),
        );
        assert!(symbolic, "{m}: the batch should be symbolic");
        let (plain, symbolic) = groups(
            &dir.join(format!("{m}-fused.onnx")),
            &InputShapes::default(),
        );
        assert!(!symbolic);
        assert!(plain.contains("prunable"), "{m}: {plain}");
        assert_eq!(dynbatch, plain, "{m}");
    }
}

#[test]
fn transformers_group_with_a_symbolic_sequence_as_at_their_export_length() {
    let dir = shared().join("models/transformers");
    for (m, input, bound) in [
        ("bert-ts", "input", "1,16"),
        ("bert-dynamo", "x", "1,16"),
        ("gpt2-ts", "input", "1,16"),
        ("gpt2-dynamo", "x", "1,16"),
        ("llama-ts", "input", "1,16"),
        ("llama-dynamo", "x", "1,16"),
        ("vit-ts", "input", "1,3,32,32"),
        ("vit-dynamo", "x", "1,3,32,32"),
    ] {
        let path = dir.join(format!("{m}.onnx"));
        let (symbolic, was) = groups(&path, &InputShapes::default());
        assert!(was, "{m}: a dimension should be symbolic");
        let spec = format!("{input}={bound}");
        let (fixed, _) = groups(&path, &InputShapes::parse(&[spec]).unwrap());
        assert_eq!(symbolic, fixed, "{m}");
    }
}
