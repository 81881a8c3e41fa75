//! Quantized models with onnxruntime's own quantizer and runtime (`tests/interop/quantized.py`):
//! - a small float CNN built with onnx.helper (not in `../shared`), quantized by
//!   `onnxruntime.quantization.quantize_static` in the QDQ format and in the QOperator format
//!   (QLinearConv, QLinearMatMul), pruned by `shears prune --ratio 0.5`: the results pass
//!   `onnx.checker` (full check), run in onnxruntime with the original's output shapes and stay
//!   quantized (same ops, int8 weights, every per-channel scale and zero point as long as its
//!   axis);
//! - the float model pruned first, then quantized by `quantize_static`, runs;
//! - a `--layer/--idxs` plan on the QDQ model computes, in onnxruntime, what the original
//!   computes with the removed input slices zeroed (the zeroing check, within the output's
//!   quantization step; it comes out exact);
//! - with `../shared`: the `qdq` style fixtures pruned at `--ratio 0.5` pass the same checks.
#![cfg(feature = "interop")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ok, shears, text};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/quantized.py")
}

/// Runs `quantized.py` with `args`; exit 3 (packages missing) fails the test with the reason.
fn python(args: &[&Path]) -> Output {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 is needed for the interop tests");
    if out.status.code() == Some(3) {
        panic!("interop test cannot run: {}", text(&out.stderr));
    }
    out
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

fn prune(src: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["prune", src.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    ok(&shears(&args));
}

/// Runs the `check` command on (original, pruned, input) triples and returns its JSON lines.
fn check(triples: &[[PathBuf; 3]]) -> Vec<serde_json::Value> {
    let mut args: Vec<&Path> = vec![p("check")];
    for t in triples {
        args.extend(t.iter().map(PathBuf::as_path));
    }
    let out = python(&args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a pruned quantized model was rejected:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), triples.len(), "{stdout}");
    lines
}

#[test]
fn quantized_models_from_onnxruntime_prune_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = python(&[p("make"), d]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let made = text(&made.stdout);
    assert!(
        made.contains("\"QLinearConv\"") && made.contains("\"QLinearMatMul\""),
        "{made}"
    );
    let input = d.join("input.npy");

    // Quantize first, then prune: both formats.
    let mut triples = Vec::new();
    for name in ["qdq", "qop"] {
        let src = d.join(format!("{name}.onnx"));
        let out = d.join(format!("{name}-pruned.onnx"));
        prune(&src, &out, &["--ratio", "0.5"]);
        triples.push([src, out, input.clone()]);
    }
    for r in check(&triples) {
        assert!(r["per_channel_params"].as_u64().unwrap() >= 4, "{r}");
        assert!(r["quantized_weights"].as_u64().unwrap() >= 3, "{r}");
    }

    // Prune first, then quantize: onnxruntime's quantizer accepts the pruned float model.
    let pruned_float = d.join("float-pruned.onnx");
    prune(&d.join("float.onnx"), &pruned_float, &["--ratio", "0.5"]);
    let quantized = d.join("float-pruned-qdq.onnx");
    let out = python(&[p("quantize"), &pruned_float, &input, &quantized]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    check(&[[d.join("qdq.onnx"), quantized, input.clone()]]);
}

#[test]
fn a_layer_plan_on_a_qdq_model_passes_the_zeroing_check_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = python(&[p("make"), d]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let src = d.join("qdq.onnx");
    let input = d.join("input.npy");
    for (layer, idxs) in [("c1", "1,4,6"), ("c2", "0,5,7,11")] {
        let pruned = d.join(format!("{layer}.onnx"));
        prune(&src, &pruned, &["--layer", layer, "--idxs", idxs]);
        // The original with the removed input slices zeroed, by the library's zeroing check.
        let m = shears::load(&src).unwrap();
        let graph = shears_graph::DependencyGraph::build(&m);
        let idx: Vec<usize> = idxs.split(',').map(|i| i.parse().unwrap()).collect();
        let plan = shears_plan::plan(&m, &graph, layer, &idx).unwrap();
        let zeroed = shears_testkit::zero_removed_inputs(&m, &[plan]).unwrap();
        let zeroed_path = d.join(format!("{layer}-zeroed.onnx"));
        shears_onnx::save::save_proto(
            &zeroed,
            &shears_onnx::external::ExternalStore::none(),
            &zeroed_path,
            &shears_onnx::save::SaveOptions::default(),
        )
        .unwrap();
        let out = python(&[p("compare"), &zeroed_path, &pruned, &input, p("0")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{layer} {idxs}: pruned differs from zeroed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[cfg(feature = "shared-suite")]
#[test]
fn pruned_qdq_style_fixtures_pass_the_checker_and_run_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let styles = common::shared().join("fixtures/styles");
    let mut triples = Vec::new();
    for model in ["tiny_resnet", "tiny_mobilenet_v2", "tiny_densenet"] {
        let src = styles.join(format!("{model}-qdq.onnx"));
        let out = dir.path().join(format!("{model}-qdq.onnx"));
        prune(&src, &out, &["--ratio", "0.5"]);
        triples.push([src, out, styles.join(format!("{model}.input.npy"))]);
    }
    for r in check(&triples) {
        assert!(r["per_channel_params"].as_u64().unwrap() >= 30, "{r}");
    }
}
