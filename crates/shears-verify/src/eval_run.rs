//! [`evaluate`]: a model (and optionally a reference model) run over a [`Dataset`] batch by
//! batch, scored with [`crate::metrics`].

use candle_core::{DType, Tensor};
use serde::Serialize;
use shears_onnx::{Dim, Model};

use crate::dataset::{Dataset, Layout};
use crate::error::{Result, VerifyError};
use crate::evaluator::Evaluator;
use crate::metrics::{Accuracy, AccuracyCounter, Fidelity, FidelityCounter};
use crate::ops::candle_message;
use crate::progress::Progress;

/// The result of [`evaluate`]. Scores are read from the model's first graph output, one row of
/// class scores per sample.
///
/// Invariants: `accuracy` is present exactly when the dataset has labels, `fidelity` exactly
/// when a reference model was given; both count `samples` rows (padding excluded). Paths are
/// as given; nothing depends on timing, so the report is identical run to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub data: String,
    pub layout: Layout,
    pub samples: usize,
    pub batch_size: usize,
    pub batches: usize,
    /// Rows added to fill the last batch of a static-batch model (their results are discarded).
    pub padding: usize,
    /// The graph output scored.
    pub output: String,
    /// Scores per row of that output.
    pub classes: usize,
    pub labels: Option<String>,
    pub accuracy: Option<Accuracy>,
    pub fidelity: Option<Fidelity>,
}

/// The rows of a batch's output as f32 class scores: `(rows, classes)` data, row-major.
fn scores(name: &str, source: &str, t: &Tensor, size: usize) -> Result<(Vec<f32>, usize)> {
    let err = |reason: String| VerifyError::Output {
        output: format!("{source}: {name}"),
        reason,
    };
    if t.rank() == 0 || t.dims()[0] != size {
        return Err(err(format!(
            "shape {:?} has no batch axis of {size} (axis 0 must be the batch)",
            t.dims()
        )));
    }
    let classes = t.elem_count() / size;
    let v = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| err(candle_message(e)))?;
    Ok((v, classes))
}

/// A reference model with a static batch must take the batches the data is cut into (a short
/// last batch included).
fn check_reference_batch(reference: &Model, data: &Dataset) -> Result<()> {
    let g = &reference.graph;
    for &v in &g.inputs {
        let value = g.value(v);
        if let Some([Dim::Known(b), ..]) = value.declared.as_deref() {
            let short = data.padding() == 0 && data.batches() * data.batch_size() != data.len();
            if *b != data.batch_size() || short {
                return Err(VerifyError::Mismatch(format!(
                    "{}: input '{}' takes batches of {b}, but the data runs in batches of {}{}",
                    reference.source,
                    value.name,
                    data.batch_size(),
                    if short { " with a short last one" } else { "" }
                )));
            }
        }
    }
    Ok(())
}

