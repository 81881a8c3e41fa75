//! Shared suite: training-free recovery on the trained models of `../shared/accuracy`. Pruned
//! at half the channels with no recovery they fall to chance; these pin that reconstruction
//! brings them back to at least 95% of the original accuracy and to the reference figures of
//! the folder's README minus one point, and BatchNorm re-estimation alone to the reference
//! minus two points, for local, cost-target, global and multi-stage pruning.
#![cfg(feature = "shared-suite")]

mod common;

use std::path::PathBuf;

use shears_onnx::{InputShapes, Model};
use shears_pruner::{calib, AllocationConfig, Calibration, Control, Goal, PruneConfig, Schedule};
use shears_recover::{Method, RecoverConfig, StagedRecovery};
use shears_verify::{evaluate, Dataset, DatasetOptions, LabelSource, NoProgress};

fn dir() -> PathBuf {
    common::shared().join("accuracy")
}

fn load(name: &str) -> Model {
    let mut m = Model::load(dir().join(name)).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

/// Held-out top-1 accuracy in percent, through the evaluator's dataset API.
fn accuracy(model: &Model) -> f64 {
    let opts = DatasetOptions {
        labels: LabelSource::File(dir().join("y_test.npy")),
        batch_size: None,
    };
    let data = Dataset::open(model, &dir(), &opts).unwrap();
    let r = evaluate(model, &data, None, &NoProgress).unwrap();
    100.0 * r.accuracy.unwrap().top1
}

/// Prunes `model` with `cfg`, recovering after every stage with `methods` on the 128
/// calibration images; the held-out accuracy of the result.
fn pruned_accuracy(model: &Model, cfg: &PruneConfig, methods: &[Method]) -> f64 {
    let samples = calib::inputs(
        model,
        &InputShapes::default(),
        &Calibration::Dir(dir().join("calib")),
    )
    .unwrap();
    assert_eq!(samples.len(), 128);
    let rcfg = RecoverConfig {
        methods: methods.to_vec(),
        ..RecoverConfig::default()
    };
    let mut staged = StagedRecovery::new(model, &samples, &rcfg);
    let outcome = shears_pruner::prune_iterative(model, cfg, &NoProgress, |stage| {
        staged.after_stage(stage, &NoProgress).unwrap();
        Control::Continue
    })
    .unwrap();
    assert_eq!(staged.reports.len(), cfg.schedule.steps);
    for r in &staged.reports {
        assert!(r.output_error.1 < r.output_error.0, "{r:?}");
    }
    accuracy(&outcome.model)
}

fn ratio(r: f64) -> PruneConfig {
    PruneConfig {
        goal: Goal::Ratio(r),
        ..PruneConfig::default()
    }
}

/// (model, reference reconstruction accuracy, reference BatchNorm accuracy) from the README.
const MODELS: [(&str, f64, f64); 2] = [("resnet.onnx", 99.4, 85.2), ("vgg.onnx", 100.0, 89.8)];

fn check_reconstruct(cfg: &PruneConfig, what: &str) {
    for (name, reference, _) in MODELS {
        let model = load(name);
        let original = accuracy(&model);
        let got = pruned_accuracy(&model, cfg, &[Method::Reconstruct]);
        assert!(
            got >= 0.95 * original && got >= reference - 1.0,
            "{name} {what}: {got:.2}% after reconstruction (original {original:.2}%, reference {reference}%)"
        );
    }
}

#[test]
fn reconstruction_at_half_the_channels_beats_the_reference() {
    check_reconstruct(&ratio(0.5), "--ratio 0.5");
}

#[test]
fn batch_norm_recalibration_reaches_the_reference() {
    for (name, _, reference) in MODELS {
        let model = load(name);
        let got = pruned_accuracy(&model, &ratio(0.5), &[Method::Bn]);
        assert!(
            got >= reference - 2.0,
            "{name}: {got:.2}% after BatchNorm re-estimation (reference {reference}%)"
        );
    }
}

#[test]
fn reconstruction_with_a_macs_target() {
    let cfg = PruneConfig {
        goal: Goal::Macs(0.5),
        ..PruneConfig::default()
    };
    check_reconstruct(&cfg, "--target-macs 0.5");
}

#[test]
fn reconstruction_with_global_allocation() {
    let cfg = PruneConfig {
        allocation: AllocationConfig {
            global: true,
            max_ratio: 0.8,
            ..AllocationConfig::default()
        },
        ..ratio(0.5)
    };
    check_reconstruct(&cfg, "--global --max-ratio 0.8");
}

#[test]
fn reconstruction_after_each_of_three_stages() {
    let cfg = PruneConfig {
        schedule: Schedule {
            steps: 3,
            ..Schedule::default()
        },
        ..ratio(0.5)
    };
    check_reconstruct(&cfg, "--steps 3");
}
