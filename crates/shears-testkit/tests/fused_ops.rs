//! onnxruntime's fused transformer ops (docs/fused.md) on a two-block model built here: the
//! couplings of SkipLayerNormalization, SkipSimplifiedLayerNormalization, BiasGelu, FastGelu,
//! com.microsoft's Gelu and SimplifiedLayerNormalization are pinned; the evaluator computes
//! what the same blocks written with default-domain ops compute; every prunable group prunes
//! (the MLP widths exactly by the zeroing check, the residual width validly: the
//! normalizations mix it); and the rules answer only in their own domain.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::ops::MS_DOMAIN;
use shears_onnx::proto::{ModelProto, OperatorSetIdProto};
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_float, attr_int, attr_ints, attr_string, ModelBuilder};
use shears_testkit::{analysed, rule_line};

const EPS: f32 = 1e-5;

/// Two transformer blocks' MLP halves over `x[1, 5, 16]` (projected from the input): `MatMul -> BiasGelu -> MatMul ->
/// SkipLayerNormalization` and `MatMul -> FastGelu -> Gelu -> MatMul ->
/// SkipSimplifiedLayerNormalization`, then `SimplifiedLayerNormalization` and a classifier.
/// With `fused` false, the same computation in default-domain ops (same weights); with it, the
/// fused ops in `domain` (SimplifiedLayerNormalization in the default domain, as onnxruntime
/// registers it).
fn blocks(fused: bool, domain: &str) -> ModelProto {
    let mut b = ModelBuilder::new(20);
    let input = b.input("input", &[1, 5, 8]);
    // An input projection, so the residual width is not the graph input's.
    let w0 = b.param_random("w0", &[8, 16]);
    let x = b.node("MatMul", &[&input, &w0], 1, vec![]).remove(0);
    b.set_shape(&x, &[1, 5, 16]);
    let w1 = b.param_random("w1", &[16, 32]);
    let b1 = b.param_random("b1", &[32]);
    let w2 = b.param_random("w2", &[32, 16]);
    let b2 = b.param_random("b2", &[16]);
    let gamma = b.param_random("gamma", &[16]);
    let beta = b.param_random("beta", &[16]);
    let w3 = b.param_random("w3", &[16, 24]);
    let b3 = b.param_random("b3", &[24]);
    let w4 = b.param_random("w4", &[24, 16]);
    let b4 = b.param_random("b4", &[16]);
    let gamma2 = b.param_random("gamma2", &[16]);
    let scale3 = b.param_random("scale3", &[16]);
    let wc = b.param_random("wc", &[16, 3]);
    let axes = b.init_i64("axes", &[1], &[-1]);
    let two = b.init_f32("two", &[], &[2.0]);
    let eps = b.init_f32("eps", &[], &[EPS]);
    let shaped = |b: &mut ModelBuilder, v: &str, dims: &[i64]| b.set_shape(v, dims);
    let ms = |b: &mut ModelBuilder| {
        if fused {
            b.last_node_mut().unwrap().domain = domain.to_string();
        }
    };
    // RMSNorm written out: v / sqrt(mean(v²) + eps) * scale.
    let rms = |b: &mut ModelBuilder, v: &str, scale: &str| -> String {
        let sq = b.node("Pow", &[v, &two], 1, vec![]).remove(0);
        let mean = b
            .node(
                "ReduceMean",
                &[&sq, &axes],
                1,
                vec![attr_int("keepdims", 1)],
            )
            .remove(0);
        let var = b.node("Add", &[&mean, &eps], 1, vec![]).remove(0);
        let dev = b.node("Sqrt", &[&var], 1, vec![]).remove(0);
        let n = b.node("Div", &[v, &dev], 1, vec![]).remove(0);
        b.node("Mul", &[&n, scale], 1, vec![]).remove(0)
    };

    let h = b.node("MatMul", &[&x, &w1], 1, vec![]).remove(0);
    shaped(&mut b, &h, &[1, 5, 32]);
    let g = if fused {
        let g = b.node("BiasGelu", &[&h, &b1], 1, vec![]).remove(0);
        ms(&mut b);
        g
    } else {
        let a = b.node("Add", &[&h, &b1], 1, vec![]).remove(0);
        b.node("Gelu", &[&a], 1, vec![]).remove(0)
    };
    shaped(&mut b, &g, &[1, 5, 32]);
    let o = b.node("MatMul", &[&g, &w2], 1, vec![]).remove(0);
    let (y, s) = if fused {
        b.node_with_outputs(
            "skip_ln",
            "SkipLayerNormalization",
            &[&o, &x, &gamma, &beta, &b2],
            &["y", "", "", "s"],
            vec![attr_float("epsilon", EPS)],
        );
        ms(&mut b);
        ("y".to_string(), "s".to_string())
    } else {
        let a = b.node("Add", &[&o, &x], 1, vec![]).remove(0);
        let s = b.node("Add", &[&a, &b2], 1, vec![]).remove(0);
        let y = b
            .node(
                "LayerNormalization",
                &[&s, &gamma, &beta],
                1,
                vec![attr_float("epsilon", EPS)],
            )
            .remove(0);
        (y, s)
    };
    for v in [&y, &s] {
        shaped(&mut b, v, &[1, 5, 16]);
    }
    let h2 = b.node("MatMul", &[&y, &w3], 1, vec![]).remove(0);
    let g2 = if fused {
        let f = b.node("FastGelu", &[&h2, &b3], 1, vec![]).remove(0);
        ms(&mut b);
        let g = b.node("Gelu", &[&f], 1, vec![]).remove(0);
        ms(&mut b);
        g
    } else {
        let a = b.node("Add", &[&h2, &b3], 1, vec![]).remove(0);
        let f = b
            .node("Gelu", &[&a], 1, vec![attr_string("approximate", "tanh")])
            .remove(0);
        b.node("Gelu", &[&f], 1, vec![]).remove(0)
    };
    let o2 = b.node("MatMul", &[&g2, &w4], 1, vec![]).remove(0);
    let z = if fused {
        b.node_with_outputs(
            "skip_rms",
            "SkipSimplifiedLayerNormalization",
            &[&o2, &s, &gamma2, &b4],
            &["z"],
            vec![attr_float("epsilon", EPS)],
        );
        ms(&mut b);
        "z".to_string()
    } else {
        let a = b.node("Add", &[&o2, &s], 1, vec![]).remove(0);
        let s2 = b.node("Add", &[&a, &b4], 1, vec![]).remove(0);
        rms(&mut b, &s2, &gamma2)
    };
    shaped(&mut b, &z, &[1, 5, 16]);
    let n = if fused {
        b.node(
            "SimplifiedLayerNormalization",
            &[&z, &scale3],
            1,
            vec![attr_float("epsilon", EPS), attr_int("axis", -1)],
        )
        .remove(0)
    } else {
        rms(&mut b, &z, &scale3)
    };
    let logits = b.node("MatMul", &[&n, &wc], 1, vec![]).remove(0);
    shaped(&mut b, &logits, &[1, 5, 3]);
    b.output(&logits);
    b.build()
}

