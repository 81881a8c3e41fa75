//! Errors of the pruner.

/// Why pruning could not be done. Every variant names the file, tensor, option or stage at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum PrunerError {
    #[error(transparent)]
    Onnx(#[from] shears_onnx::OnnxError),
    #[error(transparent)]
    Plan(#[from] shears_plan::PlanError),
    #[error(transparent)]
    Exec(#[from] shears_exec::ExecError),
    #[error(transparent)]
    Verify(#[from] shears_verify::VerifyError),
    /// A setting out of range or inconsistent with another.
    #[error("{option}: {reason}")]
    Config { option: String, reason: String },
    /// Calibration inputs that cannot be read or do not fit the model.
    #[error("calibration input {path}: {reason}")]
    Calibration { path: String, reason: String },
    /// The run removed no channel: every group was left whole (blocked, ignored, too small...)
    /// or the goal gave none a channel to lose. The reason lists the groups and why.
    #[error("nothing pruned: {reason}")]
    NothingPruned { reason: String },
    /// A pruned stage that fails re-analysis (should not happen; reported rather than written).
    #[error("stage {stage}: the pruned model is not valid: {reason}")]
    Stage { stage: usize, reason: String },
}

impl PrunerError {
    pub(crate) fn config(option: &str, reason: impl Into<String>) -> Self {
        PrunerError::Config {
            option: option.to_string(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = PrunerError> = std::result::Result<T, E>;
