//! Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization,
//! GroupNormalization.
//!
//! Spec:
//! - `BatchNormalization(X[N,C,...], scale[C], B[C], mean[C], var[C]) -> Y` (+ running stats in
//!   training mode, opset 14+). Per-channel: channel c of X, of every parameter and of Y are one
//!   unit.
//! - `InstanceNormalization(X[N,C,...], scale[C], B[C]) -> Y`: per channel, normalizing over
//!   the spatial axes (which stay the same size).
//! - `LayerNormalization(X, Scale, B?)`, opset 17, `axis` (default -1): normalizes over axes
//!   `axis..rank`. With a single normalized axis, channel c of X, Scale, B and Y are one unit,
//!   but the statistics mix every channel: prunable, not exact. Several normalized axes: those
//!   axes are fixed.
//! - `GroupNormalization(X[N,C,...], scale, bias)`, opset 18 (`scale`/`bias` of size
//!   `num_groups`) and 21 (size C): groups must keep equal sizes, so channel c ties to position
//!   `c % (C/G)` of a per-group virtual axis; statistics mix channels within a group.
//! - `LRN(X[N,C,...]) -> Y` (`size` neighbouring channels, opset 1+): every axis passes through;
//!   each output channel is scaled by the squares of its `size` neighbours, so the channel axis
//!   is mixed: prunable (no weight), not exact.

use super::{Coupling, Ctx, DimRef, Link, OpRule, RuleResult};
use crate::channel_map::ChannelMap;

pub static BATCH_NORM: OpRule = OpRule {
    ops: &["BatchNormalization"],
    couple: couple_per_channel,
    rewrite: None,
};

pub static INSTANCE_NORM: OpRule = OpRule {
    ops: &["InstanceNormalization"],
    couple: couple_per_channel,
    rewrite: None,
};

pub static LAYER_NORM: OpRule = OpRule {
    ops: &["LayerNormalization"],
    couple: couple_layer_norm,
    rewrite: None,
};

pub static GROUP_NORM: OpRule = OpRule {
    ops: &["GroupNormalization"],
    couple: couple_group_norm,
    rewrite: None,
};

pub static LRN: OpRule = OpRule {
    ops: &["LRN"],
    couple: couple_lrn,
    rewrite: None,
};

fn couple_lrn(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input X is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    let rank = ctx.in_shape(0)?.len();
    if rank < 2 {
        return Err("input has no channel axis".into());
    }
    Ok(Coupling {
        links: ctx.same_axes(x, y, rank),
        mixing: vec![(y, 1)],
        ..Default::default()
    })
}

/// X and Y share every axis; every parameter input (slots 1..) is per channel (axis 1).
fn couple_per_channel(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input X is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    let rank = ctx.in_shape(0)?.len();
    if rank < 2 {
        return Err("input has no channel axis".into());
    }
    let mut out = Coupling {
        links: ctx.same_axes(x, y, rank),
        ..Default::default()
    };
    for slot in 1..ctx.node.inputs.len() {
        if let Some(p) = ctx.input(slot) {
            out.links.push(Link::identity((p, 0), (y, 1)));
        }
    }
    // Training-mode running statistics outputs are per channel too.
    for slot in 1..ctx.node.outputs.len() {
        if let Some(o) = ctx.output(slot) {
            out.links.push(Link::identity((o, 0), (y, 1)));
        }
    }
    out.out_channels = ctx.input(1).map(|s| (ctx.dequantized_source(s), 0));
    out.statistics = shears_onnx::ops::facts(ctx.node).statistic_slots.to_vec();
    Ok(out)
}

pub(super) fn couple_layer_norm(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input X is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    let rank = ctx.in_shape(0)?.len();
    let axis = normalize_axis(ctx.node.attr_i("axis", -1), rank)?;
    let mut out = Coupling::default();
    for ax in 0..rank {
        if ax < axis {
            out.links.push(Link::identity((x, ax), (y, ax)));
        }
    }
    // Mean and InvStdDev outputs keep the leading axes.
    for slot in 1..ctx.node.outputs.len() {
        if let Some(o) = ctx.output(slot) {
            for ax in 0..axis {
                out.links.push(Link::identity((o, ax), (y, ax)));
            }
        }
    }
    if axis == rank - 1 {
        out.links.push(Link::identity((x, axis), (y, axis)));
        for slot in 1..3 {
            if let Some(p) = ctx.input(slot) {
                let prank = ctx.shape(p).map_or(0, |s| s.len());
                if prank == 0 {
                    return Err("scale/bias has no axis".into());
                }
                out.links.push(Link::identity((p, prank - 1), (y, axis)));
            }
        }
        out.mixing.push((y, axis));
        out.out_channels = ctx.input(1).map(|s| {
            let prank = ctx.shape(s).map_or(1, |sh| sh.len());
            (ctx.dequantized_source(s), prank - 1)
        });
    }
    Ok(out)
}

fn couple_group_norm(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input X is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    let xs = ctx.in_shape(0)?;
    let groups = usize::try_from(ctx.node.attr_i("num_groups", 0))
        .ok()
        .filter(|&g| g > 0)
        .ok_or("num_groups must be positive")?;
    let c = xs[1];
    if c % groups != 0 {
        return Err(format!("{c} channels do not split into {groups} groups"));
    }
    let mut out = Coupling {
        links: ctx.same_axes(x, y, xs.len()),
        ..Default::default()
    };
    out.virtuals.push(c / groups);
    out.links.push(Link::new(
        DimRef::Axis(y, 1),
        DimRef::Virtual(0),
        ChannelMap::DivMod {
            div: 1,
            modulo: c / groups,
        },
    ));
    for slot in 1..3 {
        if let Some(p) = ctx.input(slot) {
            // Opset 18 parameters are per group: their size must stay num_groups.
            if ctx.shape(p).map(|s| s.first().copied()) == Some(Some(c)) {
                out.links.push(Link::identity((p, 0), (y, 1)));
            }
        }
    }
    out.mixing.push((y, 1));
    Ok(out)
}

/// Resolves a possibly negative axis against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} out of range for rank {rank}"))
    }
}