#[test]
fn the_fused_ops_couple_their_hidden_axis_and_vectors() {
    let m = analysed(blocks(true, MS_DOMAIN));
    let g = DependencyGraph::build(&m);
    let lines: Vec<String> = [
        "/BiasGelu",
        "skip_ln",
        "/FastGelu",
        "/Gelu",
        "skip_rms",
        "/SimplifiedLayerNormalization",
    ]
    .iter()
    .map(|n| rule_line(&m, &g, n))
    .collect();
    assert_eq!(
        lines,
        [
            "BiasGelu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2",
            "SkipLayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 out3.0=out0.0 \
             out3.1=out0.1 out3.2=out0.2 in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in2.0=out0.2 \
             in3.0=out0.2 in4.0=out0.2 | mixes out0.2 | out in2.0",
            "FastGelu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2",
            "Gelu: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2",
            "SkipSimplifiedLayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 \
             in1.0=out0.0 in1.1=out0.1 in1.2=out0.2 in2.0=out0.2 in3.0=out0.2 | mixes out0.2 \
             | out in2.0",
            "SimplifiedLayerNormalization: in0.0=out0.0 in0.1=out0.1 in0.2=out0.2 in1.0=out0.2 \
             | mixes out0.2 | out in1.0",
        ]
    );
}

