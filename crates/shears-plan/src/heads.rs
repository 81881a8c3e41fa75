//! Whole attention heads: the head groups of a [`shears_graph::Granularity::Heads`] graph, and plans that
//! remove heads of a projection by head number (`plan --heads`).
//!
//! A head group's units are whole heads (with grouped-query attention, one key/value head and
//! the query heads that read it). Head `k` of a layer is the unit holding the `k`-th smallest
//! of the layer's output channels among the units' first channels, so heads are numbered as
//! the projection's rows are laid out (`j·d..(j+1)·d` for head `j`; in a fused qkv projection
//! the first of the head's three blocks).

use shears_graph::{DependencyGraph, DimId, GroupId};
use shears_onnx::Model;

use crate::{plan, resolve_layer, GroupReport, PlanError, PruningPlan};

/// The heads of one layer's output channels.
///
/// Invariant: `heads` are disjoint, each sorted, ordered by their first index; together they
/// are the root axis's indices in `group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerHeads {
    pub group: GroupId,
    pub root: DimId,
    /// Per head, the layer's output-channel indices it owns.
    pub heads: Vec<Vec<u32>>,
}

/// The heads of `layer` in `graph`, which must have whole heads as units
/// ([`shears_graph::Granularity::Heads`] or [`shears_graph::Granularity::QueryHeads`]): an error naming
/// the layer when it feeds no attention, or when its heads cannot be removed (the group's
/// blockers, such as a head count computed where Shears cannot follow it).
pub fn layer_heads(
    model: &Model,
    graph: &DependencyGraph,
    layer: &str,
) -> Result<LayerHeads, PlanError> {
    debug_assert!(graph.granularity.whole_heads());
    let (_, root) = resolve_layer(model, graph, layer)?;
    let size = graph.dim(root).size;
    let no_heads = |reason: &str| PlanError::NoHeads {
        layer: layer.to_string(),
        reason: reason.to_string(),
    };
    let mut group = None;
    let mut heads: Vec<Vec<u32>> = Vec::new();
    let mut head_of_unit = std::collections::HashMap::new();
    for i in 0..size {
        let unit = graph
            .unit_at(root, i)
            .ok_or_else(|| no_heads("no channel units"))?;
        let gid = graph
            .unit_group(unit)
            .ok_or_else(|| no_heads("its channels belong to no group"))?;
        if !graph.is_head_group(gid) {
            return Err(no_heads(
                "its output channels reach no Reshape into attention heads",
            ));
        }
        if group.is_some_and(|g| g != gid) {
            return Err(no_heads("its output channels span several head groups"));
        }
        group = Some(gid);
        let k = *head_of_unit.entry(unit).or_insert_with(|| {
            heads.push(Vec::new());
            heads.len() - 1
        });
        heads[k].push(i as u32);
    }
    let group = group.ok_or_else(|| no_heads("it has no output channels"))?;
    let g = graph.group(group);
    if !g.is_prunable() {
        return Err(PlanError::Blocked {
            layer: layer.to_string(),
            reasons: crate::build::blocker_text(model, graph, group),
        });
    }
    Ok(LayerHeads { group, root, heads })
}

/// The plan removing heads `heads` (numbered as [`layer_heads`] does) of `layer`, on a
/// [`shears_graph::Granularity::Heads`] graph. Out-of-range, repeated or all heads are errors naming the
/// layer.
pub fn plan_heads(
    model: &Model,
    graph: &DependencyGraph,
    layer: &str,
    heads: &[usize],
) -> Result<PruningPlan, PlanError> {
    let lh = layer_heads(model, graph, layer)?;
    if heads.is_empty() {
        return Err(PlanError::Empty);
    }
    let mut seen = std::collections::BTreeSet::new();
    for &h in heads {
        if h >= lh.heads.len() {
            return Err(PlanError::HeadOutOfRange {
                layer: layer.to_string(),
                index: h,
                heads: lh.heads.len(),
            });
        }
        if !seen.insert(h) {
            return Err(PlanError::Repeated { index: h });
        }
    }
    if seen.len() >= lh.heads.len() {
        return Err(PlanError::AllHeads {
            layer: layer.to_string(),
            heads: lh.heads.len(),
        });
    }
    let idxs: Vec<usize> = seen
        .iter()
        .flat_map(|&h| lh.heads[h].iter().map(|&i| i as usize))
        .collect();
    plan(model, graph, layer, &idxs)
}

/// The reports of `graph`'s head groups (units = whole heads), for `shears groups`; `graph`
/// must have [`shears_graph::Granularity::Heads`].
pub fn head_group_reports(model: &Model, graph: &DependencyGraph) -> Vec<GroupReport> {
    crate::group_reports(model, graph)
        .into_iter()
        .zip(&graph.groups)
        .filter(|(_, g)| graph.is_head_group(g.id))
        .map(|(r, _)| r)
        .collect()
}
