//! The tensor slices each unit of a group owns: per member dim of the group, the indices of that
//! axis that belong to each unit.

use shears_graph::{DependencyGraph, DimId, DimKey, Group};
use shears_onnx::{Model, ValueId};

use crate::roles::{param_role, ParamRole};

/// One axis of one tensor in a group.
///
/// Invariant: `unit_indices.len()` is the group's unit count, in the group's unit order, and
/// every unit owns at least one index (all units of a group touch the same dims).
#[derive(Clone, Debug)]
pub struct Member {
    pub dim: DimId,
    pub value: ValueId,
    pub axis: usize,
    /// `None` for activations.
    pub role: Option<ParamRole>,
    pub unit_indices: Vec<Vec<u32>>,
}

/// Every value-axis member of `group` (virtual dims carry no tensor and are left out).
pub fn members(model: &Model, graph: &DependencyGraph, group: &Group) -> Vec<Member> {
    let mut out: Vec<Member> = group
        .dims
        .iter()
        .filter_map(|&d| {
            let info = graph.dim(d);
            let DimKey::Axis(value, axis) = info.key else {
                return None;
            };
            Some(Member {
                dim: d,
                value,
                axis,
                role: info.is_param.then(|| param_role(model, graph, value)),
                unit_indices: vec![Vec::new(); group.units.len()],
            })
        })
        .collect();
    // `out` follows `group.dims`, which is sorted: binary search finds a dim's member.
    let dims: Vec<DimId> = out.iter().map(|m| m.dim).collect();
    for (k, &u) in group.units.iter().enumerate() {
        for &a in graph.unit_atoms(u) {
            let d = graph.atom_dim(a);
            if let Ok(m) = dims.binary_search(&d) {
                out[m].unit_indices[k].push(a - graph.dim(d).atom_start);
            }
        }
    }
    out
}
