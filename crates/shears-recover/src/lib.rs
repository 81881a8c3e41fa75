//! Training-free recovery of a pruned model from unlabelled calibration samples: the pruned
//! model is pulled back toward the original, layer by layer, without any training.
//!
//! - [`Method::Reconstruct`]: every Conv, Gemm and MatMul-with-a-constant-weight whose input
//!   changed gets its kept weights (and bias) refitted by ridge regression, so that on the
//!   calibration set its output in the pruned model matches the original model's output of
//!   that layer on the kept channels.
//! - [`Method::Bn`]: BatchNormalization running statistics are re-estimated where the input
//!   changed; a layer with a bias and no BatchNormalization after it (folded) gets its bias
//!   shifted so its output mean per channel matches the original's.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use shears_recover::{recover, RecoverConfig};
//! # let (original, pruned, plans, samples): (shears_onnx::Model, shears_onnx::Model, Vec<shears_plan::PruningPlan>, Vec<shears_recover::Sample>) = todo!();
//! let (model, report) = recover(
//!     &original, &pruned, &plans, &samples, &RecoverConfig::default(), &shears_pruner::NoProgress,
//! )?;
//! println!("output error {:.4} -> {:.4}", report.output_error.0, report.output_error.1);
//! # Ok(()) }
//! ```
//!
//! **Invariants**
//! - Neither input model is mutated; the result is a copy of the pruned model with edited
//!   float32 initializers only (same graph, names, order and shapes).
//! - One lockstep pass per method: the original and the pruned model run node by node over all
//!   samples (each sample's values freed after their last reader), so each layer is fitted on
//!   the activations of the already-recovered layers upstream; Gram matrices are accumulated
//!   per layer and dropped after its solve.
//! - With no channel removed and no mask given nothing is affected and the model is returned
//!   unchanged. A masked weight (`recover_masked`) keeps every masked element exactly 0.
//! - A refit that does not lower its layer's calibration error keeps the old weights, and if
//!   recovery as a whole makes the graph outputs' calibration error larger, the pruned model is
//!   returned unchanged (`reverted`). No NaN or infinite value is ever written.

mod config;
mod error;
mod kept;
mod layer;
mod pass;
mod report;
mod solve;
mod staged;

use std::time::Instant;

use shears_onnx::Model;
use shears_plan::PruningPlan;
use shears_pruner::Progress;
use shears_verify::candle_core::Tensor;
use shears_verify::Evaluator;

pub use config::{Method, RecoverConfig};
pub use error::{RecoverError, Result};
pub use kept::Kept;
pub use report::{LayerRecovery, NotRecovered, RecoveryReport};
pub use staged::StagedRecovery;

/// One calibration sample: a tensor per runtime input, by name (as
/// `shears_pruner::calib::inputs` gives them).
pub type Sample = Vec<(String, Tensor)>;

/// Recovers `pruned`, made from `original` by `plans` (in `original`'s coordinates), on
/// `samples`, with the methods of `cfg` in order.
pub fn recover(
    original: &Model,
    pruned: &Model,
    plans: &[PruningPlan],
    samples: &[Sample],
    cfg: &RecoverConfig,
    progress: &dyn Progress,
) -> Result<(Model, RecoveryReport)> {
    let kept = Kept::from_plans(original, plans)?;
    recover_kept(original, pruned, &kept, samples, cfg, progress)
}

/// [`recover`] with the kept channels given directly (for several pruning stages, compose
/// them with [`Kept::then`] and recover against the first stage's original).
pub fn recover_kept(
    original: &Model,
    pruned: &Model,
    kept: &Kept,
    samples: &[Sample],
    cfg: &RecoverConfig,
    progress: &dyn Progress,
) -> Result<(Model, RecoveryReport)> {
    recover_with(
        original,
        pruned,
        kept,
        &Masks::new(),
        samples,
        cfg,
        progress,
    )
}

/// Sparsity masks, by weight (initializer) name: per element in the stored layout, whether it
/// may be non-zero. A masked weight is refitted output by output over its kept elements only,
/// so every masked element stays exactly 0.
pub type Masks = std::collections::BTreeMap<String, Vec<bool>>;