/// Runs `model` over every batch of `data` (and `reference` on the same batches) and scores
/// the first output: top-1/top-5 accuracy when `data` has labels, [`Fidelity`] to
/// `reference` when given. `progress` counts batches.
///
/// Errors: a label not below the number of classes, a reference whose output rows differ in
/// length, and every evaluator or data error.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    reference: Option<&Model>,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    let eval = Evaluator::new(model)?;
    if let Some(r) = reference {
        check_reference_batch(r, data)?;
    }
    let reference_eval = reference.map(Evaluator::new).transpose()?;
    let output = eval
        .output_names()
        .next()
        .ok_or_else(|| VerifyError::Mismatch(format!("{}: the model has no output", model.source)))?
        .to_string();
    let mut classes = 0usize;
    let mut accuracy = data.labels().map(|_| AccuracyCounter::default());
    let mut fidelity = reference.map(|_| FidelityCounter::default());
    progress.begin("evaluating", data.batches() as u64);
    for b in 0..data.batches() {
        let batch = data.batch(b)?;
        let size = batch.inputs[0].1.dims()[0];
        let y = eval.eval(&batch.inputs)?;
        let (ys, c) = scores(&output, &model.source, &y[0].1, size)?;
        classes = c;
        if let (Some(acc), Some(labels)) = (accuracy.as_mut(), data.labels()) {
            for r in 0..batch.rows {
                let label = labels.values[batch.first + r];
                if label as u64 >= c as u64 {
                    return Err(VerifyError::Data {
                        path: labels.path.display().to_string(),
                        reason: format!(
                            "label {label} at row {} is not below the {c} classes of output '{output}'",
                            batch.first + r
                        ),
                    });
                }
                acc.add(&ys[r * c..(r + 1) * c], label as usize);
            }
        }
        if let (Some(fid), Some(re), Some(rm)) =
            (fidelity.as_mut(), reference_eval.as_ref(), reference)
        {
            let yr = re.eval(&batch.inputs)?;
            let Some((rname, rt)) = yr.first() else {
                return Err(VerifyError::Mismatch(format!(
                    "{}: the reference model has no output",
                    rm.source
                )));
            };
            let (rs, rc) = scores(rname, &rm.source, rt, size)?;
            if rc != c {
                return Err(VerifyError::Mismatch(format!(
                    "{} gives {c} scores per sample in '{output}' but the reference {} gives {rc} in '{rname}'",
                    model.source, rm.source
                )));
            }
            for r in 0..batch.rows {
                fid.add(&rs[r * c..(r + 1) * c], &ys[r * c..(r + 1) * c]);
            }
        }
        progress.advance(1);
    }
    progress.end();
    Ok(EvalReport {
        model: model.source.clone(),
        data: data.root.display().to_string(),
        layout: data.layout,
        samples: data.len(),
        batch_size: data.batch_size(),
        batches: data.batches(),
        padding: data.padding(),
        output,
        classes,
        labels: data.labels().map(|l| l.path.display().to_string()),
        accuracy: accuracy.map(|a| a.report()),
        fidelity: fidelity.zip(reference).map(|(f, r)| f.report(&r.source)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DatasetOptions, LabelSource};
    use crate::progress::NoProgress;
    use candle_core::Device;
    use shears_testkit::builder::ModelBuilder;
    use std::path::Path;

    /// `y = x * scale` for `x` of shape `dims`.
    fn scaled(dims: &[i64], scale: f32) -> Model {
        let mut b = ModelBuilder::new(17).named(format!("scale{scale}"));
        let x = b.input("x", dims);
        let s = b.init_f32("s", &[1], &[scale]);
        let y = b.node("Mul", &[&x, &s], 1, vec![]).remove(0);
        b.set_shape(&y, dims);
        b.output(&y);
        b.build_model()
    }

    fn data(dir: &Path, x: &[[f32; 6]], labels: &[i64]) {
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (x.len(), 6), &Device::Cpu)
            .unwrap()
            .write_npy(dir.join("x_set.npy"))
            .unwrap();
        Tensor::new(labels, &Device::Cpu)
            .unwrap()
            .write_npy(dir.join("y_set.npy"))
            .unwrap();
    }

    #[test]
    fn accuracy_and_fidelity_over_padded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let x = [
            [0., 1., 2., 3., 4., 5.],
            [5., 4., 3., 2., 1., 0.],
            [0., 9., 0., 0., 0., 0.],
        ];
        // Row 0: label 5 (top-1); row 1: label 1 (rank 4, top-5 only); row 2: label 0 (rank
        // 1: ties with four zeros broken toward class 0).
        data(dir.path(), &x, &[5, 1, 0]);
        let m = scaled(&[2, 6], 1.0);
        let d = Dataset::open(&m, dir.path(), &DatasetOptions::default()).unwrap();
        let r = evaluate(&m, &d, Some(&m), &NoProgress).unwrap();
        assert_eq!((r.samples, r.batches, r.padding, r.classes), (3, 2, 1, 6));
        let a = r.accuracy.unwrap();
        assert_eq!((a.samples, a.top1_correct, a.top5_correct), (3, 1, 3));
        let f = r.fidelity.unwrap();
        assert_eq!((f.samples, f.top1_agreeing), (3, 3));
        assert_eq!((f.mean_relative_error, f.mean_kl_divergence), (0.0, 0.0));
        // Twice the reference: relative error 1, cosine 1, same argmax, KL > 0.
        let twice = scaled(&[2, 6], 2.0);
        let r = evaluate(&twice, &d, Some(&m), &NoProgress).unwrap();
        let f = r.fidelity.unwrap();
        assert_eq!(f.top1_agreement, 1.0);
        assert!((f.mean_relative_error - 1.0).abs() < 1e-12);
        assert!((f.mean_cosine_similarity - 1.0).abs() < 1e-12);
        assert!(f.mean_kl_divergence > 0.1);
        assert_eq!(r.accuracy.unwrap().top1_correct, 1);
        // Minus the reference: nothing agrees, the argmax moves.
        let neg = scaled(&[2, 6], -1.0);
        let f = evaluate(&neg, &d, Some(&m), &NoProgress)
            .unwrap()
            .fidelity
            .unwrap();
        assert_eq!(f.top1_agreeing, 0);
        assert!((f.mean_cosine_similarity + 1.0).abs() < 1e-12);
    }

    #[test]
    fn symbolic_batch_and_bad_labels() {
        let dir = tempfile::tempdir().unwrap();
        data(dir.path(), &[[0., 1., 2., 3., 4., 5.]; 3], &[5, 5, 6]);
        let m = scaled(&[-1, 6], 1.0);
        let opts = DatasetOptions {
            labels: LabelSource::Auto,
            batch_size: Some(2),
        };
        let d = Dataset::open(&m, dir.path(), &opts).unwrap();
        assert_eq!((d.batches(), d.padding()), (2, 0));
        let e = evaluate(&m, &d, None, &NoProgress).unwrap_err().to_string();
        assert!(
            e.contains("y_set.npy") && e.contains("label 6 at row 2"),
            "{e}"
        );
        // Without labels and reference: nothing scored, but the run is reported.
        let opts = DatasetOptions {
            labels: LabelSource::Without,
            batch_size: None,
        };
        let d = Dataset::open(&m, dir.path(), &opts).unwrap();
        let r = evaluate(&m, &d, None, &NoProgress).unwrap();
        assert_eq!((r.accuracy, r.fidelity, r.batch_size), (None, None, 32));
        // A static-batch reference cannot follow symbolic batches of another size.
        let e = evaluate(&m, &d, Some(&scaled(&[1, 6], 1.0)), &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("<builder:scale1>") && e.contains("batches of 1"),
            "{e}"
        );
        let opts = DatasetOptions {
            labels: LabelSource::Without,
            batch_size: Some(1),
        };
        let d = Dataset::open(&m, dir.path(), &opts).unwrap();
        let r = evaluate(&m, &d, Some(&scaled(&[1, 6], 1.0)), &NoProgress).unwrap();
        assert_eq!(r.fidelity.unwrap().top1_agreeing, 3);
    }
}
