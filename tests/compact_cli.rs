//! `shears compact` end to end on builder models: the summary and findings, JSON, byte-identical
//! reruns, exit 2 (nothing written) when no channel is dead, and a bad `--tolerance`.

use std::path::{Path, PathBuf};

mod common;
use common::shears;

use prost::Message;
use shears_onnx::external::ExternalStore;
use shears_onnx::tensor;
use shears_testkit::builder::ModelBuilder;

/// conv1 (3x3) -> BN -> ReLU -> conv2 (1x1); with `dead`, conv1's channel 2 has zero weights
/// and BN scale and shift 0 (dead), channel 5 zero weights and shift 0.7, mean 0 (the
/// constant 0.7, folded into conv2).
fn write_model(dir: &Path, dead: bool) -> PathBuf {
    let mut b = ModelBuilder::new(17).named("masked").seed(5);
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.conv(&y, "conv2", 4, 1, 1, 0, 1, true);
    b.output(&y);
    let mut proto = b.build();
    if dead {
        for t in &mut proto.graph.as_mut().unwrap().initializer {
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            let mut v = tensor::decode_f32(t, &ExternalStore::none()).unwrap();
            match t.name.as_str() {
                "conv1.weight" => {
                    v[2 * 27..3 * 27].iter_mut().for_each(|w| *w = 0.0);
                    v[5 * 27..6 * 27].iter_mut().for_each(|w| *w = 0.0);
                }
                "bn1.weight" => v[2] = 0.0,
                "bn1.bias" => (v[2], v[5]) = (0.0, 0.7),
                "bn1.running_mean" => v[5] = 0.0,
                _ => continue,
            }
            let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            tensor::set_raw(t, raw, &dims);
        }
    }
    let path = dir.join(if dead { "masked.onnx" } else { "dense.onnx" });
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

#[test]
fn compact_removes_the_dead_and_the_folded_channel_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), true);
    let out = dir.path().join("small.onnx");
    let o = shears(&[
        "compact",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(text.contains("8 -> 6"), "{text}");
    assert!(text.contains("removed 2: zero"), "{text}");
    assert!(text.contains("removed 5: constant 0.7"), "{text}");
    assert!(text.contains("folded into /conv2/Conv"), "{text}");
    // Same bytes and same report on a second run.
    let first = std::fs::read(&out).unwrap();
    let o2 = shears(&[
        "compact",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.stdout, o2.stdout);
    assert_eq!(first, std::fs::read(&out).unwrap());
    let v = shears(&[
        "verify",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let rel = report["outputs"][0]["max_rel"].as_f64().unwrap();
    assert!(rel <= 1e-5, "relative difference {rel}");
}

#[test]
fn compact_json_lists_groups_with_removed_and_kept_channels() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), true);
    let out = dir.path().join("small.onnx");
    let o = shears(&[
        "compact",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = &r["groups"][0];
    let removed: Vec<u64> = g["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["channel"].as_u64().unwrap())
        .collect();
    assert_eq!(removed, [2, 5]);
    assert_eq!(g["removed"][1]["folded_into"][0], "/conv2/Conv");
    assert!(r["summary"]["parameters"][1].as_u64() < r["summary"]["parameters"][0].as_u64());
}

#[test]
fn compact_without_dead_channels_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), false);
    let out = dir.path().join("small.onnx");
    let o = shears(&[
        "compact",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no dead channel"), "{err}");
    assert!(!out.exists());
}

#[test]
fn compact_rejects_a_negative_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), true);
    let out = dir.path().join("small.onnx");
    let o = shears(&[
        "compact",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tolerance=-1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tolerance"));
    assert!(!out.exists());
}
