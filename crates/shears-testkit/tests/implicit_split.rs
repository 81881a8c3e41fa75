//! A Split whose sizes are implicit (equal parts before opset 18 with no sizes given,
//! `num_outputs` from 18) prunes exactly: a cut that leaves the parts what the spec's rule
//! gives keeps them implicit; one that makes them unequal writes explicit sizes (the `split`
//! attribute before opset 13, a constant input from 13, replacing `num_outputs`).

use shears_graph::rules::Rewrite;
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_int, ModelBuilder};

/// conv1 (8 channels) -> Split on channels in two, sizes implicit -> a conv on each half ->
/// Add. `num_outputs` is written from opset 18, where the spec wants it or sizes.
fn implicit_split_model(opset: i64) -> ModelProto {
    let mut b = ModelBuilder::new(opset);
    let x = b.input("x", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let mut attrs = vec![attr_int("axis", 1)];
    if opset >= 18 {
        attrs.push(attr_int("num_outputs", 2));
    }
    let parts = b.node("Split", &[y.as_str()], 2, attrs);
    for p in &parts {
        b.set_shape(p, &[1, 4, 8, 8]);
    }
    let a = b.conv(&parts[0], "conv_a", 6, 1, 1, 0, 1, true);
    let c = b.conv(&parts[1], "conv_b", 6, 1, 1, 0, 1, true);
    let out = b.add(&a, &c);
    b.output(&out);
    b.build()
}

fn load(opset: i64) -> Model {
    let mut m = Model::from_proto(
        implicit_split_model(opset),
        format!("split{opset}"),
        ExternalStore::none(),
    )
    .unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

/// Removes conv1's output channels `removed`, checks the result exact against the zeroed
/// original, and returns the rewrites the plan made.
fn prune_exactly(m: &Model, removed: &[usize]) -> Vec<Rewrite> {
    let graph = DependencyGraph::build(m);
    let plan = shears_plan::plan(m, &graph, "/conv1/Conv", removed).unwrap();
    let ex = shears_testkit::check_exactness(
        m,
        std::slice::from_ref(&plan),
        &InputShapes::default(),
        2,
        3,
    )
    .unwrap();
    assert!(
        ex.exact_expected && ex.shapes_equal && ex.max_rel <= 1e-5,
        "{}: {removed:?}: {ex:?}",
        m.source
    );
    plan.rewrites
}

#[test]
fn an_implicit_split_is_prunable_in_every_opset_form() {
    for opset in [11, 13, 18] {
        let m = load(opset);
        let graph = DependencyGraph::build(&m);
        let v = m.graph.value_id("conv1.weight").unwrap();
        let d = graph.dim_id(shears_graph::DimKey::Axis(v, 0)).unwrap();
        for i in 0..8 {
            let g = graph.group_at(d, i).unwrap();
            assert!(graph.group(g).is_prunable(), "opset {opset}: channel {i}");
        }
    }
}

#[test]
fn equal_cuts_keep_an_implicit_split_implicit() {
    for opset in [11, 13, 18] {
        let m = load(opset);
        // One channel of each half: the parts stay equal.
        assert_eq!(prune_exactly(&m, &[1, 6]), Vec::new(), "opset {opset}");
    }
}

#[test]
fn unequal_cuts_write_explicit_split_sizes() {
    for opset in [11, 13, 18] {
        let m = load(opset);
        // Three channels of the first half, none of the second.
        let rw = prune_exactly(&m, &[0, 2, 3]);
        assert_eq!(
            rw,
            vec![Rewrite::SplitSizes {
                node: m
                    .graph
                    .nodes
                    .iter()
                    .find(|n| n.op_type == "Split")
                    .unwrap()
                    .name
                    .clone(),
                old: vec![4, 4],
                new: vec![1, 4],
            }],
            "opset {opset}"
        );
        // The written model says so in the form its opset reads.
        let graph = DependencyGraph::build(&m);
        let plan = shears_plan::plan(&m, &graph, "/conv1/Conv", &[0, 2, 3]).unwrap();
        let proto = shears_exec::apply(&m, &[plan]).unwrap().proto;
        let split = proto
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .find(|n| n.op_type == "Split")
            .unwrap();
        let attr = |a: &str| split.attribute.iter().find(|x| x.name == a);
        if opset < 13 {
            assert_eq!(attr("split").unwrap().ints, [1, 4]);
            assert_eq!(split.input.len(), 1);
        } else {
            assert!(attr("split").is_none() && attr("num_outputs").is_none());
            assert_eq!(split.input.len(), 2, "{split:?}");
        }
    }
}
