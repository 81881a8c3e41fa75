//! Sparsity for Shears. For now one job: [`compact()`] physically removes the channels a
//! mask-based pruner left dead (zero weights, and a zero or foldable constant activation),
//! through the dependency graph like any plan.
//!
//! **Invariants**
//! - A channel is removed only when its activation is *provably* a constant for every input:
//!   zero (removed as is), or a constant folded exactly into the biases of every layer that
//!   reads it. Everything else is reported with the reason, never guessed.
//! - Nothing mutates the input model; the result is a new proto. Findings are sorted (groups in
//!   graph order, channels ascending), so reports are byte-identical run to run.

pub mod compact;
pub mod constants;
mod error;
mod fold;

pub use compact::{compact, CompactOptions, Compacted, GroupFindings, Kept, Removed};
pub use constants::{channel_constants, ChannelConsts, Konst};
pub use error::CompactError;
