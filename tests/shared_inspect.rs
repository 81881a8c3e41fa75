//! Shape inference and `inspect` over the real exports in `../shared` (feature `shared-suite`):
//! every model infers fully, parameter counts of the exports that keep BatchNorm equal
//! PyTorch's (Torch-Pruning's `params_total`), and ResNet-18 reports the published figures.
#![cfg(feature = "shared-suite")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{onnx_files, shared};
use shears_onnx::{cost, shape, InputShapes, Model};

fn load_inferred(path: &Path) -> Model {
    let mut m = Model::load(path).unwrap_or_else(|e| panic!("{e}"));
    shape::infer_shapes(&mut m, &InputShapes::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m
}

#[test]
fn every_shared_model_and_fixture_infers_fully() {
    let root = shared();
    let mut files = onnx_files(&root.join("models"));
    files.extend(onnx_files(&root.join("fixtures")));
    assert!(files.len() >= 35, "found only {} models", files.len());
    for f in files {
        let m = load_inferred(&f);
        let unknown: Vec<&str> = m
            .graph
            .values
            .iter()
            .filter(|v| v.shape.is_none())
            .map(|v| v.name.as_str())
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: no shape for {unknown:?}",
            f.display()
        );
        assert!(shape::blockers(&m).is_empty(), "{}", f.display());
        let c = cost::analyze(&m).unwrap();
        assert!(c.macs_unknown.is_empty() && c.macs > 0, "{}", f.display());
    }
}

#[test]
fn vit_small_runs_at_64x64() {
    let m = load_inferred(&shared().join("models/vit_small_keepbn.onnx"));
    let input = m.graph.value(m.graph.inputs[0]);
    assert_eq!(input.shape.as_deref(), Some(&[1, 3, 64, 64][..]));
    let out = m.graph.value(m.graph.outputs[0]);
    assert_eq!(out.shape.as_deref(), Some(&[1, 10][..]));
}

/// `params_total` of a Torch-Pruning reference file.
fn torch_params(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["params_total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no params_total", path.display()))
}

#[test]
fn keepbn_parameter_counts_equal_pytorch() {
    // Exports that keep BatchNorm and do no constant folding hold exactly PyTorch's parameters
    // (BatchNorm running statistics are buffers: not counted).
    let root = shared();
    let mut pairs: Vec<(PathBuf, PathBuf)> = ["resnet18", "squeezenet1_1", "vit_small"]
        .iter()
        .map(|m| {
            (
                root.join(format!("models/{m}_keepbn.onnx")),
                root.join(format!("models/torch-pruning/{m}-groups.json")),
            )
        })
        .collect();
    for f in onnx_files(&root.join("fixtures")) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(model) = name.strip_suffix("-keepbn.onnx") {
            pairs.push((
                f.clone(),
                root.join(format!("fixtures/torch-pruning-groups/{model}.json")),
            ));
        }
    }
    assert_eq!(pairs.len(), 13);
    for (model, reference) in pairs {
        let m = load_inferred(&model);
        let c = cost::analyze(&m).unwrap();
        assert_eq!(
            c.parameters,
            torch_params(&reference),
            "{}",
            model.display()
        );
    }
}

#[test]
fn resnet18_figures() {
    let path = shared().join("models/resnet18_keepbn.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(["inspect", "--json", "--input-shape", "input=1,3,224,224"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"]["parameters"], 11_689_512);
    // 20 BatchNorms' running mean and variance: 2 * 4800.
    assert_eq!(v["totals"]["statistics"], 9_600);
    let macs = v["totals"]["macs"].as_f64().unwrap();
    assert!((macs / 1.82e9 - 1.0).abs() < 0.01, "MACs {macs}");
    assert_eq!(v["totals"]["macs_complete"], true);
    let layers = v["layers"].as_array().unwrap();
    let convs = layers.iter().filter(|l| l["op_type"] == "Conv").count();
    assert_eq!(convs, 20);
    let fc = layers.iter().find(|l| l["op_type"] == "Gemm").unwrap();
    assert_eq!(fc["parameters"], 512 * 1000 + 1000);
    assert_eq!(fc["macs"], 512 * 1000);
}
