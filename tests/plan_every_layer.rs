//! Every Conv, ConvTranspose and Gemm (and every MatMul with a weight) of every fixture (three
//! export styles) and every zoo model gets a plan, or an error that names what blocks it (a node, or the graph input or output) —
//! never a panic. The same check over `../shared` is in `shared_plan_every_layer.rs`.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_plan::PlanError;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Plans `[0, 1]` (or `[0]`) of every layer; returns (planned, blocked).
fn check(mut model: Model) -> (usize, usize) {
    let shapes = InputShapes::dynamic_as(&model.graph, 1);
    shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
    let graph = DependencyGraph::build(&model);
    let names: Vec<&str> = model.graph.nodes.iter().map(|n| n.name.as_str()).collect();
    let (mut planned, mut blocked) = (0, 0);
    for (id, n) in model.graph.node_ids().zip(&model.graph.nodes) {
        let weighted = graph.verdicts[id.index()]
            .as_ref()
            .is_ok_and(|c| c.out_channels.is_some());
        if !(weighted || matches!(n.op_type.as_str(), "Conv" | "ConvTranspose" | "Gemm")) {
            continue;
        }
        let what = format!("{}: {}", model.source, n.name);
        let r = shears_plan::plan(&model, &graph, &n.name, &[0, 1])
            .or_else(|_| shears_plan::plan(&model, &graph, &n.name, &[0]));
        match r {
            Ok(plan) => {
                assert!(plan.parameters_removed > 0, "{what}: empty plan");
                planned += 1;
            }
            Err(PlanError::Blocked { reasons, .. }) => {
                let named = reasons.contains("graph input")
                    || reasons.contains("graph output")
                    || names.iter().any(|m| reasons.contains(&format!("'{m}'")));
                assert!(named, "{what}: the block names no op: {reasons}");
                blocked += 1;
            }
            Err(e @ PlanError::WholeGroup { .. }) => {
                panic!("{what}: [0] alone empties the group: {e}")
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    (planned, blocked)
}

#[test]
fn every_fixture_layer_plans_or_names_its_blocker() {
    let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 30);
    for path in files {
        let (planned, blocked) = check(Model::load(&path).unwrap());
        // Each fixture's first conv reads the image and its classifier writes the output: the
        // first conv still plans (its outputs are free); only the classifier is blocked.
        assert_eq!(blocked, 1, "{}", path.display());
        assert!(planned >= 3, "{}: {planned} planned", path.display());
    }
}

#[test]
fn every_zoo_layer_plans_or_names_its_blocker() {
    for &(name, build) in shears_testkit::builder::zoo::MODELS {
        let model = Model::from_proto(build(), name, ExternalStore::none()).unwrap();
        let (planned, blocked) = check(model);
        assert!(planned + blocked > 0, "{name}: no layer");
    }
}

/// No fixture node is opaque: every op the exporters emit has a coupling rule (an opaque node
/// would block every channel crossing it).
#[test]
fn every_fixture_node_has_a_rule() {
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "onnx") {
            continue;
        }
        let mut model = Model::load(&path).unwrap();
        shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
        let graph = DependencyGraph::build(&model);
        for (id, v) in model.graph.node_ids().zip(&graph.verdicts) {
            if let Err(e) = v {
                panic!("{}: {}: {e}", path.display(), model.graph.node(id).name);
            }
        }
    }
}
