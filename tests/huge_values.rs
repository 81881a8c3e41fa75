//! Absurd but valid models (declared dims of 2^30 and more, constant shapes of 2^40, MACs past
//! `u64`) and a closed stdout: every command ends with a clear error (exit 2) or a correct
//! result, never a panic, an abort or a wrapped number.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use shears_onnx::proto::ModelProto;
use shears_onnx::save::encode;
use shears_testkit::builder::{declare, tensor_i64, zoo, ModelBuilder};

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .output()
        .expect("runs the shears binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `y = x @ w` with x declared [2^31, 2^31, 8] and w [8, 4].
fn huge_batch_matmul() -> ModelProto {
    let mut b = ModelBuilder::new(17).named("matmul");
    let x = b.input("x", &[2, 2, 8]);
    let w = b.param_random("fc.weight", &[8, 4]);
    let y = b.node_named("fc", "MatMul", &[&x, &w], 1, vec![]);
    b.output(&y[0]);
    let mut m = b.build();
    let g = m.graph.as_mut().unwrap();
    declare(&mut g.input, "x", &[1 << 31, 1 << 31, 8]);
    let out = g.output[0].name.clone();
    declare(&mut g.output, &out, &[1 << 31, 1 << 31, 4]);
    m
}

/// `y = x + ConstantOfShape([n])`.
fn constant_of_shape(n: i64) -> ModelProto {
    let mut b = ModelBuilder::new(17).named("cos");
    let x = b.input("x", &[1]);
    let shape = b.initializer(tensor_i64("shape", &[1], &[4]));
    let c = b.node_named("fill", "ConstantOfShape", &[&shape], 1, vec![]);
    let y = b.node_named("add", "Add", &[&x, &c[0]], 1, vec![]);
    b.output(&y[0]);
    let mut m = b.build();
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].raw_data = n.to_le_bytes().to_vec().into();
    g.initializer[0].int64_data.clear();
    let out = g.output[0].name.clone();
    declare(&mut g.output, &out, &[n]);
    m
}

fn write(dir: &Path, name: &str, m: &ModelProto) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, encode(m)).unwrap();
    p
}

/// Every command on `model`; returns (command, output) pairs.
fn every_command(model: &Path, layer: &str, out: &Path) -> Vec<(String, Output)> {
    let m = s(model);
    let o = s(out);
    let runs: Vec<Vec<&str>> = vec![
        vec!["inspect", m],
        vec!["inspect", m, "--json"],
        vec!["groups", m],
        vec!["groups", m, "--json"],
        vec!["plan", m, "--layer", layer, "--idxs", "0"],
        vec!["prune", m, "--layer", layer, "--idxs", "0", "-o", o],
        vec!["prune", m, "--ratio", "0.5", "-o", o],
        vec!["verify", m, m, "--samples", "1"],
        vec!["diff", m, m, "--layer", layer, "--idxs", "0"],
    ];
    runs.into_iter()
        .map(|args| {
            // Name commands by their words, the model as `m`, for `find`.
            let name: Vec<&str> = args.iter().map(|&a| if a == m { "m" } else { a }).collect();
            (name.join(" "), shears(&args))
        })
        .collect()
}

/// Runs every command; each must exit 0 or 2 (never a panic: 101, or an abort: a signal),
/// and print its error on one `error:` line. Returns the outputs by command.
fn run_all(model: &Path, layer: &str, out: &Path) -> Vec<(String, Output)> {
    let all = every_command(model, layer, out);
    for (cmd, o) in &all {
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0) | Some(2)),
            "{cmd}: {:?}\n{err}",
            o.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{cmd}: {err}"
        );
        if o.status.code() == Some(2) {
            assert!(err.starts_with("error: "), "{cmd}: {err}");
        }
    }
    all
}

fn find<'a>(all: &'a [(String, Output)], prefix: &str) -> &'a Output {
    &all.iter()
        .find(|(c, _)| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no command {prefix}"))
        .1
}

fn fails_with(all: &[(String, Output)], prefix: &str, needles: &[&str]) {
    let o = find(all, prefix);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{prefix}: {err}");
    for n in needles {
        assert!(err.contains(n), "{prefix}: lacks {n:?}: {err}");
    }
}

