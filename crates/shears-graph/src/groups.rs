//! From atoms to units and groups, after all links are in.

use std::collections::{HashMap, HashSet};

use shears_onnx::Model;

use crate::graph::{DependencyGraph, DimId, DimKey, Group, GroupId, UnitTables};
use crate::union_find::UnionFind;

/// Whether a dim can make its units a group: a parameter axis that some rule ties to something
/// (a kernel axis that no rule maps is a parameter axis, but not channels) and that is longer
/// than 1. A parameter axis of size 1 is a batch or broadcast axis, or a scalar constant (the
/// `1/sqrt(d)` of an attention scale): it carries no channel, and a group made only of such
/// axes could never lose a channel anyway.
fn is_channel_axis(info: &crate::graph::DimInfo) -> bool {
    info.is_param && !info.linked_by.is_empty() && info.size > 1
}

/// Forms units (connected atoms, numbered by first atom) and groups (units with the same dims,
/// kept when they touch a parameter), in one pass over the atoms.
pub(crate) fn form_units_and_groups(g: &mut DependencyGraph, uf: &mut UnionFind, model: &Model) {
    let n = g.atom_count();
    let mut unit_of_root: Vec<u32> = vec![u32::MAX; n];
    let mut unit_of_atom = Vec::with_capacity(n);
    let mut counts: Vec<u32> = Vec::new();
    for a in 0..n as u32 {
        let r = uf.find(a) as usize;
        if unit_of_root[r] == u32::MAX {
            unit_of_root[r] = counts.len() as u32;
            counts.push(0);
        }
        let u = unit_of_root[r];
        counts[u as usize] += 1;
        unit_of_atom.push(u);
    }
    let units = counts.len();
    let mut unit_atom_start = Vec::with_capacity(units + 1);
    let mut acc = 0u32;
    unit_atom_start.push(0);
    for c in &counts {
        acc += c;
        unit_atom_start.push(acc);
    }
    let mut fill = unit_atom_start.clone();
    let mut unit_atoms = vec![0u32; n];
    for (a, &u) in unit_of_atom.iter().enumerate() {
        unit_atoms[fill[u as usize] as usize] = a as u32;
        fill[u as usize] += 1;
    }

    // Output-channel axes that name groups.
    let mut out_channel_dims: HashSet<DimId> = HashSet::new();
    for c in g.verdicts.iter().flatten() {
        if let Some((v, a)) = c.out_channels {
            if let Some(d) = g.dim_id(DimKey::Axis(v, a)) {
                out_channel_dims.insert(d);
            }
        }
    }

    let atom_dims = g.atom_dims();
    let mut group_of_sig: HashMap<Vec<DimId>, u32> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut unit_group = vec![u32::MAX; units];
    for u in 0..units {
        let atoms = &unit_atoms[unit_atom_start[u] as usize..unit_atom_start[u + 1] as usize];
        let mut sig: Vec<DimId> = atoms
            .iter()
            .map(|&a| DimId(atom_dims[a as usize]))
            .collect();
        sig.dedup(); // atoms ascend, and so do their dims
        if !sig.iter().any(|&d| is_channel_axis(&g.dims[d.0 as usize])) {
            continue;
        }
        let next = groups.len() as u32;
        let gid = *group_of_sig.entry(sig.clone()).or_insert(next);
        if gid == next {
            let root = sig
                .iter()
                .copied()
                .find(|d| out_channel_dims.contains(d))
                .or_else(|| {
                    sig.iter()
                        .copied()
                        .find(|&d| is_channel_axis(&g.dims[d.0 as usize]))
                })
                .expect("signature has a parameter");
            let mut blockers = Vec::new();
            for &d in &sig {
                for f in &g.dims[d.0 as usize].fixes {
                    blockers.push((d, f.clone()));
                }
            }
            groups.push(Group {
                id: GroupId(next),
                dims: sig,
                units: Vec::new(),
                root,
                blockers,
            });
        }
        groups[gid as usize]
            .units
            .push(crate::graph::UnitId(u as u32));
        unit_group[u] = gid;
    }
    let _ = model;
    g.set_units(UnitTables {
        unit_of_atom,
        unit_atom_start,
        unit_atoms,
        unit_group,
        groups,
    });
}
