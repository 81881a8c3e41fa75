//! A built model made ready for the graph: decoded and its shapes inferred, and the one-line
//! rendering of a node's coupling, the form rule tests pin.

use shears_graph::{rules, DependencyGraph};
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{InputShapes, Model};

/// `proto` decoded with every dynamic input dimension bound to 1 and its shapes inferred.
///
/// Panics, naming the model, when the builder wrote something Shears cannot analyse (misuse
/// in a test).
pub fn analysed(proto: ModelProto) -> Model {
    let name = proto
        .graph
        .as_ref()
        .map(|g| g.name.clone())
        .unwrap_or_default();
    let mut m = Model::from_proto(proto, &name, ExternalStore::none())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let shapes = InputShapes::dynamic_as(&m.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap_or_else(|e| panic!("{name}: {e}"));
    m
}

/// The coupling rule's one-line rendering ([`rules::render`]) of the node named `node`.
///
/// Panics when the model has no such node.
pub fn rule_line(m: &Model, g: &DependencyGraph, node: &str) -> String {
    let id = m
        .graph
        .node_ids()
        .find(|&id| m.graph.node(id).name == node)
        .unwrap_or_else(|| panic!("no node {node}"));
    rules::render(m, id, &g.verdicts[id.index()])
}
