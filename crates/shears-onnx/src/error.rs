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
    /// A symbolic input dimension cannot stay symbolic: the model's shapes are inconsistent
    /// unless it has one particular size.
    #[error("the symbolic dimension {dim} must be given a size (--input-shape): {reason}")]
    Symbolic { dim: String, reason: String },
    /// Writing would replace a file the model is read from (or one the caller protected).
    #[error("{}: refusing to overwrite {what}; write to another path", path.display())]
    WouldOverwrite { path: PathBuf, what: String },
    /// The model cannot be encoded under the size limit even with every tensor external.
    #[error("the encoded model needs {bytes} bytes, over the limit of {limit}, even with every tensor of 1 KiB or more stored as external data")]
    TooLarge { bytes: u64, limit: u64 },
    /// An error about a part of the model file `file` (a tensor, say), with the file named.
    #[error("{what} overflow 64 bits")]
    Overflow { what: String },
    #[error("{file}: {error}")]
    InFile { file: String, error: Box<OnnxError> },
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

    /// Names `file` in front of this error, unless the error already names it.
    pub fn in_file(self, file: &str) -> Self {
        match self {
            OnnxError::Io { .. }
            | OnnxError::Decode { .. }
            | OnnxError::InvalidGraph { .. }
            | OnnxError::InFile { .. } => self,
            other => OnnxError::InFile {
                file: file.to_string(),
                error: Box::new(other),
            },
        }
    }

    pub(crate) fn tensor(tensor: impl Into<String>, reason: impl Into<String>) -> Self {
        OnnxError::Tensor {
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }
}
