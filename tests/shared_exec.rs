//! The executor on the real exports in ../shared/models: the acceptance run on
//! resnet18, and the exactness proof on several groups of every model.
#![cfg(feature = "shared-suite")]

use std::path::PathBuf;
use std::process::Command;

use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    assert!(
        p.is_dir(),
        "the shared-suite needs ../shared/models next to the repository"
    );
    p
}

fn shears(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .output()
        .expect("run shears")
}

#[test]
fn resnet18_conv1_prune_matches_torch_pruning_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.onnx");
    let model = shared().join("resnet18_keepbn.onnx");
    let o = shears(&[
        "prune",
        model.to_str().unwrap(),
        "--layer",
        "conv1.weight",
        "--idxs",
        "2,6,9",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (before, after) = (
        summary["parameters"][0].as_u64().unwrap(),
        summary["parameters"][1].as_u64().unwrap(),
    );
    // Torch-Pruning's seed README: the conv1 group with idxs [2, 6, 9] removes 11,211
    // parameters (BatchNorm running statistics are buffers, not counted).
    assert_eq!(before - after, 11_211);
    let v = shears(&[
        "verify",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
        "--samples",
        "1",
    ]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    assert!(String::from_utf8_lossy(&v.stdout).contains("output shapes: equal"));
}

/// Up to `per_model` prunable groups spread over the model, each losing every third channel.
fn check_model(file: &str, per_model: usize) -> Vec<(String, bool, f64)> {
    let mut model = Model::load(shared().join(file)).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let graph = DependencyGraph::build(&model);
    let reports = shears_plan::group_reports(&model, &graph);
    let candidates: Vec<_> = reports
        .iter()
        .zip(&graph.groups)
        .filter(|(r, _)| r.prunable && r.channels >= 3)
        .collect();
    let step = (candidates.len() / per_model).max(1);
    let mut results = Vec::new();
    for (report, group) in candidates.into_iter().step_by(step).take(per_model) {
        let root = report.root.rsplit_once('[').unwrap().0;
        let Ok((_, dim)) = shears_plan::resolve_layer(&model, &graph, root) else {
            continue;
        };
        if graph.group_at(dim, 0) != Some(group.id) {
            continue;
        }
        let mut seen = std::collections::BTreeSet::new();
        let idxs: Vec<usize> = (0..graph.dim(dim).size)
            .filter(|&i| {
                let u = graph.unit_at(dim, i).unwrap();
                seen.insert(u) && seen.len() % 3 == 2
            })
            .collect();
        let plan = shears_plan::plan(&model, &graph, root, &idxs).unwrap();
        let ex = shears_testkit::check_exactness(
            &model,
            std::slice::from_ref(&plan),
            &InputShapes::default(),
            1,
            3,
        )
        .unwrap_or_else(|e| panic!("{file}: {root}: {e}"));
        assert!(ex.shapes_equal, "{file}: {root}: shapes changed");
        assert!(ex.max_rel.is_finite(), "{file}: {root}: non-finite outputs");
        if ex.exact_expected {
            assert!(
                ex.max_rel <= 1e-5,
                "{file}: {root}: max rel {:.3e} (abs {:.3e})",
                ex.max_rel,
                ex.max_abs
            );
        }
        results.push((root.to_string(), ex.exact_expected, ex.max_rel));
    }
    results
}

#[test]
fn several_groups_of_every_shared_model_prune_exactly() {
    for file in [
        "resnet18_keepbn.onnx",
        "mobilenet_v2_fused.onnx",
        "googlenet_dynamo.onnx",
        "squeezenet1_1_keepbn.onnx",
        "vit_small_keepbn.onnx",
    ] {
        let results = check_model(file, 4);
        for (root, exact, rel) in &results {
            eprintln!("{file:<28} {root:<60} exact={exact:<5} max rel {rel:.2e}");
        }
        assert!(
            results.len() >= 3,
            "{file}: only {} groups checked",
            results.len()
        );
    }
}
