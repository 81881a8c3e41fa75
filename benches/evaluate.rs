//! The evaluator's speed: one forward pass of each model on a seeded random input, and the
//! one-off preparation (decoding every weight into tensors).
//!
//! - fixtures (`tests/fixtures`, 1x3x32x32): a residual net, a depthwise net and a transformer;
//! - `resnet50_like` (the builder zoo's torchvision ResNet-50, 1x3x224x224);
//! - `resnet18_keepbn` from `../shared/models` when that folder is present (skipped otherwise);
//! - `dataset/...`: `shears_verify::evaluate` over a stacked `.npy` dataset with labels (64
//!   seeded samples through the tiny ResNet; the 540 test digits of `../shared/accuracy` through
//!   its ResNet when present), against the same number of bare `eval` calls above.
//!
//! Run: `cargo bench --bench evaluate -- --warm-up-time 1 --measurement-time 5`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;
use shears_verify::candle_core::{Device, Tensor};
use shears_verify::{random_inputs, Dataset, DatasetOptions, Evaluator, NoProgress, Rng};

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

/// `evaluate` over the dataset in `dir` (opened once per iteration, as the CLI does).
fn bench_dataset(c: &mut Criterion, name: &str, model: &Model, dir: &Path) {
    let mut g = c.benchmark_group("evaluate");
    g.sample_size(10);
    g.bench_function(format!("dataset/{name}"), |b| {
        b.iter(|| {
            let data = Dataset::open(model, dir, &DatasetOptions::default()).expect("dataset");
            shears_verify::evaluate(model, &data, None, &NoProgress).expect("evaluate")
        });
    });
    g.finish();
}

fn bench_datasets(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = Model::load(root.join("tests/fixtures/tiny_resnet-keepbn.onnx")).expect("fixture");
    let dir = std::env::temp_dir().join(format!("shears-bench-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut rng = Rng::new(0);
    let n = 64;
    let x: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| rng.normal()).collect();
    Tensor::from_vec(x, (n, 3, 32, 32), &Device::Cpu)
        .and_then(|t| t.write_npy(dir.join("x_bench.npy")))
        .expect("write x");
    let y: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
    Tensor::new(y.as_slice(), &Device::Cpu)
        .and_then(|t| t.write_npy(dir.join("y_bench.npy")))
        .expect("write y");
    bench_dataset(c, "tiny_resnet-keepbn-64", &m, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let shared = root.join("../shared/accuracy");
    if shared.join("resnet.onnx").exists() {
        let m = Model::load(shared.join("resnet.onnx")).expect("accuracy/resnet.onnx");
        bench_dataset(c, "accuracy_resnet-540", &m, &shared);
    } else {
        eprintln!(
            "skipping accuracy_resnet-540: {} not found",
            shared.display()
        );
    }
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

criterion_group!(benches, bench_evaluate, bench_datasets);
criterion_main!(benches);
