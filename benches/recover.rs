//! Recovery's cost against one evaluation of the calibration set through the original model
//! (the goal: prune + reconstruct within about 4x of that).
//!
//! `resnet50_like` (the builder zoo's torchvision ResNet-50) at a 1x3x64x64 input to keep the
//! run short (the net is fully convolutional up to its global pool), 32 seeded random
//! calibration samples:
//! - `eval_calibration_set`: the 32 samples through the original;
//! - `reconstruct`: recovery alone of the model pruned at ratio 0.5 (local L2);
//! - `prune_and_reconstruct`: pruning at ratio 0.5 plus recovery, as `shears prune --ratio 0.5
//!   --calib-dir` runs them.
//!
//! Run: `cargo bench --bench recover -- --warm-up-time 1 --measurement-time 20`.

use criterion::{criterion_group, criterion_main, Criterion};
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_pruner::{Goal, NoProgress, PruneConfig};
use shears_recover::{recover, RecoverConfig, Sample};
use shears_testkit::builder::zoo;
use shears_verify::{random_inputs, Evaluator, Rng};

const SAMPLES: usize = 32;

/// ResNet-50 with its input resized to 64x64.
fn model() -> Model {
    let mut proto = zoo::resnet50_like();
    let input = &mut proto.graph.as_mut().expect("graph").input[0];
    if let Some(shears_onnx::proto::type_proto::Value::TensorType(t)) =
        input.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        let dims = &mut t.shape.as_mut().expect("shape").dim;
        for d in &mut dims[2..] {
            d.value = Some(shears_onnx::proto::tensor_shape_proto::dimension::Value::DimValue(64));
        }
    }
    let mut m = Model::from_proto(proto, "resnet50_like@64", ExternalStore::none()).expect("model");
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).expect("shapes");
    m
}

fn bench_recover(c: &mut Criterion) {
    let model = model();
    let shapes = InputShapes::default()
        .resolve(&model.graph)
        .expect("static");
    let mut rng = Rng::new(0);
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|_| random_inputs(&model, &shapes, &mut rng).expect("inputs"))
        .collect();
    let cfg = PruneConfig {
        goal: Goal::Ratio(0.5),
        ..PruneConfig::default()
    };
    let rcfg = RecoverConfig::default();
    let mut g = c.benchmark_group("recover");
    g.sample_size(10);
    let eval = Evaluator::new(&model).expect("prepare");
    g.bench_function("eval_calibration_set/resnet50_like@64x32", |b| {
        b.iter(|| {
            for s in &samples {
                eval.eval(s).expect("eval");
            }
        })
    });
    let pruned = shears_pruner::prune(&model, &cfg, &NoProgress).expect("prune");
    let plans = &pruned.stages[0].plans;
    g.bench_function("reconstruct/resnet50_like@64x32", |b| {
        b.iter(|| {
            recover(&model, &pruned.model, plans, &samples, &rcfg, &NoProgress).expect("recover")
        })
    });
    g.bench_function("prune_and_reconstruct/resnet50_like@64x32", |b| {
        b.iter(|| {
            let out = shears_pruner::prune(&model, &cfg, &NoProgress).expect("prune");
            recover(
                &model,
                &out.model,
                &out.stages[0].plans,
                &samples,
                &rcfg,
                &NoProgress,
            )
            .expect("recover")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_recover);
criterion_main!(benches);
