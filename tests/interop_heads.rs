//! Whole attention heads through a real client: every head removed alone, and `prune
//! --head-ratio 0.5 --ratio 0.3`, give models that pass `onnx.checker(full_check=True)`, keep
//! their symbolic sequence (batch for the ViT) and run in onnxruntime at two sizes of it
//! (`tests/interop/check_symbolic.py`). On an attention block that is not in `../shared`
//! (`tests/interop/attention_model.py`: `0`-entry Reshape targets, keys transposed straight to
//! `[1, h, d, seq]`, a per-head score bias) and, with the shared suite, on the transformer
//! exports (TorchScript and dynamo).
#![cfg(feature = "interop")]

mod common;

use std::path::{Path, PathBuf};

use shears_graph::{DependencyGraph, Granularity};
use shears_onnx::InputShapes;

fn shears(args: &[&str]) {
    let o = common::shears(args);
    assert!(
        o.status.success(),
        "shears {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every head of every attention of `original` removed alone (through the library), and the
/// CLI's `--head-ratio 0.5 --ratio 0.3`: (pruned, original) pairs for `check_symbolic.py`.
fn pruned_pairs(dir: &Path, original: &Path, tag: &str) -> Vec<PathBuf> {
    pruned_pairs_with(dir, original, tag, "kv")
}

/// [`pruned_pairs`] with `--gqa gqa`. With query heads as units (`query`) the key/value head
/// groups are blocked by design (every key/value head stays) and are skipped.
/// `prune --head-ratio 0.5 --ratio 0.3 --gqa GQA`: half the heads (or query heads), then
/// 30% of the widths.
fn prune_heads_and_widths(original: &Path, gqa: &str, out: &Path) {
    shears(&[
        "prune",
        original.to_str().unwrap(),
        "--head-ratio",
        "0.5",
        "--ratio",
        "0.3",
        "--gqa",
        gqa,
        "-o",
        out.to_str().unwrap(),
    ]);
}

fn pruned_pairs_with(dir: &Path, original: &Path, tag: &str, gqa: &str) -> Vec<PathBuf> {
    let model = shears::load(original).unwrap();
    let granularity = match gqa {
        "query" => Granularity::QueryHeads,
        _ => Granularity::Heads,
    };
    let graph = DependencyGraph::build_with(&model, granularity);
    let layers = shears_plan::GroupLayers::new(&model, &graph);
    let mut pairs = Vec::new();
    for g in graph.groups.iter().filter(|g| graph.is_head_group(g.id)) {
        if granularity == Granularity::QueryHeads && !g.is_prunable() {
            continue;
        }
        assert!(g.is_prunable(), "{tag}: a head group is blocked");
        let layer = layers.layer(g.id).unwrap();
        let name = model.graph.node(layer.node).name.clone();
        let heads = shears_plan::layer_heads(&model, &graph, &name).unwrap();
        for h in 0..heads.heads.len() {
            let plan = shears_plan::plan_heads(&model, &graph, &name, &[h]).unwrap();
            let pruned = shears::apply(&model, &[plan]).unwrap();
            let out = dir.join(format!("{tag}-{gqa}-g{}-h{h}.onnx", g.id.0));
            shears::save(&model, &pruned, &out).unwrap();
            pairs.extend([out, original.to_path_buf()]);
        }
    }
    assert!(!pairs.is_empty(), "{tag}: no head to remove");
    let out = dir.join(format!("{tag}-{gqa}-ratio.onnx"));
    prune_heads_and_widths(original, gqa, &out);
    pairs.extend([out, original.to_path_buf()]);
    pairs
}

/// Runs `check_symbolic.py` over (pruned, original) pairs; panics with its report on failure.
fn check_symbolic(pairs: &[PathBuf]) {
    let reports = common::python_json("check_symbolic.py", pairs);
    assert_eq!(reports.len(), pairs.len() / 2, "one report per pair");
}

#[test]
fn heads_of_an_attention_block_not_in_shared_prune_exactly_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("attention.onnx");
    common::python("attention_model.py", [&model]);
    // Exact by the zeroing check at a sequence of 5, every head alone.
    let shapes = InputShapes::parse(&["x=1,5,32".to_string()]).unwrap();
    let m = shears::load_with_shapes(&model, &shapes).unwrap();
    let checks = shears_testkit::check_every_head(&m, &shapes, 2, 3).unwrap();
    assert_eq!(checks.len(), 4, "{checks:?}");
    for c in &checks {
        assert!(
            c.exactness.exact_expected && c.exactness.max_rel <= 1e-5,
            "{c:?}"
        );
    }
    check_symbolic(&pruned_pairs(dir.path(), &model, "attention"));
}

#[cfg(feature = "shared-suite")]
#[test]
fn heads_of_the_shared_transformers_prune_and_run_at_two_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for &m in common::TRANSFORMERS {
        let original = common::shared().join(format!("models/transformers/{m}.onnx"));
        pairs.extend(pruned_pairs(dir.path(), &original, m));
    }
    check_symbolic(&pairs);
}

