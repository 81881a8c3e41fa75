//! Layout ops: Transpose, Concat, Split, Slice, Shape, Squeeze, Unsqueeze, Gather, Pad, Resize,
//! Expand, Constant.
//!
//! Spec notes by op (opset differences in brackets):
//! - Transpose: output axis i is input axis `perm[i]` (default: reversed).
//! - Concat: input k occupies `[offset_k, offset_k + size_k)` of `axis`; other axes shared.
//! - Split: output k is `[offset_k, offset_k + size_k)` of `axis` [sizes: attribute < 13,
//!   input 1 from 13, `num_outputs` from 18]. Sizes are read from the output shapes. Implicit
//!   sizes (equal parts, or `num_outputs`' `ceil(n / k)` parts) stay implicit when a cut leaves
//!   them what the spec's rule gives, and are written out explicitly otherwise.
//! - Slice: [starts/ends/axes attributes < 10, inputs (starts, ends, axes, steps) from 10].
//!   Output index i of a sliced axis is input index `start + i·step`.
//! - Shape/Size read only the input's shape: no coupling, nothing fixed.
//! - Squeeze/Unsqueeze [axes attribute < 13, input from 13]: the surviving axes pass through.
//! - Gather: `Y = data` with `axis` replaced by the indices' axes. Constant indices along one
//!   axis select channels (`Y[j] = data[idx[j]]`); a scalar index removes the axis.
//! - GatherElements (opset 11+): `Y[i] = data[i with axis replaced by idx[i]]`; Y has the
//!   indices' shape. Other axes of data are Y's where the sizes agree; data's `axis` is fixed
//!   (the indices point into it). Runtime indices share every axis with Y; constant indices
//!   are rewritten instead (the slices of the removed channels dropped).
//! - GatherND [batch_dims from 12]: `Y = indices[..q-1] ++ data[b+k..]`, the last indices axis
//!   holding `k` coordinates into data's axes `b..b+k`. Data's trailing axes pass into Y; its
//!   indexed axes are fixed (the indices point into them). The `b` batch axes and runtime
//!   indices' own axes are Y's; constant indices are not rewritten, so Y's leading axes then
//!   keep their size.
//! - Pad [pads attribute < 11, input from 11, `axes` input from 18]: unpadded axes pass through.
//! - Resize [inputs X, roi, scales, sizes from 11; X, scales in 10]: axes whose size does not
//!   change pass through; a constant `sizes` entry is rewritten.
//! - Expand: numpy broadcast of X to `shape`; a constant `shape` entry is rewritten.
//! - Constant, ConstantOfShape: sources; their outputs' axes are not constrained (ConstantOfShape's
//!   input is a shape, read as values: a literal entry is rewritten when its axis loses
//!   channels, an entry computed from constants fixes its axis).

use std::sync::Arc;

use shears_onnx::{NodeId, ValueId};

use super::norm::normalize_axis;
use super::{Coupling, Ctx, DimRef, Link, OpRule, Removed, Rewrite, RuleResult};
use crate::channel_map::ChannelMap;

pub static TRANSPOSE: OpRule = OpRule {
    ops: &["Transpose"],
    couple: couple_transpose,
    rewrite: None,
};
pub static CONCAT: OpRule = OpRule {
    ops: &["Concat"],
    couple: couple_concat,
    rewrite: None,
};
pub static SPLIT: OpRule = OpRule {
    ops: &["Split"],
    couple: couple_split,
    rewrite: Some(rewrite_split),
};
pub static SLICE: OpRule = OpRule {
    ops: &["Slice"],
    couple: couple_slice,
    rewrite: Some(rewrite_slice),
};
pub static SHAPE: OpRule = OpRule {
    ops: &["Shape", "Size"],
    couple: couple_shape,
    rewrite: None,
};
pub static SQUEEZE: OpRule = OpRule {
    ops: &["Squeeze"],
    couple: couple_squeeze,
    rewrite: None,
};
pub static UNSQUEEZE: OpRule = OpRule {
    ops: &["Unsqueeze"],
    couple: couple_unsqueeze,
    rewrite: None,
};
pub static GATHER: OpRule = OpRule {
    ops: &["Gather"],
    couple: couple_gather,
    rewrite: Some(rewrite_gather),
};
pub static GATHER_ELEMENTS: OpRule = OpRule {
    ops: &["GatherElements"],
    couple: couple_gather_elements,
    rewrite: Some(rewrite_gather_elements),
};
pub static GATHER_ND: OpRule = OpRule {
    ops: &["GatherND"],
    couple: couple_gather_nd,
    rewrite: None,
};
pub static PAD: OpRule = OpRule {
    ops: &["Pad"],
    couple: couple_pad,
    rewrite: None,
};
pub static RESIZE: OpRule = OpRule {
    ops: &["Resize", "Upsample"],
    couple: couple_same_sized_axes,
    rewrite: Some(rewrite_resize),
};
pub static EXPAND: OpRule = OpRule {
    ops: &["Expand"],
    couple: couple_expand,
    rewrite: Some(rewrite_expand),
};
pub static CONSTANT: OpRule = OpRule {
    ops: &["Constant", "ConstantOfShape"],
    couple: |ctx| {
        Ok(Coupling {
            source: true,
            // ConstantOfShape reads its input's values as a shape, not as data.
            shape_only: (0..ctx.node.inputs.len()).collect(),
            // Its axes follow removed channels through the shape's literal entries.
            fixed: unrewritable_entries(ctx, 0, |k, _| Some(k)),
            ..Default::default()
        })
    },
    rewrite: Some(rewrite_constant_of_shape),
};

