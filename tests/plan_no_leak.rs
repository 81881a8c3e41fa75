//! Numerical check of plans, without pruning anything: the channels a plan removes must not
//! reach any output once the slices that read them are gone.
//!
//! For a plan, model A is the original with every *input-side* slice the plan removes set to
//! zero (the consumer weights reading the removed channels). Model B is A with every
//! *output-side* slice perturbed (the removed channels' producer weights, biases, norm scales).
//! If the plan found every reader of the removed channels, with the right indices, the
//! perturbation cannot leak: A and B agree exactly. A missed consumer, a wrong offset or a
//! wrong permutation lets it through. Plans through ops that mix channels without a weight
//! (LayerNorm, attention) are skipped: there the removed channels do reach the output, by
//! design (`mixed_by`).
//!
//! Run on every layer of every fixture, in all three export styles, and on every zoo model.

use std::collections::BTreeMap;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::{ModelProto, TensorProto};
use shears_onnx::{InputShapes, Model};
use shears_plan::{PruningPlan, TensorKind};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Per tensor: (axis, indices) to zero, and to perturb.
#[derive(Default)]
struct Edits {
    zero: BTreeMap<String, Vec<(usize, Vec<u32>)>>,
    perturb: BTreeMap<String, Vec<(usize, Vec<u32>)>>,
}

fn edits(plan: &PruningPlan) -> Edits {
    let mut e = Edits::default();
    for entry in &plan.entries {
        // Running statistics stay: a perturbed variance could go negative.
        if entry.kind != TensorKind::Parameter {
            continue;
        }
        let side = if entry.role == "in" {
            &mut e.zero
        } else {
            &mut e.perturb
        };
        side.entry(entry.tensor.clone())
            .or_default()
            .push((entry.axis, entry.indices.clone()));
    }
    e
}

/// Applies `f` to every element of `t` whose coordinate on one of `cuts`' axes is listed.
fn edit_tensor(
    model: &Model,
    t: &TensorProto,
    cuts: &[(usize, Vec<u32>)],
    f: &dyn Fn(usize, f32) -> f32,
) -> TensorProto {
    let mut data = model.f32s(t).unwrap();
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    for (i, x) in data.iter_mut().enumerate() {
        let hit = cuts.iter().any(|(axis, idx)| {
            let stride: usize = dims[axis + 1..].iter().product();
            let c = (i / stride) % dims[*axis];
            idx.binary_search(&(c as u32)).is_ok()
        });
        if hit {
            *x = f(i, *x);
        }
    }
    shears_onnx::tensor::from_f32(t.name.clone(), &dims, &data)
}

fn apply(
    model: &Model,
    proto: &mut ModelProto,
    side: &BTreeMap<String, Vec<(usize, Vec<u32>)>>,
    f: &dyn Fn(usize, f32) -> f32,
) {
    let graph = proto.graph.as_mut().unwrap();
    for t in graph.initializer.iter_mut() {
        if let Some(cuts) = side.get(&t.name) {
            *t = edit_tensor(model, t, cuts, f);
        }
    }
    for n in graph.node.iter_mut().filter(|n| n.op_type == "Constant") {
        let Some(cuts) = n.output.first().and_then(|o| side.get(o)) else {
            continue;
        };
        let a = n.attribute.iter_mut().find(|a| a.name == "value").unwrap();
        let t = a.t.as_ref().unwrap();
        a.t = Some(Box::new(edit_tensor(model, t, cuts, f)));
    }
}

/// Largest output difference between A and B for `plan` (see the module comment).
fn leak(model: &Model, shapes: &InputShapes, plan: &PruningPlan) -> f64 {
    let e = edits(plan);
    let mut a = model.proto.clone();
    apply(model, &mut a, &e.zero, &|_, _| 0.0);
    let mut b = a.clone();
    let a = Model::from_proto(a, "zeroed", ExternalStore::none()).unwrap();
    apply(&a, &mut b, &e.perturb, &|i, x| {
        x + 0.5 + (i % 7) as f32 * 0.25
    });
    let b = Model::from_proto(b, "perturbed", ExternalStore::none()).unwrap();
    let report = shears_verify::verify(&a, &b, shapes, 1, 7).unwrap();
    report
        .outputs
        .iter()
        .map(|o| o.max_abs.unwrap_or(f64::INFINITY))
        .fold(0.0, f64::max)
}

/// Plans up to three channels of every layer of `model` and checks that none leaks; returns
/// how many plans were checked.
fn check_model(mut model: Model, shapes: &InputShapes) -> usize {
    shears_onnx::shape::infer_shapes(&mut model, shapes).unwrap();
    let graph = DependencyGraph::build(&model);
    let mut checked = 0;
    for id in model.graph.node_ids() {
        let Ok(c) = &graph.verdicts[id.index()] else {
            continue;
        };
        let Some((v, a)) = c.out_channels else {
            continue;
        };
        let size = model.graph.value(v).shape.as_ref().unwrap()[a];
        let idxs: Vec<usize> = [0, 2, 5].into_iter().filter(|&i| i + 1 < size).collect();
        let name = &model.graph.node(id).name;
        let Ok(plan) = shears_plan::plan(&model, &graph, name, &idxs) else {
            continue; // blocked layers are covered by plan_every_layer
        };
        if !plan.mixed_by.is_empty() {
            continue;
        }
        let d = leak(&model, shapes, &plan);
        assert!(
            d == 0.0,
            "{}: {name} {idxs:?}: removed channels reach the output (max diff {d})\n{}",
            model.source,
            shears_plan::render_text(&plan)
        );
        checked += 1;
    }
    checked
}

#[test]
fn fixture_plans_do_not_leak() {
    let mut total = 0;
    let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    for path in files {
        let model = Model::load(&path).unwrap();
        let n = check_model(model, &InputShapes::default());
        assert!(n > 0, "{}: no plan checked", path.display());
        total += n;
    }
    assert!(total >= 250, "only {total} plans checked");
}

#[test]
fn zoo_plans_do_not_leak() {
    let mut total = 0;
    for &(name, build) in shears_testkit::builder::zoo::MODELS {
        let model = Model::from_proto(build(), name, ExternalStore::none()).unwrap();
        let shapes = InputShapes::dynamic_as(&model.graph, 1);
        total += check_model(model, &shapes);
    }
    assert!(total >= 40, "only {total} plans checked");
}

/// The check itself catches a wrong index: the same plan with the consumer's indices shifted
/// by one leaks.
#[test]
fn a_wrong_consumer_index_leaks() {
    let proto = shears_testkit::builder::zoo::flatten_gemm();
    let mut model = Model::from_proto(proto, "flatten_gemm", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&model);
    let mut plan = shears_plan::plan(&model, &graph, "features.3.weight", &[1, 14]).unwrap();
    assert_eq!(leak(&model, &InputShapes::default(), &plan), 0.0);
    let gemm = plan
        .entries
        .iter_mut()
        .find(|e| e.tensor == "classifier.0.weight")
        .unwrap();
    for i in gemm.indices.iter_mut() {
        *i += 1; // features 17..33 and 225..241 instead of 16..32 and 224..240
    }
    assert!(leak(&model, &InputShapes::default(), &plan) > 1e-3);
}
