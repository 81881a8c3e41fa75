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
