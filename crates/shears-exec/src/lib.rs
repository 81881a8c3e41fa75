//! The executor: applies pruning plans to a model and gives the smaller model's protobuf.
//!
//! **Invariants**
//! - The input model is never mutated: the proto is cloned (payloads are shared `Bytes`, so the
//!   clone is cheap) and only the clone is edited. `apply_deferred` gives the same
//!   model with each cut initializer a view not yet made (`shears_onnx::cut::CutView`), read
//!   on demand and streamed into the output by the saver.
//! - Indices always mean the original model's channels, whichever plans are batched together;
//!   plans that remove the same index of the same tensor axis are an error, not a double cut,
//!   and a plan made for a different model (sizes disagree) is refused.
//! - Attribute and shape-constant rewrites are recomputed by the op rules from the union of all
//!   plans' removals, so batched plans compose exactly.
//! - Everything not named by a plan stays as it was (names, order, metadata, opsets); edited
//!   tensors are stored as little-endian `raw_data`.

mod apply;
mod error;
mod merge;
mod slice;
mod stages;

pub use apply::{apply, apply_deferred, Applied};
pub use error::ExecError;
pub use merge::{merge, Cuts};
pub use slice::{slice_axes, slice_axis};
pub use stages::{apply_stages, Staged};
