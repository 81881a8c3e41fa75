//! onnxruntime's com.microsoft MultiHeadAttention, GroupQueryAttention and RotaryEmbedding
//! (docs/fused.md) on blocks built here: their couplings are pinned on the channel graph (head
//! widths fixed, with the reason) and on the heads graphs (one unit per head, per key/value
//! group, or per query head of every group); every head alone prunes exactly through the
//! evaluator with `num_heads` / `kv_num_heads` rewritten; shapes are inferred; and in the
//! default domain the ops have no rule. (The evaluator's semantics are checked against
//! onnxruntime in `tests/interop_fused.rs`.)

use shears_graph::{DependencyGraph, Granularity};
use shears_onnx::external::ExternalStore;
use shears_onnx::ops::MS_DOMAIN;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{ModelProto, TensorProto};
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_int, ModelBuilder};
use shears_testkit::{analysed, rule_line};

/// `cos`/`sin` caches `[8, half]` of rotary angles.
fn caches(b: &mut ModelBuilder, half: usize) -> (String, String) {
    let angle = |p: usize, j: usize| p as f32 / 10000f32.powf(j as f32 / half as f32);
    let table = |f: fn(f32) -> f32| -> Vec<f32> {
        (0..8 * half)
            .map(|i| f(angle(i / half, i % half)))
            .collect()
    };
    let dims = [8, half as i64];
    (
        b.init_f32("cos", &dims, &table(f32::cos)),
        b.init_f32("sin", &dims, &table(f32::sin)),
    )
}

fn int32(b: &mut ModelBuilder, name: &str, dims: &[i64], data: &[i32]) -> String {
    b.initializer(TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int32 as i32,
        int32_data: data.to_vec(),
        ..Default::default()
    })
}

/// `input[1, 5, 8] -> MatMul r[1, 5, 16]`, then q, k, v projections (v 12 wide), with
/// `rotary` a RotaryEmbedding (4 heads) on q and k, MultiHeadAttention (4 heads, causal),
/// and `·wo[12, 4]`; every contrib node in `domain`.
fn mha_block(rotary: bool, domain: &str) -> ModelProto {
    let mut b = ModelBuilder::new(20);
    let input = b.input("input", &[1, 5, 8]);
    let w0 = b.param_random("w0", &[8, 16]);
    let r = b.node("MatMul", &[&input, &w0], 1, vec![]).remove(0);
    let proj = |b: &mut ModelBuilder, name: &str, w: i64| {
        let wt = b.param_random(name, &[16, w]);
        b.node("MatMul", &[&r, &wt], 1, vec![]).remove(0)
    };
    let (mut q, mut k, v) = (
        proj(&mut b, "wq", 16),
        proj(&mut b, "wk", 16),
        proj(&mut b, "wv", 12),
    );
    if rotary {
        let (cos, sin) = caches(&mut b, 2);
        let pos = b.init_i64("pos", &[1, 5], &[0, 1, 2, 4, 7]);
        for (t, name) in [(&mut q, "q_rotary"), (&mut k, "k_rotary")] {
            *t = b
                .node_named(
                    name,
                    "RotaryEmbedding",
                    &[t, &pos, &cos, &sin],
                    1,
                    vec![attr_int("num_heads", 4)],
                )
                .remove(0);
            b.last_node_mut().unwrap().domain = domain.into();
        }
    }
    let a = b
        .node_named(
            "mha",
            "MultiHeadAttention",
            &[&q, &k, &v],
            1,
            vec![attr_int("num_heads", 4), attr_int("unidirectional", 1)],
        )
        .remove(0);
    b.last_node_mut().unwrap().domain = domain.into();
    finish(b, &a, 12)
}

/// `·wo[width, 4]` after `a`, and the output (the builder imports the nodes' domains).
fn finish(mut b: ModelBuilder, a: &str, width: i64) -> ModelProto {
    let wo = b.param_random("wo", &[width, 4]);
    let y = b.node("MatMul", &[a, &wo], 1, vec![]).remove(0);
    b.set_shape(&y, &[1, 5, 4]);
    b.output(&y);
    b.build()
}

