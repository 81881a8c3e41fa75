//! The stepping API: stepping a model through equals `eval`, and `set_constant` changes what
//! later steps read in every state.

use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;
use shears_verify::candle_core::Tensor;
use shears_verify::{random_inputs, Evaluator, Rng};

fn model() -> Model {
    let mut m =
        Model::from_proto(zoo::conv_bn_relu_chain(), "chain", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn stepping_equals_eval_and_constants_can_be_replaced() {
    let m = model();
    let shapes = InputShapes::default().resolve(&m.graph).unwrap();
    let x = random_inputs(&m, &shapes, &mut Rng::new(3)).unwrap();
    let mut e = Evaluator::new(&m).unwrap();
    let want = e.eval(&x).unwrap();
    let mut s = e.start(&x).unwrap();
    for i in 0..e.step_count() {
        // A trial leaves the state as it was: committing it equals stepping.
        let outs = e.trial(&s, i).unwrap();
        e.commit(&mut s, i, outs, |_, _| {}).unwrap();
    }
    let got = e.finish(s).unwrap();
    assert_eq!(values(&got[0].1), values(&want[0].1));

    // Zeroing the first layer's weight before its step zeroes its output.
    let first = e.step_node(0).clone();
    let w = first.input(1).unwrap();
    let old = e.value(&e.start(&x).unwrap(), w).unwrap();
    e.set_constant(w, old.zeros_like().unwrap()).unwrap();
    let mut s = e.start(&x).unwrap();
    e.step(&mut s, 0, |_, _| {}).unwrap();
    let y = e.value(&s, first.output(0).unwrap()).unwrap();
    let bias = first.input(2).map(|b| values(&e.value(&s, b).unwrap()));
    let y = values(&y);
    match bias {
        None => assert!(y.iter().all(|&v| v == 0.0)),
        Some(b) => {
            let per = y.len() / b.len();
            assert!(y.iter().enumerate().all(|(k, &v)| v == b[k / per]));
        }
    }
    // A value that is not a constant cannot be replaced.
    let err = e.set_constant(first.output(0).unwrap(), old).unwrap_err();
    assert!(err.to_string().contains("not a constant"), "{err}");
}
