//! Errors of the evaluator and of output comparison. Every variant names the node, input or
//! output it is about.

use shears_onnx::OnnxError;

/// An error preparing or evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the model's tensors failed (bad payload, unreadable external data...).
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The model uses an operator the evaluator does not implement.
    #[error(
        "{file}: node '{node}': unsupported op '{op_type}'{}",
        domain_suffix(domain)
    )]
    Unsupported {
        file: String,
        node: String,
        op_type: String,
        domain: String,
    },
    /// A node could not be evaluated (bad attribute, incompatible shapes, missing input...).
    #[error("{file}: node '{node}' ({op_type}): {reason}")]
    Node {
        file: String,
        node: String,
        op_type: String,
        reason: String,
    },
    /// An initializer or constant could not be turned into a tensor.
    #[error("{file}: tensor '{tensor}': {reason}")]
    Tensor {
        file: String,
        tensor: String,
        reason: String,
    },
    /// The inputs passed to `eval` do not match the graph's inputs.
    #[error("{file}: input '{input}': {reason}")]
    Input {
        file: String,
        input: String,
        reason: String,
    },
    /// Two models cannot be compared output by output: they take different inputs or have
    /// different numbers of outputs.
    #[error("{0}")]
    Mismatch(String),
    /// A data file (model inputs or labels) that cannot be read or does not fit the model.
    #[error("{path}: {reason}")]
    Data { path: String, reason: String },
    /// An output could not be read for comparison.
    #[error("output '{output}': {reason}")]
    Output { output: String, reason: String },
}

fn domain_suffix(domain: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        String::new()
    } else {
        format!(" in domain '{domain}'")
    }
}

/// Result alias of the evaluator.
pub type Result<T, E = VerifyError> = std::result::Result<T, E>;
