//! Mixed pruning in one call (FluxPrune's mixed strategy): remove channels with the pruner,
//! then sparsify the weights that are left.

use shears_onnx::Model;
use shears_pruner::{Control, Outcome, Progress, PruneConfig, Stage};

use crate::sparsify::{sparsify, Sparsified, SparsifyConfig};
use crate::SparsifyError;

/// Prunes `model` as `prune` says (calling `on_stage` after each pruning stage, as
/// `shears_pruner::prune_iterative` does), then sparsifies the pruned model as `sparse` says.
/// Both configurations are checked before anything runs.
pub fn prune_then_sparsify(
    model: &Model,
    prune: &PruneConfig,
    sparse: &SparsifyConfig,
    progress: &dyn Progress,
    on_stage: impl FnMut(&mut Stage) -> Control,
) -> Result<(Outcome, Sparsified), SparsifyError> {
    prune.validate()?;
    sparse.validate()?;
    let outcome = shears_pruner::prune_iterative(model, prune, progress, on_stage)?;
    let sparsified = sparsify(&outcome.model, sparse, progress)?;
    Ok((outcome, sparsified))
}
