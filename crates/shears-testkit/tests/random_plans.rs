//! Property: any seeded random batch of plans, on any builder model or fixture, gives a model
//! that is a valid graph, passes shape inference, keeps every output shape, and evaluates to
//! finite outputs.

mod common;

use proptest::prelude::*;
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::Model;
use shears_testkit::builder::zoo;

fn models() -> Vec<Model> {
    let mut out: Vec<Model> = zoo::MODELS
        .iter()
        .map(|(n, b)| Model::from_proto(b(), *n, ExternalStore::none()).unwrap())
        .collect();
    out.extend(
        common::fixture_files()
            .iter()
            .map(|f| Model::load(f).unwrap()),
    );
    for m in &mut out {
        let shapes = common::static_shapes(m);
        shears_onnx::shape::infer_shapes(m, &shapes).unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_batches_give_valid_models(model_pick in 0usize..1000, seed in any::<u64>()) {
        thread_local!(static MODELS: Vec<Model> = models());
        MODELS.with(|ms| {
            let model = &ms[model_pick % ms.len()];
            let shapes = common::static_shapes(model);
            let graph = DependencyGraph::build(model);
            let plans = shears_testkit::random_plans(model, &graph, seed);
            if plans.is_empty() {
                // No prunable group: applying nothing is refused, never a silent copy.
                let err = shears_exec::apply(model, &plans).err();
                assert!(
                    matches!(err, Some(shears_exec::ExecError::NothingRemoved { .. })),
                    "{} seed {seed}: {err:?}",
                    model.source
                );
                return Ok(());
            }
            let applied = shears_exec::apply(model, &plans)
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", model.source));
            let mut pruned = Model::from_proto(applied.proto, "pruned", ExternalStore::none())
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", model.source));
            shears_onnx::shape::infer_shapes(&mut pruned, &shapes)
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", model.source));
            let report = shears_verify::verify(model, &pruned, &shapes, 1, seed)
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", model.source));
            prop_assert!(report.shapes_equal, "{} seed {seed}: output shapes changed", model.source);
            for o in &report.outputs {
                prop_assert!(o.max_abs.is_some_and(f64::is_finite), "{} seed {seed}: {o:?}", model.source);
            }
            Ok(())
        })?;
    }
}
