//! Expanding (root, indices) into a plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use shears_graph::rules::{self, DimRef, Removed, Rewrite};
use shears_graph::{ChannelMap, DependencyGraph, DimId, DimKey, UnitId};
use shears_onnx::{ops, Model, NodeId, ValueId, ValueKind};

use crate::{summary, PlanEntry, PlanError, PruningPlan, TensorKind};

/// The layer a plan starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRoot {
    /// The name the user gave (node or parameter name).
    pub layer: String,
    /// The node whose output channels are pruned.
    pub node: String,
    /// The weight tensor and its output-channel axis: the stored tensor (initializer or
    /// Constant), also when the layer reads it through a Transpose or computes it from the
    /// stored tensor (weight standardisation).
    pub tensor: String,
    pub axis: usize,
    /// The number of channels of that axis.
    pub size: usize,
}

/// Finds the output-channel dim `name` denotes: a node with a weight (its rule's
/// `out_channels`), or a parameter used as such by a node directly or through Transposes.
pub fn resolve_layer(
    model: &Model,
    graph: &DependencyGraph,
    name: &str,
) -> Result<(NodeId, DimId), PlanError> {
    let g = &model.graph;
    let out_dim = |id: NodeId| -> Option<DimId> {
        let c = graph.verdicts[id.index()].as_ref().ok()?;
        let (v, a) = c.out_channels?;
        graph.dim_id(DimKey::Axis(v, a))
    };
    if let Some(id) = g.node_id(name) {
        return out_dim(id)
            .map(|d| (id, d))
            .ok_or_else(|| PlanError::NotALayer {
                name: name.to_string(),
                reason: match &graph.verdicts[id.index()] {
                    Err(r) => r.clone(),
                    Ok(_) => format!("{} has no weight with output channels", g.node(id).op_type),
                },
            });
    }
    let Some(v) = g.value_id(name) else {
        let mut similar: Vec<&str> = g
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(
                g.values
                    .iter()
                    .filter(|v| v.kind != ValueKind::Input)
                    .map(|v| v.name.as_str()),
            )
            .filter(|n| n.contains(name) || name.contains(*n) && n.len() > 3)
            .take(5)
            .collect();
        similar.sort();
        let hint = if similar.is_empty() {
            String::new()
        } else {
            format!(" (did you mean: {}?)", similar.join(", "))
        };
        return Err(PlanError::UnknownLayer {
            name: name.to_string(),
            hint,
        });
    };
    // Follow the parameter along the axes its readers pass through unchanged (identity links:
    // ConvNeXt's transposed Linear weights, a standardised weight's Sub/Div/Reshape, a quantized
    // weight's DequantizeLinear) to the node
    // that uses it as a weight. `to_root[a]` is the parameter's axis that axis `a` carries.
    let rank = g.value(v).shape.as_ref().map_or(0, |s| s.len());
    let mut frontier = vec![(v, (0..rank).map(Some).collect::<Vec<_>>())];
    let mut seen = vec![v];
    for _ in 0..8 {
        let mut next = Vec::new();
        for (val, to_root) in frontier {
            for &(consumer, _) in &g.value(val).consumers {
                let c = match &graph.verdicts[consumer.index()] {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                if let Some((ov, oa)) = c.out_channels {
                    // A quantized layer names its stored weight, read through its
                    // DequantizeLinear.
                    let root_axis = if ov == val {
                        to_root.get(oa).copied().flatten()
                    } else if ov == v {
                        Some(oa)
                    } else {
                        None
                    };
                    if let Some(d) = root_axis.and_then(|r| graph.dim_id(DimKey::Axis(v, r))) {
                        return Ok((consumer, d));
                    }
                }
                for out in g.node(consumer).outputs.iter().flatten() {
                    if seen.contains(out) {
                        continue;
                    }
                    let out_rank = g.value(*out).shape.as_ref().map_or(0, |s| s.len());
                    let mut out_to_root = vec![None; out_rank];
                    for l in &c.links {
                        if l.map != ChannelMap::Identity {
                            continue;
                        }
                        for (from, to) in [(l.a, l.b), (l.b, l.a)] {
                            if let (DimRef::Axis(fv, fa), DimRef::Axis(tv, ta)) = (from, to) {
                                if fv == val && tv == *out && ta < out_rank {
                                    out_to_root[ta] = to_root.get(fa).copied().flatten();
                                }
                            }
                        }
                    }
                    if out_to_root.iter().any(Option::is_some) {
                        seen.push(*out);
                        next.push((*out, out_to_root));
                    }
                }
            }
        }
        frontier = next;
        if frontier.is_empty() {
            break;
        }
    }
    Err(PlanError::NotALayer {
        name: name.to_string(),
        reason: "no node uses it as a weight with output channels".into(),
    })
}

struct RemovedMap<'a>(HashMap<(ValueId, usize), &'a [u32]>);