fn data_io(ctx: &Ctx) -> Result<(shears_onnx::ValueId, shears_onnx::ValueId), String> {
    Ok((
        ctx.input(0).ok_or("input is missing")?,
        ctx.output(0).ok_or("output is missing")?,
    ))
}

fn couple_transpose(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let rank = ctx.in_shape(0)?.len();
    let perm: Vec<usize> = match ctx.node.attr_ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| normalize_axis(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).rev().collect(),
    };
    if perm.len() != rank {
        return Err(format!("perm {perm:?} does not match rank {rank}"));
    }
    Ok(Coupling {
        links: perm
            .iter()
            .enumerate()
            .map(|(i, &p)| Link::identity((x, p), (y, i)))
            .collect(),
        ..Default::default()
    })
}

// Axes are positions in two shapes at once; an index loop says that most plainly.
#[allow(clippy::needless_range_loop)]
fn couple_concat(ctx: &Ctx) -> RuleResult {
    let y = ctx.output(0).ok_or("output is missing")?;
    let ys = ctx.out_shape(0)?;
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), ys.len())?;
    let mut out = Coupling::default();
    let mut offset = 0;
    for slot in 0..ctx.node.inputs.len() {
        let Some(x) = ctx.input(slot) else { continue };
        let xs = ctx.in_shape(slot)?;
        if xs.len() != ys.len() {
            return Err(format!("input {slot} rank differs from the output's"));
        }
        for ax in 0..ys.len() {
            if ax == axis {
                if xs[ax] > 0 {
                    out.links.push(Link::new(
                        DimRef::Axis(x, ax),
                        DimRef::Axis(y, ax),
                        ChannelMap::Offset {
                            a_start: 0,
                            b_start: offset,
                            len: xs[ax],
                        },
                    ));
                }
                offset += xs[ax];
            } else {
                out.links.push(Link::identity((x, ax), (y, ax)));
            }
        }
    }
    if offset != ys[axis] {
        return Err(format!(
            "inputs cover {offset} of {} along axis {axis}",
            ys[axis]
        ));
    }
    Ok(out)
}

