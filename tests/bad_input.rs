//! Bad input at the command line: every malformed model file (empty, truncated, garbage, another
//! format, cyclic graph, undefined or duplicate values, wrong tensor lengths, missing or unsafe
//! external data) makes every command (`inspect`, `groups`, `plan`, `prune`, `verify`, `diff`)
//! exit with status 2 and a one-line `error:` naming the file and the node or tensor, never a
//! panic, and write nothing.
//!
//! The cases are the importer's own (`crates/shears-onnx/tests/common/bad.rs`), so the library
//! and the CLI are checked against the same list.

#[path = "../crates/shears-onnx/tests/common/bad.rs"]
mod bad;

use std::path::Path;
use std::process::Command;

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Every command on `model`, writing (if it wrongly did) into the model's folder.
fn commands(model: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["inspect", model],
        vec!["inspect", model, "--json"],
        vec!["groups", model],
        vec!["groups", model, "--json"],
        vec!["plan", model, "--layer", "w", "--idxs", "0"],
        vec![
            "prune", model, "--layer", "w", "--idxs", "0", "-o", "out.onnx",
        ],
        vec!["prune", model, "--ratio", "0.5", "-o", "out.onnx"],
        vec!["verify", model, model, "--samples", "1"],
        vec!["diff", model, model, "--layer", "w", "--idxs", "0"],
    ]
}

/// Runs every command on the case's model, in the case's folder.
fn check(case: &bad::Case) {
    let dir = tempfile::tempdir().unwrap();
    let path = case.write(dir.path());
    let before = listing(dir.path());
    let model = path.to_str().unwrap();
    for args in commands(model) {
        let out = Command::new(env!("CARGO_BIN_EXE_shears"))
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("run shears");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{} ({})", case.name, args[0]);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{what}: the error does not name the file: {stderr}"
        );
        // `diff` reads a `.json` argument as a plan file, not a model.
        let expect: Vec<&str> = if args[0] == "diff" && model.ends_with(".json") {
            vec!["not a Shears plan"]
        } else {
            case.expect.clone()
        };
        for fragment in &expect {
            assert!(
                stderr.contains(fragment),
                "{what}: lacks {fragment:?}: {stderr}"
            );
        }
        assert!(out.stdout.is_empty(), "{what}: printed a report");
        assert_eq!(listing(dir.path()), before, "{what}: the folder changed");
    }
}

#[test]
fn every_bad_input_exits_2_with_a_clear_error_and_writes_nothing() {
    let cases = bad::cases();
    assert!(cases.len() >= 16);
    for case in &cases {
        check(case);
    }
}

#[test]
fn a_missing_model_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_shears"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nope.onnx") && stderr.contains("No such file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_symbolic_dimension_bound_to_two_sizes_exits_2_naming_it() {
    // Inputs a and b both declare their batch as 'N'; the user gives it two sizes.
    let mut b = shears_testkit::builder::ModelBuilder::new(17);
    b.input("a", &[-1, 3]);
    b.input("b", &[-1, 3]);
    b.node_with_outputs("add", "Add", &["a", "b"], &["y"], vec![]);
    b.output("y");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two_inputs.onnx");
    shears_onnx::save::save_proto(
        &b.build(),
        &shears_onnx::external::ExternalStore::none(),
        &path,
        &shears_onnx::save::SaveOptions::default(),
    )
    .unwrap();
    let out = dir.path().join("out.onnx");
    let before = listing(dir.path());
    let (p, o) = (path.to_str().unwrap(), out.to_str().unwrap());
    let shapes = ["--input-shape", "a=2,3", "--input-shape", "b=3,3"];
    for cmd in [
        vec!["inspect", p],
        vec!["groups", p],
        vec!["plan", p, "--layer", "add", "--idxs", "0"],
        vec!["prune", p, "--ratio", "0.5", "-o", o],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_shears"))
            .args(&cmd)
            .args(shapes)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{cmd:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{cmd:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ")
                && stderr.contains("two_inputs.onnx")
                && stderr.contains("symbolic dimension 'N'")
                && stderr.contains("input 'a'"),
            "{cmd:?}: {stderr}"
        );
        assert_eq!(listing(dir.path()), before, "{cmd:?}: wrote something");
    }
}

/// A quantized weight whose DequantizeLinear `axis` is out of range, or whose per-channel
/// scale is not as long as that axis: every command exits 2 naming the node and what
/// disagrees, and writes nothing.
#[test]
fn a_quantization_axis_or_scale_that_disagrees_exits_2_naming_the_node() {
    use shears_onnx::proto::tensor_proto::DataType;
    use shears_onnx::proto::TensorProto;
    use shears_testkit::builder::{attr_int, tensor_f32, ModelBuilder};
    let int8 = |name: &str, dims: &[i64]| TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: vec![1u8; dims.iter().product::<i64>() as usize].into(),
        ..Default::default()
    };
    let cases: [(&str, i64, i64, &str); 2] = [
        ("axis.onnx", 4, 4, "axis 4 is out of range"),
        (
            "scale.onnx",
            0,
            3,
            "per-axis scale has 3 elements but axis 0",
        ),
    ];
    for (file, axis, channels, expect) in cases {
        let mut b = ModelBuilder::new(17);
        b.input("x", &[1, 2, 5, 5]);
        b.initializer(int8("wq", &[4, 2, 3, 3]));
        b.initializer(tensor_f32("ws", &[channels], &vec![0.1; channels as usize]));
        b.initializer(int8("wz", &[channels]));
        b.node_with_outputs(
            "dq",
            "DequantizeLinear",
            &["wq", "ws", "wz"],
            &["w"],
            vec![attr_int("axis", axis)],
        );
        b.set_shape("w", &[4, 2, 3, 3]);
        b.node_with_outputs("conv", "Conv", &["x", "w"], &["y"], vec![]);
        b.set_shape("y", &[1, 4, 3, 3]);
        b.output("y");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        shears_onnx::save::save_proto(
            &b.build(),
            &shears_onnx::external::ExternalStore::none(),
            &path,
            &shears_onnx::save::SaveOptions::default(),
        )
        .unwrap();
        let before = listing(dir.path());
        let model = path.to_str().unwrap();
        for args in commands(model) {
            let out = Command::new(env!("CARGO_BIN_EXE_shears"))
                .current_dir(dir.path())
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(
                stderr.starts_with("error: ")
                    && stderr.contains(file)
                    && stderr.contains("node 'dq'")
                    && stderr.contains(expect),
                "{args:?}: {stderr}"
            );
            assert_eq!(listing(dir.path()), before, "{args:?}: wrote something");
        }
    }
}