impl Removed for RemovedMap<'_> {
    fn removed(&self, v: ValueId, axis: usize) -> &[u32] {
        self.0.get(&(v, axis)).copied().unwrap_or(&[])
    }
}

/// Builds the plan removing `indices` of layer `layer`'s output channels.
pub fn plan(
    model: &Model,
    graph: &DependencyGraph,
    layer: &str,
    indices: &[usize],
) -> Result<PruningPlan, PlanError> {
    let (root_node, root_dim) = resolve_layer(model, graph, layer)?;
    plan_resolved(model, graph, layer, (root_node, root_dim), indices)
}

/// [`plan`] for a layer already resolved to its node and output-channel dim (what
/// [`resolve_layer`] gives for `layer`).
pub(crate) fn plan_resolved(
    model: &Model,
    graph: &DependencyGraph,
    layer: &str,
    (root_node, root_dim): (NodeId, DimId),
    indices: &[usize],
) -> Result<PruningPlan, PlanError> {
    let info = graph.dim(root_dim);
    let DimKey::Axis(root_value, root_axis) = info.key else {
        unreachable!("out_channels dims are value axes");
    };
    if indices.is_empty() {
        return Err(PlanError::Empty);
    }
    let mut sorted: Vec<u32> = Vec::with_capacity(indices.len());
    let mut seen = BTreeSet::new();
    for &i in indices {
        if i >= info.size {
            return Err(PlanError::OutOfRange {
                layer: layer.to_string(),
                index: i,
                size: info.size,
            });
        }
        if !seen.insert(i) {
            return Err(PlanError::Repeated { index: i });
        }
        sorted.push(i as u32);
    }
    sorted.sort_unstable();

    // Every requested index must lie in a prunable group, and no group may lose every unit.
    // A root axis can span several groups (Concat segments, Split halves): each is checked.
    let mut by_group: BTreeMap<shears_graph::GroupId, BTreeSet<UnitId>> = BTreeMap::new();
    for &i in &sorted {
        let unit = graph
            .unit_at(root_dim, i as usize)
            .ok_or_else(|| PlanError::Blocked {
                layer: layer.to_string(),
                reasons: format!("index {i} has no channel unit"),
            })?;
        let Some(gid) = graph.unit_group(unit) else {
            // Only axes of size 1 lack a group: their one channel is the whole layer.
            return Err(if info.size == 1 {
                PlanError::WholeGroup {
                    layer: layer.to_string(),
                    size: 1,
                }
            } else {
                PlanError::Blocked {
                    layer: layer.to_string(),
                    reasons: format!("channel {i} belongs to no group"),
                }
            });
        };
        by_group.entry(gid).or_default().insert(unit);
    }
    let mut units: BTreeSet<UnitId> = BTreeSet::new();
    let mut group_channels = 0;
    for (&gid, us) in &by_group {
        let group = graph.group(gid);
        if !group.is_prunable() {
            return Err(PlanError::Blocked {
                layer: layer.to_string(),
                reasons: blocker_text(model, graph, gid),
            });
        }
        if us.len() >= group.units.len() {
            return Err(PlanError::WholeGroup {
                layer: layer.to_string(),
                size: group.units.len(),
            });
        }
        group_channels += group.units.len();
        units.extend(us.iter().copied());
    }

    // Removed indices per dim: the indices of the groups' dims whose unit is removed (every
    // unit touches exactly its group's dims), found once per class of dims tied index by
    // index rather than once per dim, and without a search for each atom's dim.
    let removed_units: Vec<u32> = units.iter().map(|u| u.0).collect();
    let mut dims: Vec<DimId> = by_group
        .keys()
        .flat_map(|&gid| graph.group(gid).dims.iter().copied())
        .collect();
    dims.sort_unstable();
    dims.dedup();
    let mut by_class: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut per_dim: BTreeMap<DimId, Vec<u32>> = BTreeMap::new();
    for d in dims {
        let idx = by_class.entry(graph.dim_class(d)).or_insert_with(|| {
            let units_of = graph.dim_units(d).iter().enumerate();
            units_of
                .filter(|&(_, u)| removed_units.binary_search(u).is_ok())
                .map(|(i, _)| i as u32)
                .collect()
        });
        if !idx.is_empty() {
            per_dim.insert(d, idx.clone());
        }
    }
    let mut removed = RemovedMap(HashMap::new());
    // Collected with repeats (most dims are linked by the same few nodes), then sorted once.
    let mut nodes_touched: Vec<NodeId> = Vec::new();
    let mut mixed: BTreeSet<NodeId> = BTreeSet::new();
    // Each index list ascends, unique: read from a dim's indices in order.
    for (d, idx) in &per_dim {
        let di = graph.dim(*d);
        nodes_touched.extend(di.linked_by.iter().copied());
        mixed.extend(di.mixed_by.iter().copied());
        if let DimKey::Axis(v, a) = di.key {
            // A producer that makes the axis from a shape entry (Expand, ConstantOfShape)
            // links nothing there but rewrites that entry.
            nodes_touched.extend(model.graph.producer(v));
            removed.0.insert((v, a), idx);
        }
    }

    nodes_touched.sort_unstable();
    nodes_touched.dedup();
    let mut rewrites: Vec<Rewrite> = Vec::new();
    for &id in &nodes_touched {
        let node = model.graph.node(id);
        let Some(rule) = rules::rule_for(node) else {
            continue;
        };
        let Some(rw) = rule.rewrite else { continue };
        let ctx = rules::Ctx::new(model, id);
        let mut r = rw(&ctx, &removed).map_err(|reason| PlanError::Rewrite {
            node: node.name.clone(),
            reason,
        })?;
        rewrites.append(&mut r);
    }
    rewrites.sort();
    drop(removed);
    let entries = make_entries(model, graph, per_dim);

    let parameters_removed = entries
        .iter()
        .filter(|e| e.kind == TensorKind::Parameter)
        .map(|e| e.elements_removed)
        .sum();
    let statistics_removed = entries
        .iter()
        .filter(|e| e.kind == TensorKind::Statistic)
        .map(|e| e.elements_removed)
        .sum();
    let (root_value, root_axis) = stored_source(model, graph, root_value, root_axis);
    Ok(PruningPlan {
        version: 1,
        root: PlanRoot {
            layer: layer.to_string(),
            node: model.graph.node(root_node).name.clone(),
            tensor: model.graph.value(root_value).name.clone(),
            axis: root_axis,
            size: info.size,
        },
        indices: sorted,
        channels_removed: units.len(),
        group_channels,
        entries,
        rewrites,
        parameters_removed,
        statistics_removed,
        mixed_by: mixed
            .iter()
            .map(|&n| model.graph.node(n).name.clone())
            .collect(),
        granularity: graph.granularity,
    })
}

