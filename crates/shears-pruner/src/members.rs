//! The tensor slices each unit of a group owns: per member dim of the group, the indices of that
//! axis that belong to each unit.

use shears_graph::{DependencyGraph, DimId, DimKey, Group, UnitId};
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
    pub unit_indices: UnitIndices,
}

/// The indices of one member axis that each unit of a group owns, stored flat: one index array
/// with every unit's indices back to back and one start offset per unit, rather than one
/// allocation per unit (a decoder's groups have thousands of units and hundreds of members).
///
/// Invariant: `starts.len()` is the unit count plus one, `starts` ascends from 0 to
/// `indices.len()`, and unit `k` owns `indices[starts[k]..starts[k + 1]]`, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitIndices {
    indices: Vec<u32>,
    starts: Vec<u32>,
}

impl UnitIndices {
    /// Built from the unit position (`Some(k)`, `k < units`) of each index of the axis in
    /// order, `None` for indices of no unit of the group; each unit's indices ascend.
    pub fn from_positions(units: usize, positions: &[Option<u32>]) -> UnitIndices {
        let mut starts = vec![0u32; units + 1];
        for &k in positions.iter().flatten() {
            starts[k as usize + 1] += 1;
        }
        for k in 0..units {
            starts[k + 1] += starts[k];
        }
        let mut fill: Vec<u32> = starts[..units].to_vec();
        let mut indices = vec![0u32; starts[units] as usize];
        for (i, &k) in positions.iter().enumerate() {
            if let Some(k) = k {
                let at = &mut fill[k as usize];
                indices[*at as usize] = i as u32;
                *at += 1;
            }
        }
        UnitIndices { indices, starts }
    }

    /// How many units (not indices) there are.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Whether there is no unit.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indices unit `k` owns, ascending.
    pub fn unit(&self, k: usize) -> &[u32] {
        &self.indices[self.starts[k] as usize..self.starts[k + 1] as usize]
    }

    /// Every unit's indices, in unit order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.len()).map(move |k| self.unit(k))
    }
}

impl std::ops::Index<usize> for UnitIndices {
    type Output = [u32];
    fn index(&self, k: usize) -> &[u32] {
        self.unit(k)
    }
}

/// The value-axis member dims of `group` (virtual dims carry no tensor and are left out), with
/// their roles but without unit indices: what a caller needs to know which tensors a group
/// touches, at none of the cost of [`members`].
pub fn member_axes(
    model: &Model,
    graph: &DependencyGraph,
    group: &Group,
) -> Vec<(DimId, ValueId, usize, Option<ParamRole>)> {
    member_axes_with(graph, group, |v| param_role(model, graph, v))
}

/// [`member_axes`] with each parameter's role given by `role` (for a caller that looks each
/// up once over many groups: a weight is a member of the group it produces and of the one it
/// reads).
pub fn member_axes_with(
    graph: &DependencyGraph,
    group: &Group,
    mut role: impl FnMut(ValueId) -> ParamRole,
) -> Vec<(DimId, ValueId, usize, Option<ParamRole>)> {
    group
        .dims
        .iter()
        .filter_map(|&d| {
            let info = graph.dim(d);
            let DimKey::Axis(value, axis) = info.key else {
                return None;
            };
            Some((d, value, axis, info.is_param.then(|| role(value))))
        })
        .collect()
}

/// Every value-axis member of `group` (virtual dims carry no tensor and are left out).
pub fn members(model: &Model, graph: &DependencyGraph, group: &Group) -> Vec<Member> {
    members_with(graph, group, |v| param_role(model, graph, v))
}

/// [`members`] with each parameter's role given by `role` (see [`member_axes_with`]).
pub fn members_with(
    graph: &DependencyGraph,
    group: &Group,
    role: impl FnMut(ValueId) -> ParamRole,
) -> Vec<Member> {
    // A member dim's indices are read in order, each mapped to its unit's position in the
    // group (units are sorted); indices of units outside the group (a Concat's other
    // segments) are not this group's. Dims of one class have the same unit at every index,
    // so each class is mapped once (a layer's weight, bias, norm parameters and activations
    // usually share one).
    let mut positions: Vec<Option<u32>> = Vec::new();
    let mut by_class: Vec<(u32, UnitIndices)> = Vec::new();
    member_axes_with(graph, group, role)
        .into_iter()
        .map(|(dim, value, axis, role)| {
            let class = graph.dim_class(dim);
            let unit_indices =
                match by_class.iter().find(|(c, _)| *c == class) {
                    Some((_, u)) => u.clone(),
                    None => {
                        positions.clear();
                        positions.extend(graph.dim_units(dim).iter().map(|&u| {
                            group.units.binary_search(&UnitId(u)).ok().map(|k| k as u32)
                        }));
                        let u = UnitIndices::from_positions(group.units.len(), &positions);
                        by_class.push((class, u.clone()));
                        u
                    }
                };
            Member {
                dim,
                value,
                axis,
                role,
                unit_indices,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_indices_group_by_unit_in_order() {
        let u = UnitIndices::from_positions(3, &[Some(2), None, Some(0), Some(2), Some(0)]);
        assert_eq!(u.len(), 3);
        assert_eq!(&u[0], &[2, 4]);
        assert_eq!(&u[1], &[] as &[u32]);
        assert_eq!(&u[2], &[0, 3]);
        let all: Vec<&[u32]> = u.iter().collect();
        assert_eq!(all, vec![&[2u32, 4][..], &[][..], &[0, 3][..]]);
        assert!(UnitIndices::from_positions(0, &[None]).is_empty());
    }
}
