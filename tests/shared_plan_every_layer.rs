//! Every Conv, ConvTranspose and Gemm (and MatMul with a weight) of every model under
//! `../shared/models` and `../shared/fixtures` gets a plan, or an error naming what blocks it;
//! none panics. The same check over `tests/fixtures` and the zoo is in `plan_every_layer.rs`.
#![cfg(feature = "shared-suite")]

mod common;

use std::path::PathBuf;

use common::{onnx_files, shared};
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};
use shears_plan::PlanError;

#[test]
fn every_shared_layer_plans_or_names_its_blocker() {
    let files: Vec<PathBuf> = onnx_files(&shared().join("models"))
        .into_iter()
        .chain(onnx_files(&shared().join("fixtures")))
        .collect();
    assert_eq!(files.len(), 35);
    let (mut planned, mut blocked) = (0, 0);
    for path in files {
        let mut model = Model::load(&path).unwrap();
        shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
        let graph = DependencyGraph::build(&model);
        let names: Vec<&str> = model.graph.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut model_blocked = Vec::new();
        for (id, n) in model.graph.node_ids().zip(&model.graph.nodes) {
            let weighted = graph.verdicts[id.index()]
                .as_ref()
                .is_ok_and(|c| c.out_channels.is_some());
            if !(weighted || matches!(n.op_type.as_str(), "Conv" | "ConvTranspose" | "Gemm")) {
                continue;
            }
            let what = format!("{}: {}", path.display(), n.name);
            let r = shears_plan::plan(&model, &graph, &n.name, &[0, 1])
                .or_else(|_| shears_plan::plan(&model, &graph, &n.name, &[0]));
            match r {
                Ok(plan) => {
                    assert!(plan.parameters_removed > 0, "{what}");
                    planned += 1;
                }
                Err(PlanError::Blocked { reasons, .. }) => {
                    let named = reasons.contains("graph input")
                        || reasons.contains("graph output")
                        || names.iter().any(|m| reasons.contains(&format!("'{m}'")));
                    assert!(named, "{what}: the block names no op: {reasons}");
                    model_blocked.push(n.name.clone());
                    blocked += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        // Only the classifier writes a graph output; every other layer plans.
        assert_eq!(
            model_blocked.len(),
            1,
            "{}: {model_blocked:?}",
            path.display()
        );
    }
    assert_eq!(blocked, 35);
    assert!(planned > 500, "{planned}");
}
