//! Axes too long to carry channels (an input declared H = W = 2^30) get no atoms: the graph
//! stays the size of its channels, and every dim linked to such an axis keeps its size.

use shears_graph::{DependencyGraph, DimKey, MAX_AXIS_ATOMS};
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::tensor_shape_proto::{dimension, Dimension};
use shears_onnx::proto::type_proto;
use shears_onnx::Model;
use shears_testkit::builder::{attr_ints, ModelBuilder};

/// conv1 (3→8, 3x3, same padding) → Relu → conv2 (8→4) → Add with a bias of shape [1, 4, hw, 1]
/// broadcast over W, on an input of H = W = `hw`, declared after building.
fn model(hw: i64) -> Model {
    let mut b = ModelBuilder::new(17).named("convs");
    let x = b.input("x", &[1, 3, 8, 8]);
    let w1 = b.param_random("conv1.weight", &[8, 3, 3, 3]);
    let pads = || attr_ints("pads", &[1, 1, 1, 1]);
    let y = b.node_named("conv1", "Conv", &[&x, &w1], 1, vec![pads()]);
    let r = b.node_named("relu", "Relu", &[&y[0]], 1, vec![]);
    let w2 = b.param_random("conv2.weight", &[4, 8, 3, 3]);
    let z = b.node_named("conv2", "Conv", &[&r[0], &w2], 1, vec![pads()]);
    b.output(&z[0]);
    let mut p = b.build();
    let g = p.graph.as_mut().unwrap();
    let dims = [1, 3, hw, hw];
    let Some(type_proto::Value::TensorType(t)) =
        g.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        panic!("x is a tensor")
    };
    t.shape.get_or_insert_with(Default::default).dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    g.output[0].r#type = None;
    let mut m = Model::from_proto(p, "convs", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
    m
}

#[test]
fn long_axes_get_no_atoms_and_channel_axes_still_group() {
    for hw in [8, 1 << 30] {
        let m = model(hw);
        let g = DependencyGraph::build(&m);
        let x = m.graph.value_id("x").unwrap();
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
    let Some(type_proto::Value::TensorType(t)) =
        g.input[1].r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        panic!("y is a tensor")
    };
    t.shape.as_mut().unwrap().dim[1].value = Some(dimension::Value::DimValue(1 << 30));
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