#[test]
fn the_evaluator_computes_the_fused_ops_as_their_default_domain_expansion() {
    let fused = analysed(blocks(true, MS_DOMAIN));
    let plain = analysed(blocks(false, ""));
    let (worst, r) = worst_rel(&plain, &fused);
    assert!(worst <= 1e-5, "{r:?}");
}

#[test]
fn every_group_through_the_fused_ops_prunes_and_the_mlp_widths_exactly() {
    let m = analysed(blocks(true, MS_DOMAIN));
    let g = DependencyGraph::build(&m);
    let reports = shears_plan::group_reports(&m, &g);
    let mut seen = Vec::new();
    for (report, group) in reports.iter().zip(&g.groups) {
        if !report.prunable {
            continue;
        }
        let units: Vec<_> = group.units.iter().skip(1).step_by(3).copied().collect();
        let plan = shears_plan::plan_units(&m, &g, group.id, &units).unwrap();
        let ex = shears_testkit::check_exactness(
            &m,
            std::slice::from_ref(&plan),
            &InputShapes::default(),
            2,
            3,
        )
        .unwrap();
        assert!(
            ex.shapes_equal && ex.max_rel.is_finite(),
            "{report:?}: {ex:?}"
        );
        if ex.exact_expected {
            assert!(ex.max_rel <= 1e-5, "{}: {ex:?}", report.root);
        }
        seen.push((report.root.clone(), report.channels, ex.exact_expected));
    }
    // The two MLP widths (through BiasGelu, through FastGelu and Gelu) exactly; the residual
    // width through all three normalizations, which mix it.
    assert_eq!(
        seen,
        [
            ("w0[1]".to_string(), 16, false),
            ("w1[1]".to_string(), 32, true),
            ("w3[1]".to_string(), 24, true),
        ]
    );
}

#[test]
fn fused_ops_are_found_in_their_own_domain_only() {
    // The same nodes in the default domain or in another domain have no rule: opaque, the
    // reason naming op (and domain), and the MLP width through them blocked.
    for (domain, reason) in [
        ("", "no coupling rule for op BiasGelu"),
        (
            "org.example",
            "no coupling rule for op org.example:BiasGelu",
        ),
    ] {
        let mut p = blocks(true, MS_DOMAIN);
        for n in &mut p.graph.as_mut().unwrap().node {
            if n.domain == MS_DOMAIN {
                n.domain = domain.into();
            }
        }
        p.opset_import.push(OperatorSetIdProto {
            domain: domain.into(),
            version: 1,
        });
        p.opset_import.retain(|o| o.domain != MS_DOMAIN);
        let mut m = Model::from_proto(p, "fused", ExternalStore::none()).unwrap();
        shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
        let g = DependencyGraph::build(&m);
        let line = rule_line(&m, &g, "/BiasGelu");
        assert!(line.contains(reason), "{domain}: {line}");
        let reports = shears_plan::group_reports(&m, &g);
        let mlp = reports.iter().find(|r| r.root == "w1[1]").unwrap();
        assert!(!mlp.prunable, "{domain}: {mlp:?}");
    }
}

