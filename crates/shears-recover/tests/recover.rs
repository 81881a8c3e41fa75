//! Recovery on builder models with random weights: exactness when nothing is removed, a
//! least-squares case with a known answer, and the property that recovery never makes the
//! calibration-set output error larger (measured here, independently of the report).

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{InputShapes, Model};
use shears_pruner::NoProgress;
use shears_recover::{recover, Method, RecoverConfig, Sample};
use shears_testkit::builder::{zoo, ModelBuilder};
use shears_verify::candle_core::Tensor;
use shears_verify::{random_inputs, Evaluator, Rng};

fn analysed(proto: ModelProto, name: &str) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = InputShapes::dynamic_as(&m.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

fn pruned(model: &Model, plans: &[shears_plan::PruningPlan]) -> Model {
    let applied = shears_exec::apply(model, plans).unwrap();
    let shapes = InputShapes::dynamic_as(&model.graph, 1);
    let mut m = Model::from_proto(applied.proto, "pruned", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

fn samples(model: &Model, n: usize, seed: u64) -> Vec<Sample> {
    let shapes = InputShapes::dynamic_as(&model.graph, 1);
    let resolved = shapes.resolve(&model.graph).unwrap();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| random_inputs(model, &resolved, &mut rng).unwrap())
        .collect()
}

fn outputs(model: &Model, samples: &[Sample]) -> Vec<Vec<f32>> {
    let e = Evaluator::new(model).unwrap();
    samples
        .iter()
        .map(|s| {
            e.eval(s)
                .unwrap()
                .into_iter()
                .flat_map(|(_, t)| {
                    t.flatten_all()
                        .unwrap()
                        .to_dtype(shears_verify::candle_core::DType::F32)
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

/// ‖a − b‖ / ‖b‖ over all samples.
fn error(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            num += ((p - q) as f64).powi(2);
            den += (*q as f64).powi(2);
        }
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

fn configs() -> Vec<RecoverConfig> {
    [
        vec![Method::Reconstruct],
        vec![Method::Bn],
        vec![Method::Bn, Method::Reconstruct],
    ]
    .into_iter()
    .map(|methods| RecoverConfig {
        methods,
        ..RecoverConfig::default()
    })
    .collect()
}

#[test]
fn nothing_removed_changes_no_output() {
    for (name, build) in zoo::MODELS.iter().take(16) {
        let model = analysed(build(), name);
        // An unpruned copy: applying no plan is refused, so re-analyse the same proto.
        let same = analysed(model.proto.clone(), name);
        let xs = samples(&model, 3, 7);
        let want = outputs(&model, &xs);
        for cfg in configs() {
            let (rec, report) = recover(&model, &same, &[], &xs, &cfg, &NoProgress).unwrap();
            assert!(report.layers.is_empty(), "{name}: {:?}", report.layers);
            let got = outputs(&rec, &xs);
            for (g, w) in got.iter().zip(&want) {
                for (a, b) in g.iter().zip(w) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{name} {:?}: {a} vs {b}",
                        cfg.methods
                    );
                }
            }
        }
    }
}

#[test]
fn recovery_never_increases_the_output_error() {
    let names = [
        "conv_bn_relu_chain",
        "residual_basic_block",
        "residual_downsample_block",
        "bottleneck_block",
        "inception_block",
        "mobilenetv2_inverted_residual",
        "grouped_conv",
        "bn_folded",
        "flatten_gemm",
        "squeeze_excitation",
    ];
    let mut strictly_better = 0;
    let mut cases = 0;
    for name in names {
        let build = zoo::MODELS.iter().find(|(n, _)| *n == name).unwrap().1;
        let model = analysed(build(), name);
        let graph = DependencyGraph::build(&model);
        for seed in [1u64, 2, 3] {
            let plans = shears_testkit::random_plans(&model, &graph, seed);
            if plans.is_empty() {
                continue;
            }
            let small = pruned(&model, &plans);
            let xs = samples(&model, 8, seed);
            let want = outputs(&model, &xs);
            let before = error(&outputs(&small, &xs), &want);
            for cfg in configs() {
                let (rec, report) =
                    recover(&model, &small, &plans, &xs, &cfg, &NoProgress).unwrap();
                let after = error(&outputs(&rec, &xs), &want);
                assert!(
                    after <= before * (1.0 + 1e-6) + 1e-9,
                    "{name} seed {seed} {:?}: error {before} -> {after}",
                    cfg.methods
                );
                assert!((report.output_error.0 - before).abs() <= 1e-4 * before.max(1e-6));
                for l in &report.layers {
                    assert!(l.error_after.is_finite(), "{name}: {l:?}");
                    if l.method == Method::Reconstruct {
                        assert!(l.error_after <= l.error_before, "{name}: {l:?}");
                    }
                }
                cases += 1;
                if cfg.methods == [Method::Reconstruct] && after < 0.9 * before {
                    strictly_better += 1;
                }
            }
        }
    }
    // Not only never worse: reconstruction helps on most pruned models.
    assert!(
        strictly_better * 3 >= cases / 3 * 2,
        "reconstruction lowered the error by 10% in only {strictly_better} of {} cases",
        cases / 3
    );
}

/// A 1x1 conv whose output channel 3 is exactly ch0 + 2·ch1, feeding a 3x3 conv with a bias:
/// removing channel 3 loses nothing a refit cannot put back.
fn redundant_channel() -> Model {
    let mut b = ModelBuilder::new(zoo::OPSET).named("redundant");
    let x = b.input("input", &[1, 3, 6, 6]);
    let y = b.conv(&x, "a", 4, 1, 1, 0, 1, false);
    let y = b.conv(&y, "b", 5, 3, 1, 1, 1, true);
    b.output(&y);
    let mut proto = b.build();
    let g = proto.graph.as_mut().unwrap();
    let w = g
        .initializer
        .iter_mut()
        .find(|t| t.name == "a.weight")
        .unwrap();
    let mut v: Vec<f32> = w
        .raw_data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for c in 0..3 {
        v[3 * 3 + c] = v[c] + 2.0 * v[3 + c];
    }
    shears_onnx::tensor::set_raw(
        w,
        v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        &[4, 3, 1, 1],
    );
    analysed(proto, "redundant")
}

#[test]
fn a_removed_linear_combination_is_restored_exactly() {
    let model = redundant_channel();
    let graph = DependencyGraph::build(&model);
    let plan = shears_plan::plan(&model, &graph, "a.weight", &[3]).unwrap();
    let small = pruned(&model, std::slice::from_ref(&plan));
    let xs = samples(&model, 4, 3);
    let want = outputs(&model, &xs);
    let before = error(&outputs(&small, &xs), &want);
    assert!(before > 0.1, "removing the channel should hurt: {before}");
    let cfg = RecoverConfig {
        methods: vec![Method::Reconstruct],
        ridge: 1e-10,
    };
    let (rec, report) = recover(&model, &small, &[plan], &xs, &cfg, &NoProgress).unwrap();
    let after = error(&outputs(&rec, &xs), &want);
    assert!(
        after < 1e-4,
        "refit should restore the output: {before} -> {after}"
    );
    let b = report.layers.iter().find(|l| l.node == "/b/Conv").unwrap();
    assert!(b.error_after < 1e-4 && !b.kept_old, "{b:?}");
    // Layer a's input kept every channel: it is not refitted.
    assert!(report.layers.iter().all(|l| l.node != "/a/Conv"));
    // The same refit on samples a layer away from the truth is checked on held-out inputs.
    let held_out = samples(&model, 2, 99);
    let e = error(&outputs(&rec, &held_out), &outputs(&model, &held_out));
    assert!(e < 1e-4, "held-out error {e}");
}

#[test]
fn bad_samples_are_refused() {
    let model = redundant_channel();
    let graph = DependencyGraph::build(&model);
    let plan = shears_plan::plan(&model, &graph, "a.weight", &[3]).unwrap();
    let small = pruned(&model, std::slice::from_ref(&plan));
    let cfg = RecoverConfig::default();
    let none = recover(
        &model,
        &small,
        std::slice::from_ref(&plan),
        &[],
        &cfg,
        &NoProgress,
    );
    assert!(none.unwrap_err().to_string().contains("at least one"));
    let nan = Tensor::from_vec(
        vec![f32::NAN; 108],
        (1, 3, 6, 6),
        &shears_verify::candle_core::Device::Cpu,
    )
    .unwrap();
    let err = recover(
        &model,
        &small,
        &[plan],
        &[vec![("input".into(), nan)]],
        &cfg,
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("NaN") && err.contains("#0"), "{err}");
}