/// `input[1, 5, 8] -> MatMul r[1, 5, 32]`, q `[.., 64]` (4 heads of 16), k and v `[.., 32]`
/// (`kv` key/value heads of 16), GroupQueryAttention in its prefill form with rotary (seqlens_k 4,
/// total_sequence_length 5), `·wo[64, 4]`.
fn gqa_block(domain: &str, kv: i64) -> ModelProto {
    let mut b = ModelBuilder::new(20);
    let input = b.input("input", &[1, 5, 8]);
    let w0 = b.param_random("w0", &[8, 32]);
    let r = b.node("MatMul", &[&input, &w0], 1, vec![]).remove(0);
    let proj = |b: &mut ModelBuilder, name: &str, w: i64| {
        let wt = b.param_random(name, &[32, w]);
        b.node("MatMul", &[&r, &wt], 1, vec![]).remove(0)
    };
    let (q, k, v) = (
        proj(&mut b, "wq", 64),
        proj(&mut b, "wk", 16 * kv),
        proj(&mut b, "wv", 16 * kv),
    );
    let (cos, sin) = caches(&mut b, 8);
    let lens = int32(&mut b, "seqlens_k", &[1], &[4]);
    let total = int32(&mut b, "total", &[], &[5]);
    let a = b
        .node_named(
            "gqa",
            "GroupQueryAttention",
            &[&q, &k, &v, "", "", &lens, &total, &cos, &sin],
            3,
            vec![
                attr_int("num_heads", 4),
                attr_int("kv_num_heads", kv),
                attr_int("do_rotary", 1),
            ],
        )
        .remove(0);
    b.last_node_mut().unwrap().domain = domain.into();
    finish(b, &a, 64)
}

#[test]
fn couplings_are_pinned_per_granularity() {
    let m = analysed(mha_block(true, MS_DOMAIN));
    let gqa = analysed(gqa_block(MS_DOMAIN, 2));
    let mut lines = Vec::new();
    for gr in [
        Granularity::HeadDims,
        Granularity::Heads,
        Granularity::QueryHeads,
    ] {
        let g = DependencyGraph::build_with(&m, gr);
        lines.push(format!("{gr:?} {}", rule_line(&m, &g, "mha")));
        lines.push(format!("{gr:?} {}", rule_line(&m, &g, "q_rotary")));
        let g = DependencyGraph::build_with(&gqa, gr);
        lines.push(format!("{gr:?} {}", rule_line(&gqa, &g, "gqa")));
    }
    let batch_seq = "in0.0=out0.0 in1.0=out0.0 in2.0=out0.0 in0.1=out0.1 in2.1=in1.1";
    let gqa_axes = "in0.0=out0.0 in0.1=out0.1 in1.0=out0.0 in1.1=out0.1 in2.0=out0.0 \
                    in2.1=out0.1 out1.0=out0.0 out2.0=out0.0 in5.0=out0.0";
    let want = [
        format!("HeadDims MultiHeadAttention: {batch_seq} | fixed in0.2 in1.2 in2.2 out0.2"),
        "HeadDims RotaryEmbedding: in0.0=out0.0 in0.1=out0.1 | fixed in0.2 out0.2".into(),
        format!("HeadDims GroupQueryAttention: {gqa_axes} | fixed in0.2 in1.2 in2.2 out0.2"),
        // Head i/4 of q and k, i/3 of v (12 wide) and the output.
        format!("Heads MultiHeadAttention: {batch_seq} in0.2/4%4v0 in1.2/4%4v0 in2.2/3%4v0 out0.2/3%4v0"),
        "Heads RotaryEmbedding: in0.0=out0.0 in0.1=out0.1 in0.2/4%4v0 out0.2/4%4v0".into(),
        // Key/value group i/32 of q and the output (2 query heads of 16), i/16 of k and v, and
        // the present caches' head axis.
        format!(
            "Heads GroupQueryAttention: {gqa_axes} in0.2/32%2v0 out0.2/32%2v0 in1.2/16%2v0 \
             in2.2/16%2v0 out1.1=v0 out2.1=v0"
        ),
        format!("QueryHeads MultiHeadAttention: {batch_seq} in0.2/4%4v0 in1.2/4%4v0 in2.2/3%4v0 out0.2/3%4v0"),
        "QueryHeads RotaryEmbedding: in0.0=out0.0 in0.1=out0.1 in0.2/4%4v0 out0.2/4%4v0".into(),
        // Query head (i/16)%2 of every group; every key/value head kept.
        format!(
            "QueryHeads GroupQueryAttention: {gqa_axes} in0.2/16%2v0 out0.2/16%2v0 | fixed in1.2 in2.2"
        ),
    ];
    assert_eq!(lines, want);

    // The reasons name the op.
    let g = DependencyGraph::build(&m);
    let reports = shears_plan::group_reports(&m, &g);
    let wv = reports.iter().find(|r| r.root == "wv[1]").unwrap();
    assert!(!wv.prunable);
    assert!(
        wv.blockers
            .iter()
            .any(|b| b.node == "mha" && b.reason.contains("splits its widths into num_heads heads")),
        "{wv:?}"
    );
    // One key/value head: no group to remove on the heads graph; query heads go instead.
    let mqa = analysed(gqa_block(MS_DOMAIN, 1));
    let g = DependencyGraph::build_heads(&mqa);
    let reports_mqa = shears_plan::group_reports(&mqa, &g);
    assert!(reports_mqa.iter().all(|r| r.root == "w0[1]" || !r.prunable));
    let wk = reports_mqa.iter().find(|r| r.root == "wk[1]").unwrap();
    assert!(
        wk.blockers
            .iter()
            .any(|b| b.reason.contains("has one key/value head")),
        "{wk:?}"
    );
    let checks = shears_testkit::check_every_head_with(
        &mqa,
        &InputShapes::default(),
        Granularity::QueryHeads,
        2,
        3,
    )
    .unwrap();
    assert_eq!(checks.len(), 4, "{checks:?}");
    assert!(
        checks.iter().all(|c| c.exactness.max_rel <= 1e-5),
        "{checks:?}"
    );
    let wq = reports.iter().find(|r| r.root == "wq[1]").unwrap();
    assert!(
        wq.blockers
            .iter()
            .any(|b| b.node == "q_rotary" && b.reason.contains("rotates pairs of positions")),
        "{wq:?}"
    );
}

