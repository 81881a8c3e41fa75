//! Models in the layouts older pipelines write: every initializer also declared as a graph input
//! (IR < 4, `keep_initializers_as_inputs=True`) and the opset-9 forms of that era (Clip and Pad
//! with attributes, Split with a `split` attribute, attribute-form Slice, Upsample).
//!
//! Initializers listed as inputs are parameters: they group exactly as without the listing, every
//! prunable group prunes exactly (the zeroing check), and the pruned model's input declarations
//! follow the new shapes (the IR refuses a declaration that contradicts its initializer, so a
//! stale one fails the reload).

mod common;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::{tensor_shape_proto::dimension, type_proto, ModelProto};
use shears_onnx::Model;
use shears_testkit::builder;
use shears_testkit::builder::{attr_float, attr_int, attr_ints, attr_string, zoo, ModelBuilder};

const TOLERANCE: f64 = 1e-5;

fn analysed(proto: ModelProto, source: &str) -> Model {
    let mut m = Model::from_proto(proto, source, ExternalStore::none())
        .unwrap_or_else(|e| panic!("{source}: {e}"));
    let shapes = common::static_shapes(&m);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap_or_else(|e| panic!("{source}: {e}"));
    m
}

/// Every graph input that names an initializer declares exactly its type and dims.
fn assert_declarations_follow(proto: &ModelProto, what: &str) {
    let g = proto.graph.as_ref().expect("graph");
    let mut checked = 0;
    for vi in &g.input {
        let Some(t) = g.initializer.iter().find(|t| t.name == vi.name) else {
            continue;
        };
        let Some(type_proto::Value::TensorType(decl)) =
            vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            panic!("{what}: input '{}' has no tensor type", vi.name);
        };
        let dims: Vec<i64> = decl
            .shape
            .as_ref()
            .expect("shape")
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => v,
                _ => -1,
            })
            .collect();
        assert_eq!(dims, t.dims, "{what}: input '{}' declaration", vi.name);
        assert_eq!(decl.elem_type, t.data_type, "{what}: input '{}'", vi.name);
        checked += 1;
    }
    assert!(checked > 0, "{what}: no initializer is an input");
}

/// Plans every third unit of every prunable group (by its root layer), checks the pruned
/// model's declarations and exactness; returns how many groups were checked.
fn prune_every_group(model: &Model, what: &str) -> usize {
    let graph = DependencyGraph::build(model);
    let shapes = common::static_shapes(model);
    let mut checked = 0;
    for (report, group) in shears_plan::group_reports(model, &graph)
        .iter()
        .zip(&graph.groups)
    {
        if !report.prunable || report.channels < 2 {
            continue;
        }
        let root = report.root.rsplit_once('[').expect("root[axis]").0;
        let Ok((_, d)) = shears_plan::resolve_layer(model, &graph, root) else {
            continue;
        };
        // One root index for every third unit of this group (a unit may span several indices,
        // and the root layer's axis may span several groups).
        let mut seen = std::collections::BTreeSet::new();
        let mut idxs = Vec::new();
        for i in 0..graph.dim(d).size {
            let u = graph.unit_at(d, i).expect("in range");
            if graph.unit_group(u) == Some(group.id) && seen.insert(u) && seen.len() % 3 == 2 {
                idxs.push(i);
            }
        }
        if idxs.is_empty() {
            continue;
        }
        let plan = shears_plan::plan(model, &graph, root, &idxs)
            .unwrap_or_else(|e| panic!("{what}: plan {root}: {e}"));
        let applied = shears_exec::apply(model, std::slice::from_ref(&plan))
            .unwrap_or_else(|e| panic!("{what}: apply {root}: {e}"));
        assert_declarations_follow(&applied.proto, &format!("{what}: {root}"));
        let ex = shears_testkit::check_exactness(model, std::slice::from_ref(&plan), &shapes, 1, 7)
            .unwrap_or_else(|e| panic!("{what}: {root}: {e}"));
        assert!(ex.shapes_equal, "{what}: {root}: output shapes changed");
        if ex.exact_expected {
            assert!(
                ex.max_rel <= TOLERANCE,
                "{what}: {root} {idxs:?}: max rel {:.3e}",
                ex.max_rel
            );
        }
        checked += 1;
    }
    checked
}

fn with_initializer_inputs(mut proto: ModelProto) -> ModelProto {
    builder::initializers_as_inputs(&mut proto);
    proto
}

/// The group listing, every group with its root, size, blockers and members.
fn groups_text(model: &Model) -> String {
    let graph = DependencyGraph::build(model);
    let reports = shears_plan::group_reports(model, &graph);
    shears_plan::render_groups_text("model", &reports)
}

