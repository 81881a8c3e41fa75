//! Shears' evaluator: runs ONNX models on CPU [candle](candle_core) tensors with opset-correct
//! semantics, compares two models' outputs on the same seeded random inputs, and scores a model
//! on a dataset of `.npy` files ([`Dataset`], [`evaluate`]: accuracy, fidelity to a reference).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use shears_verify::{candle_core::Tensor, Evaluator};
//! let model = shears_onnx::Model::load("model.onnx")?;
//! let eval = Evaluator::new(&model)?;
//! let x = Tensor::zeros((1, 3, 224, 224), candle_core::DType::F32, &candle_core::Device::Cpu)?;
//! let outputs = eval.eval(&[("input".to_string(), x)])?;
//! # Ok(()) }
//! ```
//!
//! Ops live in `ops/`, one file per family, registered in a table from op type to function.

pub mod compare;
pub mod dataset;
pub mod error;
pub mod eval_run;
pub mod evaluator;
pub mod metrics;
pub mod npy;
mod ops;
pub mod progress;
pub mod random;

pub use candle_core;
pub use compare::{diff, verify, OutputDiff, Report};
pub use dataset::{Batch, Dataset, DatasetOptions, LabelSource, Labels, Layout};
pub use error::{Result, VerifyError};
pub use eval_run::{evaluate, EvalReport};
pub use evaluator::{Evaluator, State};
pub use metrics::{Accuracy, Fidelity};
pub use ops::MAX_ELEMENTS;
pub use progress::{NoProgress, Progress};
pub use random::{random_inputs, Rng};

/// The op types the evaluator implements (default ONNX domain), sorted.
pub fn supported_ops() -> Vec<&'static str> {
    supported_ops_in("")
}

/// The op types the evaluator implements in `domain` (`""` or `ai.onnx` for the default
/// domain, `com.microsoft` for onnxruntime's fused ops), sorted; empty for another domain.
pub fn supported_ops_in(domain: &str) -> Vec<&'static str> {
    let mut ops: Vec<&'static str> = ops::domain_table(domain)
        .map(|t| t.keys().copied().collect())
        .unwrap_or_default();
    ops.sort_unstable();
    ops
}
