//! `shears prune` with `--layer/--idxs` and `--plan`: writes a smaller model that verifies,
//! deterministically, and refuses to overwrite its input or write anything on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .output()
        .expect("run shears")
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn prunes_a_layer_and_the_result_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.onnx");
    let model = fixture("tiny_resnet-keepbn.onnx");
    let o = shears(&[
        "prune",
        s(&model),
        "--layer",
        "conv1.weight",
        "--idxs",
        "2,6",
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("/conv1/Conv") && text.contains("8 -> 6"),
        "{text}"
    );
    let v = shears(&["verify", s(&model), s(&out), "--samples", "2"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // The pruned file really is smaller.
    let (a, b) = (
        std::fs::metadata(&model).unwrap().len(),
        std::fs::metadata(&out).unwrap().len(),
    );
    assert!(b < a, "{b} >= {a}");
}

#[test]
fn a_saved_plan_gives_the_same_bytes_as_the_direct_request() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("tiny_densenet-keepbn.onnx");
    let plan = dir.path().join("plan.json");
    let p = shears(&[
        "plan",
        s(&model),
        "--layer",
        "features.conv0.weight",
        "--idxs",
        "1,3,5",
        "--json",
    ]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    std::fs::write(&plan, &p.stdout).unwrap();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    let o1 = shears(&[
        "prune",
        s(&model),
        "--layer",
        "features.conv0.weight",
        "--idxs",
        "1,3,5",
        "-o",
        s(&a),
    ]);
    let o2 = shears(&["prune", s(&model), "--plan", s(&plan), "-o", s(&b)]);
    assert!(o1.status.success() && o2.status.success());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn refuses_to_overwrite_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::copy(fixture("tiny_vgg-keepbn.onnx"), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let o = shears(&[
        "prune",
        s(&model),
        "--layer",
        "features.0.weight",
        "--idxs",
        "0",
        "-o",
        s(&model),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("m.onnx") && !err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn bad_requests_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let model = fixture("tiny_vgg-keepbn.onnx");
    for (args, needle) in [
        (
            vec!["--layer", "no.such.layer", "--idxs", "0"],
            "no.such.layer",
        ),
        (
            vec!["--layer", "features.0.weight", "--idxs", "999"],
            "out of range",
        ),
        (
            vec!["--layer", "features.0.weight", "--idxs", "1,1"],
            "repeated",
        ),
    ] {
        let mut all = vec!["prune", s(&model)];
        all.extend(args);
        all.extend(["-o", s(&out)]);
        let o = shears(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
        assert!(!out.exists());
    }
    let bad_plan = dir.path().join("bad.json");
    std::fs::write(&bad_plan, b"{\"not\": \"a plan\"}").unwrap();
    let o = shears(&["prune", s(&model), "--plan", s(&bad_plan), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a Shears plan"));
    // A plan file that removes nothing: an error, never a success message for a copy.
    let no_plans = dir.path().join("none.json");
    std::fs::write(&no_plans, b"[]").unwrap();
    let o = shears(&["prune", s(&model), "--plan", s(&no_plans), "-o", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing to prune"), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "only bad.json and none.json"
    );
}
