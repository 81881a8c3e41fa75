//! onnxruntime's fused transformer ops (docs/fused.md) on the shared transformer exports after
//! `onnxruntime.transformers.optimizer` fuses them (`tests/interop/fuse_transformers.py`,
//! opt_level 0): every fused node has a coupling rule; fusing changes no group (same channels,
//! same verdicts as the export it came from); every vector a fused op holds (BiasGelu/FastGelu
//! biases, the skip normalizations' gamma, beta, bias) lies in a prunable group; the groups
//! through them that no op mixes (the MLP widths) and every head alone prune exactly by the
//! zeroing check in onnxruntime (`check_zeroed.py`); `prune --ratio 0.3` and `--head-ratio 0.5
//! --ratio 0.3` give models that pass the checker (skipped only where the fused original fails
//! it: Llama's SimplifiedLayerNormalization) and run at two sequence lengths
//! (`check_symbolic.py --checker-as-original`).
//!
//! Without the shared suite: a fused `Attention` as the optimizer writes it when its attention
//! fusion matches (`tests/interop/attention_fused_model.py`: packed qkv, a mask input,
//! unidirectional): the width through its input and every head alone (`num_heads` rewritten)
//! prune exactly in onnxruntime, and `prune --ratio 0.3` with and without `--head-ratio 0.5`
//! passes the checker and runs at two sequence lengths.
#![cfg(feature = "interop")]

mod common;

use std::path::{Path, PathBuf};

use shears_graph::DependencyGraph;
use shears_onnx::Model;

#[cfg(feature = "shared-suite")]
use common::TRANSFORMERS as MODELS;

/// `check_symbolic.py`'s arguments for (pruned, original) `pairs` of fused models: the checker
/// is skipped, with the reason, only where the original fails it too (onnxruntime writes its
/// SimplifiedLayerNormalization in the default domain, where the onnx package has no schema).
fn checker_as_original(pairs: &[PathBuf]) -> Vec<PathBuf> {
    let mut args = vec![PathBuf::from("--checker-as-original")];
    args.extend(pairs.iter().cloned());
    args
}

/// Per group: (channels, prunable, mixed by some op), sorted: what fusing must not change.
#[cfg(feature = "shared-suite")]
fn group_shape(model: &Model, graph: &DependencyGraph) -> Vec<(usize, bool, bool)> {
    let mut v: Vec<_> = shears_plan::group_reports(model, graph)
        .iter()
        .map(|r| (r.channels, r.prunable, !r.mixed_by.is_empty()))
        .collect();
    v.sort_unstable();
    v
}

fn save_plan(
    dir: &Path,
    tag: &str,
    model: &Model,
    plan: &shears_plan::PruningPlan,
) -> [PathBuf; 2] {
    let pruned = shears::apply(model, std::slice::from_ref(plan)).unwrap();
    let out = dir.join(format!("{tag}.onnx"));
    shears::save(model, &pruned, &out).unwrap();
    let json = dir.join(format!("{tag}.plan.json"));
    std::fs::write(&json, serde_json::to_vec(plan).unwrap()).unwrap();
    [out, json]
}

/// Plans counted so far.
#[cfg(feature = "shared-suite")]
fn counts_so_far(counts: &[(&str, usize, usize)]) -> usize {
    counts.iter().map(|c| c.1 + c.2).sum()
}

#[test]
fn a_fused_attention_prunes_its_input_width_and_heads_exactly_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("attention.onnx");
    common::python_json("attention_fused_model.py", std::slice::from_ref(&path));
    let model = shears::load(&path).unwrap();
    let g = DependencyGraph::build(&model);
    let reports = shears_plan::group_reports(&model, &g);
    let prunable: Vec<&str> = reports
        .iter()
        .filter(|r| r.prunable)
        .map(|r| r.root.as_str())
        .collect();
    assert_eq!(prunable, ["w0[1]"]);
    let out = reports.iter().find(|r| r.root == "wo[0]").unwrap();
    assert!(
        out.blockers.iter().any(|b| b.node == "attention"),
        "{out:?}"
    );
    let k = reports.iter().position(|r| r.prunable).unwrap();
    let units: Vec<_> = g.groups[k]
        .units
        .iter()
        .skip(1)
        .step_by(3)
        .copied()
        .collect();
    let plan = shears_plan::plan_units(&model, &g, g.groups[k].id, &units).unwrap();
    let [pruned, json] = save_plan(d, "attention-width", &model, &plan);
    let mut sized = vec!["--size".into(), "5".into(), path.clone(), pruned, json];
    // Every head alone, on the heads graph (num_heads rewritten).
    let h = DependencyGraph::build_heads(&model);
    for k in 0..4 {
        let plan = shears_plan::plan_heads(&model, &h, "attention", &[k]).unwrap();
        let [pruned, json] = save_plan(d, &format!("attention-head{k}"), &model, &plan);
        sized.extend([path.clone(), pruned, json]);
    }
    assert_eq!(common::python_json("check_zeroed.py", &sized).len(), 5);
    let mut pairs = Vec::new();
    for (tag, extra) in [("ratio", &[][..]), ("heads", &["--head-ratio", "0.5"][..])] {
        let out = d.join(format!("attention-{tag}.onnx"));
        let mut a = vec!["prune", path.to_str().unwrap(), "--ratio", "0.3"];
        a.extend_from_slice(extra);
        a.extend(["-o", out.to_str().unwrap()]);
        let o = common::shears(&a);
        assert!(o.status.success(), "{a:?}: {}", common::text(&o.stderr));
        pairs.extend([out, path.clone()]);
    }
    let ran = common::python_json("check_symbolic.py", checker_as_original(&pairs));
    for r in &ran {
        assert!(r.get("checker_skipped").is_none(), "{r}");
    }
    // --head-ratio 0.5 left 2 of the 4 heads.
    let halved = onnx_heads(&pairs[2]);
    assert_eq!(halved, 2);
}