#[test]
fn shapes_are_inferred() {
    let m = analysed(mha_block(true, MS_DOMAIN));
    let out = |m: &Model, node: &str, slot: usize| {
        let n = m.graph.nodes.iter().find(|n| n.name == node).unwrap();
        m.graph.value(n.output(slot).unwrap()).shape.clone()
    };
    assert_eq!(out(&m, "q_rotary", 0), Some(vec![1, 5, 16]));
    assert_eq!(out(&m, "mha", 0), Some(vec![1, 5, 12]));
    let g = analysed(gqa_block(MS_DOMAIN, 2));
    assert_eq!(out(&g, "gqa", 0), Some(vec![1, 5, 64]));
    // present_key / present_value: [B, kv heads, total length, head size].
    assert_eq!(out(&g, "gqa", 1), Some(vec![1, 2, 5, 16]));
    assert_eq!(out(&g, "gqa", 2), Some(vec![1, 2, 5, 16]));
}

#[test]
fn every_head_alone_is_exact_through_the_evaluator() {
    let none = InputShapes::default();
    let cases = [
        (analysed(mha_block(false, MS_DOMAIN)), Granularity::Heads, 4),
        (analysed(mha_block(true, MS_DOMAIN)), Granularity::Heads, 4),
        (analysed(gqa_block(MS_DOMAIN, 2)), Granularity::Heads, 2),
        (
            analysed(gqa_block(MS_DOMAIN, 2)),
            Granularity::QueryHeads,
            2,
        ),
    ];
    for (m, gr, units) in &cases {
        let checks = shears_testkit::check_every_head_with(m, &none, *gr, 2, 3).unwrap();
        assert_eq!(checks.len(), *units, "{gr:?}: {checks:?}");
        for c in &checks {
            let e = &c.exactness;
            assert!(
                e.exact_expected && e.shapes_equal && e.max_rel <= 1e-5,
                "{gr:?}: {c:?}"
            );
        }
    }
    // The rewrites: one key/value group leaves 2 query heads over 1 key/value head; one query
    // head of each group leaves 2 over 2; one head of the rotary block, 3 everywhere.
    let attrs = |m: &Model, gr: Granularity, node: &str| -> Vec<(String, i64)> {
        let g = DependencyGraph::build_with(m, gr);
        let plan = shears_plan::plan_heads(m, &g, "/MatMul_1", &[0]).unwrap();
        let pruned = shears_exec::apply(m, &[plan]).unwrap();
        let n = pruned
            .proto
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .find(|n| n.name == node)
            .unwrap();
        n.attribute
            .iter()
            .filter(|a| a.name.contains("heads"))
            .map(|a| (a.name.clone(), a.i))
            .collect()
    };
    let kv = |a: i64, b: i64| {
        vec![
            ("kv_num_heads".to_string(), b),
            ("num_heads".to_string(), a),
        ]
    };
    let mut got = attrs(&cases[2].0, Granularity::Heads, "gqa");
    got.sort();
    assert_eq!(got, kv(2, 1));
    let mut got = attrs(&cases[3].0, Granularity::QueryHeads, "gqa");
    got.sort();
    assert_eq!(got, kv(2, 2));
    for node in ["q_rotary", "k_rotary", "mha"] {
        let got = attrs(&cases[1].0, Granularity::Heads, node);
        assert_eq!(got, [("num_heads".to_string(), 3)], "{node}");
    }
}

