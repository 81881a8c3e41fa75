//! `groups --heads`, `plan --heads` and `prune --head-ratio` through the CLI on the builder's
//! ViT layer (fused qkv, 2 heads): what they print, the plan a `--plan` file replays, and bad
//! input (exit 2, naming the layer).

mod common;

use std::path::{Path, PathBuf};

use common::{ok, shears, text};
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{save_proto, SaveOptions};

const QKV: &str = "encoder.layers.0.self_attention.qkv.weight";

fn vit(dir: &Path) -> PathBuf {
    let p = dir.join("vit.onnx");
    save_proto(
        &shears_testkit::builder::zoo::vit_encoder_layer(),
        &ExternalStore::none(),
        &p,
        &SaveOptions::default(),
    )
    .unwrap();
    p
}

#[test]
fn groups_lists_head_groups_beside_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let m = vit(dir.path());
    let o = shears(&["groups", m.to_str().unwrap()]);
    ok(&o);
    let t = text(&o.stdout);
    let (widths, heads) = t.split_once("head groups (units = heads)").expect(&t);
    // The head-dim group (8 positions) above, the head group (2 heads) below.
    assert!(widths.contains(&format!("{QKV}[1]")), "{t}");
    assert!(heads.contains("1 groups, 1 prunable (2 channels)"), "{t}");
    let o = shears(&["groups", m.to_str().unwrap(), "--heads", "--json"]);
    ok(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["channels"], 2);
}

