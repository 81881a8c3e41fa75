//! `shears eval`: accuracy and fidelity through the binary, on a fixture with generated data,
//! checked against the evaluator run sample by sample; bad inputs exit 2 naming the file.

use std::path::Path;
use std::process::{Command, Output};

use shears_onnx::Model;
use shears_verify::candle_core::{DType, Device, Tensor};
use shears_verify::{Evaluator, Rng};

const MODEL: &str = "tests/fixtures/tiny_resnet-keepbn.onnx";
const SAMPLES: usize = 7;

fn shears(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("runs the shears binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    // Not a terminal: no progress bar.
    assert_eq!(text(&o.stderr), "");
    text(&o.stdout)
}

fn model_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL)
}

/// `SAMPLES` seeded inputs for the fixture's 1x3x32x32 input, stacked.
fn inputs() -> Tensor {
    let mut rng = Rng::new(3);
    let v: Vec<f32> = (0..SAMPLES * 3 * 32 * 32).map(|_| rng.normal()).collect();
    Tensor::from_vec(v, (SAMPLES, 3, 32, 32), &Device::Cpu).unwrap()
}

/// Each sample's scores, from the evaluator one sample at a time (not through `evaluate`).
fn scores_one_by_one(x: &Tensor) -> Vec<Vec<f32>> {
    let model = Model::load(model_path()).unwrap();
    let eval = Evaluator::new(&model).unwrap();
    (0..SAMPLES)
        .map(|i| {
            let xi = x.narrow(0, i, 1).unwrap();
            let y = eval.eval(&[("input".to_string(), xi)]).unwrap();
            y[0].1.flatten_all().unwrap().to_vec1().unwrap()
        })
        .collect()
}

/// Class `rank` places down (0: the argmax) in `s`, ties toward the lower class.
fn class_at_rank(s: &[f32], rank: usize) -> i64 {
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    order[rank] as i64
}

/// Writes `x_set.npy` and `y_set.npy` with labels at ranks 0,0,0,1,2,4,7 of each sample's
/// scores: top-1 3/7, top-5 6/7.
fn write_data(dir: &Path) -> Tensor {
    let x = inputs();
    let scores = scores_one_by_one(&x);
    let ranks = [0, 0, 0, 1, 2, 4, 7];
    let labels: Vec<i64> = scores
        .iter()
        .zip(ranks)
        .map(|(s, r)| class_at_rank(s, r))
        .collect();
    x.write_npy(dir.join("x_set.npy")).unwrap();
    Tensor::new(labels.as_slice(), &Device::Cpu)
        .unwrap()
        .write_npy(dir.join("y_set.npy"))
        .unwrap();
    x
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

#[test]
fn json_accuracy_counts_ranks_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let x = write_data(dir.path());
    let model = model_path();
    let m = model.to_str().unwrap();
    let r = json(&shears(dir.path(), &["eval", m, "--data", ".", "--json"]));
    assert_eq!(r["layout"], "stacked");
    assert_eq!(r["samples"], SAMPLES);
    assert_eq!(r["labels"], "./y_set.npy");
    assert_eq!(r["accuracy"]["top1_correct"], 3);
    assert_eq!(r["accuracy"]["top5_correct"], 6);
    assert_eq!(r["accuracy"]["top1"], 3.0 / 7.0);
    assert!(r["fidelity"].is_null());
    // The same samples one per file (with and without the batch axis), labels in labels.npy.
    let per = dir.path().join("per");
    std::fs::create_dir(&per).unwrap();
    for i in 0..SAMPLES {
        let xi = x.narrow(0, i, 1).unwrap();
        let xi = if i % 2 == 0 {
            xi
        } else {
            xi.squeeze(0).unwrap()
        };
        xi.write_npy(per.join(format!("s{i:02}.npy"))).unwrap();
    }
    std::fs::copy(dir.path().join("y_set.npy"), per.join("labels.npy")).unwrap();
    let r2 = json(&shears(dir.path(), &["eval", m, "--data", "per", "--json"]));
    assert_eq!(r2["layout"], "per-sample");
    assert_eq!(r2["accuracy"], r["accuracy"]);
}