#[allow(clippy::needless_range_loop)]
fn couple_split(ctx: &Ctx) -> RuleResult {
    let (x, _) = data_io(ctx)?;
    let xs = ctx.in_shape(0)?;
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
    let mut out = Coupling::default();
    if ctx.input(1).is_some() {
        out.shape_only.push(1);
    }
    let mut offset = 0;
    for slot in 0..ctx.node.outputs.len() {
        let Some(y) = ctx.output(slot) else { continue };
        let ys = ctx.out_shape(slot)?;
        for ax in 0..xs.len() {
            if ax == axis {
                if ys[ax] > 0 {
                    out.links.push(Link::new(
                        DimRef::Axis(y, ax),
                        DimRef::Axis(x, ax),
                        ChannelMap::Offset {
                            a_start: 0,
                            b_start: offset,
                            len: ys[ax],
                        },
                    ));
                }
                offset += ys[ax];
            } else {
                out.links.push(Link::identity((x, ax), (y, ax)));
            }
        }
    }
    if offset != xs[axis] {
        return Err(format!(
            "outputs cover {offset} of {} along axis {axis}",
            xs[axis]
        ));
    }
    // What the rewrite could not write is found here, so the groups through it are blocked
    // rather than refused when planned. Implicit sizes (equal parts, `num_outputs`) are made
    // explicit by the rewrite when a cut leaves them unequal, so only computed sizes block.
    if ctx.node.attr_ints("split").is_none() {
        if let Some(v) = ctx.input(1) {
            if ctx.const_ints(1).is_none() {
                out.fixed.push((
                    x,
                    axis,
                    format!(
                        "takes its split sizes '{}' from a computation, which cannot follow removed channels",
                        ctx.model.graph.value(v).name
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The sizes an implicit Split (no sizes given) makes of an axis of `dim` into `n` parts:
/// equal parts, or with `num_outputs` (opset 18) parts of `ceil(dim / n)` and a smaller last
/// one. `None` when the spec allows no such split.
fn implicit_split(dim: usize, n: usize, num_outputs: bool) -> Option<Vec<usize>> {
    if n == 0 {
        return None;
    }
    if !num_outputs {
        return dim.is_multiple_of(n).then(|| vec![dim / n; n]);
    }
    let chunk = dim.div_ceil(n);
    let last = dim.checked_sub(chunk * (n - 1))?;
    let mut s = vec![chunk; n - 1];
    s.push(last);
    Some(s)
}

/// Split sizes shrink by the channels removed from each output.
fn rewrite_split(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let sizes: Vec<usize> = (0..ctx.node.outputs.len())
        .map(|s| ctx.out_shape(s).map(|sh| sh.to_vec()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|sh| {
            let xs = ctx.in_shape(0)?;
            let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
            Ok::<usize, String>(sh[axis])
        })
        .collect::<Result<_, _>>()?;
    let xs = ctx.in_shape(0)?;
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
    let gone: Vec<usize> = (0..ctx.node.outputs.len())
        .map(|s| ctx.output(s).map_or(0, |y| removed.removed(y, axis).len()))
        .collect();
    if gone.iter().all(|&g| g == 0) {
        return Ok(Vec::new());
    }
    let old: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
    let new: Vec<i64> = sizes
        .iter()
        .zip(&gone)
        .map(|(&s, &g)| (s - g) as i64)
        .collect();
    let name = ctx.node.name.clone();
    if ctx.node.attr_ints("split").is_some() {
        return Ok(vec![Rewrite::AttrInts {
            node: name,
            attr: "split".into(),
            old,
            new,
        }]);
    }
    if let Some(v) = ctx.input(1) {
        let tensor = ctx.model.graph.value(v).name.clone();
        if ctx.const_ints(1).is_none() {
            return Err(format!(
                "split sizes '{tensor}' are computed, not a constant"
            ));
        }
        let n = new.len();
        return Ok(vec![Rewrite::ConstInts {
            node: name,
            slot: 1,
            tensor,
            old,
            new,
            new_dims: vec![n],
        }]);
    }
    // Implicit sizes: kept when the spec's rule still gives the new sizes (equal heads cut from
    // every part), otherwise written out.
    let total: i64 = new.iter().sum();
    let num_outputs = ctx.node.attr("num_outputs").is_some();
    let implicit = implicit_split(total as usize, new.len(), num_outputs);
    if implicit.is_some_and(|s| s.iter().zip(&new).all(|(&a, &b)| a as i64 == b)) {
        return Ok(Vec::new());
    }
    Ok(vec![Rewrite::SplitSizes {
        node: name,
        old,
        new,
    }])
}

/// Per sliced axis: (axis, start, step, output size), normalized and clamped as the spec says.
struct SliceAxis {
    axis: usize,
    start: usize,
    step: i64,
    len: usize,
    /// The end bound reaches the end of the axis (and stays there whatever is removed).
    to_end: bool,
}

fn slice_params(ctx: &Ctx) -> Result<Vec<SliceAxis>, String> {
    let xs = ctx.in_shape(0)?;
    let ys = ctx.out_shape(0)?;
    let (starts, ends, axes, steps) = if ctx.opset() < 10 {
        let starts = ctx.node.attr_ints("starts").ok_or("no starts")?.to_vec();
        let ends = ctx.node.attr_ints("ends").ok_or("no ends")?.to_vec();
        let axes = ctx.node.attr_ints("axes").map(|a| a.to_vec());
        (starts, ends, axes, None)
    } else {
        let starts = ctx.folded(1).ok_or("starts are not constant")?.to_vec();
        let ends = ctx.folded(2).ok_or("ends are not constant")?.to_vec();
        let axes = match ctx.input(3) {
            Some(_) => Some(ctx.folded(3).ok_or("axes are not constant")?.to_vec()),
            None => None,
        };
        let steps = match ctx.input(4) {
            Some(_) => Some(ctx.folded(4).ok_or("steps are not constant")?.to_vec()),
            None => None,
        };
        (starts, ends, axes, steps)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let mut out = Vec::new();
    for (k, &a) in axes.iter().enumerate() {
        let axis = normalize_axis(a, xs.len())?;
        let dim = xs[axis] as i64;
        let step = steps.as_ref().map_or(1, |s| s[k]);
        if step == 0 {
            return Err("step 0".into());
        }
        let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let norm = |v: i64| if v < 0 { v + dim } else { v };
        let start = if step > 0 {
            clamp(norm(starts[k]), 0, dim)
        } else {
            clamp(norm(starts[k]), 0, dim - 1)
        };
        let len = ys[axis];
        out.push(SliceAxis {
            axis,
            start: start as usize,
            step,
            len,
            to_end: ends[k] >= dim && start + len as i64 >= dim,
        });
    }
    Ok(out)
}

fn couple_slice(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let rank = ctx.in_shape(0)?.len();
    let sliced = slice_params(ctx)?;
    let mut out = Coupling {
        shape_only: (1..ctx.node.inputs.len()).collect(),
        ..Default::default()
    };
    // Bounds the rewrite would have to move but cannot: found here, so the groups through
    // them are blocked rather than refused when planned.
    for s in &sliced {
        if s.step != 1 {
            let why = format!(
                "slices this axis with step {}; its bounds cannot follow removed channels",
                s.step
            );
            out.fixed.push((x, s.axis, why));
            continue;
        }
        if ctx.opset() < 10 {
            continue; // attribute bounds are always rewritable
        }
        for (slot, what, moves) in [(1, "starts", s.start > 0), (2, "ends", !s.to_end)] {
            if moves && ctx.const_ints(slot).is_none() {
                let name = ctx
                    .input(slot)
                    .map_or(String::new(), |v| ctx.model.graph.value(v).name.clone());
                out.fixed.push((
                    x,
                    s.axis,
                    format!("has computed {what} '{name}', which cannot follow removed channels"),
                ));
            }
        }
    }
    for ax in 0..rank {
        match sliced.iter().find(|s| s.axis == ax) {
            None => out.links.push(Link::identity((x, ax), (y, ax))),
            Some(s) if s.len == 0 => {}
            Some(s) if s.step == 1 => out.links.push(Link::new(
                DimRef::Axis(y, ax),
                DimRef::Axis(x, ax),
                ChannelMap::Offset {
                    a_start: 0,
                    b_start: s.start,
                    len: s.len,
                },
            )),
            Some(s) => {
                let table: Vec<u32> = (0..s.len as i64)
                    .map(|i| (s.start as i64 + i * s.step) as u32)
                    .collect();
                out.links.push(Link::new(
                    DimRef::Axis(y, ax),
                    DimRef::Axis(x, ax),
                    ChannelMap::Table(Arc::from(table)),
                ))
            }
        }
    }
    Ok(out)
}

/// Slice bounds move down by the channels removed before them.
fn rewrite_slice(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let x = ctx.input(0).ok_or("input is missing")?;
    let sliced = slice_params(ctx)?;
    let xs = ctx.in_shape(0)?;
    let mut new_starts: Option<Vec<i64>> = None;
    let mut new_ends: Option<Vec<i64>> = None;
    let (starts, ends) = if ctx.opset() < 10 {
        (
            ctx.node.attr_ints("starts").unwrap_or_default().to_vec(),
            ctx.node.attr_ints("ends").unwrap_or_default().to_vec(),
        )
    } else {
        (
            ctx.folded(1).unwrap_or_default().to_vec(),
            ctx.folded(2).unwrap_or_default().to_vec(),
        )
    };
    for (k, s) in sliced.iter().enumerate() {
        let gone = removed.removed(x, s.axis);
        if gone.is_empty() {
            continue;
        }
        if s.step != 1 {
            return Err("cannot move the bounds of a strided slice".into());
        }
        let before = |p: usize| gone.iter().filter(|&&g| (g as usize) < p).count();
        let end = s.start + s.len;
        let dim = xs[s.axis];
        let ns = new_starts.get_or_insert_with(|| starts.clone());
        let ne = new_ends.get_or_insert_with(|| ends.clone());
        ns[k] = (s.start - before(s.start)) as i64;
        ne[k] = if end >= dim && ends[k] >= dim as i64 {
            ends[k] // "to the end" stays "to the end"
        } else {
            (end - before(end)) as i64
        };
    }
    let mut out = Vec::new();
    let name = &ctx.node.name;
    for (slot, attr, old, new) in [
        (1, "starts", &starts, new_starts),
        (2, "ends", &ends, new_ends),
    ] {
        let Some(new) = new else { continue };
        if &new == old {
            continue;
        }
        if ctx.opset() < 10 {
            out.push(Rewrite::AttrInts {
                node: name.clone(),
                attr: attr.into(),
                old: old.clone(),
                new,
            });
        } else {
            let v = ctx.input(slot).ok_or("slice bound input missing")?;
            let tensor = ctx.model.graph.value(v).name.clone();
            if ctx.const_ints(slot).is_none() {
                return Err(format!(
                    "slice {attr} '{tensor}' are computed, not a constant"
                ));
            }
            let n = new.len();
            out.push(Rewrite::ConstInts {
                node: name.clone(),
                slot,
                tensor,
                old: old.clone(),
                new,
                new_dims: vec![n],
            });
        }
    }
    Ok(out)
}

/// Shape reads no data, but when the sizes it reads become numbers in float arithmetic (the
/// `1/sqrt(head_dim)` attention scale of TorchScript exports), pruning changes the numerics:
/// the input's axes are then marked as mixed.
fn couple_shape(ctx: &Ctx) -> RuleResult {
    let mut out = Coupling {
        shape_only: vec![0],
        ..Default::default()
    };
    if let (Some(x), Some(y)) = (ctx.input(0), ctx.output(0)) {
        if reaches_float_cast(ctx, y, 6) {
            let rank = ctx.shape(x).map_or(0, |s| s.len());
            out.mixing.extend((0..rank).map(|a| (x, a)));
        }
    }
    Ok(out)
}

fn reaches_float_cast(ctx: &Ctx, v: shears_onnx::ValueId, depth: usize) -> bool {
    use shears_onnx::proto::tensor_proto::DataType as D;
    if depth == 0 {
        return false;
    }
    let g = &ctx.model.graph;
    g.value(v).consumers.iter().any(|&(c, _)| {
        let n = g.node(c);
        match n.op_type.as_str() {
            "Cast" => [D::Float, D::Float16, D::Bfloat16, D::Double]
                .iter()
                .any(|&d| n.attr_i("to", 0) == d as i64),
            "Gather" | "Slice" | "Squeeze" | "Unsqueeze" | "Concat" | "Identity" => n
                .output(0)
                .is_some_and(|o| reaches_float_cast(ctx, o, depth - 1)),
            _ => false,
        }
    })
}

fn squeeze_axes(ctx: &Ctx, rank: usize) -> Result<Option<Vec<usize>>, String> {
    let raw = if let Some(a) = ctx.node.attr_ints("axes") {
        Some(a.to_vec())
    } else if ctx.input(1).is_some() {
        Some(ctx.folded(1).ok_or("axes are not constant")?.to_vec())
    } else {
        None
    };
    raw.map(|r| r.iter().map(|&a| normalize_axis(a, rank)).collect())
        .transpose()
}

fn couple_squeeze(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let xs = ctx.in_shape(0)?;
    let axes = squeeze_axes(ctx, xs.len())?
        .unwrap_or_else(|| (0..xs.len()).filter(|&a| xs[a] == 1).collect());
    let mut out = Coupling {
        shape_only: (1..ctx.node.inputs.len()).collect(),
        ..Default::default()
    };
    let mut oa = 0;
    for ax in 0..xs.len() {
        if !axes.contains(&ax) {
            out.links.push(Link::identity((x, ax), (y, oa)));
            oa += 1;
        }
    }
    Ok(out)
}

fn couple_unsqueeze(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let ys = ctx.out_shape(0)?;
    let axes = squeeze_axes(ctx, ys.len())?.ok_or("no axes")?;
    let mut out = Coupling {
        shape_only: (1..ctx.node.inputs.len()).collect(),
        ..Default::default()
    };
    let mut ia = 0;
    for oa in 0..ys.len() {
        if !axes.contains(&oa) {
            out.links.push(Link::identity((x, ia), (y, oa)));
            ia += 1;
        }
    }
    Ok(out)
}

/// The one axis of `idx_shape` longer than 1 (or the last axis when all are 1), if the indices
/// select along a single axis.
fn selection_axis(idx_shape: &[usize]) -> Option<usize> {
    let long: Vec<usize> = (0..idx_shape.len()).filter(|&a| idx_shape[a] > 1).collect();
    match long.as_slice() {
        [] => idx_shape.len().checked_sub(1),
        [a] => Some(*a),
        _ => None,
    }
}

fn couple_gather(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let idx = ctx.input(1).ok_or("indices are missing")?;
    let xs = ctx.in_shape(0)?;
    let is = ctx.in_shape(1)?;
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
    let mut out = Coupling::default();
    for ax in 0..axis {
        out.links.push(Link::identity((x, ax), (y, ax)));
    }
    for ax in axis + 1..xs.len() {
        out.links
            .push(Link::identity((x, ax), (y, ax - 1 + is.len())));
    }
    let constant = ctx.const_ints(1);
    match (constant, selection_axis(is)) {
        (Some(values), Some(j)) if !is.is_empty() => {
            // Constant indices select channels of data's axis: Y[axis + j][i] = X[axis][idx[i]].
            let dim = xs[axis] as i64;
            let table: Vec<u32> = values
                .iter()
                .map(|&v| {
                    let v = if v < 0 { v + dim } else { v };
                    u32::try_from(v).ok().filter(|&v| (v as i64) < dim)
                })
                .collect::<Option<_>>()
                .ok_or("index out of range")?;
            out.links.push(Link::new(
                DimRef::Axis(y, axis + j),
                DimRef::Axis(x, axis),
                ChannelMap::Table(Arc::from(table)),
            ));
            out.shape_only.push(1);
        }
        (Some(_), _) if is.is_empty() => out.shape_only.push(1),
        _ => {
            // Runtime indices: their own axes pass into Y; data's axis is consumed.
            for ia in 0..is.len() {
                out.links.push(Link::identity((idx, ia), (y, axis + ia)));
            }
        }
    }
    Ok(out)
}

fn couple_gather_elements(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let idx = ctx.input(1).ok_or("indices are missing")?;
    let xs = ctx.in_shape(0)?;
    let is = ctx.in_shape(1)?;
    if xs.len() != is.len() {
        return Err("data and indices ranks differ".into());
    }
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
    let constant = super::is_stored(ctx.model, idx);
    let mut out = Coupling::default();
    if constant {
        out.shape_only.push(1);
    }
    for a in 0..is.len() {
        if !constant {
            out.links.push(Link::identity((idx, a), (y, a)));
        }
        if a != axis && xs[a] == is[a] {
            out.links.push(Link::identity((x, a), (y, a)));
        }
    }
    Ok(out)
}

fn couple_gather_nd(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let idx = ctx.input(1).ok_or("indices are missing")?;
    let xs = ctx.in_shape(0)?;
    let is = ctx.in_shape(1)?;
    let ys = ctx.out_shape(0)?;
    let q = is.len();
    let k = *is.last().ok_or("indices are a scalar")?;
    let b = usize::try_from(ctx.node.attr_i("batch_dims", 0))
        .ok()
        .filter(|&b| b < q && b + k <= xs.len())
        .ok_or("batch_dims or the coordinate count do not fit the data")?;
    if ys.len() != q - 1 + xs.len() - b - k {
        return Err(format!(
            "output rank {} disagrees with the inputs",
            ys.len()
        ));
    }
    let mut out = Coupling::default();
    for a in b + k..xs.len() {
        out.links
            .push(Link::identity((x, a), (y, q - 1 + a - b - k)));
    }
    if super::is_stored(ctx.model, idx) {
        // Constant coordinates are positions along data's axes: nothing rewrites them, so the
        // batch axes and the picked rows keep their sizes.
        out.shape_only.push(1);
    } else {
        for a in 0..b {
            out.links.push(Link::identity((x, a), (y, a)));
        }
        for a in 0..q - 1 {
            out.links.push(Link::identity((idx, a), (y, a)));
        }
    }
    Ok(out)
}

/// Constant indices lose the slices of Y's removed channels (their values, positions along
/// data's fixed `axis`, do not change).
fn rewrite_gather_elements(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let y = ctx.output(0).ok_or("output is missing")?;
    let is = ctx.in_shape(1)?;
    let gone: Vec<&[u32]> = (0..is.len()).map(|a| removed.removed(y, a)).collect();
    if gone.iter().all(|g| g.is_empty()) {
        return Ok(Vec::new());
    }
    let Some(values) = ctx.const_ints(1) else {
        return Ok(Vec::new());
    };
    if values.len() != is.iter().product::<usize>() {
        return Err("indices do not match their shape".into());
    }
    let mut strides = vec![1usize; is.len()];
    for a in (0..is.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * is[a + 1];
    }
    let new: Vec<i64> = values
        .iter()
        .enumerate()
        .filter(|&(flat, _)| {
            (0..is.len()).all(|a| {
                let coord = ((flat / strides[a]) % is[a]) as u32;
                gone[a].binary_search(&coord).is_err()
            })
        })
        .map(|(_, &v)| v)
        .collect();
    let new_dims: Vec<usize> = is.iter().zip(&gone).map(|(&n, g)| n - g.len()).collect();
    let v = ctx.input(1).ok_or("indices are missing")?;
    Ok(vec![Rewrite::ConstInts {
        node: ctx.node.name.clone(),
        slot: 1,
        tensor: ctx.model.graph.value(v).name.clone(),
        old: values,
        new,
        new_dims,
    }])
}

/// Constant selection indices drop removed entries and renumber the rest.
fn rewrite_gather(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let x = ctx.input(0).ok_or("input is missing")?;
    let xs = ctx.in_shape(0)?;
    let axis = normalize_axis(ctx.node.attr_i("axis", 0), xs.len())?;
    let gone = removed.removed(x, axis);
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let Some(values) = ctx.const_ints(1) else {
        return Ok(Vec::new());
    };
    let is = ctx.in_shape(1)?;
    let j = selection_axis(is).ok_or("indices select along several axes")?;
    let dim = xs[axis] as i64;
    let mut new = Vec::new();
    for &v in &values {
        let v = if v < 0 { v + dim } else { v };
        if gone.binary_search(&(v as u32)).is_err() {
            new.push(v - gone.iter().filter(|&&g| (g as i64) < v).count() as i64);
        }
    }
    let mut new_dims = is.to_vec();
    new_dims[j] = new.len();
    let v = ctx.input(1).ok_or("indices are missing")?;
    Ok(vec![Rewrite::ConstInts {
        node: ctx.node.name.clone(),
        slot: 1,
        tensor: ctx.model.graph.value(v).name.clone(),
        old: values,
        new,
        new_dims,
    }])
}

fn couple_pad(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let rank = ctx.in_shape(0)?.len();
    let pads: Vec<i64> = if let Some(p) = ctx.node.attr_ints("pads") {
        p.to_vec()
    } else {
        ctx.folded(1).ok_or("pads are not constant")?.to_vec()
    };
    let axes: Vec<usize> = match ctx.input(3) {
        Some(_) => ctx
            .folded(3)
            .ok_or("axes are not constant")?
            .iter()
            .map(|&a| normalize_axis(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let n = axes.len();
    let mut out = Coupling {
        shape_only: (1..ctx.node.inputs.len()).collect(),
        ..Default::default()
    };
    for ax in 0..rank {
        let padded = axes
            .iter()
            .position(|&a| a == ax)
            .is_some_and(|k| pads[k] != 0 || pads[k + n] != 0);
        if !padded {
            out.links.push(Link::identity((x, ax), (y, ax)));
        }
    }
    Ok(out)
}

/// Axes whose size is unchanged pass through (Resize scales of 1, Expand without broadcast).
fn couple_same_sized_axes(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let xs = ctx.in_shape(0)?;
    let ys = ctx.out_shape(0)?;
    if xs.len() != ys.len() {
        return Err("input and output ranks differ".into());
    }
    // Resize's `sizes` (opset 11+) is rewritten like a Reshape target.
    let fixed = if ctx.node.op_type == "Resize" && ctx.opset() >= 11 {
        unrewritable_entries(ctx, 3, |k, _| Some(k))
    } else {
        Vec::new()
    };
    Ok(Coupling {
        links: (0..xs.len())
            .filter(|&a| xs[a] == ys[a])
            .map(|a| Link::identity((x, a), (y, a)))
            .collect(),
        shape_only: (1..ctx.node.inputs.len()).collect(),
        fixed,
        ..Default::default()
    })
}

/// The output axes whose entry in the shape-like input `slot` [`rewrite_shape_input`] could not
/// edit (an entry computed from constants by arithmetic), each with the reason. Rules fix them
/// while grouping, so a group crossing one is blocked instead of refused when planned.
pub(super) fn unrewritable_entries(
    ctx: &Ctx,
    slot: usize,
    entry_axis: impl Fn(usize, usize) -> Option<usize>,
) -> Vec<(ValueId, usize, String)> {
    use super::shape_trace::trace_entry;
    let (Some(v), Some(y)) = (ctx.input(slot), ctx.output(0)) else {
        return Vec::new();
    };
    let (Some(target), Ok(ys)) = (ctx.folded(slot), ctx.out_shape(0)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, &entry) in target.iter().enumerate() {
        let Some(ax) = entry_axis(k, target.len()) else {
            continue;
        };
        if ys.get(ax).is_none_or(|&d| entry != d as i64) {
            continue; // 0 and -1 follow the input by themselves
        }
        // A literal reached through a shared shape tensor is overlaid on a private copy by
        // the rewrite; only arithmetic on literals cannot follow.
        if trace_entry(ctx.model, ctx.id, slot, v, k).is_none() {
            let why = format!(
                "reads this axis's size from entry {k} of '{}', computed from constants, which cannot follow removed channels",
                ctx.model.graph.value(v).name
            );
            out.push((y, ax, why));
        }
    }
    out
}

/// Rewrites the entries of a constant shape-like input (`slot`) at the output axes that lose
/// channels; `entry_axis` maps a tensor entry to its output axis.
/// A constant read by one node input, with its contents before and after the edit.
type LiteralEdit = (ValueId, Vec<i64>, Vec<i64>);

pub(super) fn rewrite_shape_input(
    ctx: &Ctx,
    removed: &dyn Removed,
    slot: usize,
    entry_axis: impl Fn(usize, usize) -> Option<usize>,
) -> Result<Vec<Rewrite>, String> {
    use super::shape_trace::{trace_entry, EntrySource};
    use std::collections::BTreeMap;

    let Some(v) = ctx.input(slot) else {
        return Ok(Vec::new());
    };
    let y = ctx.output(0).ok_or("output is missing")?;
    let ys = ctx.out_shape(0)?;
    let Some(target) = ctx.folded(slot).map(|f| f.to_vec()) else {
        return Ok(Vec::new());
    };
    // Per (node, slot) reading a literal: the constant's contents, edited in place.
    let mut edits: BTreeMap<(NodeId, usize), LiteralEdit> = BTreeMap::new();
    // Entries reached through a shape tensor other nodes read too: (index, old, new).
    let mut overlay: Vec<(usize, i64, i64)> = Vec::new();
    let g = &ctx.model.graph;
    for (k, &entry) in target.iter().enumerate() {
        let Some(ax) = entry_axis(k, target.len()) else {
            continue;
        };
        let gone = removed.removed(y, ax).len();
        if gone == 0 || entry != ys[ax] as i64 {
            continue; // unchanged axis, or 0 / -1, which follow the input by themselves
        }
        match trace_entry(ctx.model, ctx.id, slot, v, k) {
            Some(EntrySource::Dynamic) => {}
            Some(EntrySource::Product {
                value,
                axis,
                factor,
                at,
            }) => {
                // Follows by itself when the cut is the read axis's, times the factor;
                // otherwise (query heads cut from every group of grouped-query attention) the
                // factor is edited, when it divides and this reader alone reads it.
                let size = g.value(value).shape.as_ref().and_then(|s| s.get(axis));
                let kept = size.map(|&n| (n - removed.removed(value, axis).len()) as i64);
                let want = ys[ax] as i64 - gone as i64;
                if kept.map(|k| k * factor) == Some(want) {
                    continue;
                }
                if let (Some((node, s)), Some(k)) = (at, kept.filter(|&k| k > 0 && want % k == 0)) {
                    if let Some(tensor) = g.node(node).input(s) {
                        let e = match edits.entry((node, s)) {
                            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                            std::collections::btree_map::Entry::Vacant(slot_entry) => {
                                slot_entry.insert((tensor, vec![factor], vec![factor]))
                            }
                        };
                        e.2[0] = want / k;
                        continue;
                    }
                }
                return Err(format!(
                    "entry {k} of '{}' is the size of '{}' axis {axis} times {factor}, which does not follow the removed channels",
                    g.value(v).name,
                    g.value(value).name
                ));
            }
            Some(EntrySource::Literal {
                node,
                slot: s,
                tensor,
                index,
            }) => {
                let e = match edits.entry((node, s)) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(slot_entry) => {
                        let t = ctx.model.constant(tensor).ok_or("constant vanished")?;
                        let vals = ctx.model.i64s(&t).map_err(|e| e.to_string())?;
                        slot_entry.insert((tensor, vals.clone(), vals))
                    }
                };
                let cell = e.2.get_mut(index).ok_or("shape entry out of range")?;
                *cell -= gone as i64;
            }
            None => {
                return Err(format!(
                    "entry {k} of '{}' is computed from constants and would need rewriting",
                    g.value(v).name
                ))
            }
            // Editing the literal would resize the other readers too: this node reads a
            // private copy with the entry overlaid (the entry is a literal, so its value
            // does not depend on the input).
            Some(EntrySource::Shared { .. }) => overlay.push((k, entry, entry - gone as i64)),
        }
    }
    let overlay = (!overlay.is_empty()).then(|| Rewrite::ShapeOverlay {
        node: ctx.node.name.clone(),
        slot,
        tensor: g.value(v).name.clone(),
        entries: overlay,
    });
    Ok(edits
        .into_iter()
        .map(|((node, s), (tensor, old, new))| {
            let dims = ctx
                .model
                .constant(tensor)
                .map(|t| t.dims.iter().map(|&d| d as usize).collect())
                .unwrap_or_else(|| vec![new.len()]);
            Rewrite::ConstInts {
                node: g.node(node).name.clone(),
                slot: s,
                tensor: g.value(tensor).name.clone(),
                old,
                new,
                new_dims: dims,
            }
        })
        .chain(overlay)
        .collect())
}

/// ConstantOfShape's shape entries follow their axes' removed channels (Constant has no input).
fn rewrite_constant_of_shape(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    rewrite_shape_input(ctx, removed, 0, |k, _| Some(k))
}

fn rewrite_resize(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    if ctx.opset() < 11 {
        return Ok(Vec::new());
    }
    rewrite_shape_input(ctx, removed, 3, |k, _| Some(k))
}

fn couple_expand(ctx: &Ctx) -> RuleResult {
    let (x, y) = data_io(ctx)?;
    let xs = ctx.in_shape(0)?;
    let ys = ctx.out_shape(0)?;
    let lead = ys
        .len()
        .checked_sub(xs.len())
        .ok_or("input rank exceeds output")?;
    let mut out = Coupling {
        shape_only: vec![1],
        ..Default::default()
    };
    for (ia, &d) in xs.iter().enumerate() {
        if d == ys[lead + ia] {
            out.links.push(Link::identity((x, ia), (y, lead + ia)));
        }
    }
    let rank = ys.len();
    let entry_axis = move |k: usize, n: usize| (k + rank).checked_sub(n);
    let fixed = unrewritable_entries(ctx, 1, entry_axis);
    // An axis the shape alone sizes (X broadcast from 1, or a new leading axis) is made here:
    // free when its entry is a literal the rewrite edits, so a bias expanded from a scalar
    // follows its channels. Entries computed at run time follow by themselves only if they
    // copy an axis that is itself linked; nothing ties them here, so they keep their size.
    if let Some(shape) = ctx.folded(1) {
        for (k, &entry) in shape.iter().enumerate() {
            let Some(oa) = entry_axis(k, shape.len()) else {
                continue;
            };
            let from_x = oa >= lead && xs[oa - lead] == ys[oa];
            if from_x || ys[oa] < 2 || entry != ys[oa] as i64 {
                continue;
            }
            if fixed.iter().any(|f| f.1 == oa) {
                continue;
            }
            let v = ctx.input(1).ok_or("shape is missing")?;
            // A literal, or one reached through a shared shape tensor (overlaid for this node).
            if let Some(
                super::shape_trace::EntrySource::Literal { .. }
                | super::shape_trace::EntrySource::Shared { .. },
            ) = super::shape_trace::trace_entry(ctx.model, ctx.id, 1, v, k)
            {
                out.made.push((y, oa));
            }
        }
    }
    out.fixed.extend(fixed);
    Ok(out)
}

fn rewrite_expand(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let rank = ctx.out_shape(0)?.len();
    rewrite_shape_input(ctx, removed, 1, move |k, n| (k + rank).checked_sub(n))
}
