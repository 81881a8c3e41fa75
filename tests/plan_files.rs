//! Plan files are verified, not trusted, and read by one reader: `prune --plan` re-derives each
//! plan on the model of its stage and refuses an edited one; a single plan, an array of plans
//! and a `prune --report` (one stage or several) are all read by `prune --plan` and `diff`.

mod common;
use common::{ok, read_json, shears, text};

use std::path::{Path, PathBuf};

use serde_json::Value;

const MODEL: &str = "tests/fixtures/tiny_resnet-keepbn.onnx";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `shears plan --json` for `layer` and `idxs`, written to `dir/name`.
fn saved_plan(dir: &Path, name: &str, layer: &str, idxs: &str) -> PathBuf {
    let o = shears(&["plan", MODEL, "--layer", layer, "--idxs", idxs, "--json"]);
    ok(&o);
    let path = dir.join(name);
    std::fs::write(&path, &o.stdout).unwrap();
    path
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn an_edited_plan_is_refused_naming_the_plan_and_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let plan = saved_plan(dir.path(), "p.json", "conv1.weight", "2,6");
    // The unedited plan applies, byte-identically to the direct request.
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    ok(&shears(&["prune", MODEL, "--plan", s(&plan), "-o", s(&a)]));
    ok(&shears(&[
        "prune",
        MODEL,
        "--layer",
        "conv1.weight",
        "--idxs",
        "2,6",
        "-o",
        s(&b),
    ]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // The BatchNorm's scale now loses channels 3 and 7 while its conv loses 2 and 6.
    let mut v = read_json(&plan);
    let entries = v["entries"].as_array_mut().unwrap();
    let (i, bn) = entries
        .iter_mut()
        .enumerate()
        .find(|(_, e)| e["op_type"] == "BatchNormalization" && e["kind"] == "parameter")
        .expect("conv1 feeds a BatchNorm");
    bn["indices"] = serde_json::json!([3, 7]);
    let edited = dir.path().join("edited.json");
    write_json(&edited, &v);
    let out = dir.path().join("c.onnx");
    let o = shears(&["prune", MODEL, "--plan", s(&edited), "-o", s(&out)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("edited.json")
            && err.contains("layer 'conv1.weight' [2, 6]")
            && err.contains(&format!("entry {i}:"))
            && err.contains("bn1.weight")
            && err.contains("idxs=[3, 7]")
            && err.contains("idxs=[2, 6]")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists());

    // A changed total is refused too, even with every entry intact.
    let mut v = read_json(&plan);
    v["parameters_removed"] = serde_json::json!(1);
    write_json(&edited, &v);
    let o = shears(&["prune", MODEL, "--plan", s(&edited), "-o", s(&out)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("totals"), "{err}");
    assert!(!out.exists());
}

#[test]
fn arrays_and_reports_apply_like_the_plans_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = saved_plan(dir.path(), "p1.json", "conv1.weight", "2,6");
    let p2 = saved_plan(dir.path(), "p2.json", "layer1.0.conv1.weight", "0,1");
    let array = dir.path().join("array.json");
    write_json(&array, &Value::Array(vec![read_json(&p1), read_json(&p2)]));
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    let report = dir.path().join("r.json");
    ok(&shears(&[
        "prune",
        MODEL,
        "--plan",
        s(&p1),
        "--plan",
        s(&p2),
        "-o",
        s(&a),
        "--report",
        s(&report),
    ]));
    ok(&shears(&["prune", MODEL, "--plan", s(&array), "-o", s(&b)]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // The report --plan wrote is itself a plan file.
    let c = dir.path().join("c.onnx");
    ok(&shears(&[
        "prune",
        MODEL,
        "--plan",
        s(&report),
        "-o",
        s(&c),
    ]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

#[test]
fn a_multi_stage_report_replays_stage_by_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    let report = dir.path().join("r.json");
    ok(&shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--steps",
        "3",
        "-o",
        s(&a),
        "--report",
        s(&report),
    ]));
    let r = read_json(&report);
    assert_eq!(r["stages"].as_array().unwrap().len(), 3);
    assert!(!r["stages"][1]["plans"].as_array().unwrap().is_empty());
    ok(&shears(&[
        "prune",
        MODEL,
        "--plan",
        s(&report),
        "-o",
        s(&b),
    ]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Stage 2's plans are in stage 2's coordinates: an edit there is caught on that model.
    let mut r = r;
    let plan = &mut r["stages"][1]["plans"][0];
    let last = plan["entries"].as_array().unwrap().len() - 1;
    plan["entries"][last]["elements_removed"] = serde_json::json!(12345);
    let edited = dir.path().join("edited.json");
    write_json(&edited, &r);
    let c = dir.path().join("c.onnx");
    let o = shears(&["prune", MODEL, "--plan", s(&edited), "-o", s(&c)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stage 2, plan #0") && err.contains(&format!("entry {last}:")),
        "{err}"
    );
    assert!(!c.exists());

    // A multi-stage report cannot be batched with other plans.
    let p = saved_plan(dir.path(), "p.json", "conv1.weight", "2,6");
    let o = shears(&[
        "prune",
        MODEL,
        "--plan",
        s(&report),
        "--plan",
        s(&p),
        "-o",
        s(&c),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("r.json") && err.contains("3 stages must be given alone"),
        "{err}"
    );
}

#[test]
fn diff_reads_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = saved_plan(dir.path(), "p1.json", "conv1.weight", "2,6");
    let p2 = saved_plan(dir.path(), "p2.json", "layer1.0.conv1.weight", "0,1");
    let one = dir.path().join("one.json");
    write_json(&one, &Value::Array(vec![read_json(&p1)]));
    let two = dir.path().join("two.json");
    write_json(&two, &Value::Array(vec![read_json(&p1), read_json(&p2)]));
    let report = dir.path().join("r.json");
    ok(&shears(&[
        "prune",
        MODEL,
        "--plan",
        s(&p1),
        "-o",
        s(&dir.path().join("a.onnx")),
        "--report",
        s(&report),
    ]));
    // A plan, a one-plan array and a one-plan report hold the same plan.
    for (a, b) in [(&p1, &one), (&p1, &report), (&one, &report)] {
        let o = shears(&["diff", s(a), s(b)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(o.stdout.is_empty());
    }
    // One plan more is a difference, shown as added lines.
    let o = shears(&["diff", s(&one), s(&two)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("+ Pruning plan: layer1.0.conv1.weight"),
        "{out}"
    );
    assert!(!out.contains("- Pruning plan"), "{out}");

    // Multi-stage reports compare stage by stage.
    let staged = dir.path().join("staged.json");
    ok(&shears(&[
        "prune",
        MODEL,
        "--ratio",
        "0.5",
        "--steps",
        "2",
        "-o",
        s(&dir.path().join("b.onnx")),
        "--report",
        s(&staged),
    ]));
    let o = shears(&["diff", s(&staged), s(&staged)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = shears(&["diff", s(&report), s(&staged)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("+ stage 1/2") && out.contains("+ stage 2/2"),
        "{out}"
    );

    // Not a plan file: exit 2 naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{\"stages\": [{\"no\": 1}]}").unwrap();
    let o = shears(&["diff", s(&bad), s(&p1)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.json") && err.contains("stage 1 has no 'plans'"),
        "{err}"
    );
}
