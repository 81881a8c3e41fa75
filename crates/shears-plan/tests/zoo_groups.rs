//! `shears groups` reports for every zoo model, pinned as insta snapshots, and the properties
//! every report must have: deterministic, each blocked group says why, equal exports give equal
//! groups.

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;

/// Builds a zoo model and infers shapes, with dynamic input dimensions set to 1.
fn load(name: &str, build: fn() -> shears_onnx::proto::ModelProto) -> (Model, DependencyGraph) {
    let mut model = Model::from_proto(build(), name, ExternalStore::none()).unwrap();
    let shapes = InputShapes::dynamic_as(&model.graph, 1);
    shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
    let graph = DependencyGraph::build(&model);
    (model, graph)
}

#[test]
fn every_zoo_model_groups_report() {
    for &(name, build) in zoo::MODELS {
        let (model, graph) = load(name, build);
        let reports = shears_plan::group_reports(&model, &graph);
        for r in &reports {
            assert_eq!(r.prunable, r.blockers.is_empty(), "{name} #{}", r.id);
            assert!(r.channels > 1, "{name} #{}: a group of one channel", r.id);
            for b in &r.blockers {
                assert!(
                    !b.reason.is_empty(),
                    "{name} #{}: blocker without reason",
                    r.id
                );
            }
        }
        let text = shears_plan::render_groups_text(name, &reports);
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn groups_json_schema_fields() {
    let (model, graph) = load("channel_split_shuffle", zoo::channel_split_shuffle);
    let reports = shears_plan::group_reports(&model, &graph);
    insta::assert_json_snapshot!("channel_split_shuffle_json", reports);
}

/// The same model built twice gives byte-identical reports.
#[test]
fn reports_are_deterministic() {
    for &(name, build) in zoo::MODELS {
        let a = {
            let (m, g) = load(name, build);
            serde_json::to_string(&shears_plan::group_reports(&m, &g)).unwrap()
        };
        let b = {
            let (m, g) = load(name, build);
            serde_json::to_string(&shears_plan::group_reports(&m, &g)).unwrap()
        };
        assert_eq!(a, b, "{name}");
    }
}

/// Weights as Constant nodes couple exactly like initializers: the Constant-weight residual
/// model has the groups of the same blocks built from initializers.
#[test]
fn constant_weights_couple_like_initializers() {
    let (m, g) = load("constant_weights_residual", zoo::constant_weights_residual);
    let reports = shears_plan::group_reports(&m, &g);
    let summary: Vec<(String, usize, bool, usize)> = reports
        .iter()
        .map(|r| {
            let params = r.members.iter().filter(|m| m.parameter).count();
            (r.root.clone(), r.channels, r.prunable, params)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("conv1.weight[1]".to_string(), 3, false, 1),
            ("layer2.0.conv2.weight[0]".to_string(), 16, false, 10),
            ("conv1.weight[0]".to_string(), 8, true, 13),
            ("layer1.0.conv1.weight[0]".to_string(), 8, true, 6),
            ("layer2.0.conv1.weight[0]".to_string(), 16, true, 6),
        ]
    );
}
