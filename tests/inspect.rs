//! `shears inspect` on every fixture in `tests/fixtures`: the text and JSON reports are pinned
//! by insta snapshots (`tests/snapshots/inspect__{text,json}_<fixture>.snap`).

use std::path::Path;
use std::process::Command;

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    names.sort();
    names
}

/// Runs `shears inspect` from the repository root (so the reported path is relative and the
/// same on every machine); returns stdout, asserting success.
fn inspect(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shears"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run shears");
    assert!(
        out.status.success(),
        "shears inspect {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn every_fixture_is_described() {
    let names = fixtures();
    assert_eq!(
        names.len(),
        30,
        "expected 30 fixture models, found {names:?}"
    );
    for name in names {
        let stem = name.trim_end_matches(".onnx").to_string();
        let path = format!("tests/fixtures/{name}");
        let text = inspect(&[&path]);
        insta::assert_snapshot!(format!("text_{stem}"), text);
        let json = inspect(&[&path, "--json"]);
        insta::assert_snapshot!(format!("json_{stem}"), json);
    }
}

#[test]
fn json_is_valid_with_sorted_keys_and_matches_the_text() {
    let json = inspect(&["tests/fixtures/tiny_resnet-keepbn.onnx", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    // serde_json's Value keeps object keys sorted; re-serialising must not reorder anything.
    assert_eq!(serde_json::to_string_pretty(&v).unwrap() + "\n", json);
    assert_eq!(v["schema"], "shears-inspect/1");
    // PyTorch parameters of the fixture (see tests/fixtures README): BN statistics excluded.
    assert_eq!(v["totals"]["parameters"], 11_730);
    let layers = v["layers"].as_array().unwrap();
    let sum: u64 = layers
        .iter()
        .map(|l| l["parameters"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 11_730);
    let text = inspect(&["tests/fixtures/tiny_resnet-keepbn.onnx"]);
    assert!(text.contains("11,730"), "{text}");
}

#[test]
fn variants_of_one_model_agree_on_macs() {
    // keepbn, fused and dynamo exports of one PyTorch model compute the same convolutions and
    // matrix products, so their MACs are equal even though the graphs differ.
    for model in [
        "tiny_resnet",
        "tiny_vit",
        "tiny_convnext",
        "tiny_shufflenet",
    ] {
        let macs: Vec<u64> = ["keepbn", "fused", "dynamo"]
            .iter()
            .map(|v| {
                let json = inspect(&[&format!("tests/fixtures/{model}-{v}.onnx"), "--json"]);
                let v: serde_json::Value = serde_json::from_str(&json).unwrap();
                v["totals"]["macs"].as_u64().unwrap()
            })
            .collect();
        assert!(
            macs.iter().all(|&m| m == macs[0] && m > 0),
            "{model}: {macs:?}"
        );
    }
}
