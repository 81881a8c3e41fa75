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
use super::{Coupling, Ctx, Link, OpRule, RuleResult};

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
    rewrite: None,
};

/// `Attention(input[B, S, H_in], weights[H_in, q + k + v], bias?, ...) -> output[B, S, v]`:
/// the input width is the weight's rows (input channels, exact to remove); batch and sequence
/// pass through. The packed columns, the bias and the output width hold whole heads and
/// head-dim positions with `num_heads` baked in, which this rule does not follow: fixed, with
/// that reason. Masks, past state and the other optional inputs keep their sizes.
fn couple_attention(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let w = ctx.input(1).ok_or("weights are missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let (xs, ws) = (ctx.in_shape(0)?, ctx.in_shape(1)?);
    if xs.len() != 3 || ws.len() != 2 {
        return Err(format!("input {xs:?} / weights {ws:?} are not 3-D / 2-D"));
    }
    shears_onnx::shape::contrib::qkv_sizes(ctx.node.attr_ints("qkv_hidden_sizes"), ws[1])?;
    let why = "packs q, k and v heads (a fused Attention's heads and head dims are not followed)";
    let mut out = Coupling {
        links: vec![
            Link::identity((x, 0), (y, 0)),
            Link::identity((x, 1), (y, 1)),
            Link::identity((x, 2), (w, 0)),
        ],
        ..Default::default()
    };
    out.out_channels = Some((ctx.dequantized_source(w), 1));
    out.fixed.push((w, 1, why.into()));
    out.fixed.push((y, 2, why.into()));
    if let Some(b) = ctx.input(2) {
        out.fixed.push((b, 0, why.into()));
    }
    Ok(out)
}
