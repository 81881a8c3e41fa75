//! Shared suite: the pruner on the real exports under `../shared/models`.
//!
//! - Local L2 magnitude at ratio 0.5, classifier ignored, round-to 1, on ResNet-18 keeps the
//!   channels Torch-Pruning's `MagnitudePruner` keeps with the same settings
//!   (`torch-pruning/resnet18-magnitude50.json`): per-layer channels, every parameter shape,
//!   the parameter count, and (since the criterion is the same: the squared L2 norm of every
//!   coupled weight slice, conv filters and input slices, BatchNorm scales and the classifier's
//!   columns, averaged over the group's tensors) the very channels removed.
//! - `--target-macs 0.5` lands within 2% of half the MACs on every model.
//!
//! Every pruned model also goes through the interop checker (`onnx.checker` with
//! `full_check=True` and an onnxruntime run); the test fails, saying so, when Python's `onnx`
//! or `onnxruntime` is missing.
#![cfg(feature = "shared-suite")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shears_onnx::Model;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared_models() -> PathBuf {
    let dir = repo().join("../shared/models");
    assert!(
        dir.is_dir(),
        "the shared-suite feature needs {} (the shared folder beside the repository)",
        dir.display()
    );
    dir
}

fn shears(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("runs the shears binary");
    assert_eq!(
        o.status.code(),
        Some(0),
        "shears {args:?}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Runs the interop checker on `files`; panics with its report on any failure.
fn interop(files: &[PathBuf]) {
    let reports = common::python_json("check_models.py", files);
    assert_eq!(reports.len(), files.len(), "one report per model");
}

fn initializer_shapes(m: &Model) -> BTreeMap<String, Vec<usize>> {
    m.proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.dims.iter().map(|&d| d as usize).collect()))
        .collect()
}

#[test]
fn resnet18_l2_half_matches_torch_pruning_magnitude_pruner() {
    let models = shared_models();
    let tp = read_json(&models.join("torch-pruning/resnet18-magnitude50.json"));
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("r18.onnx"), dir.path().join("r18.json"));
    let input = models.join("resnet18_keepbn.onnx");
    shears(&[
        "prune",
        input.to_str().unwrap(),
        "--ratio",
        "0.5",
        "--importance",
        "l2",
        "--ignore",
        "fc",
        "--round-to",
        "1",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let pruned = Model::load(&out).unwrap();
    let shapes = initializer_shapes(&pruned);

    // Per-layer channels: weight [out, in / groups, ...].
    for (layer, ch) in tp["layer_channels_after"].as_object().unwrap() {
        let w = &shapes[&format!("{layer}.weight")];
        let groups = ch["groups"].as_u64().unwrap_or(1) as usize;
        assert_eq!(w[0], ch["out"].as_u64().unwrap() as usize, "{layer} out");
        assert_eq!(
            w[1] * groups,
            ch["in"].as_u64().unwrap() as usize,
            "{layer} in"
        );
    }
    // Every parameter and buffer shape; the ones the exporter drops are scalars
    // (`num_batches_tracked`).
    let mut compared = 0;
    for (name, want) in tp["param_shapes_after"].as_object().unwrap() {
        let want: Vec<usize> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        match shapes.get(name) {
            Some(got) => {
                assert_eq!(got, &want, "{name}");
                compared += 1;
            }
            None => assert!(
                want.is_empty(),
                "{name} {want:?} is missing from the pruned model"
            ),
        }
    }
    assert_eq!(compared, 102);
    let r = read_json(&report);
    assert_eq!(r["summary"]["parameters"][1], tp["params_after"]);
    assert_eq!(r["summary"]["parameters"][0], tp["params_before"]);

    // The same channels: Torch-Pruning's history gives each group's removed indices in its root
    // layer's coordinates; the plan's entry for that layer's weight (axis 0) lists ours.
    let plans = r["stages"][0]["plans"].as_array().unwrap();
    for step in tp["pruning_history"].as_array().unwrap() {
        let root = step[0].as_str().unwrap();
        let mut want: Vec<u64> = step[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        want.sort();
        let tensor = format!("{root}.weight");
        let got: Vec<u64> = plans
            .iter()
            .flat_map(|p| p["entries"].as_array().unwrap())
            .find(|e| e["tensor"] == tensor.as_str() && e["axis"] == 0)
            .unwrap_or_else(|| panic!("no plan removes output channels of {root}"))["indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        assert_eq!(
            got, want,
            "{root}: removed channels differ from Torch-Pruning's"
        );
    }
    interop(&[out]);
}

#[test]
fn target_macs_half_on_every_shared_model() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared_models())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    let mut table =
        String::from("model | parameters before -> after | MACs before -> after | MACs kept\n");
    for f in &files {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let (out, report) = (
            dir.path().join(format!("{stem}.onnx")),
            dir.path().join(format!("{stem}.json")),
        );
        shears(&[
            "prune",
            f.to_str().unwrap(),
            "--target-macs",
            "0.5",
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        let r = read_json(&report);
        let s = &r["summary"];
        let (mb, ma) = (
            s["macs"][0].as_f64().unwrap(),
            s["macs"][1].as_f64().unwrap(),
        );
        let kept = ma / mb;
        table += &format!(
            "{stem} | {} -> {} | {mb} -> {ma} | {:.2}%\n",
            s["parameters"][0],
            s["parameters"][1],
            kept * 100.0
        );
        assert!(
            (kept / 0.5 - 1.0).abs() <= 0.02,
            "{stem}: {:.2}% of the MACs",
            kept * 100.0
        );
        assert_eq!(r["target_reached"], true, "{stem}");
        // The written model measures what the report says.
        let mut m = Model::load(&out).unwrap();
        shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
        assert_eq!(
            shears_onnx::cost::analyze(&m).unwrap().macs as f64,
            ma,
            "{stem}"
        );
        outs.push(out);
    }
    eprintln!("{table}");
    interop(&outs);
}
