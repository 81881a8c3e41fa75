//! Shared suite: `shears compact` on the models a mask-based pruner left behind
//! (`../shared/fixtures/masked`). The oracle is independent of compact's analysis: the
//! evaluator's activations on the fixture's input and two random ones, per unit of every
//! prunable group, say which units are zero (or constant) everywhere.
#![cfg(feature = "shared-suite")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};
use shears_pruner::members::members;
use shears_verify::candle_core::{Device, Tensor};
use shears_verify::npy::{NpyArray, NpyValues};
use shears_verify::{random_inputs, Evaluator, Rng};

/// (layer, channel) keys of units.
type Units = BTreeSet<(String, u32)>;

fn masked() -> PathBuf {
    common::shared().join("fixtures/masked")
}

fn npy(path: &Path) -> Tensor {
    let a = NpyArray::open(path).unwrap();
    let NpyValues::F32(v) = a.read_all().unwrap() else {
        panic!("{}: not float", path.display())
    };
    Tensor::from_vec(v, a.shape.clone(), &Device::Cpu).unwrap()
}

fn load(path: &Path) -> Model {
    let mut m = Model::load(path).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// The inputs the oracle observes: the fixture's input and two seeded random ones.
fn inputs(model: &Model) -> Vec<Vec<(String, Tensor)>> {
    let name = model.graph.value(model.graph.inputs[0]).name.clone();
    let mut out = vec![vec![(name, npy(&masked().join("tiny_resnet.input.npy")))]];
    let shapes = InputShapes::default().resolve(&model.graph).unwrap();
    for seed in [1, 2] {
        out.push(random_inputs(model, &shapes, &mut Rng::new(seed)).unwrap());
    }
    out
}

/// Per unit of every prunable group, (layer, channel) and whether every activation member of
/// the unit is zero / constant on every observed input.
fn oracle(model: &Model) -> (Units, Units) {
    let graph = DependencyGraph::build(model);
    let eval = Evaluator::new(model).unwrap();
    // Per activation value: per channel (axis 1), the (min, max) over every input and position.
    let mut ranges: std::collections::HashMap<String, Vec<(f32, f32)>> = Default::default();
    for x in inputs(model) {
        eval.eval_observed(&x, |name, t| {
            let dims = t.dims().to_vec();
            if dims.len() < 2 {
                return;
            }
            let v = values(t);
            let (c, inner) = (dims[1], dims[2..].iter().product::<usize>());
            let r = ranges
                .entry(name.to_string())
                .or_insert_with(|| vec![(f32::INFINITY, f32::NEG_INFINITY); c]);
            for (i, &x) in v.iter().enumerate() {
                let ch = (i / inner) % c;
                r[ch] = (r[ch].0.min(x), r[ch].1.max(x));
            }
        })
        .unwrap();
    }
    let (mut zero, mut constant) = (BTreeSet::new(), BTreeSet::new());
    for group in graph.groups.iter().filter(|g| g.is_prunable()) {
        let layer = shears_plan::group_layer(model, &graph, group.id).unwrap();
        let ms = members(model, &graph, group);
        let lm = ms.iter().find(|m| m.dim == layer.dim).unwrap();
        let name = model.graph.node(layer.node).name.clone();
        for k in 0..group.units.len() {
            let acts: Vec<(f32, f32)> = ms
                .iter()
                .filter(|m| m.role.is_none())
                .flat_map(|m| {
                    assert_eq!(m.axis, 1, "tiny_resnet couples channel axes only");
                    let r = &ranges[&model.graph.value(m.value).name];
                    m.unit_indices[k].iter().map(|&i| r[i as usize])
                })
                .collect();
            let key = (name.clone(), lm.unit_indices[k][0]);
            if acts.iter().all(|&(lo, hi)| lo == 0.0 && hi == 0.0) {
                zero.insert(key.clone());
            }
            if acts.iter().all(|&(lo, hi)| lo == hi) {
                constant.insert(key);
            }
        }
    }
    (zero, constant)
}

fn compact(file: &str, out: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(["compact", masked().join(file).to_str().unwrap(), "-o"])
        .arg(out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn keys(report: &serde_json::Value, list: &str) -> Units {
    let mut out = BTreeSet::new();
    for g in report["groups"].as_array().unwrap() {
        for r in g[list].as_array().unwrap() {
            let layer = g["layer"].as_str().unwrap().to_string();
            out.insert((layer, r["channel"].as_u64().unwrap() as u32));
        }
    }
    out
}

/// The compacted model's output equals the input model's (evaluator, same inputs) and the
/// PyTorch output shipped with the fixture, within 1e-5 relative.
fn check_outputs(original: &Model, compacted: &Path, torch_output: &str) {
    let small = load(compacted);
    let (ea, eb) = (
        Evaluator::new(original).unwrap(),
        Evaluator::new(&small).unwrap(),
    );
    let torch = values(&npy(&masked().join(torch_output)));
    for (i, x) in inputs(original).into_iter().enumerate() {
        let a = values(&ea.eval(&x).unwrap()[0].1);
        let b = values(&eb.eval(&x).unwrap()[0].1);
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            d <= 1e-5 * scale,
            "input {i}: difference {d} (scale {scale})"
        );
        if i == 0 {
            let d = torch
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(d <= 1e-5 * scale, "PyTorch output: difference {d}");
        }
    }
}

#[test]
fn bnmasked_loses_every_exactly_dead_channel_and_keeps_its_output() {
    let file = "tiny_resnet-bnmasked.onnx";
    let model = load(&masked().join(file));
    let (zero, _) = oracle(&model);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compact.onnx");
    let report = compact(file, &out);
    let removed = keys(&report, "removed");
    assert!(!zero.is_empty());
    assert_eq!(removed, zero, "removed vs exactly-dead units");
    check_outputs(&model, &out, "tiny_resnet-bnmasked.output.npy");
    let summary = &report["summary"];
    assert!(summary["parameters"][1].as_u64() < summary["parameters"][0].as_u64());
}

#[test]
fn weightmasked_folds_what_it_can_and_reports_the_rest() {
    let file = "tiny_resnet-weightmasked.onnx";
    let model = load(&masked().join(file));
    let (zero, constant) = oracle(&model);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compact.onnx");
    let report = compact(file, &out);
    let (removed, kept) = (keys(&report, "removed"), keys(&report, "kept"));
    // Every zero unit goes; every constant unit goes or is reported; nothing else goes.
    assert!(zero.is_subset(&removed), "{:?}", zero.difference(&removed));
    assert!(removed.is_subset(&constant));
    for k in &constant {
        assert!(
            removed.contains(k) || kept.contains(k),
            "{k:?} not reported"
        );
    }
    let folded: Vec<&serde_json::Value> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["removed"].as_array().unwrap())
        .filter(|r| !r["folded_into"].as_array().unwrap().is_empty())
        .collect();
    assert!(!folded.is_empty(), "no constant was folded");
    // The constants kept before a padded 3x3 conv say so.
    let padded = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["kept"].as_array().unwrap())
        .filter(|k| k["reason"].as_str().unwrap().contains("pads its input"))
        .count();
    assert!(padded > 0);
    check_outputs(&model, &out, "tiny_resnet-weightmasked.output.npy");
}
