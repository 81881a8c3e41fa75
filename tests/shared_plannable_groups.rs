//! `groups` never calls prunable a group that planning refuses, on every shared model and
//! style fixture (the property of `crates/shears-testkit/tests/plannable_groups.rs`, whose helper
//! this includes).
#![cfg(feature = "shared-suite")]

mod common;
#[path = "../crates/shears-testkit/tests/common/plannable.rs"]
mod plannable;

use common::{onnx_files, shared};
use shears_onnx::{InputShapes, Model};

#[test]
fn every_prunable_group_of_every_shared_model_can_be_planned() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in [
        "models",
        "models/transformers",
        "fixtures",
        "fixtures/styles",
    ] {
        for path in onnx_files(&shared().join(dir)) {
            let what = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let mut m = Model::load(&path).unwrap();
            // Symbolic dimensions (dynamic batch, sequence) are analysed at size 1 here.
            let shapes = InputShapes::dynamic_as(&m.graph, 1);
            shears_onnx::shape::infer_shapes(&mut m, &shapes)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let (n, f) = plannable::refusals(&m, &shapes, &what);
            checked += n;
            failures.extend(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "only {checked} groups checked");
}
