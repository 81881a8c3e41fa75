//! The executor's contract: batched plans compose with original indices, double cuts and
//! foreign plans are refused, the input is not mutated, and edited tensors hold exactly the
//! kept slices.

use shears_exec::ExecError;
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;

fn model(name: &str) -> Model {
    let build = zoo::MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no zoo model {name}"))
        .1;
    let mut m = Model::from_proto(build(), name, ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

#[test]
fn applying_the_same_plan_twice_is_an_error_not_a_double_cut() {
    let m = model("residual_downsample_block");
    let g = DependencyGraph::build(&m);
    let layer = &shears_plan::group_reports(&m, &g)
        .into_iter()
        .find(|r| r.prunable)
        .unwrap()
        .root;
    let layer = layer.rsplit_once('[').unwrap().0;
    let p = shears_plan::plan(&m, &g, layer, &[0, 2]).unwrap();
    let err = shears_exec::apply(&m, &[p.clone(), p]).unwrap_err();
    assert!(matches!(err, ExecError::Overlap { .. }), "{err}");
    assert!(
        err.to_string().contains("plan #0 and again by plan #1"),
        "{err}"
    );
}

#[test]
fn a_plan_for_another_model_is_refused() {
    let m = model("conv_bn_relu_chain");
    let g = DependencyGraph::build(&m);
    let root = shears_plan::group_reports(&m, &g)
        .into_iter()
        .find(|r| r.prunable)
        .unwrap()
        .root;
    let layer = root.rsplit_once('[').unwrap().0.to_string();
    let p = shears_plan::plan(&m, &g, &layer, &[1]).unwrap();
    // Apply it, then try to apply the same plan to the already pruned model.
    let applied = shears_exec::apply(&m, std::slice::from_ref(&p)).unwrap();
    let mut pruned = Model::from_proto(applied.proto, "pruned", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut pruned, &InputShapes::default()).unwrap();
    let err = shears_exec::apply(&pruned, &[p]).unwrap_err();
    assert!(matches!(err, ExecError::SizeMismatch { .. }), "{err}");
}

#[test]
fn batched_plans_use_original_indices_and_keep_exactly_the_other_slices() {
    let m = model("conv_bn_relu_chain");
    let before = m.proto.clone();
    let g = DependencyGraph::build(&m);
    let layers: Vec<String> = shears_plan::group_reports(&m, &g)
        .into_iter()
        .filter(|r| r.prunable)
        .map(|r| r.root.rsplit_once('[').unwrap().0.to_string())
        .collect();
    assert!(layers.len() >= 2);
    let plans: Vec<_> = layers
        .iter()
        .map(|l| shears_plan::plan(&m, &g, l, &[0, 3]).unwrap())
        .collect();
    let applied = shears_exec::apply(&m, &plans).unwrap();
    assert_eq!(m.proto, before, "the input proto was mutated");
    let pruned = Model::from_proto(applied.proto, "pruned", ExternalStore::none()).unwrap();
    // Every parameter entry: the pruned tensor equals the original without the removed slices.
    for e in plans.iter().flat_map(|p| &p.entries) {
        if e.kind == shears_plan::TensorKind::Activation {
            continue;
        }
        let v0 = m.graph.value_id(&e.tensor).unwrap();
        let v1 = pruned.graph.value_id(&e.tensor).unwrap();
        let t0 = m.constant(v0).unwrap();
        let t1 = pruned.constant(v1).unwrap();
        let dims: Vec<usize> = t0.dims.iter().map(|&d| d as usize).collect();
        let mut expect = m.payload(&t0).unwrap().to_vec();
        // Remove every cut of this tensor (both plans), highest axis first keeps indices valid.
        let mut cuts: Vec<(usize, Vec<u32>)> = plans
            .iter()
            .flat_map(|p| &p.entries)
            .filter(|x| x.tensor == e.tensor)
            .map(|x| (x.axis, x.indices.clone()))
            .collect();
        cuts.sort();
        cuts.dedup();
        let mut d = dims.clone();
        for (axis, idx) in &cuts {
            expect = shears_exec::slice_axis(&expect, &d, 4, *axis, idx);
            d[*axis] -= idx.len();
        }
        assert_eq!(
            pruned.payload(&t1).unwrap().to_vec(),
            expect,
            "{}",
            e.tensor
        );
        assert_eq!(t1.dims, d.iter().map(|&x| x as i64).collect::<Vec<_>>());
    }
}

#[test]
fn depthwise_groups_shrink_with_their_channels() {
    let m = model("mobilenetv2_inverted_residual");
    let g = DependencyGraph::build(&m);
    let dw = m
        .graph
        .nodes
        .iter()
        .find(|n| n.op_type == "Conv" && n.attr_i("group", 1) > 1)
        .expect("a depthwise conv");
    let groups_before = dw.attr_i("group", 1);
    let report = shears_plan::group_reports(&m, &g)
        .into_iter()
        .find(|r| {
            r.prunable
                && r.members
                    .iter()
                    .any(|x| x.tensor == m.graph.value(dw.input(1).unwrap()).name)
        })
        .expect("the depthwise conv's group");
    let layer = report.root.rsplit_once('[').unwrap().0.to_string();
    let plan = shears_plan::plan(&m, &g, &layer, &[1, 4, 5]).unwrap();
    let applied = shears_exec::apply(&m, &[plan]).unwrap();
    let node = &applied.proto.graph.as_ref().unwrap().node[dw.proto_index];
    let group = node.attribute.iter().find(|a| a.name == "group").unwrap().i;
    assert_eq!(group, groups_before - 3);
}

#[test]
fn a_batch_that_removes_nothing_is_an_error() {
    let m = model("conv_bn_relu_chain");
    let err = shears_exec::apply(&m, &[]).unwrap_err();
    assert!(
        matches!(err, ExecError::NothingRemoved { plans: 0 }),
        "{err}"
    );
    assert!(err.to_string().contains("nothing to prune"), "{err}");
}

/// Weights stored as bfloat16 keep their type: the kept slices are copied as 2-byte values,
/// the pruned model's tensors are bfloat16 of the new shapes, and it computes what the
/// original computes with the removed input slices zeroed (the evaluator widens to f32).
#[test]
fn bfloat16_weights_stay_bfloat16() {
    use shears_onnx::proto::tensor_proto::DataType;
    let mut proto = zoo::MODELS
        .iter()
        .find(|(n, _)| *n == "residual_downsample_block")
        .unwrap()
        .1();
    let g = proto.graph.as_mut().unwrap();
    let mut converted = 0;
    for t in g.initializer.iter_mut() {
        if t.data_type != DataType::Float as i32 {
            continue;
        }
        // bfloat16 is the upper half of an f32 (these values are chosen, not rounded).
        let raw: Vec<u8> = t
            .raw_data
            .chunks_exact(4)
            .flat_map(|c| [c[2], c[3]])
            .collect();
        t.raw_data = raw.into();
        t.data_type = DataType::Bfloat16 as i32;
        converted += 1;
    }
    assert!(converted >= 6);
    let mut m = Model::from_proto(proto, "bf16", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&m);
    let reports = shears_plan::group_reports(&m, &graph);
    let root = &reports.iter().find(|r| r.prunable).unwrap().root;
    let layer = root.rsplit_once('[').unwrap().0;
    let plan = shears_plan::plan(&m, &graph, layer, &[0, 2]).unwrap();
    let applied = shears_exec::apply(&m, std::slice::from_ref(&plan)).unwrap();
    let before = &m.proto.graph.as_ref().unwrap().initializer;
    let after = &applied.proto.graph.as_ref().unwrap().initializer;
    let mut shrunk = 0;
    for t in after {
        let old = before.iter().find(|o| o.name == t.name).unwrap();
        assert_eq!(t.data_type, old.data_type, "{}: type changed", t.name);
        if t.data_type == DataType::Bfloat16 as i32 {
            let n: i64 = t.dims.iter().product();
            assert_eq!(t.raw_data.len() as i64, 2 * n, "{}", t.name);
            shrunk += usize::from(t.dims != old.dims);
        }
    }
    assert!(shrunk >= 2, "only {shrunk} bfloat16 tensors pruned");
    let ex = shears_testkit::check_exactness(&m, &[plan], &InputShapes::default(), 1, 7).unwrap();
    assert!(
        ex.shapes_equal && ex.max_rel <= 1e-5,
        "max rel {}",
        ex.max_rel
    );
}
