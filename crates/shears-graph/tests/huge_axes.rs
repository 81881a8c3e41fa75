//! Axes too long to carry channels (an input declared H = W = 2^30) get no atoms: the graph
//! stays the size of its channels, and every dim linked to such an axis keeps its size.

use shears_graph::{DependencyGraph, DimKey, MAX_AXIS_ATOMS};
use shears_onnx::external::ExternalStore;
use shears_onnx::Model;
use shears_testkit::builder::{declare, zoo, ModelBuilder};

/// The testkit's two convs (3→8→4) declared with H = W = `hw`, shapes inferred.
fn model(hw: i64) -> Model {
    let p = zoo::two_convs_declared(hw);
    let mut m = Model::from_proto(p, "convs", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
    m
}

#[test]
fn long_axes_get_no_atoms_and_channel_axes_still_group() {
    for hw in [8, 1 << 30] {
        let m = model(hw);
        let g = DependencyGraph::build(&m);
        let x = m.graph.value_id("input").unwrap();
        let spatial = g.dim_id(DimKey::Axis(x, 2));
        assert_eq!(spatial.is_some(), (hw as usize) <= MAX_AXIS_ATOMS, "{hw}");
        // Units: at most the channels (3 + 8 + 4) plus the small spatial axes' positions.
        assert!(g.unit_count() < 16 + 8 * 8 * 8, "{hw}: {}", g.unit_count());
        let conv1 = m.graph.value_id("conv1.weight").unwrap();
        let d = g.dim_id(DimKey::Axis(conv1, 0)).unwrap();
        let gid = g.group_at(d, 0).unwrap();
        assert!(g.group(gid).is_prunable(), "{hw}");
        assert_eq!(g.group(gid).units.len(), 8, "{hw}");
    }
}

#[test]
fn a_dim_linked_to_a_too_long_axis_keeps_its_size() {
    // conv1's 8 channels are concatenated with an input of 2^30 channels: the Concat's output
    // axis (8 + 2^30) cannot carry channels, so conv1's channels cannot follow a cut either.
    let mut b = ModelBuilder::new(17).named("cat");
    let x = b.input("x", &[1, 3, 2, 2]);
    let y = b.input("y", &[1, 4, 2, 2]);
    let w1 = b.param_random("conv1.weight", &[8, 3, 1, 1]);
    let c = b.node_named("conv1", "Conv", &[&x, &w1], 1, vec![]);
    let cat = b.node_named(
        "cat",
        "Concat",
        &[&c[0], &y],
        1,
        vec![shears_testkit::builder::attr_int("axis", 1)],
    );
    let r = b.node_named("relu", "Relu", &[&cat[0]], 1, vec![]);
    b.output(&r[0]);
    let mut p = b.build();
    let g = p.graph.as_mut().unwrap();
    declare(&mut g.input, "y", &[1, 1 << 30, 2, 2]);
    g.output[0].r#type = None;
    let mut m = Model::from_proto(p, "cat", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
    let g = DependencyGraph::build(&m);
    let conv1 = m.graph.value_id("conv1.weight").unwrap();
    let d = g.dim_id(DimKey::Axis(conv1, 0)).unwrap();
    let gid = g.group_at(d, 0).unwrap();
    assert!(!g.group(gid).is_prunable());
    let reasons: Vec<&str> = g
        .group(gid)
        .blockers
        .iter()
        .map(|(_, f)| f.reason.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Concat 'cat' links it to")
                && r.contains("axis 1 has 1073741832 elements")),
        "{reasons:?}"
    );
}
