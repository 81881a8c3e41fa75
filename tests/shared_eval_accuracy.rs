//! Shared suite: `shears eval` on the trained models of `../shared/accuracy` gives the held-out
//! accuracies their README states (measured in PyTorch when they were trained), and a model
//! against itself agrees on every sample with zero divergence.
#![cfg(feature = "shared-suite")]

mod common;

use std::process::Command;

fn eval_json(model: &str, extra: &[&str]) -> serde_json::Value {
    let dir = common::shared().join("accuracy");
    let o = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args([
            "eval",
            model,
            "--data",
            ".",
            "--labels",
            "y_test.npy",
            "--json",
        ])
        .args(extra)
        .current_dir(&dir)
        .output()
        .expect("runs the shears binary");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn resnet_accuracy_is_the_readme_figure() {
    let r = eval_json("resnet.onnx", &[]);
    assert_eq!(r["samples"], 540);
    assert_eq!(r["layout"], "stacked");
    // 99.63%: 538 of 540.
    assert_eq!(r["accuracy"]["top1_correct"], 538);
}

#[test]
fn vgg_accuracy_is_the_readme_figure() {
    let r = eval_json("vgg.onnx", &[]);
    assert_eq!(r["accuracy"]["top1_correct"], 540);
    assert_eq!(r["accuracy"]["top5_correct"], 540);
}

#[test]
fn a_model_against_itself_agrees_with_zero_divergence() {
    for m in ["resnet.onnx", "vgg.onnx"] {
        let r = eval_json(m, &["--reference", m]);
        let f = &r["fidelity"];
        assert_eq!(f["top1_agreement"], 1.0, "{m}");
        assert_eq!(f["top1_agreeing"], 540, "{m}");
        assert_eq!(f["mean_kl_divergence"], 0.0, "{m}");
        assert_eq!(f["mean_relative_error"], 0.0, "{m}");
    }
}