#[test]
fn initializers_listed_as_inputs_group_and_prune_like_plain_ones() {
    let mut total = 0;
    for (name, build) in zoo::MODELS {
        let plain = analysed(build(), name);
        if plain
            .proto
            .graph
            .as_ref()
            .expect("graph")
            .initializer
            .is_empty()
        {
            continue; // weights as Constant nodes: nothing to list
        }
        let listed = analysed(with_initializer_inputs(build()), name);
        assert!(!listed.graph.param_inputs.is_empty(), "{name}");
        assert_eq!(
            listed.graph.inputs, plain.graph.inputs,
            "{name}: runtime inputs"
        );
        assert_eq!(groups_text(&listed), groups_text(&plain), "{name}: groups");
        total += prune_every_group(&listed, name);
    }
    assert!(total > 50, "only {total} groups checked");
}

#[test]
fn fixtures_with_initializers_listed_as_inputs_prune_exactly() {
    for f in common::fixture_files()
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("-keepbn.onnx"))
    {
        let what = f.file_name().unwrap().to_string_lossy().into_owned();
        let plain = Model::load(f).unwrap();
        let listed = analysed(with_initializer_inputs(plain.proto.clone()), &what);
        let plain = analysed(plain.proto, &what);
        assert_eq!(groups_text(&listed), groups_text(&plain), "{what}: groups");
        assert!(prune_every_group(&listed, &what) > 0, "{what}");
    }
}

/// Conv -> Clip(attrs) -> Split(attr) into two convs, one through an attribute Slice, Concat,
/// Pad(attr), MaxPool, Upsample, an attribute Slice cropping space, Conv, Reshape, Flatten,
/// Gemm: opset 9, IR 4, every initializer an input.
fn opset9_model() -> ModelProto {
    let mut b = ModelBuilder::new(9).named("opset9_forms");
    let x = b.input("x", &[1, 3, 16, 16]);
    let w1 = b.param_random("c1.weight", &[8, 3, 3, 3]);
    let b1 = b.param_random("c1.bias", &[8]);
    let pads = attr_ints("pads", &[1, 1, 1, 1]);
    let a = b.node("Conv", &[&x, &w1, &b1], 1, vec![pads.clone()]);
    let a = b.node(
        "Clip",
        &[&a[0]],
        1,
        vec![attr_float("min", 0.0), attr_float("max", 6.0)],
    );
    let s = b.node(
        "Split",
        &[&a[0]],
        2,
        vec![attr_int("axis", 1), attr_ints("split", &[4, 4])],
    );
    let w2 = b.param_random("c2.weight", &[8, 4, 3, 3]);
    let c2 = b.node("Conv", &[&s[0], &w2], 1, vec![pads.clone()]);
    let w3 = b.param_random("c3.weight", &[6, 4, 1, 1]);
    let c3 = b.node("Conv", &[&s[1], &w3], 1, vec![]);
    let c3 = b.node(
        "Slice",
        &[&c3[0]],
        1,
        vec![
            attr_ints("starts", &[0]),
            attr_ints("ends", &[4]),
            attr_ints("axes", &[1]),
        ],
    );
    let cat = b.node("Concat", &[&c2[0], &c3[0]], 1, vec![attr_int("axis", 1)]);
    let pad = b.node(
        "Pad",
        &[&cat[0]],
        1,
        vec![
            attr_ints("pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
            attr_string("mode", "constant"),
            attr_float("value", 0.0),
        ],
    );
    let pool = b.node(
        "MaxPool",
        &[&pad[0]],
        1,
        vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[2, 2]),
        ],
    );
    let scales = b.init_f32("up.scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    let up = b.node(
        "Upsample",
        &[&pool[0], &scales],
        1,
        vec![attr_string("mode", "nearest")],
    );
    let crop = b.node(
        "Slice",
        &[&up[0]],
        1,
        vec![
            attr_ints("starts", &[0, 0]),
            attr_ints("ends", &[16, 16]),
            attr_ints("axes", &[2, 3]),
        ],
    );
    let w4 = b.param_random("c4.weight", &[4, 12, 3, 3]);
    let c4 = b.node(
        "Conv",
        &[&crop[0], &w4],
        1,
        vec![pads, attr_ints("strides", &[2, 2])],
    );
    let r = b.node("Relu", &[&c4[0]], 1, vec![]);
    let shape = b.init_i64("reshape.shape", &[4], &[1, -1, 8, 8]);
    let r = b.node("Reshape", &[&r[0], &shape], 1, vec![]);
    let f = b.node("Flatten", &[&r[0]], 1, vec![attr_int("axis", 1)]);
    let wf = b.param_random("fc.weight", &[10, 256]);
    let bf = b.param_random("fc.bias", &[10]);
    let y = b.node("Gemm", &[&f[0], &wf, &bf], 1, vec![attr_int("transB", 1)]);
    for (v, dims) in [
        (&a[0], [1, 8, 16, 16]),
        (&s[0], [1, 4, 16, 16]),
        (&s[1], [1, 4, 16, 16]),
        (&c2[0], [1, 8, 16, 16]),
        (&c3[0], [1, 4, 16, 16]),
        (&cat[0], [1, 12, 16, 16]),
        (&pad[0], [1, 12, 18, 18]),
        (&pool[0], [1, 12, 9, 9]),
        (&up[0], [1, 12, 18, 18]),
        (&crop[0], [1, 12, 16, 16]),
        (&r[0], [1, 4, 8, 8]),
    ] {
        b.set_shape(v, &dims);
    }
    b.set_shape(&f[0], &[1, 256]);
    b.set_shape(&y[0], &[1, 10]);
    b.output(&y[0]);
    let mut proto = b.build();
    proto.ir_version = 4;
    builder::initializers_as_inputs(&mut proto);
    proto
}

