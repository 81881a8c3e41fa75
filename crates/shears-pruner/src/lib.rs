//! Pruners for Shears: which channels matter (importance over every coupled tensor slice of a
//! group), how many each group loses (local, global, per-layer ratios, cost targets), and in
//! how many stages (linear or AGP schedules, with a callback between stages).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use shears_pruner::{prune, Goal, NoProgress, PruneConfig};
//! let mut model = shears_onnx::Model::load("model.onnx")?;
//! shears_onnx::shape::infer_shapes(&mut model, &Default::default())?;
//! let cfg = PruneConfig { goal: Goal::Macs(0.5), ..Default::default() };
//! let outcome = prune(&model, &cfg, &NoProgress)?;
//! println!("{} -> {} MACs", outcome.original.macs, outcome.pruned.macs);
//! # Ok(()) }
//! ```
//!
//! **Invariants**
//! - Nothing here mutates a model: each stage applies plans to a copy (through
//!   `shears_exec::apply`) and re-analyses it (IR, shapes, dependency graph) before scoring it.
//! - Runs are deterministic: the same model and configuration give the same plans (ties in
//!   scores break toward the lower unit; `random` is seeded).
//! - A group never loses all its channels, and blocked or ignored groups are never planned;
//!   every group left whole is reported with the reason.

pub mod allocate;
pub mod calib;
mod error;
pub mod estimate;
pub mod importance;
pub mod members;
pub mod named;
pub mod pattern;
pub mod progress;
mod pruner;
pub mod roles;
pub mod schedule;
pub mod summary;
mod sums;
pub mod target;
pub mod tensors;

pub use allocate::{allocate, AllocationConfig, Candidate};
pub use calib::Calibration;
pub use error::{PrunerError, Result};
pub use estimate::{estimate, Cost};
pub use importance::{
    Criterion, CustomImportance, GroupImportance, ImportanceConfig, Normalizer, Reduction, ScoreFn,
    Scorer,
};
pub use pattern::Pattern;
pub use progress::{NoProgress, Progress};
pub use pruner::{
    prune, prune_iterative, Control, Goal, GroupChange, Outcome, PruneConfig, Skipped, Stage,
    StageReport, StageTarget,
};
pub use schedule::{Schedule, ScheduleKind};
pub use summary::{LayerRow, PruneReport, PruneSummary};
