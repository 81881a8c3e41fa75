//! Shears: dependency-graph structural pruning for ONNX models.
pub use shears_onnx as onnx;