#[test]
fn huge_declared_dims_and_overflowing_macs_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    // H = W = 2^30: the graph must not allocate atoms for the spatial axes (8 GB each), and the
    // MACs (8 * 2^60 * 27) do not fit 64 bits.
    let p = write(dir.path(), "convs.onnx", &zoo::two_convs_declared(1 << 30));
    let all = run_all(&p, "conv1", &out);
    for cmd in ["inspect", "prune"] {
        fails_with(
            &all,
            cmd,
            &["the MACs of node 'conv1' (Conv) overflow 64 bits"],
        );
    }
    fails_with(
        &all,
        "verify",
        &["'input'", "has more than 1073741824 elements"],
    );
    // The channel axes still form their groups: conv1's 8 channels are prunable.
    let groups = text(&find(&all, "groups").stdout);
    assert!(groups.contains("1 prunable (8 channels)"), "{groups}");
    let plan = find(&all, "plan");
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert_eq!(find(&all, "diff").status.code(), Some(0));
    assert!(!out.exists());

    // A batch of [2^31, 2^31]: atom counters must not wrap; the weight's input channels are
    // linked to an axis of x (a graph input), so nothing is prunable, and that is the answer.
    let p = write(dir.path(), "matmul.onnx", &huge_batch_matmul());
    let all = run_all(&p, "fc", &out);
    fails_with(
        &all,
        "inspect",
        &["the MACs of node 'fc' (MatMul) overflow 64 bits"],
    );
    fails_with(&all, "prune", &["not prunable"]);
    fails_with(&all, "prune m --ratio", &[]);
    fails_with(&all, "verify", &["has more than 1073741824 elements"]);
    let groups = text(&find(&all, "groups").stdout);
    assert!(groups.contains("2 groups, 0 prunable"), "{groups}");
}

#[test]
fn a_huge_constant_shape_is_refused_by_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let p = write(dir.path(), "cos.onnx", &constant_of_shape(1 << 40));
    let all = run_all(&p, "add", &out);
    fails_with(
        &all,
        "verify",
        &[
            "node 'fill' (ConstantOfShape)",
            "[1099511627776] has more than 1073741824 elements",
        ],
    );
    assert_eq!(find(&all, "inspect").status.code(), Some(0));
    // The library: with shapes inferred, the evaluator refuses the value before running;
    // without, the op refuses the shape it computes.
    let model = |infer: bool| {
        let mut m = shears_onnx::Model::from_proto(
            constant_of_shape(1 << 40),
            "cos",
            shears_onnx::external::ExternalStore::none(),
        )
        .unwrap();
        if infer {
            shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
        }
        m
    };
    let e = shears_verify::Evaluator::new(&model(true))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("'fill_output_0'") && e.contains("more than 1073741824 elements"),
        "{e}"
    );
    let m = model(false);
    let eval = shears_verify::Evaluator::new(&m).unwrap();
    let x = shears_verify::candle_core::Tensor::zeros(
        &[1],
        shears_verify::candle_core::DType::F32,
        &shears_verify::candle_core::Device::Cpu,
    )
    .unwrap();
    let e = eval.eval(&[("x".to_string(), x)]).unwrap_err().to_string();
    assert!(
        e.contains("node 'fill'") && e.contains("more than 1073741824 elements"),
        "{e}"
    );
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let m = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tiny_resnet-keepbn.onnx"
    );
    let out = dir.path().join("out.onnx");
    let o = s(&out);
    for args in [
        vec!["inspect", m],
        vec!["inspect", m, "--json"],
        vec!["groups", m],
        vec!["groups", m, "--json"],
        vec!["plan", m, "--layer", "conv1.weight", "--idxs", "0"],
        vec![
            "plan",
            m,
            "--layer",
            "conv1.weight",
            "--idxs",
            "0",
            "--json",
        ],
        vec!["prune", m, "--ratio", "0.5", "-o", o, "--json"],
        vec![
            "prune",
            m,
            "--layer",
            "conv1.weight",
            "--idxs",
            "0",
            "-o",
            o,
        ],
        vec!["verify", m, m, "--samples", "1"],
        vec!["verify", m, m, "--samples", "1", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shears"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything: its first write fails.
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        let err = text(&done.stderr);
        assert_eq!(done.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    // diff exits 1 on a difference; with nobody reading it still exits 1, quietly: the
    // verdict must not depend on when the reader went away.
    let plan = |idxs: &str| {
        let o = shears(&[
            "plan",
            m,
            "--layer",
            "conv1.weight",
            "--idxs",
            idxs,
            "--json",
        ]);
        let p = dir.path().join(format!("{idxs}.json"));
        std::fs::write(&p, &o.stdout).unwrap();
        p
    };
    let (a, b) = (plan("0"), plan("1"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(["diff", s(&a), s(&b)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().unwrap();
    assert!(done.stderr.is_empty(), "{}", text(&done.stderr));
    assert_eq!(done.status.code(), Some(1));
}

#[test]
fn from_bytes_validates_tensors_like_load() {
    let mut m = zoo::two_convs_declared(8);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    let name = w.name.clone();
    // One float short of its dims.
    let keep = w.raw_data.len() - 4;
    w.raw_data = w.raw_data.slice(..keep);
    let e = shears_onnx::Model::from_bytes(encode(&m).into(), "short")
        .unwrap_err()
        .to_string();
    assert!(e.contains("short") && e.contains(&name), "{e}");
    // Dims whose product overflows are an error, not a wrapped length.
    let mut m = zoo::two_convs_declared(8);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.dims = vec![1 << 40, 1 << 40];
    w.raw_data = Default::default();
    let e = shears_onnx::Model::from_bytes(encode(&m).into(), "huge")
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge") && e.contains(&name), "{e}");
}
