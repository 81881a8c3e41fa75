//! The report of every group of a model: what `shears groups` prints.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use shears_graph::{DependencyGraph, DimKey};
use shears_onnx::Model;

use crate::summary::{compact_indices, dim_name};

/// A member of a group: a tensor axis and how many of its indices each channel owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub tensor: String,
    pub axis: usize,
    pub size: usize,
    pub parameter: bool,
}

/// Why a group is blocked: a fixed member, the node fixing it and the reason.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupBlocker {
    pub dim: String,
    /// The node that fixes it; empty for graph inputs and outputs.
    pub node: String,
    pub reason: String,
}

/// One group of coupled channels.
///
/// Invariant: `prunable` iff `blockers` is empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    pub id: u32,
    /// The dim the group is named after, `tensor[axis]`.
    pub root: String,
    /// The node owning the root (for `--layer`).
    pub root_node: String,
    /// The root's indices that belong to this group, ascending (all of them unless the root
    /// axis is cut into segments shared with other groups).
    pub root_indices: Vec<u32>,
    pub channels: usize,
    pub prunable: bool,
    pub members: Vec<GroupMember>,
    pub blockers: Vec<GroupBlocker>,
    pub mixed_by: Vec<String>,
}

/// The layer a relay (the DequantizeLinear of a stored weight) passes its weight to, when it has
/// one reader; otherwise `n`.
fn through_relay(
    model: &Model,
    graph: &DependencyGraph,
    n: shears_onnx::NodeId,
) -> shears_onnx::NodeId {
    let g = &model.graph;
    let relay = graph.verdicts[n.index()].as_ref().is_ok_and(|c| c.relay);
    match g.node(n).output(0).map(|o| g.value(o).consumers.as_slice()) {
        Some([(next, _)]) if relay => *next,
        _ => n,
    }
}

/// Every group of the model with a parameter in it, in order of first appearance.
pub fn group_reports(model: &Model, graph: &DependencyGraph) -> Vec<GroupReport> {
    let layers = crate::GroupLayers::new(model, graph);
    graph
        .groups
        .iter()
        .map(|grp| group_report(model, graph, &layers, grp))
        .collect()
}

/// The report of one group of `graph` ([`group_reports`] for all), with the model's layers
/// already indexed: for callers that need only some groups' reports.
pub fn group_report(
    model: &Model,
    graph: &DependencyGraph,
    layers: &crate::GroupLayers,
    grp: &shears_graph::Group,
) -> GroupReport {
    let g = &model.graph;
    let root = graph.dim(grp.root);
    // The layer whose output channels the root is (a computed weight's Conv rather
    // than the op computing it; a quantized weight's layer rather than the
    // DequantizeLinear relaying it), else the first node linking it.
    let root_node = layers
        .layer(grp.id)
        .filter(|l| l.dim == grp.root)
        .map(|l| l.node)
        .or_else(|| root.linked_by.first().copied())
        .map(|n| g.node(through_relay(model, graph, n)).name.clone())
        .unwrap_or_default();
    let members = grp
        .dims
        .iter()
        .filter_map(|&d| {
            let di = graph.dim(d);
            match di.key {
                DimKey::Axis(v, a) => Some(GroupMember {
                    tensor: g.value(v).name.clone(),
                    axis: a,
                    size: di.size,
                    parameter: di.is_param,
                }),
                DimKey::Virtual(..) => None,
            }
        })
        .collect();
    let blockers: BTreeSet<GroupBlocker> = grp
        .blockers
        .iter()
        .map(|(d, f)| GroupBlocker {
            dim: dim_name(model, graph, *d),
            node: f.node.map(|n| g.node(n).name.clone()).unwrap_or_default(),
            reason: f.reason.clone(),
        })
        .collect();
    let mixed: BTreeSet<String> = grp
        .dims
        .iter()
        .flat_map(|&d| graph.dim(d).mixed_by.iter())
        .map(|&n| g.node(n).name.clone())
        .collect();
    let root_indices: Vec<u32> = (0..root.size)
        .filter(|&i| graph.group_at(grp.root, i) == Some(grp.id))
        .map(|i| i as u32)
        .collect();
    GroupReport {
        id: grp.id.0,
        root: dim_name(model, graph, grp.root),
        root_node,
        root_indices,
        channels: grp.units.len(),
        prunable: grp.is_prunable(),
        members,
        blockers: blockers.into_iter().collect(),
        mixed_by: mixed.into_iter().collect(),
    }
}

/// Text for people: one header line per group, then its blockers (if any) and its members.
pub fn render_groups_text(source: &str, reports: &[GroupReport]) -> String {
    let mut s = String::new();
    let prunable = reports.iter().filter(|r| r.prunable).count();
    let channels: usize = reports
        .iter()
        .filter(|r| r.prunable)
        .map(|r| r.channels)
        .sum();
    let _ = writeln!(
        s,
        "{source}: {} groups, {prunable} prunable ({channels} channels), {} blocked",
        reports.len(),
        reports.len() - prunable
    );
    let roots: Vec<String> = reports.iter().map(root_text).collect();
    let w_root = roots.iter().map(String::len).max().unwrap_or(0);
    for (r, root) in reports.iter().zip(&roots) {
        let params = r.members.iter().filter(|m| m.parameter).count();
        let _ = writeln!(
            s,
            "#{:<3} {:<w_root$}  {:>5} ch  {:<8}  {} tensors ({} parameters)  layer {}",
            r.id,
            root,
            r.channels,
            if r.prunable { "prunable" } else { "BLOCKED" },
            r.members.len(),
            params,
            r.root_node,
        );
        for b in &r.blockers {
            if b.node.is_empty() {
                let _ = writeln!(s, "       blocked: {}: {}", b.dim, b.reason);
            } else {
                let _ = writeln!(s, "       blocked by {}: {}: {}", b.node, b.dim, b.reason);
            }
        }
        if !r.mixed_by.is_empty() {
            let _ = writeln!(s, "       mixed by: {}", r.mixed_by.join(", "));
        }
        let names: Vec<String> = r
            .members
            .iter()
            .filter(|m| m.parameter)
            .map(|m| format!("{}[{}]", m.tensor, m.axis))
            .collect();
        let _ = writeln!(s, "       params: {}", names.join(" "));
    }
    s
}

/// The root, with the indices it contributes when the group holds only part of its axis.
fn root_text(r: &GroupReport) -> String {
    let whole = r
        .members
        .iter()
        .find(|m| format!("{}[{}]", m.tensor, m.axis) == r.root)
        .is_some_and(|m| m.size == r.root_indices.len());
    if whole {
        r.root.clone()
    } else {
        format!("{}{{{}}}", r.root, compact_indices(&r.root_indices))
    }
}
