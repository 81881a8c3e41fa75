//! What once surfaced only when a plan was made (a slice bound or shape entry computed at run
//! time, a strided slice) is found while grouping: the group through
//! it is blocked with the reason, so `groups` never calls prunable what planning refuses. Each
//! case is checked against the same model with a constant in place of the computation, whose
//! group is prunable.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::{attr_int, ModelBuilder};

/// The blockers of the groups holding `weight`'s output channels (axis 0), or `None` when
/// every such group is prunable.
fn blockers_of(proto: ModelProto, weight: &str) -> Option<String> {
    let mut m = Model::from_proto(proto, "case", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&m);
    let v = m.graph.value_id(weight).unwrap();
    let d = graph.dim_id(shears_graph::DimKey::Axis(v, 0)).unwrap();
    let mut out: Vec<String> = (0..graph.dim(d).size)
        .filter_map(|i| graph.group_at(d, i))
        .flat_map(|g| {
            graph
                .group(g)
                .blockers
                .iter()
                .map(|(_, f)| f.reason.clone())
        })
        .collect();
    out.sort();
    out.dedup();
    (!out.is_empty()).then(|| out.join("\n"))
}

/// conv1 (8 channels) -> Split on channels in two -> conv on each half -> Add.
fn split_model(split: Option<&[i64]>) -> ModelProto {
    let mut b = ModelBuilder::new(13);
    let x = b.input("x", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let sizes = split.map(|s| b.vec_i64("split", s));
    let mut ins = vec![y.as_str()];
    ins.extend(sizes.as_deref());
    let parts = b.node("Split", &ins, 2, vec![attr_int("axis", 1)]);
    for p in &parts {
        b.set_shape(p, &[1, 4, 8, 8]);
    }
    let a = b.conv(&parts[0], "conv_a", 6, 1, 1, 0, 1, true);
    let c = b.conv(&parts[1], "conv_b", 6, 1, 1, 0, 1, true);
    let out = b.add(&a, &c);
    b.output(&out);
    b.build()
}

#[test]
fn an_implicit_equal_split_does_not_block_the_channels_it_splits() {
    // The rewrite writes explicit sizes when a cut makes the parts unequal
    // (shears-testkit/tests/implicit_split.rs checks the pruned models).
    assert_eq!(blockers_of(split_model(None), "conv1.weight"), None);
    assert_eq!(
        blockers_of(split_model(Some(&[4, 4])), "conv1.weight"),
        None
    );
}

/// conv1 (8 channels) -> Slice of channels [start, end) (step `step`) -> conv2. With
/// `computed_end`, the end is half the channel count, read from the shape at run time.
fn slice_model(start: i64, end: i64, step: i64, computed_end: bool) -> ModelProto {
    let mut b = ModelBuilder::new(13);
    let x = b.input("x", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let starts = b.vec_i64("starts", &[start]);
    let ends = if computed_end {
        let shape = b.node("Shape", &[&y], 1, vec![]);
        b.set_shape(&shape[0], &[4]);
        let idx = b.vec_i64("channel_axis", &[1]);
        let c = b.node("Gather", &[&shape[0], &idx], 1, vec![attr_int("axis", 0)]);
        b.set_shape(&c[0], &[1]);
        let two = b.vec_i64("two", &[2]);
        let half = b.node("Div", &[&c[0], &two], 1, vec![]);
        b.set_shape(&half[0], &[1]);
        half[0].clone()
    } else {
        b.vec_i64("ends", &[end])
    };
    let axes = b.vec_i64("axes", &[1]);
    let steps = b.vec_i64("steps", &[step]);
    let s = b.node("Slice", &[&y, &starts, &ends, &axes, &steps], 1, vec![]);
    let n = (end - start + step - 1) / step;
    b.set_shape(&s[0], &[1, n, 8, 8]);
    let out = b.conv(&s[0], "conv2", 4, 1, 1, 0, 1, true);
    b.output(&out);
    b.build()
}

#[test]
fn a_computed_slice_bound_blocks_the_channels_it_would_move() {
    let why = blockers_of(slice_model(0, 4, 1, true), "conv1.weight").expect("blocked");
    assert!(
        why.contains("Slice") && why.contains("computed ends"),
        "{why}"
    );
    assert_eq!(
        blockers_of(slice_model(0, 4, 1, false), "conv1.weight"),
        None
    );
}

#[test]
fn a_strided_slice_of_channels_blocks_them() {
    let why = blockers_of(slice_model(0, 8, 2, false), "conv1.weight").expect("blocked");
    assert!(why.contains("with step 2"), "{why}");
}

/// conv1 (8 channels) -> Reshape to [1, 8, 64] -> Reshape back to [1, 8, 8, 8] -> conv2. With
/// `computed`, the first target's channel entry is `7 + 1`, computed from constants.
fn reshape_model(computed: bool) -> ModelProto {
    let mut b = ModelBuilder::new(13);
    let x = b.input("x", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let target = if computed {
        let one = b.vec_i64("one", &[1]);
        let seven = b.vec_i64("seven", &[7]);
        let c = b.node("Add", &[&seven, &one], 1, vec![]);
        b.set_shape(&c[0], &[1]);
        let hw = b.vec_i64("hw", &[64]);
        let t = b.node("Concat", &[&one, &c[0], &hw], 1, vec![attr_int("axis", 0)]);
        b.set_shape(&t[0], &[3]);
        t[0].clone()
    } else {
        b.vec_i64("target", &[1, 8, 64])
    };
    let r = b.node("Reshape", &[&y, &target], 1, vec![]);
    b.set_shape(&r[0], &[1, 8, 64]);
    let back = b.vec_i64("back", &[1, 8, 8, 8]);
    let r = b.node("Reshape", &[&r[0], &back], 1, vec![]);
    b.set_shape(&r[0], &[1, 8, 8, 8]);
    let out = b.conv(&r[0], "conv2", 4, 1, 1, 0, 1, true);
    b.output(&out);
    b.build()
}

#[test]
fn a_shape_entry_computed_from_constants_blocks_the_channels_it_sizes() {
    let why = blockers_of(reshape_model(true), "conv1.weight").expect("blocked");
    assert!(
        why.contains("Reshape")
            && why.contains("entry 1")
            && why.contains("computed from constants"),
        "{why}"
    );
    assert_eq!(blockers_of(reshape_model(false), "conv1.weight"), None);
}

/// conv1 (8 channels, `[1, 8, 1, 1]` after a global pool) -> Expand to `[2, 8, 1, 1]` (the shape
/// a Concat of literals) -> conv2; conv3 (8 channels) -> Expand to the same shape tensor when
/// `shared`, else to its own Concat. An edit of the shared Concat's literal would resize both
/// Expands, though only one group loses channels, so the rewrite overlays a private copy.
fn expand_model(shared: bool) -> ModelProto {
    let mut b = ModelBuilder::new(13);
    let x = b.input("x", &[1, 3, 4, 4]);
    let shape_of = |b: &mut ModelBuilder, k: usize| {
        let lead = b.vec_i64(&format!("lead{k}"), &[2]);
        let rest = b.vec_i64(&format!("rest{k}"), &[8, 1, 1]);
        let s = b.node("Concat", &[&lead, &rest], 1, vec![attr_int("axis", 0)]);
        b.set_shape(&s[0], &[4]);
        s[0].clone()
    };
    let first = shape_of(&mut b, 0);
    let second = if shared {
        first.clone()
    } else {
        shape_of(&mut b, 1)
    };
    let mut outs = Vec::new();
    for (layer, shape) in [("conv1", &first), ("conv3", &second)] {
        let y = b.conv(&x, layer, 8, 3, 1, 1, 1, true);
        let y = b.node("GlobalAveragePool", &[&y], 1, vec![]);
        b.set_shape(&y[0], &[1, 8, 1, 1]);
        let e = b.node("Expand", &[&y[0], shape], 1, vec![]);
        b.set_shape(&e[0], &[2, 8, 1, 1]);
        outs.push(b.conv(&e[0], &format!("{layer}_next"), 4, 1, 1, 0, 1, true));
    }
    let out = b.add(&outs[0], &outs[1]);
    b.output(&out);
    b.build()
}

#[test]
fn a_shape_entry_read_through_a_shared_shape_tensor_does_not_block_its_channels() {
    // The rewrite gives the Expand a private copy with the entry overlaid
    // (shears-testkit/tests/shared_shape_tensor.rs checks the pruned model).
    assert_eq!(blockers_of(expand_model(true), "conv1.weight"), None);
    assert_eq!(blockers_of(expand_model(false), "conv1.weight"), None);
}