/// Llama (4 query heads in 2 groups over 2 key/value heads): `prune --head-ratio 0.5 --ratio
/// 0.3` removes a whole key/value head with its query group (`--gqa kv`, the default), or one
/// query head of every group keeping both key/value heads (`--gqa query`); the q and k
/// projections keep equal head dims (q·k), so their widths give the head counts. Each result
/// passes `check_symbolic.py`.
#[cfg(feature = "shared-suite")]
#[test]
fn gqa_head_ratio_removes_whole_kv_groups_or_equal_query_heads_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    // (model, q projection weight, k projection weight), both [in, out].
    for (m, q, k) in [
        ("llama-ts", "onnx::MatMul_660", "onnx::MatMul_667"),
        ("llama-dynamo", "val_46", "val_53"),
    ] {
        let original = common::shared().join(format!("models/transformers/{m}.onnx"));
        for (gqa, kv_heads) in [("kv", 1), ("query", 2)] {
            let out = dir.path().join(format!("{m}-{gqa}.onnx"));
            prune_heads_and_widths(&original, gqa, &out);
            let pruned = shears::load(&out).unwrap();
            let width = |w: &str| {
                let v = pruned.graph.value_id(w).unwrap();
                pruned.graph.value(v).shape.as_ref().unwrap()[1]
            };
            let (qw, kw) = (width(q), width(k));
            // 2 query heads remain either way; the head dim is what the widths share.
            assert_eq!(qw % 2, 0, "{m} {gqa}: q {qw}");
            let head_dim = qw / 2;
            assert_eq!(kw, kv_heads * head_dim, "{m} {gqa}: q {qw}, k {kw}");
            pairs.extend([out, original.clone()]);
        }
    }
    check_symbolic(&pairs);
}

/// Grouped-query attention blocks not in `../shared` (`tests/interop/gqa_model.py`): `gqa`
/// (pre-LN, 6 query heads over 2 key/value heads, no biases, k and v from one projection split
/// by an opset-18 `num_outputs` Split) and `mqa` (post-LN, 4 query heads over 1 key/value
/// head, a q bias only). Every unit of both kinds removed alone is exact by the zeroing check;
/// each, and `prune --head-ratio 0.5 --ratio 0.3 --gqa kv|query`, passes `check_symbolic.py`.
#[test]
fn heads_of_gqa_and_mqa_blocks_not_in_shared_prune_exactly_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    // (variant, width, units with kv heads, units with query heads): with one key/value head
    // (MQA) a unit is a query head either way.
    for (variant, width, kv_units, query_units) in [("gqa", 48, 2, 3), ("mqa", 64, 4, 4)] {
        let model = dir.path().join(format!("{variant}.onnx"));
        common::python("gqa_model.py", [variant, model.to_str().unwrap()]);
        let shapes = InputShapes::parse(&[format!("x=1,5,{width}")]).unwrap();
        let m = shears::load_with_shapes(&model, &shapes).unwrap();
        for (granularity, units) in [
            (Granularity::Heads, kv_units),
            (Granularity::QueryHeads, query_units),
        ] {
            let checks =
                shears_testkit::check_every_head_with(&m, &shapes, granularity, 2, 3).unwrap();
            assert_eq!(checks.len(), units, "{variant} {granularity:?}: {checks:?}");
            for c in &checks {
                assert_eq!(c.heads, units, "{variant}: {c:?}");
                assert!(
                    c.exactness.exact_expected
                        && c.exactness.shapes_equal
                        && c.exactness.max_rel <= 1e-5,
                    "{variant}: {c:?}"
                );
            }
        }
        for gqa in ["kv", "query"] {
            pairs.extend(pruned_pairs_with(dir.path(), &model, variant, gqa));
        }
    }
    check_symbolic(&pairs);
}