/// Recovers `sparse`, made from `original` by zeroing weights (same graph, same shapes), on
/// `samples`: every layer whose weight `masks` names (and every layer downstream) is refitted
/// with the mask fixed, with the same safeguards as [`recover`].
pub fn recover_masked(
    original: &Model,
    sparse: &Model,
    masks: &Masks,
    samples: &[Sample],
    cfg: &RecoverConfig,
    progress: &dyn Progress,
) -> Result<(Model, RecoveryReport)> {
    recover_with(
        original,
        sparse,
        &Kept::default(),
        masks,
        samples,
        cfg,
        progress,
    )
}

fn recover_with(
    original: &Model,
    pruned: &Model,
    kept: &Kept,
    masks: &Masks,
    samples: &[Sample],
    cfg: &RecoverConfig,
    progress: &dyn Progress,
) -> Result<(Model, RecoveryReport)> {
    let start = Instant::now();
    cfg.validate()?;
    check_samples(samples)?;
    let mut report = RecoveryReport {
        samples: samples.len(),
        methods: cfg.methods.clone(),
        ridge: cfg.ridge,
        ..RecoveryReport::default()
    };
    let mut model = copy_with(pruned, &pass::Edits::new())?;
    let mut original_outputs = None;
    let mut recovered_outputs = None;
    for &m in &cfg.methods {
        let out = pass::run_pass(
            original,
            &model,
            (kept, masks),
            samples,
            m,
            cfg.ridge,
            progress,
        )?;
        model = copy_with(&model, &out.edits)?;
        report.layers.extend(out.layers);
        report.not_recovered.extend(out.not_recovered);
        original_outputs.get_or_insert(out.original);
        recovered_outputs = Some(out.recovered);
    }
    let original_outputs = match original_outputs {
        Some(o) => o,
        None => outputs(original, samples)?,
    };
    let baseline = outputs(pruned, samples)?;
    let before = output_error(&baseline, &original_outputs)?;
    let after = match &recovered_outputs {
        Some(r) => output_error(r, &original_outputs)?,
        None => before,
    };
    report.output_error = (before, after);
    if after > before {
        report.reverted = true;
        model = copy_with(pruned, &pass::Edits::new())?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok((model, report))
}

/// Every sample is non-empty and finite.
fn check_samples(samples: &[Sample]) -> Result<()> {
    if samples.is_empty() {
        return Err(RecoverError::Sample {
            sample: "(none)".into(),
            reason: "recovery needs at least one calibration sample".into(),
        });
    }
    for (k, s) in samples.iter().enumerate() {
        for (name, t) in s {
            let v = pass::to_f32(name, t).map_err(|e| RecoverError::Sample {
                sample: format!("#{k}"),
                reason: format!("input '{name}': {e}"),
            })?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(RecoverError::Sample {
                    sample: format!("#{k}"),
                    reason: format!("input '{name}' holds NaN or infinite values"),
                });
            }
        }
    }
    Ok(())
}

fn outputs(model: &Model, samples: &[Sample]) -> Result<Vec<Vec<Tensor>>> {
    let e = Evaluator::new(model)?;
    samples
        .iter()
        .map(|s| Ok(e.eval(s)?.into_iter().map(|(_, t)| t).collect()))
        .collect()
}

fn output_error(a: &[Vec<Tensor>], b: &[Vec<Tensor>]) -> Result<f64> {
    let xs: Vec<&Tensor> = a.iter().flatten().collect();
    let ys: Vec<Tensor> = b.iter().flatten().cloned().collect();
    pass::rel_error("graph outputs", xs.into_iter(), &ys)
}

/// A copy of `model` with `edits` written into its float32 initializers (same graph).
pub(crate) fn copy_with(model: &Model, edits: &pass::Edits) -> Result<Model> {
    let mut proto = model.proto.clone();
    if let Some(g) = proto.graph.as_mut() {
        for t in g.initializer.iter_mut() {
            if let Some((dims, data)) = edits.get(&t.name) {
                let mut raw = Vec::with_capacity(data.len() * 4);
                for v in data {
                    raw.extend_from_slice(&v.to_le_bytes());
                }
                shears_onnx::tensor::set_raw(t, raw, dims);
            }
        }
    }
    let mut out = Model::from_proto(proto, model.source.clone(), model.external.same_folder())?;
    // Only payloads changed: the analysed graph (shapes included) still describes the proto.
    out.graph = model.graph.clone();
    out.file_size = model.file_size;
    Ok(out)
}
