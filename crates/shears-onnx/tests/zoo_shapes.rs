//! Static shape inference over the whole test zoo (models from `shears-testkit`).

use shears_onnx::external::ExternalStore;
use shears_onnx::shape::infer_shapes;
use shears_onnx::{Dim, InputShapes, Model};
use shears_testkit::builder::zoo;

#[test]
fn every_zoo_model_infers_a_shape_for_every_value() {
    for (name, proto) in zoo::all() {
        let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
        // Dynamic dims (a dynamic batch) get 2.
        let mut shapes = InputShapes::default();
        for &v in &m.graph.inputs {
            let value = m.graph.value(v);
            let dims = value.declared.iter().flatten().map(|d| match d {
                Dim::Known(k) => *k,
                Dim::Dynamic(_) => 2,
            });
            shapes.0.insert(value.name.clone(), dims.collect());
        }
        infer_shapes(&mut m, &shapes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for v in &m.graph.values {
            assert!(v.shape.is_some(), "{name}: no shape for '{}'", v.name);
        }
    }
}