/// The `num_heads` of the Attention node of the model at `path`.
fn onnx_heads(path: &Path) -> i64 {
    let m = shears::load(path).unwrap();
    let n = m
        .graph
        .nodes
        .iter()
        .find(|n| n.op_type == "Attention")
        .unwrap();
    n.attr_i("num_heads", 0)
}

#[cfg(feature = "shared-suite")]
#[test]
fn fused_transformer_exports_prune_exactly_and_run_in_onnxruntime() {
    use shears_onnx::ops::{facts, MS_DOMAIN};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sources: Vec<PathBuf> = MODELS
        .iter()
        .map(|m| common::shared().join(format!("models/transformers/{m}.onnx")))
        .collect();
    let fused_dir = d.join("fused");
    std::fs::create_dir(&fused_dir).unwrap();
    let mut args = vec![fused_dir.clone()];
    args.extend(sources.iter().cloned());
    let made = common::python_json("fuse_transformers.py", &args);
    assert_eq!(made.len(), MODELS.len());
    let mut fused_ops = std::collections::BTreeSet::new();

    let mut triples = Vec::new();
    let mut pairs = Vec::new();
    // Per model: (exact width plans through a fused op, single-head plans).
    let mut counts = Vec::new();
    for (m, source) in MODELS.iter().zip(&sources) {
        let path = fused_dir.join(format!("{m}.onnx"));
        let model = shears::load(&path).unwrap();
        let original = shears::load(source).unwrap();
        let g = DependencyGraph::build(&model);
        let g0 = DependencyGraph::build(&original);

        // Every fused node is coupled, not opaque.
        let fused: Vec<_> = model
            .graph
            .node_ids()
            .filter(|&id| {
                let n = model.graph.node(id);
                n.domain == MS_DOMAIN || n.op_type == "SimplifiedLayerNormalization"
            })
            .collect();
        assert!(!fused.is_empty(), "{m}: the optimizer fused nothing");
        for &id in &fused {
            let n = model.graph.node(id);
            fused_ops.insert(format!("{}:{}", n.domain, n.op_type));
            if let Err(e) = &g.verdicts[id.index()] {
                panic!("{m}: {} ({}) is opaque: {e}", n.name, n.op_type);
            }
        }
        // Fusing changes no group, in either graph.
        assert_eq!(group_shape(&model, &g), group_shape(&original, &g0), "{m}");
        let h = DependencyGraph::build_heads(&model);
        let h0 = DependencyGraph::build_heads(&original);
        assert_eq!(group_shape(&model, &h), group_shape(&original, &h0), "{m}");

        // Every vector a fused op holds is in a prunable group; the groups holding one that no
        // op mixes (the MLP widths) are planned (every third unit) for the zeroing check.
        let reports = shears_plan::group_reports(&model, &g);
        let mut planned = std::collections::BTreeSet::new();
        for &id in &fused {
            let n = model.graph.node(id);
            for &slot in facts(n).vector_slots {
                let Some(v) = n.input(slot) else { continue };
                let name = &model.graph.value(v).name;
                let (k, r) = reports
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.members.iter().any(|mem| &mem.tensor == name))
                    .unwrap_or_else(|| panic!("{m}: {name} ({}) is in no group", n.name));
                assert!(r.prunable, "{m}: {name} ({}): {:?}", n.name, r.blockers);
                if r.mixed_by.is_empty() && planned.insert(k) {
                    let group = &g.groups[k];
                    let units: Vec<_> = group.units.iter().skip(1).step_by(3).copied().collect();
                    let plan = shears_plan::plan_units(&model, &g, group.id, &units).unwrap();
                    let [out, json] = save_plan(d, &format!("{m}-g{k}"), &model, &plan);
                    triples.extend([path.clone(), out, json]);
                }
            }
        }
        let widths = planned.len();
        // Every head of every attention alone (the attention itself is not fused).
        let layers = shears_plan::GroupLayers::new(&model, &h);
        for grp in h
            .groups
            .iter()
            .filter(|grp| h.is_head_group(grp.id) && grp.is_prunable())
        {
            let layer = model
                .graph
                .node(layers.layer(grp.id).unwrap().node)
                .name
                .clone();
            let heads = shears_plan::layer_heads(&model, &h, &layer).unwrap();
            for k in 0..heads.heads.len() {
                let plan = shears_plan::plan_heads(&model, &h, &layer, &[k]).unwrap();
                let tag = format!("{m}-h{}-{k}", grp.id.0);
                let [out, json] = save_plan(d, &tag, &model, &plan);
                triples.extend([path.clone(), out, json]);
            }
        }
        counts.push((
            *m,
            widths,
            triples.len() / 3 - widths - counts_so_far(&counts),
        ));
        // The CLI's ratios.
        for (tag, extra) in [("ratio", &[][..]), ("heads", &["--head-ratio", "0.5"][..])] {
            let out = d.join(format!("{m}-{tag}.onnx"));
            let mut a = vec!["prune", path.to_str().unwrap(), "--ratio", "0.3"];
            a.extend_from_slice(extra);
            a.extend(["-o", out.to_str().unwrap()]);
            let o = common::shears(&a);
            assert!(o.status.success(), "{m} {a:?}: {}", common::text(&o.stderr));
            pairs.extend([out, path.clone()]);
        }
    }
    // Llama's fused ops are its RMSNorms only (the residual width, mixed; its SwiGLU stays
    // default-domain ops), so its checked plans are heads alone: one per key/value group.
    assert_eq!(
        counts,
        [
            ("bert-ts", 2, 8),
            ("bert-dynamo", 2, 8),
            ("gpt2-ts", 2, 8),
            ("gpt2-dynamo", 2, 8),
            ("llama-ts", 0, 4),
            ("llama-dynamo", 0, 4),
            ("vit-ts", 2, 8),
            ("vit-dynamo", 2, 8),
        ]
    );
    // What onnxruntime 1.32's optimizer writes on these exports (docs/fused.md): no fused
    // attention, rotary embedding or GQA.
    let seen: Vec<&str> = fused_ops.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        [
            ":SimplifiedLayerNormalization",
            "com.microsoft:BiasGelu",
            "com.microsoft:FastGelu",
            "com.microsoft:SkipLayerNormalization",
            "com.microsoft:SkipSimplifiedLayerNormalization",
        ]
    );

    // At a sequence of 5 (batch for the ViT), so attention mixes positions.
    let mut sized = vec![PathBuf::from("--size"), PathBuf::from("5")];
    sized.extend(triples.iter().cloned());
    let exact = common::python_json("check_zeroed.py", &sized);
    assert_eq!(exact.len(), triples.len() / 3);
    let ran = common::python_json("check_symbolic.py", checker_as_original(&pairs));
    assert_eq!(ran.len(), pairs.len() / 2);
    for r in &ran {
        let model = r["model"].as_str().unwrap();
        let llama = Path::new(model)
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("llama-"));
        assert_eq!(r.get("checker_skipped").is_some(), llama, "{r}");
    }
}

