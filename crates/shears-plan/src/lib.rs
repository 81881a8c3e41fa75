//! `PruningPlan`: one root layer and a set of its channel indices, expanded through the
//! DependencyGraph into every tensor slice that must go with them, plus the attribute and
//! shape-constant rewrites this implies.
//!
//! Plans are data: deterministic (entries sorted by node order, tensor and axis), serializable
//! to JSON (see `docs/plan.md`) and renderable as text, one line per tensor, so that snapshots
//! and `shears diff` mean something. Indices are always the original model's.

mod build;
mod diff;
mod error;
mod file;
mod group_plan;
mod groups;
mod heads;
mod render;
mod summary;
mod verify;

pub use build::{resolve_layer, PlanRoot};
pub use diff::diff_lines;
pub use error::PlanError;
pub use file::PlanFile;
pub use group_plan::{group_layer, plan_units, plan_units_at, GroupLayer, GroupLayers};
pub use groups::{
    group_report, group_reports, render_groups_text, GroupBlocker, GroupMember, GroupReport,
};
pub use heads::{head_group_reports, layer_heads, plan_heads, LayerHeads};
pub use render::{render_lines, render_text, rewrite_line};
pub use summary::dim_name;
pub use verify::verify_plan;

use serde::{Deserialize, Serialize};
use shears_graph::rules::Rewrite;
use shears_graph::Granularity;

/// What kind of tensor a plan entry edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// A learned parameter (initializer or Constant node) other than statistics.
    Parameter,
    /// Running statistics (BatchNorm mean and variance): edited, not counted as parameters.
    Statistic,
    /// An intermediate activation: its shape changes, nothing is stored.
    Activation,
    /// A per-channel quantization scale or zero point: sliced with its channels, not counted
    /// as parameters.
    Quantization,
}

/// One affected (tensor, axis) and the indices removed from it.
///
/// Invariant: `indices` are sorted, unique and `< size`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Value name: the initializer, the Constant node's output, or the activation.
    pub tensor: String,
    pub kind: TensorKind,
    /// The node that forces this entry: the consumer of a parameter, the producer of an
    /// activation.
    pub node: String,
    pub op_type: String,
    /// A short description of the op, e.g. `Conv(3→64, 7x7, s2)`.
    pub op: String,
    /// `out` for an output-channel axis of the node, `in` otherwise.
    pub role: String,
    pub axis: usize,
    /// The axis's size before pruning.
    pub size: usize,
    pub indices: Vec<u32>,
    /// Elements this entry removes from the tensor (for a tensor cut on several axes, the
    /// first entry carries the whole count).
    pub elements_removed: u64,
}

/// A pruning plan.
///
/// Invariants: `entries` are sorted by (node order, tensor, axis) and hold only axes with at
/// least one removed index; `rewrites` are sorted; totals equal the sums over entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruningPlan {
    /// Format version of the JSON form.
    pub version: u32,
    pub root: PlanRoot,
    /// The requested indices, sorted.
    pub indices: Vec<u32>,
    /// Channels (units) removed, and the total channel count of the groups they belong to (a
    /// root axis cut into segments by a Concat or Split spans several groups). A unit can hold
    /// several root indices (a grouped conv ties position `p` of every group), so the root's
    /// entry may list more indices than `indices`.
    pub channels_removed: usize,
    pub group_channels: usize,
    pub entries: Vec<PlanEntry>,
    pub rewrites: Vec<Rewrite>,
    pub parameters_removed: u64,
    pub statistics_removed: u64,
    /// Nodes that mix the removed channels without a weight (LayerNorm over channels, Softmax):
    /// pruning is valid there, but not exact.
    pub mixed_by: Vec<String>,
    /// The graph the plan was made on: head-dim positions (the default, not written) or whole
    /// attention heads (`plan --heads`, `prune --head-ratio`). Verification re-derives it on
    /// the same kind of graph.
    #[serde(default, skip_serializing_if = "is_head_dims")]
    pub granularity: Granularity,
}

fn is_head_dims(g: &Granularity) -> bool {
    *g == Granularity::HeadDims
}

pub use build::plan;
