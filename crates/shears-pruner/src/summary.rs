//! What a prune changed: parameters, MACs and file size before and after, and per layer its
//! channels, parameters and MACs; and the `--report` document (summary, settings, stages) that
//! `shears_plan::PlanFile` reads back.
//!
//! Computed here, rendered by the caller (the CLI prints text or JSON).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use shears_graph::{DependencyGraph, DimKey};
use shears_onnx::cost::{CostReport, NodeCost};
use shears_onnx::{Graph, Model};
use shears_plan::PruningPlan;

use crate::{AllocationConfig, Calibration, Goal, ImportanceConfig, Schedule, StageReport};

/// Before/after figures of a prune.
///
/// Invariants: every pair is `(before, after)`; `layers` are in the original's node order and
/// list exactly the layers whose channels, parameters or MACs changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneSummary {
    /// The original model's source (its path).
    pub input: String,
    /// Where the pruned model was written.
    pub output: String,
    pub parameters: (u64, u64),
    pub macs: (u64, u64),
    /// The model file plus the side files it reads, before and after.
    pub file_bytes: (u64, u64),
    /// Per layer whose channels or costs changed, in node order.
    pub layers: Vec<LayerRow>,
    /// Attribute and shape-constant rewrites applied.
    pub rewrites: usize,
}

/// One layer's figures before and after.
///
/// A layer is a node whose coupling names an output-channel axis (`--layer` names it) on a
/// tensor with at least two axes longer than one: a kernel or matrix, not a norm's scale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerRow {
    pub node: String,
    pub channels: (usize, usize),
    pub parameters: (u64, u64),
    pub macs: (u64, u64),
}

impl PruneSummary {
    /// The figures of `pruned` (made from `original`, both with shapes inferred, costed as
    /// `before` and `after` by `shears_onnx::cost::analyze`), written to `output` as `written_bytes`
    /// (model and side files) with `rewrites` rewrites. The costs are the caller's so that it
    /// can compute them before writing anything.
    pub fn new(
        (original, before): (&Model, &CostReport),
        (pruned, after): (&Model, &CostReport),
        output: String,
        written_bytes: u64,
        rewrites: usize,
    ) -> PruneSummary {
        PruneSummary {
            input: original.source.clone(),
            output,
            parameters: (before.parameters, after.parameters),
            macs: (before.macs, after.macs),
            file_bytes: (
                original.file_size.unwrap_or(0) + external_bytes(original),
                written_bytes,
            ),
            layers: layer_rows(original, pruned, before, after),
            rewrites,
        }
    }
}

/// Every layer whose channels, parameters or MACs changed.
fn layer_rows(
    original: &Model,
    pruned: &Model,
    before: &CostReport,
    after: &CostReport,
) -> Vec<LayerRow> {
    let graph = DependencyGraph::build(original);
    let (g, p) = (&original.graph, &pruned.graph);
    let after_by_name: HashMap<&str, &NodeCost> = after
        .nodes
        .iter()
        .map(|c| (p.node(c.node).name.as_str(), c))
        .collect();
    let mut rows = Vec::new();
    for c in &before.nodes {
        let id = c.node;
        let Some((v, a)) = graph.verdicts[id.index()]
            .as_ref()
            .ok()
            .and_then(|k| k.out_channels)
        else {
            continue;
        };
        // Layers are nodes with a kernel or matrix; a norm's per-channel scale is not one.
        let long_axes = g
            .value(v)
            .shape
            .as_ref()
            .map_or(0, |s| s.iter().filter(|&&d| d > 1).count());
        if graph.dim_id(DimKey::Axis(v, a)).is_none() || long_axes < 2 {
            continue;
        }
        let name = g.node(id).name.as_str();
        let size = |m: &Graph, value: &str| {
            m.value_id(value)
                .and_then(|v| m.value(v).shape.as_ref()?.get(a).copied())
                .unwrap_or(0)
        };
        let value = g.value(v).name.as_str();
        let (cb, ca) = (size(g, value), size(p, value));
        let Some(ac) = after_by_name.get(name) else {
            continue;
        };
        let (mb, ma) = (c.macs.unwrap_or(0), ac.macs.unwrap_or(0));
        if cb != ca || c.parameters != ac.parameters || mb != ma {
            rows.push(LayerRow {
                node: name.to_string(),
                channels: (cb, ca),
                parameters: (c.parameters, ac.parameters),
                macs: (mb, ma),
            });
        }
    }
    rows
}

/// Bytes of the side files a model reads, for a fair file-size comparison.
pub fn external_bytes(model: &Model) -> u64 {
    let Some(dir) = model.external.base_dir() else {
        return 0;
    };
    let mut files = BTreeSet::new();
    let inits = model
        .proto
        .graph
        .as_ref()
        .map_or(&[][..], |g| &g.initializer[..]);
    for t in inits {
        if let Ok(r) = shears_onnx::external::ExternalRef::of(t) {
            files.insert(r.location);
        }
    }
    files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The `--report` document: what was done and how, in a form `shears_plan::PlanFile` reads
/// back (its `stages` carry the plans).
///
/// `S` is the summary the caller reports (the CLI's adds what recovery did).
#[derive(Serialize)]
pub struct PruneReport<'a, S> {
    pub summary: &'a S,
    /// The pruner's settings (absent for given plans).
    pub settings: Option<Settings<'a>>,
    /// For cost targets: whether the result is within 2% of the target.
    pub target_reached: Option<bool>,
    /// Every stage with the plans it applied (for given plans, one stage per plan file stage).
    pub stages: Vec<StageOut<'a>>,
}

/// The pruner's settings, as the report records them.
#[derive(Serialize)]
pub struct Settings<'a> {
    pub goal: Goal,
    pub importance: &'a ImportanceConfig,
    pub allocation: &'a AllocationConfig,
    pub schedule: Schedule,
    pub calibration: &'a Option<Calibration>,
}

/// One stage of a report: the pruner's, or a stage of given plans.
#[derive(Serialize)]
#[serde(untagged)]
pub enum StageOut<'a> {
    Pruner(&'a StageReport),
    Given { plans: &'a [PruningPlan] },
}
