//! The evaluator's speed: one forward pass of each model on a seeded random input, and the
//! one-off preparation (decoding every weight into tensors).
//!
//! - fixtures (`tests/fixtures`, 1x3x32x32): a residual net, a depthwise net and a transformer;
//! - `resnet50_like` (the builder zoo's torchvision ResNet-50, 1x3x224x224);
//! - `resnet18_keepbn` from `../shared/models` when that folder is present (skipped otherwise).
//!
//! Run: `cargo bench --bench evaluate -- --warm-up-time 1 --measurement-time 5`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use shears_onnx::builder::zoo;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_verify::{random_inputs, Evaluator, Rng};

fn bench_model(c: &mut Criterion, name: &str, model: &Model) {
    let shapes = InputShapes::default()
        .resolve(&model.graph)
        .expect("static input shapes");
    let x = random_inputs(model, &shapes, &mut Rng::new(0)).expect("random inputs");
    let mut g = c.benchmark_group("evaluate");
    g.sample_size(10);
    g.bench_function(format!("prepare/{name}"), |b| {
        b.iter(|| Evaluator::new(model).expect("prepare"));
    });
    let eval = Evaluator::new(model).expect("prepare");
    g.bench_function(format!("eval/{name}"), |b| {
        b.iter(|| eval.eval(&x).expect("eval"));
    });
    g.finish();
}

fn bench_evaluate(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in [
        "tiny_resnet-keepbn",
        "tiny_mobilenet_v2-fused",
        "tiny_vit-keepbn",
    ] {
        let m = Model::load(root.join(format!("tests/fixtures/{f}.onnx"))).expect("fixture");
        bench_model(c, f, &m);
    }
    let m = Model::from_proto(zoo::resnet50_like(), "resnet50_like", ExternalStore::none())
        .expect("resnet50_like");
    bench_model(c, "resnet50_like", &m);
    let shared = root.join("../shared/models/resnet18_keepbn.onnx");
    if shared.exists() {
        let m = Model::load(&shared).expect("resnet18_keepbn");
        bench_model(c, "resnet18_keepbn", &m);
    } else {
        eprintln!("skipping resnet18_keepbn: {} not found", shared.display());
    }
}

criterion_group!(benches, bench_evaluate);
criterion_main!(benches);
