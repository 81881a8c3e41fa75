//! `shears prune --ratio 0.5` on every style fixture with initializers listed as graph inputs
//! (`kiai13`, `op9` in `../shared/fixtures/styles`) writes a model that `onnx.checker`
//! (full_check) accepts and onnxruntime runs with the original's output shapes, keeping every
//! graph input and declaring each initializer-input with its pruned shape
//! (`tests/interop/check_styles.py`). Before, the declarations kept the old sizes and
//! onnxruntime refused the model.
#![cfg(all(feature = "interop", feature = "shared-suite"))]

mod common;

use common::shared;
use std::process::Command;

#[test]
fn pruned_style_fixtures_pass_the_checker_and_run_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let styles = shared().join("fixtures/styles");
    let mut triples = Vec::new();
    for model in ["tiny_resnet", "tiny_mobilenet_v2", "tiny_densenet"] {
        for style in ["kiai13", "op9"] {
            let original = styles.join(format!("{model}-{style}.onnx"));
            let pruned = dir.path().join(format!("{model}-{style}.onnx"));
            let o = Command::new(env!("CARGO_BIN_EXE_shears"))
                .arg("prune")
                .arg(&original)
                .args(["--ratio", "0.5", "-o"])
                .arg(&pruned)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{model}-{style}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            triples.push(original);
            triples.push(pruned);
            triples.push(styles.join(format!("{model}.input.npy")));
        }
    }
    let stdout = common::python("check_styles.py", &triples);
    assert_eq!(stdout.lines().count(), triples.len() / 3, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| !l.contains("\"initializer_inputs\": 0")),
        "a pruned model lost its initializer inputs:\n{stdout}"
    );
}
