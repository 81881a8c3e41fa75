//! Plans made from a group and a subset of its units, for pruners that rank a group's channels
//! without caring which layer names it.

use shears_graph::{DependencyGraph, DimId, DimKey, GroupId, UnitId};
use shears_onnx::Model;
use shears_onnx::NodeId;

use crate::{PlanError, PruningPlan};

/// The layer a group's plans start from: a node whose output-channel axis is one of the group's
/// dims, preferring the group's root.
///
/// Invariant: `dim` is in the group and is `node`'s output-channel axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLayer {
    pub node: NodeId,
    pub dim: DimId,
}

/// The layer naming group `gid`, or `None` when no node has its output channels in the group.
pub fn group_layer(model: &Model, graph: &DependencyGraph, gid: GroupId) -> Option<GroupLayer> {
    let group = graph.group(gid);
    let mut found: Option<GroupLayer> = None;
    for id in model.graph.node_ids() {
        let Ok(c) = &graph.verdicts[id.index()] else {
            continue;
        };
        let Some((v, a)) = c.out_channels else {
            continue;
        };
        let Some(d) = graph.dim_id(DimKey::Axis(v, a)) else {
            continue;
        };
        // A root axis cut into segments belongs to several groups: only this group's segment.
        if group.dims.binary_search(&d).is_err() {
            continue;
        }
        if d == group.root {
            return Some(GroupLayer { node: id, dim: d });
        }
        found.get_or_insert(GroupLayer { node: id, dim: d });
    }
    found
}

/// Every group's layers (nodes whose output-channel axis is one of the group's dims), found in
/// one pass over the nodes, for callers that ask about every group (a pruner stage) and must
/// stay linear in the model.
///
/// Invariants: `layers(g)` is in node order; `layer(g)` is what [`group_layer`] returns.
#[derive(Clone, Debug)]
pub struct GroupLayers {
    layers: Vec<Vec<NodeId>>,
    first: Vec<Option<GroupLayer>>,
}

impl GroupLayers {
    pub fn new(model: &Model, graph: &DependencyGraph) -> GroupLayers {
        let n = graph.groups.len();
        // A dim belongs to one group, or to several when its axis is cut into segments.
        let mut dim_groups: Vec<Vec<GroupId>> = vec![Vec::new(); graph.dims.len()];
        for g in &graph.groups {
            for d in &g.dims {
                dim_groups[d.0 as usize].push(g.id);
            }
        }
        let mut layers = vec![Vec::new(); n];
        let mut first: Vec<Option<GroupLayer>> = vec![None; n];
        for id in model.graph.node_ids() {
            let Ok(c) = &graph.verdicts[id.index()] else {
                continue;
            };
            let Some((v, a)) = c.out_channels else {
                continue;
            };
            let Some(d) = graph.dim_id(DimKey::Axis(v, a)) else {
                continue;
            };
            for &gid in &dim_groups[d.0 as usize] {
                let k = gid.0 as usize;
                layers[k].push(id);
                let root = graph.group(gid).root;
                // The first node on the group's root, else the first node at all.
                match first[k] {
                    Some(f) if f.dim == root || d != root => {}
                    _ => first[k] = Some(GroupLayer { node: id, dim: d }),
                }
            }
        }
        GroupLayers { layers, first }
    }

    /// The nodes whose output-channel axis is a dim of `gid`, in node order.
    pub fn layers(&self, gid: GroupId) -> &[NodeId] {
        &self.layers[gid.0 as usize]
    }

    /// The layer naming `gid` (see [`group_layer`]).
    pub fn layer(&self, gid: GroupId) -> Option<GroupLayer> {
        self.first[gid.0 as usize]
    }
}

