//! Helpers shared by this crate's integration tests.

use std::path::PathBuf;

use shears_onnx::{InputShapes, Model};

/// Concrete input shapes for `model`: its declared shapes with every dynamic dimension set to 1.
pub fn static_shapes(model: &Model) -> InputShapes {
    InputShapes::dynamic_as(&model.graph, 1)
}

/// The fixture models shipped in the repository, sorted by file name.
pub fn fixture_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/fixtures")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    files
}
