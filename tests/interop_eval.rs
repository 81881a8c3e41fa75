//! Interop: `shears eval` accuracy equals onnxruntime's (tests/interop/accuracy.py) on the same
//! data: a fixture with generated inputs and labels, and with the shared suite the trained
//! models of `../shared/accuracy` and those models pruned by half. Needs Python with `numpy`
//! and `onnxruntime`; fails with a clear message when they are missing.
#![cfg(feature = "interop")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use shears_verify::candle_core::{Device, Tensor};
use shears_verify::Rng;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shears(args: &[&str]) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .output()
        .expect("runs the shears binary");
    assert_eq!(
        o.status.code(),
        Some(0),
        "shears {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn onnxruntime_accuracy(model: &Path, x: &Path, y: &Path) -> serde_json::Value {
    serde_json::from_str(&common::python("accuracy.py", [model, x, y])).unwrap()
}

/// Asserts that `shears eval` and onnxruntime count the same top-1 and top-5 hits; returns the
/// top-1 count.
fn same_accuracy(model: &Path, x: &Path, y: &Path) -> u64 {
    let ours: serde_json::Value = serde_json::from_slice(&shears(&[
        "eval",
        model.to_str().unwrap(),
        "--data",
        x.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let theirs = onnxruntime_accuracy(model, x, y);
    let acc = &ours["accuracy"];
    for key in ["samples", "top1_correct", "top5_correct"] {
        assert_eq!(acc[key], theirs[key], "{}: {key}", model.display());
    }
    acc["top1_correct"].as_u64().unwrap()
}

#[test]
fn accuracy_equals_onnxruntime_on_a_fixture_and_its_pruned_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x_gen.npy"), dir.path().join("y_gen.npy"));
    let n = 24;
    let mut rng = Rng::new(11);
    let v: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| rng.normal()).collect();
    Tensor::from_vec(v, (n, 3, 32, 32), &Device::Cpu)
        .unwrap()
        .write_npy(&x)
        .unwrap();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
    Tensor::new(labels.as_slice(), &Device::Cpu)
        .unwrap()
        .write_npy(&y)
        .unwrap();
    let model = repo().join("tests/fixtures/tiny_resnet-keepbn.onnx");
    same_accuracy(&model, &x, &y);
    let pruned = dir.path().join("pruned.onnx");
    shears(&[
        "prune",
        model.to_str().unwrap(),
        "--ratio",
        "0.5",
        "-o",
        pruned.to_str().unwrap(),
    ]);
    same_accuracy(&pruned, &x, &y);
}

#[cfg(feature = "shared-suite")]
#[test]
fn accuracy_equals_onnxruntime_on_the_trained_models_and_pruned_ones() {
    let data = common::shared().join("accuracy");
    let (x, y) = (data.join("x_test.npy"), data.join("y_test.npy"));
    let dir = tempfile::tempdir().unwrap();
    for (name, want) in [("resnet.onnx", 538), ("vgg.onnx", 540)] {
        let model = data.join(name);
        assert_eq!(same_accuracy(&model, &x, &y), want, "{name}");
        let pruned = dir.path().join(name);
        shears(&[
            "prune",
            model.to_str().unwrap(),
            "--ratio",
            "0.5",
            "-o",
            pruned.to_str().unwrap(),
        ]);
        same_accuracy(&pruned, &x, &y);
    }
}