#[test]
fn plan_heads_writes_a_head_plan_that_prune_replays() {
    let dir = tempfile::tempdir().unwrap();
    let m = vit(dir.path());
    let m = m.to_str().unwrap();
    let o = shears(&["plan", m, "--layer", QKV, "--heads", "0", "--json"]);
    ok(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["granularity"], "heads");
    assert_eq!(plan["channels_removed"], 1);
    let file = dir.path().join("plan.json");
    std::fs::write(&file, &o.stdout).unwrap();
    let out = dir.path().join("out.onnx");
    let o = shears(&[
        "prune",
        m,
        "--plan",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let pruned = shears_onnx::Model::load(&out).unwrap();
    let w = pruned.graph.value_id(QKV).unwrap();
    let dims = &pruned.initializer(w).unwrap().dims;
    assert_eq!(dims, &[16, 24]);
}

#[test]
fn bad_head_requests_exit_2_naming_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let m = vit(dir.path());
    let m = m.to_str().unwrap();
    for (layer, heads, want) in [
        (QKV, "2", "head 2 is out of range"),
        (QKV, "0,1", "would remove all 2 heads"),
        (
            "encoder.layers.0.mlp.0.weight",
            "0",
            "has no attention heads to prune",
        ),
    ] {
        let o = shears(&["plan", m, "--layer", layer, "--heads", heads]);
        assert_eq!(o.status.code(), Some(2), "{layer} {heads}");
        let e = text(&o.stderr);
        assert!(e.contains(want) && e.contains(layer), "{e}");
    }
    let o = shears(&["plan", m, "--layer", QKV, "--heads", "0", "--idxs", "1"]);
    assert_eq!(o.status.code(), Some(2), "--heads and --idxs conflict");
}

#[test]
fn prune_head_ratio_removes_whole_heads_before_widths() {
    let dir = tempfile::tempdir().unwrap();
    let m = vit(dir.path());
    let out = dir.path().join("out.onnx");
    let report = dir.path().join("r.json");
    let o = shears(&[
        "prune",
        m.to_str().unwrap(),
        "--head-ratio",
        "0.5",
        "-o",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(text(&o.stdout).contains("stage 0/1"), "{}", text(&o.stdout));
    let r = common::read_json(&report);
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["plans"][0]["granularity"], "heads");
    let o = shears(&[
        "prune",
        m.to_str().unwrap(),
        "--head-ratio",
        "1.5",
        "--ratio",
        "0.3",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("head-ratio"),
        "{}",
        text(&o.stderr)
    );
}

/// The builder's tiny Llama (4 query heads of 8 over 2 key/value heads, `repeat_kv` as
/// Unsqueeze + Expand + Reshape): `--gqa kv` (the default) units are key/value heads with their
/// query group, `--gqa query` units are query head `r` of every group with every key/value head
/// kept; a query-head plan says so and `prune --plan` replays it; `prune --head-ratio 0.5
/// --gqa` removes either kind.
#[test]
fn gqa_query_heads_are_planned_and_pruned_through_the_cli() {
    let (dir, w) = tiny_llama();
    let m = w.model.to_str().unwrap();
    let q = "model.layers.0.self_attn.q_proj.weight";
    let o = shears(&[
        "plan", m, "--layer", q, "--heads", "1", "--gqa", "query", "--json",
    ]);
    ok(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["granularity"], "query_heads");
    // Query head 1 of both groups: heads 1 and 3, rows 8..16 and 24..32.
    let idx: Vec<u64> = plan["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(idx, (8..16).chain(24..32).collect::<Vec<u64>>());
    let file = dir.path().join("plan.json");
    std::fs::write(&file, &o.stdout).unwrap();
    let width = |path: &Path, w: &str| {
        let p = shears::load(path).unwrap();
        let v = p.graph.value_id(w).unwrap();
        p.graph.value(v).shape.clone().unwrap()
    };
    let k = "model.layers.0.self_attn.k_proj.weight";
    let out = dir.path().join("replayed.onnx");
    ok(&shears(&[
        "prune",
        m,
        "--plan",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    let (q0, k0) = (width(&w.model, q), width(&w.model, k));
    let (qw, kw) = (width(&out, q), width(&out, k));
    assert_eq!((qw[0] + qw[1], kw), (q0[0] + q0[1] - 16, k0.clone()));
    // --head-ratio 0.5: kv removes a key/value head (and its 2 query heads), query one query
    // head per group; both leave 2 query heads.
    for (gqa, k_lost) in [("kv", 8), ("query", 0)] {
        let out = dir.path().join(format!("{gqa}.onnx"));
        ok(&shears(&[
            "prune",
            m,
            "--head-ratio",
            "0.5",
            "--gqa",
            gqa,
            "-o",
            out.to_str().unwrap(),
        ]));
        let (qw, kw) = (width(&out, q), width(&out, k));
        assert_eq!(
            qw.iter().sum::<usize>(),
            q0.iter().sum::<usize>() - 16,
            "{gqa}"
        );
        assert_eq!(
            kw.iter().sum::<usize>(),
            k0.iter().sum::<usize>() - k_lost,
            "{gqa}"
        );
    }
}

/// With `--gqa query` every key/value head is kept by choice: `groups --heads` lists the
/// key/value groups with that reason, not as a Reshape that cannot follow the axis; with
/// `--gqa kv` nothing is kept for that reason.
#[test]
fn gqa_query_heads_say_why_key_value_heads_are_kept() {
    let (_dir, w) = tiny_llama();
    let m = w.model.to_str().unwrap();
    let by_choice = "every key/value head is kept when query heads are the units (--gqa query)";
    let o = shears(&["groups", m, "--heads", "--gqa", "query"]);
    ok(&o);
    let report = text(&o.stdout);
    let kept: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("blocked by"))
        .collect();
    assert!(!kept.is_empty(), "{report}");
    for line in &kept {
        assert!(line.contains(by_choice), "{line}");
        assert!(!line.contains("splits or merges this axis"), "{line}");
    }
    let o = shears(&["groups", m, "--heads", "--gqa", "kv"]);
    ok(&o);
    assert!(!text(&o.stdout).contains(by_choice), "{}", text(&o.stdout));
}

/// The builder's tiny Llama written into a fresh folder (kept alive by the returned guard).
fn tiny_llama() -> (
    tempfile::TempDir,
    shears_testkit::builder::llama::WrittenModel,
) {
    use shears_testkit::builder::llama::{write_llama, LlamaConfig};
    let dir = tempfile::tempdir().unwrap();
    let w = write_llama(&LlamaConfig::tiny(), &dir.path().join("llama.onnx")).unwrap();
    (dir, w)
}
