//! Calibration: inputs (seeded random, or a folder of `.npy` files read by
//! [`shears_verify::Dataset`]) run through Shears'
//! evaluator, with the activations that criteria read observed as they are produced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use shears_onnx::{InputShapes, Model, ValueId};
use shears_verify::candle_core::{DType, Tensor};
use shears_verify::{random_inputs, Dataset, DatasetOptions, Evaluator, LabelSource, Rng};

use crate::error::{PrunerError, Result};
use crate::importance::{ActivationStats, ChannelStats};
use crate::progress::Progress;

/// Where calibration inputs come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// `samples` standard-normal inputs at the model's static input shapes, from `seed`.
    Random { samples: usize, seed: u64 },
    /// A folder of `.npy` files in any layout [`shears_verify::Dataset`] reads (one sample per
    /// file in name order, one subfolder per sample for several inputs, or a stacked `x_*.npy`),
    /// cut into the model's batches (a static batch's last one padded by repeating a sample).
    Dir(PathBuf),
}

/// One calibration sample: a tensor per runtime input, by name.
pub type Sample = Vec<(String, Tensor)>;

/// The samples `calib` describes for `model`.
pub fn inputs(model: &Model, shapes: &InputShapes, calib: &Calibration) -> Result<Vec<Sample>> {
    match calib {
        Calibration::Random { samples, seed } => {
            // Symbolic dimensions at the size the model was analysed at.
            let resolved =
                shapes.resolve_symbols_at(&model.graph, shears_onnx::shape::symbolic::BASE)?;
            let mut rng = Rng::new(*seed);
            (0..*samples)
                .map(|_| Ok(random_inputs(model, &resolved, &mut rng)?))
                .collect()
        }
        Calibration::Dir(dir) => from_dir(model, shapes, dir),
    }
}

/// The batches of the `.npy` folder `dir` (read by [`shears_verify::Dataset`], the project's
/// one dataset reader; labels are never read): for a symbolic batch, the batch size the user
/// gave in `shapes` for the first input, else [`shears_verify::dataset::DEFAULT_BATCH`].
fn from_dir(model: &Model, shapes: &InputShapes, dir: &Path) -> Result<Vec<Sample>> {
    let g = &model.graph;
    let first = g.inputs.first().map(|&v| g.value(v).name.as_str());
    let asked = first
        .and_then(|n| shapes.0.get(n))
        .and_then(|s| s.first().copied());
    let static_batch = g.inputs.first().is_some_and(|&v| {
        matches!(
            g.value(v).declared.as_deref(),
            Some([shears_onnx::Dim::Known(_), ..])
        )
    });
    let opts = DatasetOptions {
        labels: LabelSource::Without,
        batch_size: if static_batch { None } else { asked },
    };
    let data = Dataset::open(model, dir, &opts)?;
    (0..data.batches())
        .map(|b| Ok(data.batch(b)?.inputs))
        .collect()
}

/// Runs every sample through `model` and accumulates per-channel statistics of the `wanted`
/// (value, axis) pairs, observing each value as the evaluator produces it (nothing extra is
/// kept alive).
pub fn collect(
    model: &Model,
    wanted: &[(ValueId, usize)],
    samples: &[Sample],
    progress: &dyn Progress,
) -> Result<ActivationStats> {
    let g = &model.graph;
    let eval = Evaluator::new(model)?;
    let mut stats = ActivationStats::default();
    let mut by_name: HashMap<&str, Vec<(ValueId, usize)>> = HashMap::new();
    for &(v, a) in wanted {
        let size = g.value(v).shape.as_ref().and_then(|s| s.get(a)).copied();
        stats
            .channels
            .insert((v, a), ChannelStats::new(size.unwrap_or(0)));
        by_name
            .entry(g.value(v).name.as_str())
            .or_default()
            .push((v, a));
    }
    progress.begin("calibrating", samples.len() as u64);
    for (k, sample) in samples.iter().enumerate() {
        let mut failure: Option<PrunerError> = None;
        eval.eval_observed(sample, |name, t| {
            let Some(axes) = by_name.get(name) else {
                return;
            };
            let data: Vec<f32> = match t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
            {
                Ok(d) => d,
                Err(e) => {
                    failure.get_or_insert(PrunerError::Calibration {
                        path: format!("sample {k}"),
                        reason: format!("activation '{name}': {e}"),
                    });
                    return;
                }
            };
            let dims = t.dims();
            for key in axes {
                if let Some(st) = stats.channels.get_mut(key) {
                    if key.1 < dims.len() && dims[key.1] == st.count.len() {
                        st.add(&data, dims, key.1);
                    }
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        progress.advance(1);
    }
    progress.end();
    stats.samples = samples.len();
    Ok(stats)
}
