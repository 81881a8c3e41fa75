//! Shears: dependency-graph structural pruning for ONNX models.
pub use shears_onnx as onnx;
pub use shears_recover as recover;