#[test]
fn opset9_forms_with_initializer_inputs_group_and_prune_exactly() {
    let m = analysed(opset9_model(), "opset9_forms");
    let graph = DependencyGraph::build(&m);
    let reports = shears_plan::group_reports(&m, &graph);
    let prunable: Vec<(String, usize)> = reports
        .iter()
        .filter(|r| r.prunable)
        .map(|r| (r.root.clone(), r.channels))
        .collect();
    // The Split's halves are separate groups; the Slice keeps c3's first four channels coupled
    // to c4 and leaves the last two to c3 alone; Upsample, Pad, Clip and Reshape map channels
    // one to one.
    assert_eq!(
        prunable,
        [
            ("c1.weight[0]".to_string(), 4),
            ("c1.weight[0]".to_string(), 4),
            ("c2.weight[0]".to_string(), 8),
            ("c3.weight[0]".to_string(), 4),
            ("c3.weight[0]".to_string(), 2),
            ("c4.weight[0]".to_string(), 4),
        ],
        "{}",
        shears_plan::render_groups_text("opset9_forms", &reports)
    );
    assert_eq!(prune_every_group(&m, "opset9_forms"), 6);
}

/// Two convs whose outputs go through Reshapes reading one shared target constant, IR 3
/// (opset 8), every initializer an input: pruning one conv gives its Reshape a private
/// rewritten copy of the target, which IR < 4 requires to be declared as a graph input too.
#[test]
fn a_private_shape_constant_is_declared_as_an_input_below_ir_4() {
    let mut b = ModelBuilder::new(8).named("shared_target");
    let x = b.input("x", &[1, 3, 4, 4]);
    let target = b.init_i64("target", &[3], &[1, 8, 16]);
    let mut outs = Vec::new();
    for name in ["a", "b"] {
        let w = b.param_random(&format!("{name}.weight"), &[8, 3, 1, 1]);
        let c = b.node_named(&format!("/{name}/Conv"), "Conv", &[&x, &w], 1, vec![]);
        let r = b.node_named(
            &format!("/{name}/Reshape"),
            "Reshape",
            &[&c[0], &target],
            1,
            vec![],
        );
        b.set_shape(&r[0], &[1, 8, 16]);
        let v = b.param_random(&format!("{name}.proj"), &[4, 8]);
        let y = b.node_named(
            &format!("/{name}/MatMul"),
            "MatMul",
            &[&v, &r[0]],
            1,
            vec![],
        );
        b.set_shape(&y[0], &[1, 4, 16]);
        outs.push(y[0].clone());
    }
    let sum = b.node("Add", &[&outs[0], &outs[1]], 1, vec![]);
    b.set_shape(&sum[0], &[1, 4, 16]);
    b.output(&sum[0]);
    let mut proto = b.build();
    proto.ir_version = 3;
    builder::initializers_as_inputs(&mut proto);
    let m = analysed(proto, "shared_target");
    let graph = DependencyGraph::build(&m);
    let plan = shears_plan::plan(&m, &graph, "/a/Conv", &[1, 5]).unwrap();
    let applied = shears_exec::apply(&m, std::slice::from_ref(&plan)).unwrap();
    let g = applied.proto.graph.as_ref().unwrap();
    let copy = g
        .initializer
        .iter()
        .find(|t| t.name.starts_with("target.pruned"))
        .expect("a private copy of the shared target");
    assert!(g.input.iter().any(|i| i.name == copy.name), "not declared");
    assert_declarations_follow(&applied.proto, "shared_target");
    let ex =
        shears_testkit::check_exactness(&m, &[plan], &common::static_shapes(&m), 1, 7).unwrap();
    assert!(ex.max_rel <= TOLERANCE, "max rel {:.3e}", ex.max_rel);
}
