//! Whole attention heads on the builder's attention models (no ../shared needed): every head
//! removed alone is exact by the zeroing check, and the pruned model has one head fewer.

#[allow(dead_code)]
mod common;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::Model;
use shears_testkit::builder::zoo;

fn load(name: &str, proto: shears_onnx::proto::ModelProto) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = common::static_shapes(&m);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

#[test]
fn every_head_of_the_vit_layer_is_removable_alone_and_exact() {
    let m = load("vit_encoder_layer", zoo::vit_encoder_layer());
    let checks = shears_testkit::check_every_head(&m, &common::static_shapes(&m), 2, 7).unwrap();
    // One attention, 2 heads, fused qkv: each head alone.
    assert_eq!(checks.len(), 2, "{checks:?}");
    for c in &checks {
        assert_eq!(c.heads, 2);
        assert!(c.exactness.exact_expected, "{c:?}");
        assert!(c.exactness.shapes_equal, "{c:?}");
        assert!(c.exactness.max_rel <= 1e-5, "{c:?}");
    }
}

#[test]
fn a_head_of_a_fused_qkv_projection_is_the_same_head_in_q_k_and_v() {
    let m = load("vit_encoder_layer", zoo::vit_encoder_layer());
    let g = DependencyGraph::build_heads(&m);
    let layer = "encoder.layers.0.self_attention.qkv.weight";
    let lh = shears_plan::layer_heads(&m, &g, layer).unwrap();
    // [48] = (q, k, v) x (2 heads) x (8 dims): head 1 owns 8..16, 24..32, 40..48.
    let want: Vec<u32> = [8..16, 24..32, 40..48].into_iter().flatten().collect();
    assert_eq!(lh.heads[1], want);
    let plan = shears_plan::plan_heads(&m, &g, layer, &[1]).unwrap();
    assert_eq!(plan.channels_removed, 1);
    assert_eq!(plan.granularity, shears_graph::Granularity::Heads);
    // The head count in the split Reshape's target goes from 2 to 1.
    let rw: Vec<String> = plan
        .rewrites
        .iter()
        .map(shears_plan::rewrite_line)
        .collect();
    assert!(
        rw.iter()
            .any(|l| l.contains("[1, 4, 3, 2, 8]") && l.contains("[1, 4, 3, 1, 8]")),
        "{rw:?}"
    );
    // The pruned model re-analyses with one head left: a third of qkv's rows, and no head
    // that could still be removed.
    let applied = shears_exec::apply(&m, &[plan]).unwrap();
    let p = load("pruned", applied.proto);
    let w = p.graph.value_id(layer).unwrap();
    assert_eq!(p.graph.value(w).shape.as_deref(), Some(&[16usize, 24][..]));
    let g2 = DependencyGraph::build_heads(&p);
    assert!(shears_plan::plan_heads(&p, &g2, layer, &[0]).is_err());
}

#[test]
fn head_plans_refuse_bad_requests_naming_the_layer() {
    let m = load("vit_encoder_layer", zoo::vit_encoder_layer());
    let g = DependencyGraph::build_heads(&m);
    let layer = "encoder.layers.0.self_attention.qkv.weight";
    let e = shears_plan::plan_heads(&m, &g, layer, &[2]).unwrap_err();
    assert!(e.to_string().contains("head 2 is out of range") && e.to_string().contains(layer));
    let e = shears_plan::plan_heads(&m, &g, layer, &[0, 1]).unwrap_err();
    assert!(e.to_string().contains("all 2 heads"), "{e}");
    let e = shears_plan::plan_heads(&m, &g, "encoder.layers.0.mlp.0.weight", &[0]).unwrap_err();
    assert!(e.to_string().contains("no attention heads"), "{e}");
}

#[test]
fn the_head_dim_graph_is_unchanged_and_has_no_head_units() {
    // The default graph keeps head-dim positions as units; whole heads are fixed there.
    let m = load("vit_encoder_layer", zoo::vit_encoder_layer());
    let g = DependencyGraph::build(&m);
    let (_, d) =
        shears_plan::resolve_layer(&m, &g, "encoder.layers.0.self_attention.qkv.weight").unwrap();
    let gid = g.group_at(d, 0).unwrap();
    assert_eq!(g.group(gid).units.len(), 8, "head-dim positions");
}

