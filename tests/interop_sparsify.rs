//! Interop: `shears sparsify` outputs checked independently with numpy, onnx and onnxruntime
//! (`tests/interop/check_sparsify.py`): per-layer and global sparsity within one element, every
//! 2:4 run compliant, masks composed, non-weights untouched, kept weights equal to the
//! original's, and `--store sparse` models loading in onnxruntime with the dense store's
//! outputs from a smaller file. Run on a model the script builds itself and on a fixture.
#![cfg(feature = "interop")]

mod common;

use std::path::Path;

fn python(args: &[&str]) -> String {
    common::python("check_sparsify.py", args)
}

fn sparsify(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "sparsify",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::ok(&common::shears(&args));
}

fn check(model: &Path, dir: &Path) -> String {
    let p = |n: &str| dir.join(n);
    sparsify(model, &p("local.onnx"), &["--sparsity", "0.6"]);
    sparsify(model, &p("global.onnx"), &["--sparsity", "0.6", "--global"]);
    sparsify(model, &p("pattern.onnx"), &["--pattern", "2:4"]);
    sparsify(model, &p("half.onnx"), &["--sparsity", "0.5"]);
    sparsify(&p("half.onnx"), &p("composed.onnx"), &["--sparsity", "0.7"]);
    sparsify(model, &p("seventy.onnx"), &["--sparsity", "0.7"]);
    sparsify(
        model,
        &p("sparse.onnx"),
        &["--sparsity", "0.85", "--store", "sparse"],
    );
    sparsify(model, &p("dense.onnx"), &["--sparsity", "0.85"]);
    let files = [
        "local.onnx",
        "global.onnx",
        "pattern.onnx",
        "composed.onnx",
        "seventy.onnx",
        "sparse.onnx",
        "dense.onnx",
    ];
    let mut args = vec!["check".to_string(), model.display().to_string()];
    args.extend(files.iter().map(|f| p(f).display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&refs)
}

#[test]
fn sparsified_models_check_out_in_numpy_and_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    python(&["build", dir.path().to_str().unwrap()]);
    let built = dir.path().join("net.onnx");
    let out = check(&built, dir.path());
    assert!(out.starts_with("ok net.onnx"), "{out}");
    let fixture = common::fixtures_dir().join("tiny_resnet-dynamo.onnx");
    let out = check(&fixture, dir.path());
    assert!(out.starts_with("ok tiny_resnet-dynamo.onnx"), "{out}");
}
