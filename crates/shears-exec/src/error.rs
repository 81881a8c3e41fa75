/// Why plans cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("plan #{plan}: tensor '{tensor}' does not exist in this model")]
    UnknownTensor { plan: usize, tensor: String },
    #[error("plan #{plan}: tensor '{tensor}' axis {axis} has {actual} channels here, but the plan was made for {expected} (was it already applied, or made for another model?)")]
    SizeMismatch {
        plan: usize,
        tensor: String,
        axis: usize,
        expected: usize,
        actual: usize,
    },
    #[error("index {index} of '{tensor}' axis {axis} is removed by plan #{first} and again by plan #{second}: the same channels cannot be removed twice")]
    Overlap {
        tensor: String,
        axis: usize,
        index: u32,
        first: usize,
        second: usize,
    },
    #[error(
        "plan #{plan}: index {index} is out of range for '{tensor}' axis {axis} of size {size}"
    )]
    OutOfRange {
        plan: usize,
        tensor: String,
        axis: usize,
        index: u32,
        size: usize,
    },
    /// The batch removes no channel (no plan, or plans with no index): applying it would
    /// write the model unchanged, which is never what a caller asked for.
    #[error("nothing to prune: the {plans} plan(s) given remove no channel")]
    NothingRemoved { plans: usize },
    #[error("'{tensor}' axis {axis} would lose all {size} channels")]
    Emptied {
        tensor: String,
        axis: usize,
        size: usize,
    },
    #[error("tensor '{tensor}': {reason}")]
    Tensor { tensor: String, reason: String },
    #[error("node '{node}': {reason}")]
    Rewrite { node: String, reason: String },
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
}
