//! Interop with the shared suite: `shears compact` outputs of the masked fixtures
//! (`../shared/fixtures/masked`) pass `onnx.checker` (full check) and compute, in onnxruntime,
//! the outputs of the models they came from (within 1e-5 relative).
#![cfg(all(feature = "interop", feature = "shared-suite"))]

mod common;

use std::process::Command;

#[test]
fn compacted_masked_fixtures_pass_the_checker_and_match_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let masked = common::shared().join("fixtures/masked");
    let mut pairs = Vec::new();
    for file in ["tiny_resnet-bnmasked.onnx", "tiny_resnet-weightmasked.onnx"] {
        let input = masked.join(file);
        let out = dir.path().join(file);
        let o = Command::new(env!("CARGO_BIN_EXE_shears"))
            .arg("compact")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        pairs.push(input);
        pairs.push(out);
    }
    let reports = common::python_json("compare_outputs.py", &pairs);
    assert_eq!(reports.len(), 2, "{reports:?}");
}