/// One line per fixed dim of the group: where and why.
pub(crate) fn blocker_text(
    model: &Model,
    graph: &DependencyGraph,
    g: shears_graph::GroupId,
) -> String {
    let mut lines: Vec<String> = graph
        .group(g)
        .blockers
        .iter()
        .map(|(d, f)| {
            format!(
                "{} ({})",
                crate::summary::dim_name(model, graph, *d),
                f.reason
            )
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines.join("; ")
}

/// Sort key of an entry: node order, edited-before-activation, input slot, tensor, axis.
type EntryKey<'m> = (usize, u8, usize, &'m str, usize);

fn make_entries(
    model: &Model,
    graph: &DependencyGraph,
    per_dim: BTreeMap<DimId, Vec<u32>>,
) -> Vec<PlanEntry> {
    let g = &model.graph;
    // Tensor shapes after pruning, to count removed elements per tensor.
    // (value, axis, removed count), a value's axes in dim order.
    let mut by_value: Vec<(ValueId, usize, usize)> = per_dim
        .iter()
        .filter_map(|(d, idx)| match graph.dim(*d).key {
            DimKey::Axis(v, a) => Some((v, a, idx.len())),
            DimKey::Virtual(..) => None,
        })
        .collect();
    by_value.sort_by_key(|c| c.0);
    // A layer's weight, bias, norm parameters and activation share its one-line summary.
    let mut op_summaries: HashMap<NodeId, String> = HashMap::new();
    let mut keyed: Vec<(EntryKey, PlanEntry)> = Vec::with_capacity(per_dim.len());
    for (d, idx) in per_dim {
        let di = graph.dim(d);
        let DimKey::Axis(v, axis) = di.key else {
            continue;
        };
        let value = g.value(v);
        let (node, kind) = if di.is_param {
            let consumer = di.linked_by.first().copied();
            let stat = consumer.is_some_and(|n| is_statistic(graph, model, n, v));
            (
                consumer,
                if stat {
                    TensorKind::Statistic
                } else {
                    TensorKind::Parameter
                },
            )
        } else if di.is_quant_param {
            (di.linked_by.first().copied(), TensorKind::Quantization)
        } else {
            (
                g.producer(v).or(di.linked_by.first().copied()),
                TensorKind::Activation,
            )
        };
        let Some(node) = node else { continue };
        // A weight read through a Transpose (exporters' Linear) belongs to the layer after it:
        // its role and its line are the MatMul's.
        let (node, seen_as, seen_axis) = if di.is_param {
            through_layout(model, node, v, axis)
        } else {
            (node, v, axis)
        };
        let n = g.node(node);
        let shape = value.shape.as_deref().unwrap_or_default();
        let cuts = &by_value[by_value.partition_point(|c| c.0 < v)..];
        let cuts = &cuts[..cuts.partition_point(|c| c.0 == v)];
        let elements_removed = if kind == TensorKind::Activation || cuts[0].1 != axis {
            0
        } else {
            let total: u64 = shape.iter().map(|&s| s as u64).product();
            let kept: u64 = shape
                .iter()
                .enumerate()
                .map(|(ax, &s)| {
                    let gone = cuts.iter().find(|c| c.1 == ax).map_or(0, |c| c.2);
                    (s - gone) as u64
                })
                .product();
            total - kept
        };
        let mut role = role_of(model, graph, node, seen_as, seen_axis);
        // A parameter several layers read (a tied embedding: a Gather's table and, transposed,
        // the LM head's weight) is `in` when any of them reads the channels as inputs: that is
        // the slice the exactness check must zero.
        if di.is_param && role == "out" {
            let read_as_input = di.linked_by.iter().skip(1).any(|&other| {
                let (n, sv, sa) = through_layout(model, other, v, axis);
                role_of(model, graph, n, sv, sa) == "in"
            });
            if read_as_input {
                role = "in";
            }
        }
        let kind_order = match kind {
            TensorKind::Parameter | TensorKind::Statistic | TensorKind::Quantization => 0,
            TensorKind::Activation => 1,
        };
        let slot = n
            .inputs
            .iter()
            .position(|x| *x == Some(seen_as))
            .unwrap_or(usize::MAX);
        let op = op_summaries
            .entry(node)
            .or_insert_with(|| summary::op_summary(model, node))
            .clone();
        keyed.push((
            (node.index(), kind_order, slot, value.name.as_str(), axis),
            PlanEntry {
                tensor: value.name.clone(),
                kind,
                node: n.name.clone(),
                op_type: n.op_type.clone(),
                op,
                role: role.to_string(),
                axis,
                size: di.size,
                indices: idx,
                elements_removed,
            },
        ));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, e)| e).collect()
}

