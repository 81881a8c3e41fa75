//! Whole attention heads on the builder's attention models (no ../shared needed): every head
//! removed alone is exact by the zeroing check, and the pruned model has one head fewer.

#[allow(dead_code)]
mod common;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{builder::zoo, Model};

fn load(name: &str, proto: shears_onnx::proto::ModelProto) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = common::static_shapes(&m);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

#[test]
fn every_head_of_the_vit_layer_is_removable_alone_and_exact() {
    let m = load("vit_encoder_layer", zoo::vit_encoder_layer());
    let checks = shears_exec::check_every_head(&m, &common::static_shapes(&m), 2, 7).unwrap();
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