/// The plan removing `units` (all of group `gid`) from the model: the group's layer with the
/// indices those units own on its output-channel axis.
pub fn plan_units(
    model: &Model,
    graph: &DependencyGraph,
    gid: GroupId,
    units: &[UnitId],
) -> Result<PruningPlan, PlanError> {
    let layer = group_layer(model, graph, gid).ok_or_else(|| PlanError::NotALayer {
        name: format!("group #{}", gid.0),
        reason: "no node has its output channels in this group".into(),
    })?;
    plan_units_at(model, graph, gid, layer, units)
}

/// [`plan_units`] with the group's layer already found ([`GroupLayers::layer`]).
pub fn plan_units_at(
    model: &Model,
    graph: &DependencyGraph,
    gid: GroupId,
    layer: GroupLayer,
    units: &[UnitId],
) -> Result<PruningPlan, PlanError> {
    let mut wanted: Vec<UnitId> = Vec::with_capacity(units.len());
    for &u in units {
        if graph.unit_group(u) != Some(gid) {
            return Err(PlanError::Blocked {
                layer: model.graph.node(layer.node).name.clone(),
                reasons: format!("unit {} is not in group #{}", u.0, gid.0),
            });
        }
        wanted.push(u);
    }
    wanted.sort_unstable();
    // The layer's positions whose unit is wanted (a unit may cover several: a head's
    // positions): one look-up per position, not a walk over every atom of every unit.
    let idxs: Vec<usize> = (0..graph.dim(layer.dim).size)
        .filter(|&i| {
            graph
                .unit_at(layer.dim, i)
                .is_some_and(|u| wanted.binary_search(&u).is_ok())
        })
        .collect();
    // The layer is resolved already (its node's output-channel dim, by the type's invariant).
    let name = &model.graph.node(layer.node).name;
    crate::build::plan_resolved(model, graph, name, (layer.node, layer.dim), &idxs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;
    use shears_onnx::external::ExternalStore;
    use shears_testkit::builder::zoo;

    #[test]
    fn a_group_plan_is_the_plan_of_its_layer() {
        let mut m = Model::from_proto(
            zoo::residual_downsample_block(),
            "block",
            ExternalStore::none(),
        )
        .unwrap();
        shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
        let g = DependencyGraph::build(&m);
        for name in ["conv1.weight", "layer2.0.conv1.weight"] {
            let (node, dim) = crate::resolve_layer(&m, &g, name).unwrap();
            let gid = g.group_at(dim, 0).unwrap();
            let layer = group_layer(&m, &g, gid).unwrap();
            assert_eq!(layer.node, node, "{name}");
            let units: Vec<UnitId> = [1usize, 3]
                .iter()
                .map(|&i| g.unit_at(dim, i).unwrap())
                .collect();
            let by_units = plan_units(&m, &g, gid, &units).unwrap();
            let index = GroupLayers::new(&m, &g);
            assert_eq!(index.layer(gid), Some(layer), "{name}");
            assert!(index.layers(gid).contains(&node), "{name}");
            let by_layer = plan(&m, &g, &m.graph.node(node).name, &[1, 3]).unwrap();
            assert_eq!(by_units, by_layer, "{name}");
        }
    }

    #[test]
    fn the_index_agrees_with_the_scan_on_every_zoo_group() {
        for (name, proto) in zoo::all() {
            let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
            let shapes = shears_onnx::InputShapes::dynamic_as(&m.graph, 1);
            shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
            let g = DependencyGraph::build(&m);
            let index = GroupLayers::new(&m, &g);
            for grp in &g.groups {
                assert_eq!(index.layer(grp.id), group_layer(&m, &g, grp.id), "{name}");
                let scanned: Vec<NodeId> = m
                    .graph
                    .node_ids()
                    .filter(|&id| {
                        let d = g.verdicts[id.index()]
                            .as_ref()
                            .ok()
                            .and_then(|c| c.out_channels)
                            .and_then(|(v, a)| g.dim_id(DimKey::Axis(v, a)));
                        d.is_some_and(|d| grp.dims.binary_search(&d).is_ok())
                    })
                    .collect();
                assert_eq!(index.layers(grp.id), &scanned[..], "{name}");
            }
        }
    }
}