fn is_statistic(graph: &DependencyGraph, model: &Model, node: NodeId, v: ValueId) -> bool {
    let Ok(c) = &graph.verdicts[node.index()] else {
        return false;
    };
    let n = model.graph.node(node);
    c.statistics.iter().any(|&slot| n.input(slot) == Some(v))
}

/// `out` for the node's own outputs and for axes its rule ties to one of them (a weight's
/// output channels, a BatchNorm's scale), `in` otherwise (input channels).
fn role_of(
    model: &Model,
    graph: &DependencyGraph,
    node: NodeId,
    v: ValueId,
    axis: usize,
) -> &'static str {
    let Ok(c) = &graph.verdicts[node.index()] else {
        return "in";
    };
    let outputs = &model.graph.node(node).outputs;
    if outputs.contains(&Some(v)) {
        return "out";
    }
    let is_output = |r: &DimRef| matches!(r, DimRef::Axis(o, _) if outputs.contains(&Some(*o)));
    let me = DimRef::Axis(v, axis);
    let tied_to_output = c
        .links
        .iter()
        .any(|l| (l.a == me && is_output(&l.b)) || (l.b == me && is_output(&l.a)));
    if c.out_channels == Some((v, axis)) || tied_to_output {
        "out"
    } else {
        "in"
    }
}

