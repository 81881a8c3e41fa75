//! Interop with a real client: pruned models (seeded random batches of plans over every builder
//! model and fixture, and one plan per prunable group of each fixture) pass
//! `onnx.checker.check_model(full_check=True)` and run in onnxruntime with the original output
//! shapes. Needs Python with `onnx`, `onnxruntime` and `numpy` (`.ci/run` installs them); the
//! test fails with a clear message when they are missing, rather than passing silently.
#![cfg(feature = "interop")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models() -> Vec<Model> {
    let mut out: Vec<Model> = zoo::MODELS
        .iter()
        .map(|(n, b)| Model::from_proto(b(), *n, ExternalStore::none()).unwrap())
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    // With the shared suite, the real exports too (googlenet's external data included).
    if cfg!(feature = "shared-suite") {
        let shared = repo().join("../shared/models");
        assert!(shared.is_dir(), "the shared-suite needs ../shared/models");
        let mut real: Vec<PathBuf> = std::fs::read_dir(shared)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        real.sort();
        files.extend(real);
    }
    out.extend(files.iter().map(|f| Model::load(f).unwrap()));
    out
}

/// Runs the checker script over `files`; panics with its report on any failure.
fn check_with_onnxruntime(files: &[PathBuf]) {
    let reports = common::python_json("check_models.py", files);
    assert_eq!(reports.len(), files.len(), "one report per model");
}

fn write(dir: &Path, name: &str, model: &Model, proto: shears_onnx::proto::ModelProto) -> PathBuf {
    let path = dir.join(format!("{}.onnx", name.replace(['/', '.'], "_")));
    let store = match model.external.model_file() {
        Some(f) => ExternalStore::for_model_file(f),
        None => ExternalStore::none(),
    };
    save_proto(&proto, &store, &path, &SaveOptions::default()).unwrap();
    path
}

#[test]
fn pruned_models_pass_the_onnx_checker_and_run_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for mut model in models() {
        let shapes = InputShapes::dynamic_as(&model.graph, 1);
        shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
        let graph = DependencyGraph::build(&model);
        let stem = Path::new(&model.source)
            .file_stem()
            .map_or(model.source.clone(), |s| s.to_string_lossy().into_owned());
        for seed in 0..4u64 {
            let plans = shears_testkit::random_plans(&model, &graph, seed);
            if plans.is_empty() {
                continue;
            }
            let applied = shears_exec::apply(&model, &plans).unwrap();
            files.push(write(
                dir.path(),
                &format!("{stem}-seed{seed}"),
                &model,
                applied.proto,
            ));
        }
    }
    assert!(files.len() > 100, "only {} pruned models", files.len());
    check_with_onnxruntime(&files);
}

/// `shears prune --ratio 0.5` on each model; returns (pruned, original) pairs.
fn prune_half(dir: &Path, originals: &[PathBuf]) -> Vec<PathBuf> {
    let mut pairs = Vec::new();
    for (k, original) in originals.iter().enumerate() {
        let out = dir.join(format!("pruned{k}.onnx"));
        let run = Command::new(env!("CARGO_BIN_EXE_shears"))
            .arg("prune")
            .arg(original)
            .args(["--ratio", "0.5", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}: {}",
            original.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        pairs.push(out);
        pairs.push(original.clone());
    }
    pairs
}

/// Runs `check_symbolic.py` over (pruned, original) pairs; panics with its report on failure.
fn check_symbolic(pairs: &[PathBuf]) {
    let reports = common::python_json("check_symbolic.py", pairs);
    assert_eq!(reports.len(), pairs.len() / 2, "one report per pair");
}

#[test]
fn pruning_a_symbolic_batch_model_keeps_it_symbolic_and_runnable_at_any_batch() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("dynbatch.onnx");
    save_proto(
        &common::dynbatch_model(),
        &ExternalStore::none(),
        &original,
        &SaveOptions::default(),
    )
    .unwrap();
    let mut originals = vec![original];
    if cfg!(feature = "shared-suite") {
        let styles = repo().join("../shared/fixtures/styles");
        for m in ["tiny_resnet", "tiny_mobilenet_v2", "tiny_densenet"] {
            originals.push(styles.join(format!("{m}-dynbatch.onnx")));
        }
        let transformers = repo().join("../shared/models/transformers");
        for m in ["bert-ts", "gpt2-ts", "llama-ts", "vit-ts", "vit-dynamo"] {
            originals.push(transformers.join(format!("{m}.onnx")));
        }
    }
    check_symbolic(&prune_half(dir.path(), &originals));
}
