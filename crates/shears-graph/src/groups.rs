//! From atoms to units and groups, after all links are in.

use std::collections::HashSet;

use crate::graph::{Classes, DimId, DimInfo, DimKey, Group, GroupId, UnitId, UnitTables};
use crate::rules::Coupling;
use crate::union_find::UnionFind;
use rustc_hash::FxHashMap;

/// Whether a dim can make its units a group: a parameter axis that some rule ties to something
/// (a kernel axis that no rule maps is a parameter axis, but not channels) and that is longer
/// than 1. A parameter axis of size 1 is a batch or broadcast axis, or a scalar constant (the
/// `1/sqrt(d)` of an attention scale): it carries no channel, and a group made only of such
/// axes could never lose a channel anyway.
fn is_channel_axis(info: &DimInfo) -> bool {
    info.is_param && !info.linked_by.is_empty() && info.size > 1
}

/// Forms units (connected class atoms, numbered by first atom) and groups (units touching the
/// same dims, kept when one of them is a channel axis), in passes over the class atoms.
///
/// A unit touches every dim of each class it has an atom in, so two units touch the same dims
/// exactly when they touch the same classes: the classes (ascending, as the unit's atoms are)
/// are the group key, and a group's dims are worked out once, for its first unit.
pub(crate) fn form_units_and_groups(
    dims: &[DimInfo],
    dim_of: &FxHashMap<DimKey, DimId>,
    verdicts: &[Result<Coupling, String>],
    classes: &Classes,
    uf: &mut UnionFind,
) -> UnitTables {
    let n = uf.len();
    let mut unit_of_root: Vec<u32> = vec![u32::MAX; n];
    let mut unit_of_class_atom = Vec::with_capacity(n);
    let mut counts: Vec<u32> = Vec::with_capacity(n);
    for a in 0..n as u32 {
        let r = uf.find(a) as usize;
        if unit_of_root[r] == u32::MAX {
            unit_of_root[r] = counts.len() as u32;
            counts.push(0);
        }
        let u = unit_of_root[r];
        counts[u as usize] += 1;
        unit_of_class_atom.push(u);
    }
    drop(unit_of_root);
    let units = counts.len();

    // Each unit's classes: class atoms ascend with their classes, so the list comes out sorted
    // (deduplicated per unit below).
    let mut start = Vec::with_capacity(units + 1);
    start.push(0u32);
    let mut acc = 0;
    for c in &counts {
        acc += c;
        start.push(acc);
    }
    let mut fill = start.clone();
    let mut unit_classes = vec![0u32; n];
    for c in 0..classes.count() as u32 {
        for a in classes.atoms(c) {
            let u = unit_of_class_atom[a as usize] as usize;
            unit_classes[fill[u] as usize] = c;
            fill[u] += 1;
        }
    }

    // A relay (the DequantizeLinear of a stored weight) links every axis of the weight to its
    // output; a kernel axis it alone links is still not a channel: some other node must link
    // the class, as a layer does its weight's channel axes.
    let relay = |n: &shears_onnx::NodeId| verdicts[n.index()].as_ref().is_ok_and(|c| c.relay);
    let class_has_channel: Vec<bool> = (0..classes.count() as u32)
        .map(|c| {
            let ds = classes.dims(c);
            ds.iter().any(|&d| is_channel_axis(&dims[d as usize]))
                && ds
                    .iter()
                    .any(|&d| dims[d as usize].linked_by.iter().any(|n| !relay(n)))
        })
        .collect();

    // Output-channel axes that name groups.
    let mut out_channel_dims: HashSet<DimId> = HashSet::new();
    for c in verdicts.iter().flatten() {
        if let Some((v, a)) = c.out_channels {
            if let Some(&d) = dim_of.get(&DimKey::Axis(v, a)) {
                out_channel_dims.insert(d);
            }
        }
    }

    let mut group_of_key: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut unit_group = vec![u32::MAX; units];
    let mut key: Vec<u32> = Vec::new(); // reused: most units repeat a known key
    for u in 0..units {
        key.clear();
        key.extend_from_slice(&unit_classes[start[u] as usize..start[u + 1] as usize]);
        key.dedup();
        if !key.iter().any(|&c| class_has_channel[c as usize]) {
            continue;
        }
        let gid = match group_of_key.get(key.as_slice()) {
            Some(&gid) => gid,
            None => {
                let gid = groups.len() as u32;
                group_of_key.insert(key.clone(), gid);
                groups.push(new_group(gid, &key, dims, classes, &out_channel_dims));
                gid
            }
        };
        groups[gid as usize].units.push(UnitId(u as u32));
        unit_group[u] = gid;
    }
    UnitTables {
        unit_of_class_atom,
        unit_group,
        groups,
    }
}

/// A group touching the dims of `classes_touched`: its sorted dims, root and blockers.
fn new_group(
    gid: u32,
    classes_touched: &[u32],
    dims: &[DimInfo],
    classes: &Classes,
    out_channel_dims: &HashSet<DimId>,
) -> Group {
    let mut sig: Vec<DimId> = classes_touched
        .iter()
        .flat_map(|&c| classes.dims(c).iter().map(|&d| DimId(d)))
        .collect();
    sig.sort_unstable();
    let root = sig
        .iter()
        .copied()
        .find(|d| out_channel_dims.contains(d))
        .or_else(|| {
            sig.iter()
                .copied()
                .find(|&d| is_channel_axis(&dims[d.0 as usize]))
        })
        .expect("a group's key has a channel axis");
    let mut blockers = Vec::new();
    for &d in &sig {
        for f in &dims[d.0 as usize].fixes {
            blockers.push((d, f.clone()));
        }
    }
    Group {
        id: GroupId(gid),
        dims: sig,
        units: Vec::new(),
        root,
        blockers,
    }
}