/// Follows `v` (axis `axis`, read by `node`) through layout-only ops with a single reader to
/// the node that uses it as data, mapping the axis through Transposes. Returns that node and
/// the value and axis it reads.
fn through_layout(
    model: &Model,
    mut node: NodeId,
    mut v: ValueId,
    mut axis: usize,
) -> (NodeId, ValueId, usize) {
    let g = &model.graph;
    for _ in 0..4 {
        let n = g.node(node);
        let rank = g.value(v).shape.as_ref().map_or(0, |s| s.len());
        // Layout-only ops exporters put between a weight and its layer.
        let Some(perm) = ops::layout_perm(n, rank) else {
            break;
        };
        let Some(out) = n.output(0) else { break };
        let [(next, _)] = g.value(out).consumers.as_slice() else {
            break;
        };
        let Some(i) = perm.iter().position(|&p| p == axis) else {
            break;
        };
        axis = i;
        v = out;
        node = *next;
    }
    (node, v, axis)
}

/// The stored tensor behind an output-channel axis read through layout-only ops (a Linear's
/// weight behind its Transpose) or computed from it (a standardised weight's Sub/Div, Reshape),
/// so plans name the initializer rather than the computed copy. Each step goes to the first
/// input of the producer whose axis the producer's rule ties one to one to the current axis.
fn stored_source(
    model: &Model,
    graph: &DependencyGraph,
    mut v: ValueId,
    mut axis: usize,
) -> (ValueId, usize) {
    let g = &model.graph;
    for _ in 0..10 {
        if rules::is_stored(model, v) {
            break;
        }
        let Some(p) = g.producer(v) else { break };
        let Ok(c) = &graph.verdicts[p.index()] else {
            break;
        };
        let me = DimRef::Axis(v, axis);
        let step = g.node(p).inputs.iter().flatten().find_map(|&i| {
            c.links.iter().find_map(|l| {
                if l.map != ChannelMap::Identity {
                    return None;
                }
                match (l.a, l.b) {
                    (DimRef::Axis(x, a), other) | (other, DimRef::Axis(x, a))
                        if x == i && other == me =>
                    {
                        Some((i, a))
                    }
                    _ => None,
                }
            })
        });
        let Some((input, a)) = step else { break };
        v = input;
        axis = a;
    }
    (v, axis)
}
