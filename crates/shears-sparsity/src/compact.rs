//! `compact`: find the units of every prunable group whose activations are provably constant,
//! fold non-zero constants into the biases of the layers reading them, and remove the units
//! through the dependency graph (`shears_plan::plan_units`, `shears_exec::apply`).

use std::collections::{BTreeMap, HashMap, HashSet};

use shears_graph::{DependencyGraph, DimKey, GroupId, UnitId};
use shears_onnx::{Model, NodeId, ValueId};
use shears_pruner::members::members;

use crate::constants::{channel_constants, ChannelConsts, Konst};
use crate::fold::{apply_folds, refusal};
use crate::CompactError;

/// Options of [`compact`].
///
/// Invariant: `tolerance >= 0`; 0 means only exact zeros count as zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompactOptions {
    /// Weights with `|w| < tolerance` count as zero (channels found so are `approximate`).
    pub tolerance: f32,
}

/// A removed channel of a group.
///
/// Invariant: `constant` is the value the layers reading the channel saw (0: removed as is);
/// when it is not 0, `folded_into` names every layer whose bias absorbed it (sorted).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Removed {
    pub channel: u32,
    pub constant: f64,
    pub approximate: bool,
    pub folded_into: Vec<String>,
}

/// A channel found constant but kept, with the reason.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Kept {
    pub channel: u32,
    pub reason: String,
}

/// What compact found in one prunable group (only groups with a constant channel are listed).
///
/// Invariant: `removed` and `kept` are sorted by channel and disjoint; channels index the
/// output-channel axis of `layer` in the input model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupFindings {
    pub layer: String,
    pub channels: usize,
    pub removed: Vec<Removed>,
    pub kept: Vec<Kept>,
}

/// The result of [`compact`].
///
/// Invariant: `model` is `Some` iff some group has a removed channel; it is the compacted
/// model (shapes not inferred yet), reading external data from the input's folder.
pub struct Compacted {
    pub findings: Vec<GroupFindings>,
    pub model: Option<Model>,
    /// Attribute and shape-constant rewrites the removal made.
    pub rewrites: usize,
}

/// One unit's verdict.
enum Verdict {
    Live,
    Kept(String),
    Removable {
        constant: Konst,
        folds: Vec<(NodeId, u32, f64)>,
    },
}

/// Compacts `model` (static shapes inferred): see the module docs. Never mutates `model`.
pub fn compact(model: &Model, opts: &CompactOptions) -> Result<Compacted, CompactError> {
    let consts = channel_constants(model, opts.tolerance);
    let graph = DependencyGraph::build(model);
    let mut findings = Vec::new();
    let mut folds: BTreeMap<NodeId, BTreeMap<u32, f64>> = BTreeMap::new();
    // Removed units by (layer output value, axis, channel): found again after folding.
    let mut keys: Vec<(String, usize, usize)> = Vec::new();
    for group in graph.groups.iter().filter(|g| g.is_prunable()) {
        let Some(layer) = shears_plan::group_layer(model, &graph, group.id) else {
            continue;
        };
        let ms = members(model, &graph, group);
        let Some(lm) = ms.iter().find(|m| m.dim == layer.dim) else {
            continue;
        };
        let member_values: HashSet<ValueId> = ms.iter().map(|m| m.value).collect();
        let mut verdicts: Vec<(u32, Verdict)> = (0..group.units.len())
            .map(|k| {
                let channel = lm.unit_indices[k].first().copied().unwrap_or(0);
                let v = unit_verdict(model, &consts, &ms, &member_values, k);
                (channel, v)
            })
            .collect();
        // A plan never empties a group: the last removable unit stays.
        if verdicts
            .iter()
            .all(|(_, v)| matches!(v, Verdict::Removable { .. }))
        {
            if let Some(last) = verdicts.last_mut() {
                last.1 = Verdict::Kept("a group keeps at least one channel".into());
            }
        }
        let mut f = GroupFindings {
            layer: model.graph.node(layer.node).name.clone(),
            channels: group.units.len(),
            removed: Vec::new(),
            kept: Vec::new(),
        };
        let (lv, la) = match graph.dim(layer.dim).key {
            DimKey::Axis(v, a) => (v, a),
            _ => continue,
        };
        for (channel, v) in verdicts {
            match v {
                Verdict::Live => {}
                Verdict::Kept(reason) => f.kept.push(Kept { channel, reason }),
                Verdict::Removable {
                    constant,
                    folds: fs,
                } => {
                    let mut into: Vec<String> = Vec::new();
                    for (node, ch, c) in fs {
                        *folds.entry(node).or_default().entry(ch).or_insert(0.0) += c;
                        into.push(model.graph.node(node).name.clone());
                    }
                    into.sort();
                    into.dedup();
                    keys.push((model.graph.value(lv).name.clone(), la, channel as usize));
                    f.removed.push(Removed {
                        channel,
                        constant: constant.value,
                        approximate: constant.approximate,
                        folded_into: into,
                    });
                }
            }
        }
        if !f.removed.is_empty() || !f.kept.is_empty() {
            f.removed.sort_by_key(|r| r.channel);
            f.kept.sort_by_key(|k| k.channel);
            findings.push(f);
        }
    }
    if keys.is_empty() {
        return Ok(Compacted {
            findings,
            model: None,
            rewrites: 0,
        });
    }
    let folded_owned;
    let folded: &Model = if folds.is_empty() {
        model
    } else {
        let proto = apply_folds(model, &folds)?;
        let mut m = Model::from_proto(proto, model.source.clone(), model.external.same_folder())?;
        copy_shapes(model, &mut m);
        folded_owned = m;
        &folded_owned
    };
    let fgraph = if folds.is_empty() {
        graph
    } else {
        DependencyGraph::build(folded)
    };
    let mut by_group: BTreeMap<GroupId, Vec<UnitId>> = BTreeMap::new();
    for (value, axis, index) in keys {
        let lost = || CompactError::Lost {
            value: value.clone(),
            axis,
            index,
        };
        let v = folded.graph.value_id(&value).ok_or_else(lost)?;
        let d = fgraph.dim_id(DimKey::Axis(v, axis)).ok_or_else(lost)?;
        let u = fgraph.unit_at(d, index).ok_or_else(lost)?;
        let g = fgraph.unit_group(u).ok_or_else(lost)?;
        by_group.entry(g).or_default().push(u);
    }
    let mut plans = Vec::new();
    for (g, mut units) in by_group {
        units.sort();
        units.dedup();
        plans.push(shears_plan::plan_units(folded, &fgraph, g, &units)?);
    }
    let applied = shears_exec::apply(folded, &plans)?;
    let rewrites = applied.rewrites.len();
    let out = Model::from_proto(
        applied.proto,
        model.source.clone(),
        model.external.same_folder(),
    )?;
    Ok(Compacted {
        findings,
        model: Some(out),
        rewrites,
    })
}

