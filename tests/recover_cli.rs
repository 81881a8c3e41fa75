//! `shears prune --recover / --ridge` with calibration inputs: the default, every way of
//! choosing channels, the summary and report, and bad input, through the binary.

mod common;
use common::{ok, read_json, shears, text, write_npys};

use std::path::Path;
use std::process::Output;

use shears_verify::candle_core::{Device, Tensor};

const MODEL: &str = "tests/fixtures/tiny_resnet-keepbn.onnx";

fn refused(o: &Output, out: &Path, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "nothing may be written");
}

/// `n` .npy calibration inputs for the fixture's `1x3x32x32` input, in a new folder.
fn calib(root: &Path, n: usize) -> String {
    let dir = root.join("calib");
    std::fs::create_dir(&dir).unwrap();
    write_npys(&dir, n);
    dir.to_str().unwrap().to_string()
}

/// The recovery section of a `--report`, checked for what every recovery promises.
fn stages(report: &Path) -> Vec<serde_json::Value> {
    let r = read_json(report);
    let stages = r["summary"]["recovery"]["stages"]
        .as_array()
        .unwrap()
        .clone();
    for s in &stages {
        let (before, after) = (
            s["output_error"][0].as_f64().unwrap(),
            s["output_error"][1].as_f64().unwrap(),
        );
        assert!(after <= before, "{s}");
        for l in s["layers"].as_array().unwrap() {
            assert!(l["error_after"].as_f64().unwrap().is_finite(), "{l}");
        }
    }
    stages
}

#[test]
fn calibration_inputs_turn_reconstruction_on_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let c = calib(dir.path(), 4);
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-dir",
        &c,
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    let s = text(&o.stdout);
    assert!(
        s.contains("recovery (reconstruct, 4 calibration samples, ridge 0.01): output error"),
        "{s}"
    );
    let st = stages(&report);
    assert_eq!(st.len(), 1);
    let layers = st[0]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    assert!(layers.iter().all(|l| l["method"] == "reconstruct"));
    for l in layers {
        assert!(s.contains(l["node"].as_str().unwrap()), "{s}");
    }
    // The written model is the recovered one: it is not the plain pruned model.
    let plain = dir.path().join("plain.onnx");
    ok(&shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--recover",
        "none",
        "-o",
        plain.to_str().unwrap(),
    ]));
    assert_ne!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
}

#[test]
fn without_calibration_the_summary_says_recovery_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(text(&o.stdout).contains("recovery needs calibration inputs: give --calib-dir"));
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--recover",
        "reconstruct",
        "-o",
        dir.path().join("b.onnx").to_str().unwrap(),
    ]);
    refused(&o, &dir.path().join("b.onnx"), "--calib-dir");
}

#[test]
fn methods_run_in_the_order_given_with_random_inputs_flagged_weak() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-random",
        "3",
        "--recover",
        "bn,reconstruct",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(text(&o.stdout).contains("random calibration inputs is a weak fallback"));
    let st = stages(&report);
    let methods: Vec<String> = st[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["method"].as_str().unwrap().to_string())
        .collect();
    let first_reconstruct = methods.iter().position(|m| m == "reconstruct").unwrap();
    assert!(first_reconstruct > 0 && methods[..first_reconstruct].iter().all(|m| m == "bn"));
    assert!(methods[first_reconstruct..]
        .iter()
        .all(|m| m == "reconstruct"));
}

#[test]
fn every_stage_is_recovered_and_given_plans_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = calib(dir.path(), 2);
    let (out, report) = (dir.path().join("a.onnx"), dir.path().join("r.json"));
    ok(&shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--steps",
        "2",
        "--calib-dir",
        &c,
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]));
    assert_eq!(stages(&report).len(), 2);
    let o = shears(&[
        "prune",
        MODEL,
        "--layer",
        "layer1.0.conv1.weight",
        "--idxs",
        "0..4",
        "--calib-dir",
        &c,
        "--ridge",
        "0.1",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    let st = stages(&report);
    assert_eq!(st[0]["ridge"], 0.1);
    assert!(!st[0]["layers"].as_array().unwrap().is_empty());
}

#[test]
fn bad_settings_and_calibration_files_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let o_ = out.to_str().unwrap();
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-random",
        "2",
        "--recover",
        "bogus",
        "-o",
        o_,
    ]);
    refused(&o, &out, "bogus");
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-random",
        "2",
        "--ridge=-1",
        "-o",
        o_,
    ]);
    refused(&o, &out, "ridge");

    let nan = dir.path().join("nan");
    std::fs::create_dir(&nan).unwrap();
    let mut v = vec![0.5f32; 3 * 32 * 32];
    v[7] = f32::NAN;
    let t = Tensor::from_vec(v, (1, 3, 32, 32), &Device::Cpu).unwrap();
    t.write_npy(nan.join("bad.npy")).unwrap();
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-dir",
        nan.to_str().unwrap(),
        "-o",
        o_,
    ]);
    refused(&o, &out, "bad.npy");

    let shape = dir.path().join("shape");
    std::fs::create_dir(&shape).unwrap();
    let t = Tensor::zeros(
        (1, 3, 16, 16),
        shears_verify::candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    t.write_npy(shape.join("small.npy")).unwrap();
    let o = shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--calib-dir",
        shape.to_str().unwrap(),
        "-o",
        o_,
    ]);
    refused(&o, &out, "small.npy");
}
