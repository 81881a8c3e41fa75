//! `sparsify` on every zoo model: the requested zeros (within one element), kept elements and
//! every other tensor byte-identical, masks that compose, N:M compliance, global ranking,
//! thresholds, schedules, the sparse store read back, and the masked refit keeping its zeros.

use std::collections::BTreeMap;

use shears_onnx::external::ExternalStore;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::ModelProto;
use shears_onnx::{tensor, InputShapes, Model};
use shears_pruner::{Calibration, NoProgress, Pattern, Schedule, ScheduleKind};
use shears_sparsity::weights;
use shears_sparsity::{sparsify, Criterion, NmPattern, Sparsified, SparsifyConfig};
use shears_testkit::builder::zoo;

fn load(proto: ModelProto, name: &str) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = InputShapes::dynamic_as(&m.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

/// Zoo models with at least one sparsifiable weight.
fn models() -> Vec<Model> {
    zoo::all()
        .into_iter()
        .map(|(name, p)| load(p, name))
        .filter(|m| !weights::find(m).0.is_empty())
        .collect()
}

fn inits(m: &Model) -> BTreeMap<String, Vec<f32>> {
    m.proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .filter(|t| weights::is_float(t.data_type))
        .map(|t| (t.name.clone(), m.f32s(t).unwrap()))
        .collect()
}

fn run(m: &Model, cfg: &SparsifyConfig) -> Sparsified {
    sparsify(m, cfg, &NoProgress).unwrap_or_else(|e| panic!("{}: {e}", m.source))
}

fn zeros(v: &[f32]) -> usize {
    v.iter().filter(|&&x| x == 0.0).count()
}

/// Every weight `out` lists has `want(len)` zeros within one; kept elements are the
/// original's; every other initializer is unchanged.
fn check_kept(m: &Model, out: &Sparsified) {
    let before = inits(m);
    let after = inits(&out.model);
    let sparsified: Vec<&str> = out.layers.iter().map(|l| l.weight.as_str()).collect();
    for (name, a) in &after {
        let b = &before[name];
        if !sparsified.contains(&name.as_str()) {
            assert_eq!(a, b, "{}: {name} is not a sparsified weight", m.source);
            continue;
        }
        for (x, y) in a.iter().zip(b) {
            assert!(
                *x == 0.0 || x.to_bits() == y.to_bits(),
                "{}: {name}",
                m.source
            );
        }
    }
}

fn cfg(s: f64) -> SparsifyConfig {
    SparsifyConfig {
        sparsity: Some(s),
        ..Default::default()
    }
}

#[test]
fn every_weight_gets_its_fraction_and_keeps_the_rest() {
    for m in models() {
        for criterion in [Criterion::L1, Criterion::Random] {
            let out = run(
                &m,
                &SparsifyConfig {
                    criterion,
                    seed: 3,
                    ..cfg(0.6)
                },
            );
            check_kept(&m, &out);
            let after = inits(&out.model);
            for l in &out.layers {
                let want = (0.6 * l.elements as f64).round() as i64;
                let got = zeros(&after[&l.weight]) as i64;
                assert!(
                    (got - want).abs() <= 1 || l.zeros.0 as i64 > want,
                    "{}: {} has {got} zeros, want {want}",
                    m.source,
                    l.weight
                );
                assert_eq!(got as u64, l.zeros.1);
            }
        }
    }
}

#[test]
fn wanda_ranks_per_output_row_on_calibration_activations() {
    for m in models().into_iter().take(8) {
        let c = SparsifyConfig {
            criterion: Criterion::Wanda,
            calibration: Some(Calibration::Random {
                samples: 2,
                seed: 1,
            }),
            input_shapes: InputShapes::dynamic_as(&m.graph, 1),
            ..cfg(0.5)
        };
        let out = run(&m, &c);
        check_kept(&m, &out);
        for l in &out.layers {
            let want = (0.5 * l.elements as f64).round() as u64;
            assert!(l.zeros.1 == want || l.zeros.0 > want, "{}", l.weight);
        }
    }
}

#[test]
fn masks_compose() {
    for m in models() {
        for criterion in [Criterion::L1, Criterion::Random] {
            let c = |s| SparsifyConfig {
                criterion,
                ..cfg(s)
            };
            let once = run(&m, &c(0.7));
            let first = run(&m, &c(0.5));
            let twice = run(&first.model, &c(0.7));
            assert_eq!(
                inits(&once.model),
                inits(&twice.model),
                "{}: 0.5 then 0.7 differs from 0.7 ({criterion:?})",
                m.source
            );
            // A smaller fraction afterwards keeps the zeros there are.
            let back = run(&once.model, &c(0.3));
            assert_eq!(inits(&back.model), inits(&once.model));
        }
    }
}

#[test]
fn linear_stages_of_l1_end_where_one_shot_does() {
    for m in models().into_iter().take(6) {
        let once = run(&m, &cfg(0.8));
        for kind in [ScheduleKind::Linear, ScheduleKind::Agp] {
            let staged = run(
                &m,
                &SparsifyConfig {
                    schedule: Schedule { steps: 3, kind },
                    ..cfg(0.8)
                },
            );
            assert_eq!(staged.stages.len(), 3);
            assert!(staged.stages.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(inits(&staged.model), inits(&once.model), "{}", m.source);
        }
    }
}

#[test]
fn global_ranking_counts_all_weights_together() {
    for m in models() {
        let out = run(
            &m,
            &SparsifyConfig {
                global: true,
                ..cfg(0.5)
            },
        );
        check_kept(&m, &out);
        let (z, n) = out.total();
        let want = (0.5 * n as f64).round() as i64;
        assert!((z as i64 - want).abs() <= 1, "{}: {z} of {n}", m.source);
        // Every kept magnitude is at least every zeroed one.
        let before = inits(&m);
        let after = inits(&out.model);
        let mut kept_min = f32::INFINITY;
        let mut zeroed_max = 0f32;
        for l in &out.layers {
            for (a, b) in after[&l.weight].iter().zip(&before[&l.weight]) {
                if *a == 0.0 {
                    zeroed_max = zeroed_max.max(b.abs());
                } else {
                    kept_min = kept_min.min(b.abs());
                }
            }
        }
        assert!(zeroed_max <= kept_min, "{}", m.source);
    }
}

#[test]
fn layer_fractions_thresholds_and_ignores() {
    for m in models() {
        let (found, _) = weights::find(&m);
        let first = found[0].name.clone();
        let out = run(
            &m,
            &SparsifyConfig {
                layer_sparsity: vec![(Pattern::new(&first).unwrap(), 0.25)],
                ..Default::default()
            },
        );
        assert_eq!(out.layers.len(), 1);
        let l = &out.layers[0];
        assert_eq!(l.weight, first);
        let want = (0.25 * l.elements as f64).round() as i64;
        assert!((l.zeros.1 as i64 - want).abs() <= 1 || l.zeros.0 as i64 > want);

        // Ignoring the only stored weight (a standardised conv's weight is computed, not one)
        // leaves nothing to sparsify: that refusal is tested on its own.
        if found.len() < 2 {
            continue;
        }
        let th = run(
            &m,
            &SparsifyConfig {
                threshold: Some(0.05),
                ignore: vec![Pattern::new(&first).unwrap()],
                ..Default::default()
            },
        );
        check_kept(&m, &th);
        assert!(th.layers.iter().all(|l| l.weight != first));
        assert!(th.untouched.iter().any(|u| u.weight == first));
        let before = inits(&m);
        let after = inits(&th.model);
        for l in &th.layers {
            for (a, b) in after[&l.weight].iter().zip(&before[&l.weight]) {
                assert_eq!(*a == 0.0, b.abs() < 0.05, "{}", l.weight);
            }
        }
    }
}

#[test]
fn n_m_patterns_hold_on_every_run() {
    let mut dense_listed = 0;
    for m in models() {
        for (n, mm) in [(2, 4), (1, 4), (4, 8)] {
            let p = NmPattern::new(n, mm).unwrap();
            let c = SparsifyConfig {
                pattern: Some(p),
                ..Default::default()
            };
            let out = match sparsify(&m, &c, &NoProgress) {
                Ok(o) => o,
                Err(shears_sparsity::SparsifyError::NothingToSparsify(_)) => continue,
                Err(e) => panic!("{e}"),
            };
            check_kept(&m, &out);
            let after = inits(&out.model);
            let (found, _) = weights::find(&out.model);
            for l in &out.layers {
                assert_eq!(l.pattern_satisfied, Some(true), "{}", l.weight);
                let w = found.iter().find(|w| w.name == l.weight).unwrap();
                let v = &after[&l.weight];
                for run in p.runs(&w.layout) {
                    let nz = run.iter().filter(|&&e| v[e] != 0.0).count();
                    assert!(nz <= n, "{}: a run keeps {nz}", l.weight);
                }
                assert_eq!(l.zeros.1 as usize, zeros(v), "{}: zeros reported", l.weight);
                assert!(l.zeros.1 as usize >= l.elements as usize * (mm - n) / mm);
            }
            for u in &out.untouched {
                assert!(u.reason.contains("not a multiple"), "{}", u.reason);
                dense_listed += 1;
            }
        }
    }
    assert!(
        dense_listed > 0,
        "no layer had a reduction size off the pattern"
    );
}

#[test]
fn sparse_store_reads_back_as_the_same_dense_model() {
    for m in models() {
        let out = run(&m, &cfg(0.9));
        let names: Vec<String> = out.layers.iter().map(|l| l.weight.clone()).collect();
        let (proto, storage) = shears_sparsity::store_sparse(&out.model, &names).unwrap();
        let g = proto.graph.as_ref().unwrap();
        let moved = storage.iter().filter(|s| s.sparse).count();
        assert_eq!(g.sparse_initializer.len(), moved);
        assert!(moved > 0, "{}: nothing got smaller at 0.9", m.source);
        for s in &storage {
            assert_eq!(s.sparse, s.sparse_bytes < s.dense_bytes);
        }
        let back = load(proto, "back");
        assert_eq!(inits(&back), inits(&out.model), "{}", m.source);
        let diff = shears_verify::verify(
            &out.model,
            &back,
            &InputShapes::dynamic_as(&m.graph, 1),
            1,
            5,
        )
        .unwrap();
        assert!(diff.outputs.iter().all(|o| o.max_abs == Some(0.0)));
    }
}

#[test]
fn sixteen_bit_weights_keep_their_dtype_and_bits() {
    for m in models().into_iter().take(5) {
        // The same model with every float initializer stored as f16.
        let mut proto = m.proto.clone();
        let (found, _) = weights::find(&m);
        for t in proto.graph.as_mut().unwrap().initializer.iter_mut() {
            if !found.iter().any(|w| w.name == t.name) {
                continue;
            }
            let v = tensor::decode_f32(t, &ExternalStore::none()).unwrap();
            let raw: Vec<u8> = v
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect();
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            t.data_type = DataType::Float16 as i32;
            tensor::set_raw(t, raw, &dims);
        }
        let Ok(mut h) = Model::from_proto(proto, "f16", ExternalStore::none()) else {
            continue;
        };
        let shapes = InputShapes::dynamic_as(&h.graph, 1);
        if shears_onnx::shape::infer_shapes(&mut h, &shapes).is_err() {
            continue;
        }
        let out = run(&h, &cfg(0.5));
        check_kept(&h, &out);
        for l in &out.layers {
            let t = out
                .model
                .proto
                .graph
                .as_ref()
                .unwrap()
                .initializer
                .iter()
                .find(|t| t.name == l.weight)
                .unwrap();
            assert_eq!(t.data_type, DataType::Float16 as i32);
        }
    }
}

#[test]
fn masked_refit_keeps_every_zero_and_lowers_the_error() {
    let mut refitted = 0;
    for m in models().into_iter().take(6) {
        let c = SparsifyConfig {
            calibration: Some(Calibration::Random {
                samples: 4,
                seed: 2,
            }),
            input_shapes: InputShapes::dynamic_as(&m.graph, 1),
            recover: Some(shears_recover::RecoverConfig::default()),
            ..cfg(0.6)
        };
        let plain = run(&m, &cfg(0.6));
        let out = run(&m, &c);
        let (p, r) = (inits(&plain.model), inits(&out.model));
        for l in &plain.layers {
            for (a, b) in p[&l.weight].iter().zip(&r[&l.weight]) {
                if *a == 0.0 {
                    assert_eq!(*b, 0.0, "{}: a masked weight came back", l.weight);
                }
            }
        }
        let report = &out.recovery[0];
        assert!(report.output_error.1 <= report.output_error.0);
        for l in &report.layers {
            assert!(l.error_after <= l.error_before, "{}", l.node);
            refitted += usize::from(!l.kept_old);
        }
    }
    assert!(refitted > 0);
}

#[test]
fn bad_settings_name_their_flag() {
    let m = models().remove(0);
    let err = |c: SparsifyConfig| sparsify(&m, &c, &NoProgress).err().unwrap().to_string();
    assert!(err(cfg(1.0)).starts_with("--sparsity"));
    assert!(err(cfg(-0.1)).starts_with("--sparsity"));
    assert!(err(SparsifyConfig {
        threshold: Some(-1.0),
        ..Default::default()
    })
    .starts_with("--threshold"));
    assert!(err(SparsifyConfig::default()).contains("give --sparsity"));
    assert!(err(SparsifyConfig {
        threshold: Some(0.1),
        criterion: Criterion::Random,
        ..Default::default()
    })
    .starts_with("--criterion"));
    assert!(err(SparsifyConfig {
        criterion: Criterion::Wanda,
        ..cfg(0.5)
    })
    .starts_with("--criterion"));
    assert!(err(SparsifyConfig {
        ignore: vec![Pattern::new("*").unwrap()],
        ..cfg(0.5)
    })
    .contains("no weight to sparsify"));
}
