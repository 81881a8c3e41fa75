//! The exactness proof on every prunable group of every builder model and every fixture: the
//! pruned model equals the original with the removed consumer slices zeroed (1e-5 relative),
//! or, where the plan says its channels are mixed without a weight, is at least valid (same
//! output shapes, finite outputs).

mod common;

use std::path::PathBuf;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::Model;
use shears_testkit::builder::zoo;

const TOLERANCE: f64 = 1e-5;

/// Outcome per model: (groups checked, of which exact, worst relative error among exact ones).
struct Outcome {
    checked: usize,
    exact: usize,
    worst_exact_rel: f64,
    /// Prunable groups no plan could be made for (each a failure of the pruner's path).
    skipped: Vec<String>,
}

/// Plans removing every third channel (from index 1) of each prunable group, checks each.
fn check_model(mut model: Model) -> Outcome {
    let shapes = common::static_shapes(&model);
    shears_onnx::shape::infer_shapes(&mut model, &shapes)
        .unwrap_or_else(|e| panic!("{}: shapes: {e}", model.source));
    let graph = DependencyGraph::build(&model);
    let mut out = Outcome {
        checked: 0,
        exact: 0,
        worst_exact_rel: 0.0,
        skipped: Vec::new(),
    };
    for (report, group) in shears_plan::group_reports(&model, &graph)
        .iter()
        .zip(&graph.groups)
    {
        if !report.prunable || report.channels < 2 {
            continue;
        }
        // Every third unit of the group (from the second), planned the way the pruner plans
        // a group: from its layer, whichever group that layer's root axis starts in.
        let units: Vec<_> = group.units.iter().skip(1).step_by(3).copied().collect();
        let root = report.root.clone();
        let plan = match shears_plan::plan_units(&model, &graph, group.id, &units) {
            Ok(p) => p,
            Err(e) => {
                out.skipped.push(format!("{root}: {e}"));
                continue;
            }
        };
        let idxs = &plan.indices;
        let ex =
            shears_testkit::check_exactness(&model, std::slice::from_ref(&plan), &shapes, 1, 7)
                .unwrap_or_else(|e| panic!("{}: {root}: {e}", model.source));
        assert!(
            ex.shapes_equal,
            "{}: {root}: output shapes changed",
            model.source
        );
        assert!(
            ex.max_rel.is_finite(),
            "{}: {root}: non-finite outputs",
            model.source
        );
        out.checked += 1;
        if ex.exact_expected {
            assert!(
                ex.max_rel <= TOLERANCE,
                "{}: plan for {root} {idxs:?} is not exact: max rel {:.3e} (abs {:.3e})",
                model.source,
                ex.max_rel,
                ex.max_abs
            );
            out.exact += 1;
            out.worst_exact_rel = out.worst_exact_rel.max(ex.max_rel);
        }
    }
    out
}

#[test]
fn every_group_of_every_zoo_model_prunes_exactly() {
    let mut total = 0;
    for (name, build) in zoo::MODELS {
        let model = Model::from_proto(build(), *name, ExternalStore::none()).unwrap();
        let o = check_model(model);
        eprintln!(
            "{name:<32} groups {:>3}  exact {:>3}  worst rel {:.2e}  skipped {:?}",
            o.checked, o.exact, o.worst_exact_rel, o.skipped
        );
        assert!(
            o.skipped.is_empty(),
            "{name}: groups not planned: {:?}",
            o.skipped
        );
        total += o.checked;
    }
    assert!(total > 50, "only {total} groups checked");
}

#[test]
fn every_group_of_every_fixture_prunes_exactly() {
    let files: Vec<PathBuf> = common::fixture_files();
    assert_eq!(files.len(), 30);
    for f in files {
        let o = check_model(Model::load(&f).unwrap());
        eprintln!(
            "{:<32} groups {:>3}  exact {:>3}  worst rel {:.2e}  skipped {:?}",
            f.file_name().unwrap().to_string_lossy(),
            o.checked,
            o.exact,
            o.worst_exact_rel,
            o.skipped
        );
        assert!(o.checked > 0, "{}: no group checked", f.display());
        assert!(
            o.skipped.is_empty(),
            "{}: groups not planned: {:?}",
            f.display(),
            o.skipped
        );
    }
}

/// Per group, what does not depend on tensor names: channels, prunable, parameter members.
fn group_shapes(model: &Model) -> Vec<String> {
    let graph = DependencyGraph::build(model);
    let mut out: Vec<String> = shears_plan::group_reports(model, &graph)
        .iter()
        .map(|r| {
            let params = r.members.iter().filter(|m| m.parameter).count();
            format!("{} ch prunable={} params={params}", r.channels, r.prunable)
        })
        .collect();
    out.sort();
    out
}