/// The verdict on unit `k` of a group with members `ms`.
fn unit_verdict(
    model: &Model,
    consts: &HashMap<ValueId, ChannelConsts>,
    ms: &[shears_pruner::members::Member],
    member_values: &HashSet<ValueId>,
    k: usize,
) -> Verdict {
    let g = &model.graph;
    let acts: Vec<_> = ms.iter().filter(|m| m.role.is_none()).collect();
    // Per activation member, its constants on this unit's indices (None: not all constant).
    let per: Vec<Option<Vec<(u32, Konst)>>> = acts
        .iter()
        .map(|m| {
            let s = consts.get(&m.value).filter(|s| s.axis == m.axis)?;
            m.unit_indices[k]
                .iter()
                .map(|&i| Some((i, s.consts.get(i as usize).copied().flatten()?)))
                .collect()
        })
        .collect();
    if acts.is_empty() || per.iter().all(Option::is_none) {
        return Verdict::Live;
    }
    if let Some(pos) = per.iter().position(Option::is_none) {
        let m = acts[pos];
        return Verdict::Kept(format!(
            "`{}` is not provably constant on this channel",
            g.value(m.value).name
        ));
    }
    // The constant reported is the one a layer absorbs (0 when every reader sees zero).
    let mut constant: Option<Konst> = None;
    let mut approximate = false;
    let mut folds = Vec::new();
    for (m, ks) in acts.iter().zip(per.iter().flatten()) {
        for &(i, kst) in ks {
            approximate |= kst.approximate;
            if kst.value == 0.0 {
                continue;
            }
            for &(node, slot) in &g.value(m.value).consumers {
                let n = g.node(node);
                // One entry per (node, slot): a layer reading the channel as data folds once.
                let contracts =
                    matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul") && slot == 0;
                if contracts {
                    if m.axis != 1 {
                        return Verdict::Kept(format!(
                            "`{}` ({}) reads the constant {} on axis {}",
                            n.name, n.op_type, kst.value as f32, m.axis
                        ));
                    }
                    if let Some(r) = refusal(model, node) {
                        return Verdict::Kept(format!("constant {}: {r}", kst.value as f32));
                    }
                    folds.push((node, i, kst.value));
                    constant.get_or_insert(kst);
                } else if !n
                    .outputs
                    .iter()
                    .flatten()
                    .any(|o| member_values.contains(o))
                {
                    return Verdict::Kept(format!(
                        "`{}` ({}) reads the constant {} of `{}`",
                        n.name,
                        n.op_type,
                        kst.value as f32,
                        g.value(m.value).name
                    ));
                }
            }
        }
    }
    let constant = Konst {
        value: constant.map_or(0.0, |k| k.value),
        approximate,
    };
    Verdict::Removable { constant, folds }
}

/// Node outputs keep their inferred shapes: folding only adds bias initializers.
fn copy_shapes(from: &Model, to: &mut Model) {
    for i in 0..to.graph.values.len() {
        let name = to.graph.values[i].name.clone();
        if let Some(v) = from.graph.value_id(&name) {
            let src = from.graph.value(v);
            let dst = &mut to.graph.values[i];
            if dst.shape.is_none() {
                dst.shape = src.shape.clone();
                dst.folded = src.folded.clone();
            }
        }
    }
}