/// `input[1, 5, 8] -> MatMul -> r[1, 5, 16] -> Attention(4 heads, packed [16, 48] weight and
/// bias) -> MatMul -> [1, 5, 4]`; with `fused` false the Attention written out in default-domain
/// ops (same weights). `masked`: a `[1, 5]` int32 mask `[0, 1, 0, 1, 1]` and `unidirectional`,
/// written out as onnxruntime computes them (-10000 at the mask's zeros, the lowest float at
/// later positions whatever the mask).
fn attention_block(fused: bool, masked: bool) -> ModelProto {
    let mut b = ModelBuilder::new(20);
    let input = b.input("input", &[1, 5, 8]);
    let w0 = b.param_random("w0", &[8, 16]);
    let wqkv = b.param_random("wqkv", &[16, 48]);
    let bqkv = b.param_random("bqkv", &[48]);
    let wo = b.param_random("wo", &[16, 4]);
    let mask = b.initializer(shears_onnx::proto::TensorProto {
        name: "mask".into(),
        dims: vec![1, 5],
        data_type: shears_onnx::proto::tensor_proto::DataType::Int32 as i32,
        int32_data: vec![0, 1, 0, 1, 1],
        ..Default::default()
    });
    let r = b.node("MatMul", &[&input, &w0], 1, vec![]).remove(0);
    let a = if fused {
        let mut ins = vec![r.as_str(), &wqkv, &bqkv];
        let mut attrs = vec![attr_int("num_heads", 4)];
        if masked {
            ins.push(&mask);
            attrs.push(attr_int("unidirectional", 1));
        }
        let a = b.node("Attention", &ins, 1, attrs).remove(0);
        b.last_node_mut().unwrap().domain = MS_DOMAIN.into();
        a
    } else {
        let split = b.init_i64("split", &[3], &[16, 16, 16]);
        let heads = b.init_i64("heads", &[4], &[1, 5, 4, 4]);
        let merged = b.init_i64("merged", &[3], &[1, 5, 16]);
        let scale = b.init_f32("scale", &[], &[0.5]);
        let p = b.node("MatMul", &[&r, &wqkv], 1, vec![]).remove(0);
        let p = b.node("Add", &[&p, &bqkv], 1, vec![]).remove(0);
        let qkv = b.node("Split", &[&p, &split], 3, vec![attr_int("axis", 2)]);
        let mut per_head = |v: &str, perm: &[i64]| {
            let h = b.node("Reshape", &[v, &heads], 1, vec![]).remove(0);
            b.node("Transpose", &[&h], 1, vec![attr_ints("perm", perm)])
                .remove(0)
        };
        let q = per_head(&qkv[0], &[0, 2, 1, 3]);
        let k = per_head(&qkv[1], &[0, 2, 3, 1]);
        let v = per_head(&qkv[2], &[0, 2, 1, 3]);
        let s = b.node("MatMul", &[&q, &k], 1, vec![]).remove(0);
        let mut s = b.node("Mul", &[&s, &scale], 1, vec![]).remove(0);
        if masked {
            let zero = b.init_f32("zero", &[], &[0.0]);
            let filter = b.init_f32("filter", &[], &[-10000.0]);
            let keys = b.init_i64("keys", &[4], &[1, 1, 1, 5]);
            let later: Vec<f32> = (0..25)
                .map(|k| if k % 5 > k / 5 { f32::MIN } else { 0.0 })
                .collect();
            let causal = b.init_f32("causal", &[5, 5], &later);
            let m = b
                .node("Cast", &[&mask], 1, vec![attr_int("to", 1)])
                .remove(0);
            let off = b.node("Equal", &[&m, &zero], 1, vec![]).remove(0);
            let add = b
                .node("Where", &[&off, &filter, &zero], 1, vec![])
                .remove(0);
            let add = b.node("Reshape", &[&add, &keys], 1, vec![]).remove(0);
            let t = b.node("Add", &[&s, &add], 1, vec![]).remove(0);
            s = b.node("Add", &[&t, &causal], 1, vec![]).remove(0);
        }
        let p = b
            .node("Softmax", &[&s], 1, vec![attr_int("axis", -1)])
            .remove(0);
        let c = b.node("MatMul", &[&p, &v], 1, vec![]).remove(0);
        let c = b
            .node(
                "Transpose",
                &[&c],
                1,
                vec![attr_ints("perm", &[0, 2, 1, 3])],
            )
            .remove(0);
        b.node("Reshape", &[&c, &merged], 1, vec![]).remove(0)
    };
    let y = b.node("MatMul", &[&a, &wo], 1, vec![]).remove(0);
    b.set_shape(&y, &[1, 5, 4]);
    b.output(&y);
    b.build()
}

