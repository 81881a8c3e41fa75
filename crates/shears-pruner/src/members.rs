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
    // A member dim's indices are read in order, each mapped to its unit's position in the
    // group (units are sorted); indices of units outside the group (a Concat's other
    // segments) are not this group's.
    for m in &mut out {
        for i in 0..graph.dim(m.dim).size {
            let Some(u) = graph.unit_at(m.dim, i) else {
                continue;
            };
            if let Ok(k) = group.units.binary_search(&u) {
                m.unit_indices[k].push(i as u32);
            }
        }
    }
    out
}
