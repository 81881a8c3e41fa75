//! A shape entry read through a computed shape tensor that other nodes read too (exporters
//! share one `Concat` between the Expands of several layers): the rewrite gives the one reader
//! whose axis loses channels a private copy, `Where(mask, values, shared)`, and the pruned
//! model is exact while the other reader keeps its size.

use shears_graph::rules::Rewrite;
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_int, ModelBuilder};

/// conv1 and conv3 (8 channels each, `[1, 8, 1, 1]` after a global pool) -> Expand both to one
/// shape tensor `[2, 8, 1, 1]` (a Concat of literals) -> a 1x1 conv each -> Add.
fn shared_expand_model() -> Model {
    let mut b = ModelBuilder::new(13);
    let x = b.input("x", &[1, 3, 4, 4]);
    let lead = b.vec_i64("lead", &[2]);
    let rest = b.vec_i64("rest", &[8, 1, 1]);
    let shape = b.node("Concat", &[&lead, &rest], 1, vec![attr_int("axis", 0)]);
    b.set_shape(&shape[0], &[4]);
    let mut outs = Vec::new();
    for layer in ["conv1", "conv3"] {
        let y = b.conv(&x, layer, 8, 3, 1, 1, 1, true);
        let y = b.node("GlobalAveragePool", &[&y], 1, vec![]);
        b.set_shape(&y[0], &[1, 8, 1, 1]);
        let e = b.node("Expand", &[&y[0], &shape[0]], 1, vec![]);
        b.set_shape(&e[0], &[2, 8, 1, 1]);
        outs.push(b.conv(&e[0], &format!("{layer}_next"), 4, 1, 1, 0, 1, true));
    }
    let out = b.add(&outs[0], &outs[1]);
    b.output(&out);
    let mut m = Model::from_proto(b.build(), "shared_expand", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

#[test]
fn a_shared_shape_tensor_is_overlaid_for_the_one_reader_and_exact() {
    let m = shared_expand_model();
    let graph = DependencyGraph::build(&m);
    let plan = shears_plan::plan(&m, &graph, "/conv1/Conv", &[2, 5, 6]).unwrap();
    let overlays: Vec<&Rewrite> = plan
        .rewrites
        .iter()
        .filter(|r| matches!(r, Rewrite::ShapeOverlay { .. }))
        .collect();
    assert_eq!(overlays.len(), 1, "{:?}", plan.rewrites);
    let Rewrite::ShapeOverlay { entries, .. } = overlays[0] else {
        unreachable!()
    };
    assert_eq!(entries, &[(1, 8, 5)]);
    let ex = shears_testkit::check_exactness(
        &m,
        std::slice::from_ref(&plan),
        &InputShapes::default(),
        2,
        5,
    )
    .unwrap();
    assert!(
        ex.exact_expected && ex.shapes_equal && ex.max_rel <= 1e-5,
        "{ex:?}"
    );
    // The shared literals are untouched: conv3's Expand still reads 8 channels.
    let proto = shears_exec::apply(&m, &[plan]).unwrap().proto;
    let g = proto.graph.as_ref().unwrap();
    let rest = g
        .initializer
        .iter()
        .find(|t| t.name.starts_with("rest"))
        .unwrap();
    let vals: Vec<i64> = rest
        .raw_data
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, [8, 1, 1], "{rest:?}");
    let wheres: Vec<_> = g.node.iter().filter(|n| n.op_type == "Where").collect();
    assert_eq!(wheres.len(), 1);
    // The new node comes before the Expand reading it.
    let pos = |pred: &dyn Fn(&shears_onnx::proto::NodeProto) -> bool| {
        g.node.iter().position(pred).unwrap()
    };
    let w = pos(&|n| n.op_type == "Where");
    let e = pos(&|n| n.op_type == "Expand" && n.input.contains(&wheres[0].output[0]));
    assert!(w < e);
}
