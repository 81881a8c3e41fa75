//! Sparsity for Shears, two jobs:
//! - [`sparsify()`] zeroes individual weights of Conv, ConvTranspose, Gemm and MatMul layers
//!   (unstructured by fraction or threshold, or N:M along the reduction axis; per layer or
//!   global; l1, random or Wanda ranking; scheduled stages), and [`store_sparse`] writes the
//!   weights that get smaller so as ONNX sparse initializers.
//! - [`compact()`] physically removes the channels a mask-based pruner left dead (zero
//!   weights, and a zero or foldable constant activation), through the dependency graph like
//!   any plan.
//!
//! **Invariants**
//! - A channel is removed only when its activation is *provably* a constant for every input:
//!   zero (removed as is), or a constant folded exactly into the biases of every layer that
//!   reads it. Everything else is reported with the reason, never guessed.
//! - `sparsify` only writes zeros: every element it keeps has its original bytes, biases,
//!   norms and statistics are never touched, and an element already zero stays zero (masks
//!   compose).
//! - Nothing mutates the input model; the result is a new proto. Findings are sorted (groups in
//!   graph order, channels ascending; layers in node order), so reports are byte-identical run
//!   to run.

pub mod compact;
pub mod constants;
mod error;
mod fold;
pub mod inspect;
pub mod mixed;
pub mod nm;
pub mod score;
pub mod sparsify;
pub mod store;
pub mod weights;

pub use compact::{compact, CompactOptions, Compacted, GroupFindings, Kept, Removed};
pub use constants::{channel_constants, ChannelConsts, Konst};
pub use error::{CompactError, SparsifyError};
pub use inspect::{layer_sparsity, WeightSparsity};
pub use mixed::prune_then_sparsify;
pub use nm::NmPattern;
pub use score::Criterion;
pub use sparsify::{sparsify, LayerSparsity, Sparsified, SparsifyConfig, Untouched};
pub use store::{store_sparse, Storage};
