//! `shears verify`: exit statuses, the text table and the JSON report.

use std::path::Path;
use std::process::{Command, Output};

use shears_testkit::builder::ModelBuilder;

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs the shears binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// Writes `x[1,4] @ W -> y` with `W` of shape `[4, cols]` filled with `scale` on its diagonal.
fn write_matmul(path: &Path, cols: usize, scale: f32, dynamic_batch: bool) {
    let mut b = ModelBuilder::new(17);
    let x = b.input("x", &[if dynamic_batch { -1 } else { 1 }, 4]);
    let mut w = vec![0f32; 4 * cols];
    for k in 0..cols.min(4) {
        w[k * cols + k] = scale;
    }
    let w = b.init_f32("w", &[4, cols as i64], &w);
    let y = b.node("MatMul", &[&x, &w], 1, vec![]).remove(0);
    b.set_shape(&y, &[1, cols as i64]);
    b.output(&y);
    std::fs::write(path, shears_onnx::save::encode(&b.build())).unwrap();
}

#[test]
fn a_model_against_itself_differs_by_nothing() {
    let m = "tests/fixtures/tiny_resnet-keepbn.onnx";
    let out = shears(&["verify", m, m, "--samples", "2"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    insta::assert_snapshot!("self_compare_text", stdout(&out));
    let out = shears(&["verify", m, m, "--samples", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    insta::assert_json_snapshot!("self_compare_json", json(&out));
}

#[test]
fn folded_batchnorm_matches_the_kept_one() {
    let out = shears(&[
        "verify",
        "tests/fixtures/tiny_resnet-keepbn.onnx",
        "tests/fixtures/tiny_resnet-fused.onnx",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["samples"], 4);
    assert_eq!(v["shapes_equal"], true);
    assert_eq!(v["inputs"][0], serde_json::json!(["input", [1, 3, 32, 32]]));
    let o = &v["outputs"][0];
    assert_eq!(o["original_shape"], serde_json::json!([1, 10]));
    let abs = o["max_abs"].as_f64().unwrap();
    let rel = o["max_rel"].as_f64().unwrap();
    // Folding BatchNorm into the conv only reorders float arithmetic.
    assert!(abs > 0.0 && abs < 1e-5 && rel < 1e-5, "{o}");
}

#[test]
fn relative_difference_is_max_abs_over_the_original_scale() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    // y = x versus y = 2x: |a - b| = |x|, so the relative difference is exactly 1.
    write_matmul(&a, 4, 1.0, false);
    write_matmul(&b, 4, 2.0, false);
    let out = shears(&[
        "verify",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--seed",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    let o = &v["outputs"][0];
    assert_eq!(o["max_rel"].as_f64(), Some(1.0), "{o}");
    assert!(o["max_abs"].as_f64().unwrap() > 0.5, "{o}");
    // The same seed gives the same inputs, another seed others.
    let again = json(&shears(&[
        "verify",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--seed",
        "3",
    ]));
    let other = json(&shears(&[
        "verify",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--seed",
        "4",
    ]));
    assert_eq!(again["outputs"], v["outputs"]);
    assert_ne!(other["outputs"][0]["max_abs"], o["max_abs"]);
}

#[test]
fn different_output_shapes_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    write_matmul(&a, 4, 1.0, false);
    write_matmul(&b, 3, 1.0, false);
    let (pa, pb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = shears(&["verify", pa, pb]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out).replace(dir.path().to_str().unwrap(), "<tmp>");
    insta::assert_snapshot!("shape_mismatch_text", text);
    let out = shears(&["verify", pa, pb, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["shapes_equal"], false);
    assert_eq!(v["outputs"][0]["pruned_shape"], serde_json::json!([1, 3]));
    assert_eq!(v["outputs"][0]["max_abs"], serde_json::Value::Null);
}

#[test]
fn dynamic_inputs_need_a_shape() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.onnx");
    write_matmul(&a, 4, 1.0, true);
    let pa = a.to_str().unwrap();
    let out = shears(&["verify", pa, pa]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error:") && err.contains("--input-shape x="),
        "{err}"
    );
    let out = shears(&["verify", pa, pa, "--input-shape", "x=3,4", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        json(&out)["outputs"][0]["original_shape"],
        serde_json::json!([3, 4])
    );
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let out = shears(&[
        "verify",
        "tests/fixtures/tiny_vgg-fused.onnx",
        "no/such/model.onnx",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error:") && err.contains("no/such/model.onnx"),
        "{err}"
    );
    let out = shears(&["verify", "a.onnx", "b.onnx", "--samples", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
