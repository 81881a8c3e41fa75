//! Shared suite: on the trained models of `../shared/accuracy`, sparsifying (unstructured 0.5
//! and 2:4) and refitting the kept weights on the calibration images (`--recover`, the default
//! with `--calib-dir`) never gives a lower held-out top-1 than sparsifying alone. The figures
//! themselves are in docs/sparsify.md; nothing else is asserted about them.
#![cfg(feature = "shared-suite")]

mod common;

use std::path::Path;
use std::process::Command;

fn shears(dir: &Path, args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs the shears binary");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn top1(dir: &Path, model: &str) -> u64 {
    let o = shears(
        dir,
        &[
            "eval",
            model,
            "--data",
            ".",
            "--labels",
            "y_test.npy",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["accuracy"]["top1_correct"].as_u64().unwrap()
}

#[test]
fn recover_is_not_worse_than_sparsifying_alone() {
    let acc = common::shared().join("accuracy");
    let tmp = tempfile::tempdir().unwrap();
    for model in ["resnet.onnx", "vgg.onnx"] {
        for how in [&["--sparsity", "0.5"][..], &["--pattern", "2:4"][..]] {
            let plain = tmp.path().join(format!("plain-{model}"));
            let rec = tmp.path().join(format!("rec-{model}"));
            let mut args = vec!["sparsify", model, "-o", plain.to_str().unwrap()];
            args.extend_from_slice(how);
            shears(&acc, &args);
            let mut args = vec![
                "sparsify",
                model,
                "-o",
                rec.to_str().unwrap(),
                "--calib-dir",
                "calib",
                "--recover",
                "reconstruct",
            ];
            args.extend_from_slice(how);
            shears(&acc, &args);
            let (p, r) = (
                top1(&acc, plain.to_str().unwrap()),
                top1(&acc, rec.to_str().unwrap()),
            );
            assert!(r >= p, "{model} {how:?}: recovered {r}/540 < plain {p}/540");
        }
    }
}