#[test]
fn a_model_against_itself_agrees_fully_and_a_pruned_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let model = model_path();
    let m = model.to_str().unwrap();
    let r = json(&shears(
        dir.path(),
        &["eval", m, "--data", ".", "--reference", m, "--json"],
    ));
    let f = &r["fidelity"];
    assert_eq!(f["top1_agreeing"], SAMPLES);
    assert_eq!(f["mean_kl_divergence"], 0.0);
    assert_eq!(f["mean_relative_error"], 0.0);
    assert!((f["mean_cosine_similarity"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    let pruned = dir.path().join("pruned.onnx");
    ok(&shears(
        dir.path(),
        &["prune", m, "--ratio", "0.5", "-o", "pruned.onnx", "--json"],
    ));
    let r = json(&shears(
        dir.path(),
        &[
            "eval",
            "pruned.onnx",
            "--data",
            ".",
            "--reference",
            m,
            "--json",
        ],
    ));
    let f = &r["fidelity"];
    assert!(pruned.is_file());
    assert!(f["mean_kl_divergence"].as_f64().unwrap() > 0.0);
    assert!(f["mean_relative_error"].as_f64().unwrap() > 0.0);
    assert!(f["mean_cosine_similarity"].as_f64().unwrap() < 1.0);
}

#[test]
fn the_text_report() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    std::fs::copy(model_path(), dir.path().join("model.onnx")).unwrap();
    let out = ok(&shears(
        dir.path(),
        &[
            "eval",
            "model.onnx",
            "--data",
            ".",
            "--labels",
            "y_set.npy",
            "--reference",
            "model.onnx",
        ],
    ));
    insta::assert_snapshot!("text", out);
    // Deterministic: the same bytes again.
    let again = ok(&shears(
        dir.path(),
        &[
            "eval",
            "model.onnx",
            "--data",
            ".",
            "--labels",
            "y_set.npy",
            "--reference",
            "model.onnx",
        ],
    ));
    assert_eq!(out, again);
}

/// Runs eval on `data` (relative to `dir`); expects exit 2, nothing on stdout, and an error
/// naming `file` and saying `what`.
fn refused(dir: &Path, data: &str, file: &str, what: &str) {
    let model = model_path();
    let o = shears(dir, &["eval", model.to_str().unwrap(), "--data", data]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(text(&o.stdout), "");
    assert!(
        err.starts_with("error: ") && err.contains(file) && err.contains(what),
        "wanted {file} / {what}: {err}"
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sub = |name: &str| {
        let p = d.join(name);
        std::fs::create_dir(&p).unwrap();
        p
    };
    sub("empty");
    refused(d, "empty", "empty", "no .npy file");
    refused(d, "missing", "missing", "no such file");
    let shape = sub("shape");
    Tensor::zeros((1, 3, 16, 16), DType::F32, &Device::Cpu)
        .unwrap()
        .write_npy(shape.join("a.npy"))
        .unwrap();
    refused(d, "shape", "a.npy", "axis 2 is 16, not 32");
    let dtype = sub("dtype");
    Tensor::zeros((1, 3, 32, 32), DType::F64, &Device::Cpu)
        .unwrap()
        .write_npy(dtype.join("b.npy"))
        .unwrap();
    refused(d, "dtype", "b.npy", "dtype float64");
    let nan = sub("nan");
    let mut v = vec![0f32; 3 * 32 * 32];
    v[100] = f32::NAN;
    Tensor::from_vec(v, (1, 3, 32, 32), &Device::Cpu)
        .unwrap()
        .write_npy(nan.join("c.npy"))
        .unwrap();
    refused(d, "nan", "c.npy", "NaN");
    let labels = sub("labels");
    Tensor::zeros((2, 3, 32, 32), DType::F32, &Device::Cpu)
        .unwrap()
        .write_npy(labels.join("x_a.npy"))
        .unwrap();
    Tensor::new(&[1i64, 2, 3], &Device::Cpu)
        .unwrap()
        .write_npy(labels.join("y_a.npy"))
        .unwrap();
    refused(d, "labels", "y_a.npy", "3 labels for 2 samples");
    Tensor::new(&[1f32, 2.], &Device::Cpu)
        .unwrap()
        .write_npy(labels.join("y_a.npy"))
        .unwrap();
    refused(d, "labels", "y_a.npy", "labels must be integers");
    Tensor::new(&[1i64, 99], &Device::Cpu)
        .unwrap()
        .write_npy(labels.join("y_a.npy"))
        .unwrap();
    refused(d, "labels", "y_a.npy", "label 99 at row 1");
}
