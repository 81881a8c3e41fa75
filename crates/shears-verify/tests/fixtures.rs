//! Every fixture export (keepbn, fused, dynamo) evaluated on its recorded input must reproduce
//! PyTorch's recorded output within 1e-4 absolute.

use std::path::{Path, PathBuf};

use shears_verify::candle_core::Tensor;
use shears_verify::Evaluator;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Largest absolute difference between the model's output and PyTorch's, for one variant.
fn max_diff(model: &str, variant: &str) -> f32 {
    let dir = fixtures();
    let path = dir.join(format!("{model}-{variant}.onnx"));
    let m = shears_onnx::Model::load(&path).unwrap();
    let eval = Evaluator::new(&m).unwrap();
    let x = Tensor::read_npy(dir.join(format!("{model}.input.npy"))).unwrap();
    let want = Tensor::read_npy(dir.join(format!("{model}.output.npy"))).unwrap();
    let name = eval.input_names().next().unwrap().to_string();
    let out = eval.eval(&[(name, x)]).unwrap();
    assert_eq!(out.len(), 1, "{model}-{variant}: one output expected");
    let got = &out[0].1;
    assert_eq!(got.dims(), want.dims(), "{model}-{variant}: output shape");
    let d = (got - &want)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d.is_finite(), "{model}-{variant}: non-finite output");
    d
}

fn check(model: &str) {
    for variant in ["keepbn", "fused", "dynamo"] {
        let d = max_diff(model, variant);
        eprintln!("{model}-{variant}: max abs diff {d:.3e}");
        assert!(d <= 1e-4, "{model}-{variant}: max abs diff {d} > 1e-4");
    }
}

macro_rules! fixture_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

fixture_tests!(
    tiny_resnet,
    tiny_densenet,
    tiny_inception,
    tiny_mobilenet_v2,
    tiny_shufflenet,
    tiny_regnet,
    tiny_efficientnet,
    tiny_convnext,
    tiny_vit,
    tiny_vgg,
);
