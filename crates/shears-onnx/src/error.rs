//! Errors of the ONNX layer. Every variant names the file, node or tensor it is about, so that a
//! user reading the message knows where to look.

use std::path::PathBuf;

/// An error reading, analysing or writing an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be opened, read or written.
    /// Display shows the path only; the cause is the `source`, which `{:#}` (anyhow) appends.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a decodable ONNX `ModelProto`.
    #[error("{file}: not an ONNX model: {reason}")]
    Decode { file: String, reason: String },
    /// The model decodes but its graph is malformed (cycle, undefined value, duplicate name...).
    #[error("{file}: invalid graph: {reason}")]
    InvalidGraph { file: String, reason: String },
    /// A tensor's payload is inconsistent with its declared type and shape, or cannot be read.
    #[error("tensor '{tensor}': {reason}")]
    Tensor { tensor: String, reason: String },
    /// A tensor's external data cannot be resolved safely.
    #[error("tensor '{tensor}': external data '{location}': {reason}")]
    ExternalData {
        tensor: String,
        location: String,
        reason: String,
    },
    /// Static shape inference failed at a node.
    #[error("node '{node}' ({op_type}): {reason}")]
    Shape {
        node: String,
        op_type: String,
        reason: String,
    },
    /// A graph input has a dynamic dimension and no value was supplied for it.
    #[error(
        "input '{input}' has dynamic dimension {dim} ('{param}'): pass --input-shape {input}=..."
    )]
    DynamicInput {
        input: String,
        dim: usize,
        param: String,
    },
    /// A user-supplied `--input-shape` is malformed or names no input.
    #[error("--input-shape '{spec}': {reason}")]
    InputShapeSpec { spec: String, reason: String },
}

/// Result alias of the ONNX layer.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

impl OnnxError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OnnxError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn tensor(tensor: impl Into<String>, reason: impl Into<String>) -> Self {
        OnnxError::Tensor {
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }
}
