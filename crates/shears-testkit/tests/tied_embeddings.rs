//! A hidden-size cut through a tied embedding: the token table `[vocab, hidden]` read by a
//! Gather, a positional table, and an output projection that reuses the token table
//! transposed (a tied LM head). The residual group holds the table's hidden axis once, and
//! pruning it is exact.

#[allow(dead_code)]
mod common;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::Model;
use shears_testkit::builder::ModelBuilder;

fn tied_lm() -> shears_onnx::proto::ModelProto {
    let mut b = ModelBuilder::new(17).named("tied_lm");
    let ids = b.input_typed("ids", &[1, 4], DataType::Int64 as i32);
    let table = b.init_random("wte.weight", &[32, 16]);
    let e = b.node("Gather", &[&table, &ids], 1, vec![]).remove(0);
    b.set_shape(&e, &[1, 4, 16]);
    let pos = b.init_random("wpe.weight", &[1, 4, 16]);
    let h = b.add(&e, &pos);
    let f = b.linear(&h, "mlp.fc", 16);
    let h = b.add(&h, &f);
    let t = b.transpose(&table, &[1, 0]);
    let logits = b.matmul(&h, &t);
    b.output(&logits);
    b.build()
}

#[test]
fn a_hidden_cut_goes_through_the_tied_table_once_and_is_exact() {
    let mut m = Model::from_proto(tied_lm(), "tied_lm", ExternalStore::none()).unwrap();
    let shapes = common::static_shapes(&m);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    let g = DependencyGraph::build(&m);
    let (_, d) = shears_plan::resolve_layer(&m, &g, "mlp.fc.weight").unwrap();
    let gid = g.group_at(d, 0).unwrap();
    assert!(g.group(gid).is_prunable(), "{:?}", g.group(gid).blockers);
    let plan = shears_plan::plan(&m, &g, "mlp.fc.weight", &[1, 5, 9]).unwrap();
    let tables: Vec<(&str, usize)> = plan
        .entries
        .iter()
        .filter(|e| e.tensor.starts_with("wte") || e.tensor.starts_with("wpe"))
        .map(|e| (e.tensor.as_str(), e.axis))
        .collect();
    assert_eq!(tables, [("wte.weight", 1), ("wpe.weight", 2)], "{tables:?}");
    let ex = shears_testkit::check_exactness(&m, &[plan], &shapes, 2, 9).unwrap();
    assert!(ex.shapes_equal && ex.max_rel <= 1e-5, "{ex:?}");
}