#[test]
fn every_head_of_a_fused_attention_is_removable_alone_and_exact() {
    for masked in [false, true] {
        let fused = analysed(attention_block(true, masked));
        let checks =
            shears_testkit::check_every_head(&fused, &InputShapes::default(), 2, 3).unwrap();
        assert_eq!(checks.len(), 4, "{checks:?}");
        for c in &checks {
            assert_eq!(c.heads, 4, "{c:?}");
            assert!(
                c.exactness.exact_expected && c.exactness.shapes_equal,
                "{c:?}"
            );
            assert!(c.exactness.max_rel <= 1e-5, "{c:?}");
        }
    }
    // The rewrite: two heads removed leave num_heads 2.
    let fused = analysed(attention_block(true, false));
    let h = DependencyGraph::build_heads(&fused);
    let plan = shears_plan::plan_heads(&fused, &h, "/Attention", &[0, 2]).unwrap();
    let pruned = shears_exec::apply(&fused, &[plan]).unwrap();
    let node = pruned
        .proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .find(|n| n.op_type == "Attention")
        .unwrap();
    let heads = node
        .attribute
        .iter()
        .find(|a| a.name == "num_heads")
        .unwrap();
    assert_eq!(heads.i, 2);
}

#[test]
fn on_the_channel_graph_a_fused_attention_passes_its_input_width_and_keeps_its_heads() {
    // The evaluator's Attention is the written-out one, with and without mask and causality.
    for masked in [false, true] {
        let fused = analysed(attention_block(true, masked));
        let plain = analysed(attention_block(false, masked));
        let (worst, r) = worst_rel(&plain, &fused);
        assert!(worst <= 1e-5, "masked {masked}: {r:?}");
    }
    let fused = analysed(attention_block(true, false));

    // MACs: the packed projection (5·16·48) and, over the heads, scores and context (5·5·32).
    let cost = shears_onnx::cost::analyze(&fused).unwrap();
    let att = fused
        .graph
        .node_ids()
        .position(|id| fused.graph.node(id).op_type == "Attention")
        .unwrap();
    assert_eq!(cost.nodes[att].macs, Some(5 * 16 * 48 + 5 * 5 * 32));

    let g = DependencyGraph::build(&fused);
    assert_eq!(
        rule_line(&fused, &g, "/Attention"),
        "Attention: in0.0=out0.0 in0.1=out0.1 in0.2=in1.0 | fixed in1.1 out0.2 in2.0 | out in1.1"
    );
    let reports = shears_plan::group_reports(&fused, &g);
    // The input width (through the packed weight's rows) prunes exactly.
    let width = reports.iter().find(|r| r.root == "w0[1]").unwrap();
    assert!(width.prunable && width.mixed_by.is_empty(), "{width:?}");
    let gid = g.groups[width.id as usize].id;
    let units: Vec<_> = g.groups[width.id as usize]
        .units
        .iter()
        .step_by(3)
        .copied()
        .collect();
    let plan = shears_plan::plan_units(&fused, &g, gid, &units).unwrap();
    let ex = shears_testkit::check_exactness(
        &fused,
        std::slice::from_ref(&plan),
        &InputShapes::default(),
        2,
        3,
    )
    .unwrap();
    assert!(ex.exact_expected && ex.max_rel <= 1e-5, "{ex:?}");
    // The attention's output width (its v heads) is blocked, with the reason.
    let heads = reports.iter().find(|r| r.root == "wo[0]").unwrap();
    assert!(!heads.prunable, "{heads:?}");
    assert!(
        heads
            .blockers
            .iter()
            .any(|b| b.reason.contains("packs q, k and v heads")),
        "{heads:?}"
    );
}

/// The largest relative difference over the outputs of `fused` against `plain` (same shapes)
/// on the evaluator's random inputs, with the report it comes from.
fn worst_rel(plain: &Model, fused: &Model) -> (f64, shears_verify::Report) {
    let r = shears_verify::verify(plain, fused, &InputShapes::default(), 3, 5).unwrap();
    let worst = r
        .outputs
        .iter()
        .map(|o| o.max_rel.expect("same shapes"))
        .fold(0.0f64, f64::max);
    (worst, r)
}
