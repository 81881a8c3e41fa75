//! Conv and ConvTranspose.
//!
//! Spec (all opsets): `Conv(X[N,C,D...], W[M,C/g,k...], B[M]?) -> Y[N,M,D'...]`, attribute
//! `group` = g (default 1). `ConvTranspose(X[N,C,D...], W[C,M/g,k...], B[M]?) -> Y[N,M,D'...]`.
//! No opset changes the layout of these axes. Spatial axes are fixed: their sizes follow from
//! the input's and are not channels.
//!
//! Grouping:
//! - g = 1: input channels tie to `W` axis 1 one to one.
//! - each group reads one input channel (depthwise, `C/g = 1`): output channel `o` belongs to
//!   input channel `o / (M/g)`, so removing a channel removes a whole group and `group` shrinks.
//! - otherwise every group must keep the same size: input channel `c` ties to `W` axis 1 position
//!   `c % (C/g)` (removing a position removes it from every group), and output channel `o` ties
//!   to position `o % (M/g)` of a virtual per-group axis, so outputs go in whole rows across
//!   groups too and `group` is unchanged.

use super::{Coupling, Ctx, DimRef, Link, OpRule, Removed, Rewrite, RuleResult};
use crate::channel_map::ChannelMap;
use shears_onnx::ValueId;

pub static CONV: OpRule = OpRule {
    ops: &["Conv"],
    couple: couple_conv,
    rewrite: Some(rewrite_group),
};

pub static CONV_TRANSPOSE: OpRule = OpRule {
    ops: &["ConvTranspose"],
    couple: couple_conv_transpose,
    rewrite: Some(rewrite_group),
};

fn group_of(ctx: &Ctx) -> Result<usize, String> {
    let g = ctx.node.attr_i("group", 1);
    usize::try_from(g)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| format!("invalid group {g}"))
}

fn couple_conv(ctx: &Ctx) -> RuleResult {
    let (x, w, y) = io(ctx)?;
    conv_coupling(ctx, x, w, ctx.input(2), y)
}

/// The coupling of a convolution of `x` by weight `w` (with optional bias `b`) into `y`,
/// wherever the op places them (the quantized convolutions use other slots).
pub(super) fn conv_coupling(
    ctx: &Ctx,
    x: ValueId,
    w: ValueId,
    b: Option<ValueId>,
    y: ValueId,
) -> RuleResult {
    let shape = |v: ValueId| {
        ctx.shape(v)
            .ok_or_else(|| format!("shape of '{}' is unknown", ctx.model.graph.value(v).name))
    };
    let xs = shape(x)?;
    let ws = shape(w)?;
    if xs.len() < 2 || ws.len() < 2 {
        return Err(format!("input {xs:?} / weight {ws:?} have rank < 2"));
    }
    let g = group_of(ctx)?;
    let (c, m, cg) = (xs[1], ws[0], ws[1]);
    if c != cg * g || m % g != 0 {
        return Err(format!(
            "channels {c} / weight {ws:?} disagree with group {g}"
        ));
    }
    let mut out = Coupling {
        out_channels: Some((ctx.dequantized_source(w), 0)),
        ..Default::default()
    };
    out.links.push(Link::identity((x, 0), (y, 0)));
    out.links.push(Link::identity((w, 0), (y, 1)));
    if let Some(b) = b {
        out.links.push(Link::identity((b, 0), (y, 1)));
    }
    if g == 1 {
        out.links.push(Link::identity((x, 1), (w, 1)));
    } else if cg == 1 {
        out.links.push(Link::new(
            DimRef::Axis(y, 1),
            DimRef::Axis(x, 1),
            ChannelMap::DivMod {
                div: m / g,
                modulo: c,
            },
        ));
    } else {
        out.links.push(Link::new(
            DimRef::Axis(x, 1),
            DimRef::Axis(w, 1),
            ChannelMap::DivMod { div: 1, modulo: cg },
        ));
        out.virtuals.push(m / g);
        out.links.push(Link::new(
            DimRef::Axis(y, 1),
            DimRef::Virtual(0),
            ChannelMap::DivMod {
                div: 1,
                modulo: m / g,
            },
        ));
    }
    Ok(out)
}

fn couple_conv_transpose(ctx: &Ctx) -> RuleResult {
    let (x, w, y) = io(ctx)?;
    let xs = ctx.in_shape(0)?;
    let ws = ctx.in_shape(1)?;
    let g = group_of(ctx)?;
    let (c, mg) = (xs[1], ws[1]);
    if ws[0] != c || c % g != 0 {
        return Err(format!(
            "channels {c} / weight {ws:?} disagree with group {g}"
        ));
    }
    let mut out = Coupling::default();
    out.links.push(Link::identity((x, 0), (y, 0)));
    out.links.push(Link::identity((x, 1), (w, 0)));
    if let Some(b) = ctx.input(2) {
        out.links.push(Link::identity((b, 0), (y, 1)));
    }
    if g == 1 {
        out.links.push(Link::identity((w, 1), (y, 1)));
        out.out_channels = Some((ctx.dequantized_source(w), 1));
    } else if c == g {
        out.links.push(Link::new(
            DimRef::Axis(y, 1),
            DimRef::Axis(x, 1),
            ChannelMap::DivMod { div: mg, modulo: c },
        ));
    } else {
        out.links.push(Link::new(
            DimRef::Axis(y, 1),
            DimRef::Axis(w, 1),
            ChannelMap::DivMod { div: 1, modulo: mg },
        ));
        out.virtuals.push(c / g);
        out.links.push(Link::new(
            DimRef::Axis(x, 1),
            DimRef::Virtual(0),
            ChannelMap::DivMod {
                div: 1,
                modulo: c / g,
            },
        ));
    }
    Ok(out)
}

fn io(ctx: &Ctx) -> Result<(ValueId, ValueId, ValueId), String> {
    let x = ctx.input(0).ok_or("input X is missing")?;
    let w = ctx.input(1).ok_or("weight W is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    Ok((x, w, y))
}

/// A group-removing (depthwise) conv loses one group per removed input channel.
pub(super) fn rewrite_group(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let g = group_of(ctx)?;
    let x = ctx.input(0).ok_or("input X is missing")?;
    let c = ctx.in_shape(0)?[1];
    if g == 1 || c != g {
        return Ok(Vec::new());
    }
    let gone = removed.removed(x, 1).len();
    if gone == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![Rewrite::AttrInt {
        node: ctx.node.name.clone(),
        attr: "group".into(),
        old: g as i64,
        new: (g - gone) as i64,
    }])
}