/// Grouped-query attention: 4 query heads of 4 dims share 2 key/value heads through
/// `repeat_kv` written as Unsqueeze, Expand `[1, 2, 2, 4, 4]` and Reshape to 4 heads; with
/// `computed`, as the TorchScript exporter writes it: the Expand shape is
/// `Where(Equal(s, -1), 1, s)` of `s = [1, kv, 2, 4, 4]` and the Reshape target
/// `[1, kv * 2, 4, 4]`, `kv` read from the keys' shape at run time.
fn gqa_with(computed: bool) -> shears_onnx::proto::ModelProto {
    use shears_testkit::builder::ModelBuilder;
    let mut b = ModelBuilder::new(17).named("gqa");
    let x = b.input("input", &[1, 4, 16]);
    let q = b.linear(&x, "q_proj", 16);
    let k = b.linear(&x, "k_proj", 8);
    let v = b.linear(&x, "v_proj", 8);
    let q = b.reshape(&q, &[1, 4, 4, 4]);
    let q = b.transpose(&q, &[0, 2, 1, 3]);
    let repeat_kv = |b: &mut ModelBuilder, t: &str| -> String {
        let t = b.reshape(t, &[1, 4, 2, 4]);
        let t = b.transpose(&t, &[0, 2, 1, 3]);
        let kt = t.clone();
        let t = b.unsqueeze(&t, &[2]);
        if !computed {
            let name = b.unique_value_name("repeat_shape");
            let shape = b.init_i64(&name, &[5], &[1, 2, 2, 4, 4]);
            let e = b.node("Expand", &[&t, &shape], 1, vec![]).remove(0);
            b.set_shape(&e, &[1, 2, 2, 4, 4]);
            return b.reshape(&e, &[1, 4, 4, 4]);
        }
        let int = |b: &mut ModelBuilder, base: &str, dims: &[i64], v: &[i64]| {
            let name = b.unique_value_name(base);
            b.init_i64(&name, dims, v)
        };
        let shape = b.shape(&kt);
        let kv = b.gather(&shape, 1, 0);
        let kv1 = b.unsqueeze(&kv, &[0]);
        let one = int(b, "one", &[1], &[1]);
        let tail = int(b, "tail", &[3], &[2, 4, 4]);
        let s = b.concat(&[&one, &kv1, &tail], 0);
        let neg = int(b, "minus_ones", &[5], &[-1; 5]);
        let eq = b.node("Equal", &[&s, &neg], 1, vec![]).remove(0);
        b.set_shape(&eq, &[5]);
        b.set_dtype(&eq, shears_onnx::proto::tensor_proto::DataType::Bool as i32);
        let ones = int(b, "ones", &[5], &[1; 5]);
        let target = b.node("Where", &[&eq, &ones, &s], 1, vec![]).remove(0);
        b.set_shape(&target, &[5]);
        b.set_dtype(
            &target,
            shears_onnx::proto::tensor_proto::DataType::Int64 as i32,
        );
        let e = b.node("Expand", &[&t, &target], 1, vec![]).remove(0);
        b.set_shape(&e, &[1, 2, 2, 4, 4]);
        let two = int(b, "n_rep", &[], &[2]);
        let heads = b.node("Mul", &[&kv, &two], 1, vec![]).remove(0);
        b.set_shape(&heads, &[]);
        b.set_dtype(
            &heads,
            shears_onnx::proto::tensor_proto::DataType::Int64 as i32,
        );
        let heads = b.unsqueeze(&heads, &[0]);
        let rest = int(b, "rest", &[2], &[4, 4]);
        let merged = b.concat(&[&one, &heads, &rest], 0);
        b.reshape_dynamic(&e, &merged, &[1, 4, 4, 4])
    };
    let k = repeat_kv(&mut b, &k);
    let v = repeat_kv(&mut b, &v);
    let kt = b.transpose(&k, &[0, 1, 3, 2]);
    let s = b.matmul(&q, &kt);
    let s = b.softmax(&s, -1);
    let c = b.matmul(&s, &v);
    let c = b.transpose(&c, &[0, 2, 1, 3]);
    let c = b.reshape(&c, &[1, 4, 16]);
    let o = b.linear(&c, "o_proj", 16);
    b.output(&o);
    b.build()
}

#[test]
fn computed_repeat_kv_head_counts_follow_the_removed_key_value_heads() {
    // Every count is read at run time (or is the unchanged n_rep): no rewrite is needed, and
    // the Where and the product are followed rather than blocking the group.
    let m = load("gqa_computed", gqa_with(true));
    let g = DependencyGraph::build_heads(&m);
    let k = shears_plan::layer_heads(&m, &g, "k_proj.weight").unwrap();
    assert_eq!(k.heads.len(), 2);
    let checks = shears_testkit::check_every_head(&m, &common::static_shapes(&m), 2, 5).unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    for c in &checks {
        assert!(
            c.exactness.exact_expected && c.exactness.max_rel <= 1e-5,
            "{c:?}"
        );
    }
}

#[test]
fn with_grouped_query_attention_a_unit_is_a_key_value_head_and_its_query_group() {
    let m = load("gqa", gqa_with(false));
    let g = DependencyGraph::build_heads(&m);
    let q = shears_plan::layer_heads(&m, &g, "q_proj.weight").unwrap();
    assert_eq!(
        q.heads,
        vec![(0..8).collect::<Vec<u32>>(), (8..16).collect()]
    );
    let k = shears_plan::layer_heads(&m, &g, "k_proj.weight").unwrap();
    assert_eq!(
        k.heads,
        vec![(0..4).collect::<Vec<u32>>(), (4..8).collect()]
    );
    // Removing key/value head 1 removes query heads 2 and 3, and every head count follows.
    let plan = shears_plan::plan_heads(&m, &g, "k_proj.weight", &[1]).unwrap();
    let rw: Vec<String> = plan
        .rewrites
        .iter()
        .map(shears_plan::rewrite_line)
        .collect();
    for (old, new) in [
        ("[1, 2, 2, 4, 4]", "[1, 1, 2, 4, 4]"),
        ("[1, 4, 4, 4]", "[1, 2, 4, 4]"),
        ("[1, 4, 2, 4]", "[1, 4, 1, 4]"),
        ("[1, 4, 16]", "[1, 4, 8]"),
    ] {
        assert!(
            rw.iter().any(|l| l.contains(&format!("{old} -> {new}"))),
            "{old}: {rw:?}"
        );
    }
    let checks = shears_testkit::check_every_head(&m, &common::static_shapes(&m), 2, 5).unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    for c in &checks {
        assert!(
            c.exactness.exact_expected && c.exactness.max_rel <= 1e-5,
            "{c:?}"
        );
    }
}
