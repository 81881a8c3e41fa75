//! Test tooling for Shears, used by every crate as a dev-dependency only (never by production
//! code, so the executor does not link the evaluator and the ONNX layer does not ship the
//! builder):
//! - [`analysed()`]: a built model decoded with its shapes inferred, and [`rule_line`], a
//!   node's coupling in one line;
//! - [`builder`]: building ONNX models in Rust ([`builder::ModelBuilder`], layer helpers, the
//!   [`builder::zoo`] of models covering the couplings Shears must understand);
//! - [`mod@random_plans`]: seeded random batches of plans for property tests and fuzzing;
//! - [`zero`]: the exactness check (pruned model vs the original with the removed input slices
//!   zeroed), which needs the evaluator; [`heads`]: the same for every attention head removed
//!   alone.
//!
//! **Invariants**: test tooling panics on misuse by the calling test (a value the builder never
//! saw), never on what a model under test does; the builder and the random plans are
//! deterministic functions of their seeds.

pub mod analysed;
pub mod builder;
pub mod heads;
pub mod random_plans;
pub mod zero;

pub use analysed::{analysed, rule_line};
pub use heads::{check_every_head, check_every_head_with, HeadCheck};
pub use random_plans::random_plans;
pub use zero::{check_exactness, zero_axis, zero_removed_inputs, Exactness};
