//! Helpers shared by the root integration tests. Each test binary uses a subset of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The transformer exports in `../shared/models/transformers`, both styles.
pub const TRANSFORMERS: &[&str] = &[
    "bert-ts",
    "bert-dynamo",
    "gpt2-ts",
    "gpt2-dynamo",
    "llama-ts",
    "llama-dynamo",
    "vit-ts",
    "vit-dynamo",
];

/// The `../shared` folder next to the repository; the shared-suite tests need it.
pub fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        dir.is_dir(),
        "the shared-suite feature needs the shared folder at {}",
        dir.display()
    );
    dir
}

/// The `.onnx` files directly in `dir`, sorted.
pub fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    files
}

/// The fixtures shipped in `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Batch `N`: conv + BatchNorm + Relu, a Reshape to `[0, 16, -1]` and back (`0` copies the
/// batch), conv, a TorchScript-style flatten whose target is computed from the batch at run
/// time, Gemm.
pub fn dynbatch_model() -> shears_onnx::proto::ModelProto {
    let mut b = shears_testkit::builder::ModelBuilder::new(17).named("dynbatch");
    let x = b.input("input", &[-1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 16, 3, 1, 1, 1);
    let y = b.reshape(&y, &[0, 16, -1]);
    let y = b.reshape(&y, &[0, 16, 8, 8]);
    let y = b.conv(&y, "conv2", 8, 3, 2, 1, 1, true);
    let y = b.relu(&y);
    let s = b.shape(&y);
    let n = b.gather(&s, 0, 0);
    let n = b.unsqueeze(&n, &[0]);
    let minus_one = b.constant_i64("", &[1], &[-1]);
    let target = b.concat(&[&n, &minus_one], 0);
    let y = b.reshape_dynamic(&y, &target, &[-1, 8 * 4 * 4]);
    let y = b.gemm(&y, "fc", 10, true);
    b.node_with_outputs("/output/Identity", "Identity", &[&y], &["output"], vec![]);
    b.set_shape("output", &[-1, 10]);
    b.output("output");
    b.build()
}

/// Runs the `shears` binary with `args` in the repository root.
pub fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs the shears binary")
}

/// Command output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that a command exited 0, showing its output otherwise.
pub fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// A JSON file, parsed.
pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Writes `n` random .npy calibration inputs for the fixtures' `1x3x32x32` input into `dir`.
pub fn write_npys(dir: &Path, n: usize) {
    use shears_verify::candle_core::{Device, Tensor};
    for k in 0..n {
        let t = Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &Device::Cpu).unwrap();
        t.write_npy(dir.join(format!("sample{k}.npy"))).unwrap();
    }
}

/// Runs the interop script `tests/interop/SCRIPT` with `args`; its stdout on exit 0. Exit 3
/// (onnx, onnxruntime or numpy missing) fails the test with the script's reason, any other
/// status with the script's whole report: a check that cannot run never passes.
pub fn python<S: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: impl IntoIterator<Item = S>,
) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 is needed for the interop tests");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        Some(0) => stdout,
        Some(3) => panic!("interop test cannot run (pip install onnx onnxruntime numpy): {stderr}"),
        _ => panic!("{script} failed:\n{stdout}\n{stderr}"),
    }
}

/// [`python`] for the scripts that print one JSON report per line.
pub fn python_json<S: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: impl IntoIterator<Item = S>,
) -> Vec<serde_json::Value> {
    python(script, args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: {e}: {l}")))
        .collect()
}
