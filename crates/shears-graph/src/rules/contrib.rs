//! onnxruntime's fused transformer ops, as its transformer optimizer writes them
//! (docs/fused.md). Spec: onnxruntime's `ContribOperators.md`.
//!
//! Domain `com.microsoft` ([`super::DOMAIN_RULES`]):
//! - `SkipLayerNormalization(input, skip, gamma, beta?, bias?) -> (output, mean?, inv_std_var?,
//!   input_skip_bias_sum?)`, `SkipSimplifiedLayerNormalization(input, skip, gamma, bias?)`
//!   with the same outputs: `s = input + skip + bias` (broadcast from the right: `skip` may be
//!   `[seq, hidden]`), then LayerNormalization (or RMSNorm) over the last axis. Every axis of
//!   `input`, `skip`, `output` and the sum is one axis; each vector is per hidden unit; the
//!   statistics mix the hidden units: prunable, not exact (like LayerNormalization).
//! - `BiasGelu(A, B)`, `FastGelu(X, bias?)`: `Gelu(X + bias)`, broadcast like `Add`: the bias
//!   is per hidden unit, and each output unit depends on its own input unit only (exact).
//! - `Gelu(X)`: element-wise.
//!
//! Default domain, as onnxruntime registers it ([`super::RULES`]):
//! - `SimplifiedLayerNormalization(X, scale) -> (Y, inv_std_var?)`: RMSNorm from `axis`,
//!   coupled like LayerNormalization (its second output has the statistics' shape).
//!
//! - `Attention(input, weights[H_in, q + k + v], bias?, ...)`: the input width only (the
//!   weight's rows); its packed heads are fixed ([`ATTENTION`]).
//!
//! Not here, so opaque (blocking the groups through them, naming op and domain):
//! MultiHeadAttention, GroupQueryAttention, RotaryEmbedding and the other contrib ops; the
//! optimizer does not produce them on the exports Shears is tested with (docs/fused.md).

use super::elementwise::{couple_broadcast, couple_unary};
use super::norm::couple_layer_norm;
use super::{Coupling, Ctx, DimRef, Link, OpRule, Removed, Rewrite, RuleResult};
use crate::channel_map::ChannelMap;

pub static SKIP_NORM: OpRule = OpRule {
    ops: &["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"],
    couple: couple_skip_norm,
    rewrite: None,
};

pub static BIAS_GELU: OpRule = OpRule {
    ops: &["BiasGelu", "FastGelu"],
    couple: couple_broadcast,
    rewrite: None,
};

pub static GELU: OpRule = OpRule {
    ops: &["Gelu"],
    couple: couple_unary,
    rewrite: None,
};

/// Default domain (onnxruntime registers it there).
pub static SIMPLIFIED_LAYER_NORM: OpRule = OpRule {
    ops: &["SimplifiedLayerNormalization"],
    couple: couple_layer_norm,
    rewrite: None,
};

