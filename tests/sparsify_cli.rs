//! `shears sparsify` and `prune --then-sparsify` end to end on a builder model: the summary,
//! JSON and `--report`, byte-identical reruns, `--store sparse` smaller and read back,
//! `inspect`'s sparsity section, and every bad flag refused with exit 2 naming it.

use std::path::{Path, PathBuf};

mod common;
use common::{ok, read_json, shears, text};

use prost::Message;
use shears_testkit::builder::ModelBuilder;

/// conv1 (3x3, 3 -> 8) -> BN -> ReLU -> conv2 (3x3, 8 -> 8, bias) -> ReLU -> GAP -> Flatten ->
/// fc (Gemm 8 -> 4). conv1's reduction (3 input channels) is not a multiple of 4.
fn write_model(dir: &Path) -> PathBuf {
    let mut b = ModelBuilder::new(17).named("small").seed(11);
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.global_avgpool(&y);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "fc", 4, true);
    b.output(&y);
    let path = dir.join("small.onnx");
    std::fs::write(&path, b.build().encode_to_vec()).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sparsify_summarizes_and_reruns_identically() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    let report = dir.path().join("report.json");
    let run = |out: &Path| {
        shears(&[
            "sparsify",
            s(&model),
            "-o",
            s(out),
            "--sparsity",
            "0.5",
            "--report",
            s(&report),
        ])
    };
    let o = run(&a);
    ok(&o);
    let t = text(&o.stdout);
    assert!(t.contains("conv2.weight"), "{t}");
    assert!(t.contains("0.00% -> 50.00%"), "{t}");
    ok(&run(&b));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let r = read_json(&report);
    assert_eq!(r["settings"]["sparsity"], 0.5);
    let layers = r["summary"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        let (n, z) = (
            l["elements"].as_u64().unwrap(),
            l["zeros"][1].as_u64().unwrap(),
        );
        assert!((z as i64 - (n as i64 + 1) / 2).abs() <= 1, "{l}");
    }
    let j = shears(&[
        "sparsify",
        s(&model),
        "-o",
        s(&a),
        "--pattern",
        "2:4",
        "--json",
    ]);
    ok(&j);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let untouched = v["untouched"].as_array().unwrap();
    assert_eq!(untouched.len(), 1, "{v}");
    assert_eq!(untouched[0]["weight"], "conv1.weight");
    assert!(v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["pattern_satisfied"] == true));
    let i = shears(&["inspect", s(&a), "--json", "--pattern", "1:2"]);
    ok(&i);
    let v: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    for w in v["sparsity"]["weights"].as_array().unwrap() {
        let want = if w["weight"] == "conv1.weight" {
            serde_json::Value::Null
        } else {
            true.into()
        };
        assert_eq!(w["patterns"]["2:4"], want, "{w}");
        // 2:4 does not imply 1:2, but the verdict is there wherever 2 divides the reduction.
        assert_eq!(w["patterns"]["1:2"].is_null(), want.is_null(), "{w}");
    }
    assert!(v["sparsity"]["zeros"].as_u64().unwrap() > 0);
    let t = text(&shears(&["inspect", s(&a)]).stdout);
    assert!(t.contains("zeros") && t.contains("2:4"), "{t}");
}

#[test]
fn sparse_store_is_smaller_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let (dense, sparse) = (dir.path().join("d.onnx"), dir.path().join("s.onnx"));
    let args = |out: &Path, store: &str| {
        shears(&[
            "sparsify",
            s(&model),
            "-o",
            s(out),
            "--sparsity",
            "0.9",
            "--store",
            store,
        ])
    };
    ok(&args(&dense, "dense"));
    let o = args(&sparse, "sparse");
    ok(&o);
    assert!(
        text(&o.stdout).contains(": sparse (dense"),
        "{}",
        text(&o.stdout)
    );
    let (d, sp) = (
        std::fs::metadata(&dense).unwrap().len(),
        std::fs::metadata(&sparse).unwrap().len(),
    );
    assert!(sp < d, "sparse {sp} bytes, dense {d}");
    // The evaluator reads the sparse initializers as the dense zeros.
    let v = shears(&["verify", s(&dense), s(&sparse)]);
    ok(&v);
    let i = shears(&["inspect", s(&sparse), "--json"]);
    ok(&i);
    let j: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    let z = j["sparsity"]["zeros"].as_u64().unwrap();
    let i = shears(&["inspect", s(&dense), "--json"]);
    let jd: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(z, jd["sparsity"]["zeros"].as_u64().unwrap());
}

#[test]
fn prune_then_sparsify_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let out = dir.path().join("p.onnx");
    let o = shears(&[
        "prune",
        s(&model),
        "-o",
        s(&out),
        "--ratio",
        "0.5",
        "--then-sparsify",
        "0.5",
        "--json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["parameters"][1].as_u64() < v["parameters"][0].as_u64());
    let t = &v["then_sparsified"];
    let (z, n) = (
        t["zeros"].as_u64().unwrap(),
        t["elements"].as_u64().unwrap(),
    );
    assert!((z as i64 - (n as i64 + 1) / 2).abs() <= t["layers"].as_array().unwrap().len() as i64);
    let i = shears(&["inspect", s(&out), "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert!(j["sparsity"]["zeros"].as_u64().unwrap() >= z);
    for extra in [&[][..], &["1.5"][..], &["-0.5"][..]] {
        let mut args = vec!["prune", s(&model), "-o", s(&out), "--ratio", "0.5"];
        args.push("--then-sparsify");
        args.extend_from_slice(extra);
        let bad = shears(&args);
        assert_eq!(bad.status.code(), Some(2), "{extra:?}");
        let err = text(&bad.stderr);
        assert!(err.contains("--then-sparsify"), "{extra:?}: {err}");
    }
    // A pattern alone says how much.
    let o = shears(&[
        "prune",
        s(&model),
        "-o",
        s(&out),
        "--ratio",
        "0.5",
        "--then-sparsify",
        "--pattern",
        "1:2",
        "--json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let layers = v["then_sparsified"]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(l["pattern_satisfied"], true, "{l}");
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path());
    let out = dir.path().join("o.onnx");
    let cases: &[(&[&str], &str)] = &[
        (&["--sparsity", "1"], "--sparsity"),
        (&["--sparsity", "-0.5"], "--sparsity"),
        (&["--pattern", "2-4"], "--pattern"),
        (&["--pattern", "4:4"], "--pattern"),
        (&["--pattern", "5:4"], "--pattern"),
        (&["--threshold", "-1"], "--threshold"),
        (&["--layer-sparsity", "conv2"], "--layer-sparsity"),
        (
            &["--sparsity", "0.5", "--criterion", "wanda"],
            "--criterion",
        ),
        (&["--sparsity", "0.5", "--pattern", "2:4"], "exclusive"),
        (&[], "--sparsity"),
        (
            &["--sparsity", "0.5", "--ignore", "*"],
            "no weight to sparsify",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["sparsify", s(&model), "-o", s(&out)];
        args.extend_from_slice(extra);
        let o = shears(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = text(&o.stderr);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{extra:?} wrote a file");
    }
}
