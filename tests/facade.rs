//! The `shears` facade as a library user meets it: loading with shapes inferred (or an error
//! naming the file and input), errors that name the file, saving that keeps the input's
//! external storage, and a user-defined importance criterion.

use std::collections::BTreeSet;
use std::path::Path;

use shears::onnx::save::{save_model, SaveOptions};
use shears::prelude::*;
use shears::pruner::{GroupImportance, PrunerError};
use shears_testkit::builder::ModelBuilder;

const RESNET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_resnet-keepbn.onnx"
);

/// Names of the initializers stored as external data in the model at `path`.
fn external_initializers(path: &Path) -> BTreeSet<String> {
    let m = Model::load(path).unwrap();
    m.proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .filter(|t| shears::onnx::tensor::is_external(t))
        .map(|t| t.name.clone())
        .collect()
}

#[test]
fn load_infers_shapes_or_names_the_dynamic_input() {
    let model = shears::load(RESNET).unwrap();
    let graph = DependencyGraph::build(&model);
    assert!(
        !graph.groups.is_empty(),
        "shapes were inferred, so groups exist"
    );
    let dir = tempfile::tempdir().unwrap();
    let conv_model = |name: &str, dims: &[i64]| {
        let mut b = ModelBuilder::new(17);
        b.input("input", dims);
        b.init_f32("w", &[4, 3, 3, 3], &[0.1; 108]);
        b.node_with_outputs("conv", "Conv", &["input", "w"], &["output"], vec![]);
        b.output("output");
        let path = dir.path().join(name);
        std::fs::write(&path, shears::onnx::save::encode(&b.build())).unwrap();
        path
    };

    // A symbolic batch needs no shape: no channel depends on it.
    let batch = conv_model("batch.onnx", &[-1, 3, 8, 8]);
    let model = shears::load(&batch).unwrap();
    assert!(!DependencyGraph::build(&model).groups.is_empty());

    // A symbolic channel axis does: the error names the file and the input's dimension.
    let channels = conv_model("channels.onnx", &[1, -1, 8, 8]);
    let err = shears::load(&channels).unwrap_err();
    assert!(matches!(err, Error::Shapes { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("channels.onnx") && msg.contains("input"),
        "{msg}"
    );

    let shapes = InputShapes::parse(&["input=1,3,8,8"]).unwrap();
    let model = shears::load_with_shapes(&channels, &shapes).unwrap();
    assert!(!DependencyGraph::build(&model).groups.is_empty());
}

#[test]
fn errors_name_the_file() {
    let model = shears::load(RESNET).unwrap();
    let graph = DependencyGraph::build(&model);
    let err = shears::plan_layer(&model, &graph, "no_such_layer", &[0]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tiny_resnet-keepbn.onnx") && msg.contains("no_such_layer"),
        "{msg}"
    );
    let err = shears::load("tests/fixtures/missing.onnx").unwrap_err();
    assert!(err.to_string().contains("missing.onnx"), "{err}");
}

#[test]
fn save_keeps_external_tensors_external_edited_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let source = shears::load(RESNET).unwrap();
    let all: BTreeSet<String> = source
        .proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let ext = dir.path().join("ext.onnx");
    save_model(
        &source,
        &ext,
        &SaveOptions {
            externalize: all.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(external_initializers(&ext), all);

    let model = shears::load(&ext).unwrap();
    let graph = DependencyGraph::build(&model);
    let plan = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6]).unwrap();
    let pruned = shears::apply(&model, &[plan]).unwrap();
    let out = dir.path().join("pruned.onnx");
    let report = shears::save(&model, &pruned, &out).unwrap();
    // conv1.weight was rewritten (so it is inline in `pruned`), and still goes external.
    assert_eq!(external_initializers(&out), all);
    assert_eq!(report.external_tensors, all.len());
    // The input's files are untouched and the saved model is the pruned one.
    assert_eq!(external_initializers(&ext), all);
    let saved = shears::load(&out).unwrap();
    let conv1 = saved.graph.value_id("conv1.weight").unwrap();
    assert_eq!(
        saved.graph.value(conv1).shape.as_deref(),
        Some(&[6, 3, 3, 3][..])
    );
}

#[test]
fn a_custom_criterion_decides_which_channels_go() {
    let model = shears::load(RESNET).unwrap();
    // Higher unit index, more important: every group loses its first units.
    let by_index = CustomImportance::new("by-index", |_, graph, gid| {
        Ok(GroupImportance::Scores(
            (0..graph.group(gid).units.len())
                .map(|u| u as f64)
                .collect(),
        ))
    });
    let cfg = PruneConfig {
        goal: Goal::Ratio(0.25),
        custom_importance: Some(by_index),
        ..Default::default()
    };
    let outcome = prune(&model, &cfg, &NoProgress).unwrap();
    let plans = &outcome.stages[0].plans;
    assert!(!plans.is_empty());
    for p in plans {
        let k = p.indices.len() as u32;
        assert_eq!(p.indices, (0..k).collect::<Vec<_>>(), "{}", p.root.layer);
    }

    let wrong = CustomImportance::new("short", |_, _, _| Ok(GroupImportance::Scores(vec![1.0])));
    let cfg = PruneConfig {
        custom_importance: Some(wrong),
        ..Default::default()
    };
    match prune(&model, &cfg, &NoProgress) {
        Err(PrunerError::Config { reason, .. }) => assert!(reason.contains("'short'"), "{reason}"),
        other => panic!("expected a config error, got {:?}", other.map(|o| o.pruned)),
    }
}

#[test]
fn save_never_overwrites_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.onnx");
    std::fs::copy(RESNET, &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let model = shears::load(&input).unwrap();
    let graph = DependencyGraph::build(&model);
    let plan = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6]).unwrap();
    let pruned = shears::apply(&model, &[plan]).unwrap();
    let err = shears::save(&model, &pruned, &input).unwrap_err();
    assert!(err.to_string().contains("model.onnx"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), before);
}