/// The QDQ twin of every zoo model (int8 per-channel weights behind DequantizeLinear, graph
/// inputs and ReLU outputs through QuantizeLinear/DequantizeLinear pairs, as onnxruntime's
/// quantizer writes them) groups like the float model through the Q/DQ nodes, costs the same
/// (the int8 weights are the parameters; scales and zero points are not), and every prunable
/// group prunes exactly by the zeroing check: removed channels meet only zero weights, and
/// every quantizer sees the same values in both models.
#[test]
fn every_group_of_every_quantized_zoo_model_prunes_exactly() {
    use shears_testkit::builder::quantize::qdq;
    let mut total = 0;
    let mut models = 0;
    for (name, build) in zoo::MODELS {
        let Some(q) = qdq(&build()) else { continue };
        let load = |p, n: String| {
            let mut m = Model::from_proto(p, n, ExternalStore::none()).unwrap();
            let shapes = common::static_shapes(&m);
            shears_onnx::shape::infer_shapes(&mut m, &shapes)
                .unwrap_or_else(|e| panic!("{}: shapes: {e}", m.source));
            m
        };
        let float = load(build(), name.to_string());
        let quant = load(q, format!("{name} (qdq)"));
        let cost = |m: &Model| {
            let c = shears_onnx::cost::analyze(m).unwrap();
            (c.parameters, c.macs)
        };
        assert_eq!(cost(&quant), cost(&float), "{name}: cost");
        assert_eq!(group_shapes(&quant), group_shapes(&float), "{name}: groups");
        let o = check_model(quant);
        eprintln!(
            "{name:<32} (qdq) groups {:>3}  exact {:>3}  worst rel {:.2e}  skipped {:?}",
            o.checked, o.exact, o.worst_exact_rel, o.skipped
        );
        total += o.checked;
        models += 1;
    }
    assert!(models >= 15, "only {models} zoo models quantized");
    assert!(total > 30, "only {total} groups checked");
}

/// Weights computed in the graph (standardised, through a 2-D Reshape and back), biases made by
/// ConstantOfShape and Expand, GatherND, and Reshapes nesting channels in a merged axis (a patch
/// fold, GroupNorm's decomposition): every prunable group is planned from its root and each one
/// the rules do not call mixed prunes exactly. (A standardised conv's input channels are mixed:
/// removing them changes the next weight's mean and variance.)
#[test]
fn computed_weights_and_nested_reshapes_prune_exactly() {
    for (name, checked, exact) in [
        ("std_conv", 2, 1),
        ("std_conv_2d", 1, 1),
        ("computed_bias", 1, 1),
        ("gather_nd_tokens", 1, 1),
        ("patch_regroup", 1, 1),
        ("group_norm_decomposed", 1, 1),
    ] {
        let build = zoo::MODELS.iter().find(|(n, _)| *n == name).unwrap().1;
        let model = Model::from_proto(build(), name, ExternalStore::none()).unwrap();
        let o = check_model(model);
        assert!(o.skipped.is_empty(), "{name}: skipped {:?}", o.skipped);
        assert_eq!((o.checked, o.exact), (checked, exact), "{name}");
    }
}

/// `--layer` on a standardised weight's initializer finds the conv reading the computed weight,
/// and the plan names the stored tensor, sliced on its output-channel axis.
#[test]
fn a_standardised_weight_names_its_layer_and_is_sliced() {
    let mut model =
        Model::from_proto(zoo::std_conv_2d(), "std_conv_2d", ExternalStore::none()).unwrap();
    let shapes = common::static_shapes(&model);
    shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
    let graph = DependencyGraph::build(&model);
    let (node, _) = shears_plan::resolve_layer(&model, &graph, "stem.conv.weight").unwrap();
    assert_eq!(model.graph.node(node).name, "/stem.conv/Conv");
    let by_weight = shears_plan::plan(&model, &graph, "stem.conv.weight", &[2, 5]).unwrap();
    let by_node = shears_plan::plan(&model, &graph, "/stem.conv/Conv", &[2, 5]).unwrap();
    assert_eq!(by_weight.root.tensor, "stem.conv.weight");
    assert_eq!(by_weight.root.node, "/stem.conv/Conv");
    assert_eq!(by_weight.entries, by_node.entries);
    let w = by_weight
        .entries
        .iter()
        .find(|e| e.tensor == "stem.conv.weight")
        .expect("the stored weight is sliced");
    assert_eq!((w.axis, w.indices.clone()), (0, vec![2, 5]));
    let applied = shears_exec::apply(&model, std::slice::from_ref(&by_weight)).unwrap();
    let t = applied
        .proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .find(|t| t.name == "stem.conv.weight")
        .unwrap();
    assert_eq!(t.dims, vec![6, 3, 3, 3]);
}

/// Biases made by ConstantOfShape and Expand: the plan lists the rewrite of each shape literal
/// (though neither op links the axis it makes), and applying it makes the same rewrites.
#[test]
fn made_bias_shapes_are_rewritten_by_the_plan() {
    let mut model =
        Model::from_proto(zoo::computed_bias(), "computed_bias", ExternalStore::none()).unwrap();
    let shapes = common::static_shapes(&model);
    shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
    let graph = DependencyGraph::build(&model);
    let plan = shears_plan::plan(&model, &graph, "/conv1/Conv", &[1, 7]).unwrap();
    let edits: Vec<(String, Vec<i64>)> = plan
        .rewrites
        .iter()
        .map(|r| match r {
            shears_graph::rules::Rewrite::ConstInts { tensor, new, .. } => {
                (tensor.clone(), new.clone())
            }
            other => panic!("unexpected rewrite {other:?}"),
        })
        .collect();
    for want in [("bias.shape", vec![6]), ("shift.shape", vec![1, 6, 1, 1])] {
        assert!(
            edits.contains(&(want.0.to_string(), want.1.clone())),
            "{edits:?}"
        );
    }
    let applied = shears_exec::apply(&model, std::slice::from_ref(&plan)).unwrap();
    assert_eq!(applied.rewrites, plan.rewrites);
}