#[test]
fn in_the_default_domain_they_have_no_rule() {
    for (proto, node) in [
        (mha_block(true, ""), "mha"),
        (mha_block(true, ""), "q_rotary"),
        (gqa_block("", 2), "gqa"),
    ] {
        let mut m = Model::from_proto(proto, "plain", ExternalStore::none()).unwrap();
        // Unknown ops: their outputs have no shape, which is not an error.
        shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
        let g = DependencyGraph::build_heads(&m);
        let line = rule_line(&m, &g, node);
        assert!(line.contains("no coupling rule"), "{node}: {line}");
        let reports = shears_plan::group_reports(&m, &g);
        assert!(
            reports.iter().all(|r| !r.prunable || r.root == "w0[1]"),
            "{node}: {reports:?}"
        );
    }
}

/// `input[1, 5, 16] -> RotaryEmbedding -> MatMul`, rotating `[1, 5, 16]` with `num_heads` 4
/// or, with `four`, the same heads as `[1, 4, 5, 4]` (Reshape, Transpose, and back).
fn rotary_only(four: bool) -> ModelProto {
    let mut b = ModelBuilder::new(20);
    let input = b.input("input", &[1, 5, 16]);
    let (cos, sin) = caches(&mut b, 2);
    let pos = b.init_i64("pos", &[1, 5], &[0, 1, 2, 4, 7]);
    let y = if four {
        let split = b.init_i64("split", &[4], &[1, 5, 4, 4]);
        let merged = b.init_i64("merged", &[3], &[1, 5, 16]);
        let perm = || vec![shears_testkit::builder::attr_ints("perm", &[0, 2, 1, 3])];
        let h = b.node("Reshape", &[&input, &split], 1, vec![]).remove(0);
        let h = b.node("Transpose", &[&h], 1, perm()).remove(0);
        let r = b
            .node_named(
                "rotary",
                "RotaryEmbedding",
                &[&h, &pos, &cos, &sin],
                1,
                vec![],
            )
            .remove(0);
        b.last_node_mut().unwrap().domain = MS_DOMAIN.into();
        let t = b.node("Transpose", &[&r], 1, perm()).remove(0);
        b.node("Reshape", &[&t, &merged], 1, vec![]).remove(0)
    } else {
        let r = b
            .node_named(
                "rotary",
                "RotaryEmbedding",
                &[&input, &pos, &cos, &sin],
                1,
                vec![attr_int("num_heads", 4)],
            )
            .remove(0);
        b.last_node_mut().unwrap().domain = MS_DOMAIN.into();
        r
    };
    let w = b.param_random("w", &[16, 4]);
    let out = b.node("MatMul", &[&y, &w], 1, vec![]).remove(0);
    b.set_shape(&out, &[1, 5, 4]);
    b.output(&out);
    b.build()
}

#[test]
fn a_rotary_embedding_rotates_both_layouts_alike() {
    let (three, four) = (analysed(rotary_only(false)), analysed(rotary_only(true)));
    let r = shears_verify::verify(&three, &four, &InputShapes::default(), 3, 5).unwrap();
    for o in &r.outputs {
        assert!(o.max_rel.expect("same shapes") <= 1e-6, "{r:?}");
    }
    // 4-D: the head axis passes through, the head size stays.
    let g = DependencyGraph::build(&four);
    assert_eq!(
        rule_line(&four, &g, "rotary"),
        "RotaryEmbedding: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 | fixed in0.3 out0.3"
    );
}

#[test]
fn attention_macs_count_scores_and_context_over_every_head() {
    let macs = |m: &shears_onnx::Model, op: &str| {
        let cost = shears_onnx::cost::analyze(m).unwrap();
        let at = m
            .graph
            .node_ids()
            .position(|id| m.graph.node(id).op_type == op)
            .unwrap();
        cost.nodes[at].macs
    };
    // MultiHeadAttention: q and k 16 wide, v 12, 5 positions attending to 5.
    let mha = analysed(mha_block(false, MS_DOMAIN));
    assert_eq!(macs(&mha, "MultiHeadAttention"), Some(5 * 5 * (16 + 12)));
    // GroupQueryAttention: 4 query heads of 16 (64 wide), each reading its group's value head,
    // over the 5 positions of the present cache; the same whatever the key/value head count.
    for kv in [1, 2] {
        let gqa = analysed(gqa_block(MS_DOMAIN, kv));
        assert_eq!(
            macs(&gqa, "GroupQueryAttention"),
            Some(5 * 5 * (64 + 64)),
            "{kv}"
        );
    }
    // Rotary embeddings are element-wise: no MACs.
    let rot = analysed(mha_block(true, MS_DOMAIN));
    assert_eq!(macs(&rot, "RotaryEmbedding"), Some(0));
}
