//! `shears inspect` on bad input and on models whose shapes need help: errors exit with status 2
//! and name the file, input or node; a symbolic batch is counted per batch element unless `--input-shape` sets it; ops without a shape
//! rule leave shapes unknown without failing the report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shears_onnx::proto::ModelProto;
use shears_testkit::builder::{attr_ints, ModelBuilder};

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run shears")
}

fn write(dir: &Path, name: &str, proto: &ModelProto) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, shears_onnx::save::encode(proto)).unwrap();
    p
}

/// Asserts a failure with status 2 whose message contains every needle.
#[track_caller]
fn check_fails(args: &[&str], needles: &[&str]) {
    let out = shears(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{err}' lacks '{n}'");
    }
    assert!(out.stdout.is_empty(), "{args:?} printed a report");
}

fn succeeds(args: &[&str]) -> String {
    let out = shears(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `input [N, 3, 8, 8]` (N dynamic) -> Conv 3->4 3x3 -> Relu -> `output`.
fn dynamic_batch_model() -> ModelProto {
    let mut b = ModelBuilder::new(17);
    b.input("input", &[-1, 3, 8, 8]);
    b.init_f32("w", &[4, 3, 3, 3], &[0.1; 108]);
    b.node_with_outputs("conv", "Conv", &["input", "w"], &["c"], vec![]);
    b.node_with_outputs("relu", "Relu", &["c"], &["output"], vec![]);
    b.output("output");
    b.build()
}

#[test]
fn unreadable_models_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    check_fails(&[missing.to_str().unwrap()], &["missing.onnx"]);
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\xff\xff\xff not a protobuf").unwrap();
    check_fails(&[garbage.to_str().unwrap()], &["garbage.onnx"]);
}

#[test]
fn a_symbolic_batch_is_counted_per_batch_element_and_an_input_shape_sets_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "dyn.onnx", &dynamic_batch_model());
    let p = p.to_str().unwrap();
    let text = succeeds(&[p]);
    // 4 * 6 * 6 outputs per batch element, each 3 * 3 * 3 MACs = 3,888.
    assert!(
        text.contains("MACs          3,888 (3.89 K) per batch element\n"),
        "{text}"
    );
    assert!(text.contains("input  f32   Nx3x8x8"), "{text}");
    assert!(
        text.contains("note: symbolic input dimension 'N': MACs and shapes are per batch element"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&succeeds(&[p, "--json"])).unwrap();
    assert_eq!(
        json["symbolic_dimensions"],
        serde_json::json!([{"counted_at": 1, "dimension": "N", "inputs": ["input[0]"]}])
    );
    assert_eq!(json["totals"]["macs"], 3888);
    let text = succeeds(&[p, "--input-shape", "input=2,3,8,8"]);
    assert!(text.contains("2x4x6x6"), "{text}");
    // 2 * 4 * 6 * 6 outputs, each 3 * 3 * 3 MACs = 7,776.
    assert!(text.contains("MACs          7,776 (7.78 K)\n"), "{text}");
    assert!(!text.contains("symbolic"), "{text}");
}

#[test]
fn bad_input_shapes_are_errors_naming_the_input() {
    let fixture = "tests/fixtures/tiny_resnet-keepbn.onnx";
    check_fails(
        &[fixture, "--input-shape", "input=1,three"],
        &["--input-shape 'input=1,three'"],
    );
    check_fails(
        &[fixture, "--input-shape", "image=1,3,32,32"],
        &["no input", "input"],
    );
    // The fixture declares a fixed 1x3x32x32 input: a different size contradicts it.
    check_fails(
        &[fixture, "--input-shape", "input=1,3,64,64"],
        &["declares input 'input'", "dimension 2"],
    );
    check_fails(&[fixture, "--input-shape", "input=1,3,32"], &["rank"]);
}

#[test]
fn an_inconsistent_node_is_an_error_naming_it() {
    let mut b = ModelBuilder::new(17);
    b.input("input", &[1, 3, 8, 8]);
    // The weight expects 5 input channels; the input has 3.
    b.init_f32("w", &[4, 5, 3, 3], &[0.1; 180]);
    b.node_with_outputs(
        "bad_conv",
        "Conv",
        &["input", "w"],
        &["output"],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    b.output("output");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.onnx", &b.build());
    check_fails(
        &[p.to_str().unwrap()],
        &["node 'bad_conv' (Conv)", "3 channels"],
    );
}

#[test]
fn an_op_without_a_shape_rule_leaves_shapes_unknown_but_the_report_works() {
    let mut b = ModelBuilder::new(17);
    b.input("input", &[1, 3, 8, 8]);
    b.init_f32("w", &[4, 3, 1, 1], &[0.1; 12]);
    b.init_f32("w2", &[2, 4, 1, 1], &[0.1; 8]);
    b.node_with_outputs("conv", "Conv", &["input", "w"], &["c"], vec![]);
    b.node_with_outputs("custom", "MyOp", &["c"], &["u"], vec![]);
    b.node_with_outputs("conv2", "Conv", &["u", "w2"], &["output"], vec![]);
    b.output("output");
    let proto = b.build();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "custom.onnx", &proto);
    let text = succeeds(&[p.to_str().unwrap()]);
    assert!(
        text.contains("note: shapes unknown from node 'custom' (MyOp)"),
        "{text}"
    );
    assert!(text.contains("incomplete"), "{text}");
    let json = succeeds(&[p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["totals"]["parameters"], 12 + 8);
    assert_eq!(v["totals"]["macs"], 4 * 64 * 3);
    assert_eq!(v["totals"]["macs_complete"], false);
    assert_eq!(v["outputs"][0]["shape"], serde_json::Value::Null);
    assert_eq!(v["unknown_shapes"][0]["node"], "custom");
}
