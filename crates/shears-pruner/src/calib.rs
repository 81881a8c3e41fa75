//! Calibration: inputs (seeded random, or a folder of `.npy` files) run through Shears'
//! evaluator, with the activations that criteria read observed as they are produced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model, ValueId};
use shears_verify::candle_core::{DType, Tensor};
use shears_verify::{random_inputs, Evaluator, Rng};

use crate::error::{PrunerError, Result};
use crate::importance::{ActivationStats, ChannelStats};
use crate::progress::Progress;

/// Where calibration inputs come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// `samples` standard-normal inputs at the model's static input shapes, from `seed`.
    Random { samples: usize, seed: u64 },
    /// A folder of `.npy` files: for a model with one runtime input, every `.npy` file (in name
    /// order) is one sample; for several inputs, every subfolder (in name order) is one sample
    /// holding `<input name>.npy` per input.
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
        Calibration::Dir(dir) => from_dir(model, dir),
    }
}

fn calib_error(path: &Path, reason: impl Into<String>) -> PrunerError {
    PrunerError::Calibration {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| calib_error(dir, e.to_string()))?;
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(|e| calib_error(dir, e.to_string()))?.path());
    }
    out.sort();
    Ok(out)
}

fn read_npy(path: &Path) -> Result<Tensor> {
    Tensor::read_npy(path).map_err(|e| calib_error(path, format!("not a readable .npy: {e}")))
}

fn from_dir(model: &Model, dir: &Path) -> Result<Vec<Sample>> {
    let g = &model.graph;
    let names: Vec<String> = g.inputs.iter().map(|&v| g.value(v).name.clone()).collect();
    let is_npy = |p: &PathBuf| p.extension().is_some_and(|e| e == "npy");
    let samples: Vec<Sample> = if names.len() == 1 {
        sorted_entries(dir)?
            .into_iter()
            .filter(is_npy)
            .map(|p| Ok(vec![(names[0].clone(), read_npy(&p)?)]))
            .collect::<Result<_>>()?
    } else {
        sorted_entries(dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .map(|sub| {
                names
                    .iter()
                    .map(|n| {
                        let p = sub.join(format!("{n}.npy"));
                        if !p.is_file() {
                            return Err(calib_error(
                                &sub,
                                format!("missing {n}.npy (one file per model input)"),
                            ));
                        }
                        Ok((n.clone(), read_npy(&p)?))
                    })
                    .collect::<Result<Sample>>()
            })
            .collect::<Result<_>>()?
    };
    if samples.is_empty() {
        let what = if names.len() == 1 {
            "no .npy file"
        } else {
            "no sample subfolder"
        };
        return Err(calib_error(dir, what));
    }
    Ok(samples)
}

/// The external store of a model, for a copy of it that reads the same side files.
pub(crate) fn same_store(model: &Model) -> ExternalStore {
    match (model.external.model_file(), model.external.base_dir()) {
        (Some(f), _) => ExternalStore::for_model_file(f),
        (None, Some(d)) => ExternalStore::new(d),
        (None, None) => ExternalStore::none(),
    }
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