/// The `(op, name)`'s integer attribute of the model at `path`.
fn onnx_attr(path: &Path, node: &str, attr: &str) -> i64 {
    let m = shears::load(path).unwrap();
    let n = m.graph.nodes.iter().find(|n| n.name == node).unwrap();
    n.attr_i(attr, 0)
}

/// `tests/interop/contrib_attention_models.py`'s MultiHeadAttention, GroupQueryAttention (with
/// rotary) and RotaryEmbedding + MultiHeadAttention blocks (the script checks onnxruntime
/// against a NumPy reference of each op): every head alone (every key/value group, and for
/// GroupQueryAttention every query head of every group) prunes exactly by the zeroing check in
/// onnxruntime, with `num_heads` / `kv_num_heads` rewritten; `prune --ratio 0.3 --head-ratio
/// 0.5` (and `--gqa query`) passes the checker and runs at two sequence lengths; and the
/// evaluator computes what onnxruntime computes on the fixed-length models.
#[test]
fn multi_head_group_query_attention_and_rotary_prune_their_heads_exactly_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::python_json("contrib_attention_models.py", &[d.to_path_buf()]);
    let mut sized = vec!["--size".into(), "5".into()];
    let mut pairs = Vec::new();
    // (model, granularity, units: heads, key/value groups, or query heads per group)
    let cases = [
        ("mha", shears_graph::Granularity::Heads, 4),
        ("gqa", shears_graph::Granularity::Heads, 2),
        ("gqa", shears_graph::Granularity::QueryHeads, 2),
        ("rotary", shears_graph::Granularity::Heads, 4),
    ];
    for (i, &(name, granularity, units)) in cases.iter().enumerate() {
        let path = d.join(format!("{name}.onnx"));
        let model = shears::load(&path).unwrap();
        let g = DependencyGraph::build_with(&model, granularity);
        let reports = shears_plan::group_reports(&model, &g);
        let heads: Vec<_> = reports.iter().filter(|r| r.prunable).collect();
        // The residual width and one head group.
        assert_eq!(heads.len(), 2, "{name}: {reports:?}");
        assert!(
            heads.iter().any(|r| r.channels == units),
            "{name}: {heads:?}"
        );
        for k in 0..units {
            let plan = shears_plan::plan_heads(&model, &g, "q_proj", &[k]).unwrap();
            let [pruned, json] = save_plan(d, &format!("{name}-{i}-head{k}"), &model, &plan);
            sized.extend([path.clone(), pruned, json]);
        }
        let out = d.join(format!("{name}-{i}-pruned.onnx"));
        let gqa = if granularity == shears_graph::Granularity::QueryHeads {
            "query"
        } else {
            "kv"
        };
        let a = [
            "prune",
            path.to_str().unwrap(),
            "--ratio",
            "0.3",
            "--head-ratio",
            "0.5",
            "--gqa",
            gqa,
            "-o",
            out.to_str().unwrap(),
        ];
        let o = common::shears(&a);
        assert!(o.status.success(), "{a:?}: {}", common::text(&o.stderr));
        pairs.extend([out, path.clone()]);
    }
    assert_eq!(common::python_json("check_zeroed.py", &sized).len(), 12);
    for r in common::python_json("check_symbolic.py", checker_as_original(&pairs)) {
        assert!(r.get("checker_skipped").is_none(), "{r}");
    }
    // Half the heads are gone: 4 -> 2 (MultiHeadAttention, both RotaryEmbeddings); one of two
    // key/value groups with its 2 query heads, or one query head of each group.
    assert_eq!(onnx_attr(&pairs[0], "mha", "num_heads"), 2);
    assert_eq!(onnx_attr(&pairs[2], "gqa", "num_heads"), 2);
    assert_eq!(onnx_attr(&pairs[2], "gqa", "kv_num_heads"), 1);
    assert_eq!(onnx_attr(&pairs[4], "gqa", "num_heads"), 2);
    assert_eq!(onnx_attr(&pairs[4], "gqa", "kv_num_heads"), 2);
    for node in ["q_rotary", "k_rotary", "mha"] {
        assert_eq!(onnx_attr(&pairs[6], node, "num_heads"), 2, "{node}");
    }

    // The evaluator against onnxruntime, on the inputs the script ran at a fixed length.
    let fixed = tempfile::tempdir().unwrap();
    for r in common::python_json(
        "contrib_attention_models.py",
        &[fixed.path().to_path_buf(), "--seq".into(), "5".into()],
    ) {
        let model = shears::load(Path::new(r["model"].as_str().unwrap())).unwrap();
        let floats = |k: &str| -> Vec<f32> {
            r[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        use shears_verify::candle_core::{Device, Tensor};
        let x = Tensor::from_vec(floats("input"), (1, 5, 8), &Device::Cpu).unwrap();
        let mut inputs = vec![("input".to_string(), x)];
        if model.graph.value_id("mask").is_some() {
            let mask: Vec<i32> = floats("mask").iter().map(|&v| v as i32).collect();
            let m = Tensor::from_vec(mask, (1, 5), &Device::Cpu).unwrap();
            inputs.push((
                "mask".to_string(),
                m.to_dtype(shears_verify::candle_core::DType::I64).unwrap(),
            ));
        }
        let got = shears_verify::Evaluator::new(&model)
            .unwrap()
            .eval(&inputs)
            .unwrap();
        let got: Vec<f32> = got[0].1.flatten_all().unwrap().to_vec1().unwrap();
        let want = floats("output");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert_eq!(got.len(), want.len(), "{}", r["model"]);
        assert!(worst <= 1e-5 * scale.max(1.0), "{}: {worst}", r["model"]);
    }
}