fn couple_skip_norm(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let skip = ctx.input(1).ok_or("skip is missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let xs = ctx.in_shape(0)?;
    let rank = xs.len();
    if rank == 0 {
        return Err("input is a scalar (needs a hidden axis)".into());
    }
    let hidden = rank - 1;
    let mut out = Coupling {
        links: ctx.same_axes(x, y, rank),
        ..Default::default()
    };
    // The sum output is `input + skip + bias`, before normalizing.
    if let Some(sum) = ctx.output(3) {
        out.links.extend(ctx.same_axes(sum, y, rank));
    }
    let ss = ctx.in_shape(1)?;
    if ss.len() > rank {
        return Err(format!("skip {ss:?} has a higher rank than input {xs:?}"));
    }
    let lead = rank - ss.len();
    for (ia, &d) in ss.iter().enumerate() {
        if d == xs[lead + ia] {
            out.links.push(Link::identity((skip, ia), (y, lead + ia)));
        } else if d != 1 {
            return Err(format!("skip {ss:?} does not broadcast to input {xs:?}"));
        }
    }
    // Mean and inverse deviation keep the leading axes.
    for slot in 1..3 {
        if let Some(o) = ctx.output(slot) {
            for ax in 0..hidden {
                out.links.push(Link::identity((o, ax), (y, ax)));
            }
        }
    }
    for slot in 2..ctx.node.inputs.len() {
        if let Some(p) = ctx.input(slot) {
            if ctx.shape(p).map(<[usize]>::len) != Some(1) {
                return Err(format!("input {slot} is not a vector"));
            }
            out.links.push(Link::identity((p, 0), (y, hidden)));
        }
    }
    out.mixing.push((y, hidden));
    out.out_channels = ctx.input(2).map(|g| (ctx.dequantized_source(g), 0));
    Ok(out)
}

/// com.microsoft.
pub static ATTENTION: OpRule = OpRule {
    ops: &["Attention"],
    couple: couple_attention,
    rewrite: Some(rewrite_attention),
};

/// `Attention(input[B, S, H_in], weights[H_in, q + k + v], bias?, ...) -> output[B, S, v]`:
/// the input width is the weight's rows (input channels, exact to remove); batch and sequence
/// pass through. The packed columns, the bias and the output width hold `num_heads` heads:
/// - on the heads graph ([`crate::Granularity::Heads`]), with three equal parts, column `i` of
///   the weight and the bias and output unit `i` belong to head `(i / d) % heads` (`d` the head
///   size: the q, k and v parts line up), a per-head virtual axis ties them, and the output
///   axis is a head axis: a unit is one head in all three parts, and the rewrite sets
///   `num_heads`;
/// - otherwise (head-dim positions, or unequal `qkv_hidden_sizes`) they are fixed, with that
///   reason: removing a position from every head would need `qkv_hidden_sizes` rewritten.
///
/// Masks, past state and the other optional inputs keep their sizes.
fn couple_attention(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let w = ctx.input(1).ok_or("weights are missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let (xs, ws) = (ctx.in_shape(0)?, ctx.in_shape(1)?);
    if xs.len() != 3 || ws.len() != 2 {
        return Err(format!("input {xs:?} / weights {ws:?} are not 3-D / 2-D"));
    }
    let sizes =
        shears_onnx::shape::contrib::qkv_sizes(ctx.node.attr_ints("qkv_hidden_sizes"), ws[1])?;
    let heads = usize::try_from(ctx.node.attr_i("num_heads", 0))
        .ok()
        .filter(|&h| h > 0 && sizes[0] % h == 0 && sizes[2] % h == 0)
        .ok_or("num_heads does not divide the q and v sizes")?;
    let mut out = Coupling {
        links: vec![
            Link::identity((x, 0), (y, 0)),
            Link::identity((x, 1), (y, 1)),
            Link::identity((x, 2), (w, 0)),
        ],
        ..Default::default()
    };
    out.out_channels = Some((ctx.dequantized_source(w), 1));
    let bias = ctx.input(2);
    let equal = sizes[0] == sizes[2] && ctx.node.attr("qkv_hidden_sizes").is_none();
    if ctx.granularity == crate::Granularity::Heads && equal && heads > 1 {
        let head = ChannelMap::DivMod {
            div: sizes[0] / heads,
            modulo: heads,
        };
        out.virtuals.push(heads);
        for v in [Some(w), bias].into_iter().flatten() {
            let axis = if v == w { 1 } else { 0 };
            out.links.push(Link::new(
                DimRef::Axis(v, axis),
                DimRef::Virtual(0),
                head.clone(),
            ));
        }
        out.links
            .push(Link::new(DimRef::Axis(y, 2), DimRef::Virtual(0), head));
        out.head_axes.push((y, 2));
    } else {
        let why = "packs q, k and v heads (a fused Attention's head-dim positions are not followed; whole heads are, on the heads graph)";
        out.fixed.push((w, 1, why.into()));
        out.fixed.push((y, 2, why.into()));
        if let Some(b) = bias {
            out.fixed.push((b, 0, why.into()));
        }
    }
    Ok(out)
}

/// `num_heads` minus the heads removed: whole heads of the output axis (on the heads graph, the
/// only one where its columns are not fixed).
fn rewrite_attention(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let y = ctx.output(0).ok_or("output is missing")?;
    let gone = removed.removed(y, 2).len();
    if gone == 0 {
        return Ok(Vec::new());
    }
    let heads = ctx.node.attr_i("num_heads", 0);
    let v = ctx.out_shape(0)?[2];
    let d = v / usize::try_from(heads)
        .map_err(|_| "num_heads is negative")?
        .max(1);
    if d == 0 || gone % d != 0 {
        return Err(format!(
            "removes {gone} output units, not whole heads of {d}"
        ));
    }
    Ok(vec![Rewrite::AttrInt {
        node: ctx.node.name.clone(),
        attr: "num_heads".into(),
        old: heads,
        new: heads - (gone / d) as i64,
    }])
}
