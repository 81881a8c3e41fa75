//! Errors of recovery.

/// Why recovery could not run. Every variant names the model, node, tensor or sample at fault.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
    #[error(transparent)]
    Exec(#[from] shears_exec::ExecError),
    #[error(transparent)]
    Verify(#[from] shears_verify::VerifyError),
    /// A setting out of range.
    #[error("{option}: {reason}")]
    Config { option: String, reason: String },
    /// Calibration samples that are missing or unusable.
    #[error("calibration sample {sample}: {reason}")]
    Sample { sample: String, reason: String },
    /// The pruned model does not correspond to the original (node order or names differ, or
    /// the kept channels do not match its shapes).
    #[error("node '{node}': {reason}")]
    Mismatch { node: String, reason: String },
    /// A tensor operation failed while recovering a node.
    #[error("node '{node}': {reason}")]
    Node { node: String, reason: String },
}

pub type Result<T, E = RecoverError> = std::result::Result<T, E>;

pub(crate) fn node_err(node: &str, e: impl std::fmt::Display) -> RecoverError {
    RecoverError::Node {
        node: node.to_string(),
        reason: e.to_string(),
    }
}
