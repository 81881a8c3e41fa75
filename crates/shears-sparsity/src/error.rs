use thiserror::Error;

/// Errors of [`crate::compact()`].
#[derive(Debug, Error)]
pub enum CompactError {
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
    #[error(transparent)]
    Plan(#[from] shears_plan::PlanError),
    #[error(transparent)]
    Exec(#[from] shears_exec::ExecError),
    /// A fold accepted on the input model could not be made (an internal inconsistency).
    #[error("cannot fold constants into the bias of `{node}`")]
    Fold { node: String },
    /// A channel chosen on the input model is missing from the folded model's graph.
    #[error("channel {index} of `{value}` axis {axis} has no unit after folding")]
    Lost {
        value: String,
        axis: usize,
        index: usize,
    },
}

/// Errors of [`crate::sparsify()`] and [`crate::prune_then_sparsify`].
#[derive(Debug, Error)]
pub enum SparsifyError {
    /// A setting is out of range or conflicts with another; `flag` is the CLI's name for it.
    #[error("{flag}: {reason}")]
    Config { flag: String, reason: String },
    /// No weight of the model can be sparsified with these settings.
    #[error("no weight to sparsify: {0}")]
    NothingToSparsify(String),
    /// A weight found on the input model is missing from a later stage (internal).
    #[error("weight `{0}` disappeared between stages")]
    Lost(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
    #[error(transparent)]
    Pruner(#[from] shears_pruner::PrunerError),
    #[error(transparent)]
    Verify(#[from] shears_verify::VerifyError),
    #[error(transparent)]
    Recover(#[from] shears_recover::RecoverError),
}
