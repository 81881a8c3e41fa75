//! Applying plans read from a file: each stage's plans are verified on the model of that stage
//! ([`shears_plan::verify_plan`]), applied together, and the result re-analysed before the next
//! stage, as the pruner did when it wrote them.

use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};
use shears_plan::PruningPlan;

use crate::{apply_deferred, ExecError};

/// The model plan stages leave.
///
/// Invariant: `model` has its shapes inferred with the caller's input shapes and reads its
/// untouched external tensors from the original model's folder, its cut initializers through
/// views of the original's payloads (`apply_deferred`), which the saver streams.
#[derive(Debug)]
pub struct Staged {
    pub model: Model,
    /// Rewrites made over all stages.
    pub rewrites: usize,
}

/// Verifies and applies `stages` in order to `model` (shapes inferred with `inputs`). Stage `t`'s
/// plans are re-derived on the model stages `1..t` leave and must equal the file's: a plan that
/// differs is refused with its stage, its number (`#0` first) and its first differing entry.
pub fn apply_stages(
    model: &Model,
    stages: &[Vec<PruningPlan>],
    inputs: &InputShapes,
) -> Result<Staged, ExecError> {
    let mut owned: Option<Model> = None;
    let mut rewrites = 0;
    for (t, plans) in stages.iter().enumerate() {
        let stage = t + 1;
        let cur = owned.as_ref().unwrap_or(model);
        let graph = DependencyGraph::build(cur);
        for (p, plan) in plans.iter().enumerate() {
            shears_plan::verify_plan(cur, &graph, plan).map_err(|error| ExecError::Plan {
                stage,
                plan: p,
                error,
            })?;
        }
        if plans.is_empty() {
            continue;
        }
        let applied = apply_deferred(cur, plans)?;
        rewrites += applied.rewrites.len();
        owned = Some(reanalyse(model, cur, applied, inputs, stage)?);
    }
    // Stages without plans leave the model as it was; if every stage is empty, the file asks
    // for a copy, which is never what a caller meant.
    let Some(model) = owned else {
        return Err(ExecError::NothingRemoved { plans: 0 });
    };
    Ok(Staged { model, rewrites })
}

/// `applied` (made from `cur`, a stage of `original`) as a model with shapes inferred.
fn reanalyse(
    original: &Model,
    cur: &Model,
    applied: crate::Applied,
    inputs: &InputShapes,
    stage: usize,
) -> Result<Model, ExecError> {
    let stage_err = |e: shears_onnx::OnnxError| ExecError::Stage {
        stage,
        reason: e.to_string(),
    };
    let mut m = applied
        .into_model(cur, original.source.clone())
        .map_err(stage_err)?;
    shears_onnx::shape::infer_shapes(&mut m, inputs).map_err(stage_err)?;
    Ok(m)
}
