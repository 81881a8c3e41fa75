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
//! - `MultiHeadAttention` ([`couple_multi_head_attention`]), `GroupQueryAttention`
//!   ([`couple_group_query_attention`]), `RotaryEmbedding` ([`couple_rotary`]): whole heads
//!   (key/value groups, or query heads of every group) on the heads graphs, head widths fixed
//!   on the channel graph.
//!
//! Not here, so opaque (blocking the groups through them, naming op and domain): the other
//! contrib ops (docs/fused.md).

use super::elementwise::{couple_broadcast, couple_unary};
use super::norm::couple_layer_norm;
use super::{Coupling, Ctx, DimRef, Link, OpRule, Removed, Rewrite, RuleResult};
use crate::channel_map::ChannelMap;
use shears_onnx::ValueId;

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

/// com.microsoft.
pub static MULTI_HEAD_ATTENTION: OpRule = OpRule {
    ops: &["MultiHeadAttention"],
    couple: couple_multi_head_attention,
    rewrite: Some(rewrite_multi_head_attention),
};

/// Why a fused attention's head-dim positions stay: removing position `p` from one head would
/// leave heads of unequal sizes, and the channel graph does not tie it to every head's `p`.
const HEAD_DIMS_FIXED: &str = "splits its widths into num_heads heads (a fused attention's head-dim positions are not followed; whole heads are, on the heads graph)";

/// `MultiHeadAttention(query[B, S, D], key[B, L, D], value[B, L, Dv], bias?,
/// key_padding_mask?, ...) -> output[B, S, Dv]`, no weights: batch is one axis, the query's
/// sequence is the output's, the key's the value's (and a `[B, L]` mask's).
/// - On the heads graph ([`crate::Granularity::Heads`] or `QueryHeads`: there are no key/value
///   groups), channel `i` of the query and key is in head `i / (D / heads)`, channel `i` of the
///   value and output in head `i / (Dv / heads)`: a per-head virtual axis ties them, the output
///   axis is a head axis, and the rewrite sets `num_heads`. Exact: heads are independent.
/// - Otherwise the four widths are fixed with [`HEAD_DIMS_FIXED`].
///
/// Refused (the node stays opaque with the reason): packed q/k/v (no key) or k/v (5-D key),
/// a bias, an attention bias, past state and the present outputs.
fn couple_multi_head_attention(ctx: &Ctx) -> RuleResult {
    let q = ctx.input(0).ok_or("query is missing")?;
    let (Some(k), Some(v)) = (ctx.input(1), ctx.input(2)) else {
        return Err("packed query/key/value (no key or value input) is not supported".into());
    };
    let y = ctx.output(0).ok_or("output is missing")?;
    for &(slot, what) in shears_onnx::shape::contrib::MHA_UNFOLLOWED_INPUTS {
        if ctx.input(slot).is_some() {
            return Err(format!("input {slot} ({what}) is not supported"));
        }
    }
    if (1..ctx.node.outputs.len()).any(|s| ctx.output(s).is_some()) {
        return Err("the present and qk outputs are not supported".into());
    }
    let (qs, ks, vs) = (ctx.in_shape(0)?, ctx.in_shape(1)?, ctx.in_shape(2)?);
    if qs.len() != 3 || ks.len() != 3 || vs.len() != 3 {
        return Err(format!(
            "query {qs:?}, key {ks:?}, value {vs:?} are not all [B, S, width] (packed k/v is not supported)"
        ));
    }
    let heads = usize::try_from(ctx.node.attr_i("num_heads", 0))
        .ok()
        .filter(|&h| h > 0 && qs[2] % h == 0 && vs[2] % h == 0)
        .ok_or("num_heads does not divide the query and value widths")?;
    let mut out = Coupling {
        links: vec![
            Link::identity((q, 0), (y, 0)),
            Link::identity((k, 0), (y, 0)),
            Link::identity((v, 0), (y, 0)),
            Link::identity((q, 1), (y, 1)),
            Link::identity((v, 1), (k, 1)),
        ],
        ..Default::default()
    };
    if let Some(m) = ctx.input(4) {
        if ctx.shape(m).map(<[usize]>::len) != Some(2) {
            return Err("key_padding_mask is not [batch, kv sequence]".into());
        }
        out.links.push(Link::identity((m, 0), (y, 0)));
        out.links.push(Link::identity((m, 1), (k, 1)));
    }
    if ctx.granularity != crate::Granularity::HeadDims && heads > 1 {
        out.virtuals.push(heads);
        for (t, width) in [(q, qs[2]), (k, qs[2]), (v, vs[2]), (y, vs[2])] {
            let head = ChannelMap::DivMod {
                div: width / heads,
                modulo: heads,
            };
            out.links
                .push(Link::new(DimRef::Axis(t, 2), DimRef::Virtual(0), head));
        }
        out.head_axes.push((y, 2));
    } else {
        for t in [q, k, v, y] {
            out.fixed.push((t, 2, HEAD_DIMS_FIXED.into()));
        }
    }
    Ok(out)
}

/// `num_heads` minus the whole heads removed from the output axis.
fn rewrite_multi_head_attention(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let y = ctx.output(0).ok_or("output is missing")?;
    let gone = removed.removed(y, 2).len();
    let heads = ctx.node.attr_i("num_heads", 0);
    let gone_heads = whole_heads(gone, ctx.out_shape(0)?[2], heads)?;
    Ok(heads_rewrite(ctx, "num_heads", heads, gone_heads))
}

/// How many heads of `width / heads` units `gone` units are, or an error when not whole.
fn whole_heads(gone: usize, width: usize, heads: i64) -> Result<i64, String> {
    let d = width
        / usize::try_from(heads)
            .map_err(|_| "num_heads is negative")?
            .max(1);
    if d == 0 || !gone.is_multiple_of(d) {
        return Err(format!("removes {gone} units, not whole heads of {d}"));
    }
    Ok((gone / d) as i64)
}

/// `attr` lowered by `gone` (nothing when none are gone).
fn heads_rewrite(ctx: &Ctx, attr: &str, old: i64, gone: i64) -> Vec<Rewrite> {
    if gone == 0 {
        return Vec::new();
    }
    vec![Rewrite::AttrInt {
        node: ctx.node.name.clone(),
        attr: attr.into(),
        old,
        new: old - gone,
    }]
}

/// com.microsoft.
pub static GROUP_QUERY_ATTENTION: OpRule = OpRule {
    ops: &["GroupQueryAttention"],
    couple: couple_group_query_attention,
    rewrite: Some(rewrite_group_query_attention),
};

/// `GroupQueryAttention(query[B, S, N·d], key[B, S, Nkv·d], value[B, S, Nkv·d], past_key?
/// [B, Nkv, P, d], past_value?, seqlens_k[B], total_sequence_length, cos_cache?, sin_cache?)
/// -> (output[B, S, N·d], present_key?[B, Nkv, T, d], present_value?)`, query head `h` reading
/// key/value head `h / (N / Nkv)`. Batch and sequence pass through; the caches' axes and the
/// head size stay.
/// - [`crate::Granularity::Heads`]: a unit is one key/value head with its `N / Nkv` query heads:
///   a virtual axis of `Nkv` ties query and output channel `i` (head `i / (d·N/Nkv)`), key and
///   value channel `i` (head `i / d`) and the past/present head axis; the rewrite lowers
///   `num_heads` and `kv_num_heads`. Exact: groups are independent.
/// - `QueryHeads` (with groups of more than one query head): a unit is query head `r` of every
///   group: query and output channel `i` belong to `(i / d) % (N / Nkv)`; the key/value widths
///   are fixed (every key/value head stays); the rewrite lowers `num_heads`. Exact.
/// - Otherwise (head-dim positions, or a single key/value head on `Heads`) every width is
///   fixed, with the reason.
fn couple_group_query_attention(ctx: &Ctx) -> RuleResult {
    let q = ctx.input(0).ok_or("query is missing")?;
    let (Some(k), Some(v)) = (ctx.input(1), ctx.input(2)) else {
        return Err("packed query/key/value (no key or value input) is not supported".into());
    };
    let y = ctx.output(0).ok_or("output is missing")?;
    for (slot, what) in [(10, "attention_bias"), (11, "head_sink")] {
        if ctx.input(slot).is_some() {
            return Err(format!("input {slot} ({what}) is not supported"));
        }
    }
    if ctx.output(3).is_some() {
        return Err("the output_qk output is not supported".into());
    }
    let (qs, ks) = (ctx.in_shape(0)?, ctx.in_shape(1)?);
    if qs.len() != 3 || ks.len() != 3 {
        return Err(format!("query {qs:?} / key {ks:?} are not [B, S, width]"));
    }
    let n = usize::try_from(ctx.node.attr_i("num_heads", 0)).unwrap_or(0);
    let nkv = usize::try_from(ctx.node.attr_i("kv_num_heads", 0)).unwrap_or(0);
    if n == 0 || nkv == 0 || n % nkv != 0 || qs[2] % n != 0 || ks[2] != qs[2] / n * nkv {
        return Err(format!(
            "num_heads {n} and kv_num_heads {nkv} do not group query {qs:?} and key {ks:?}"
        ));
    }
    let (d, group) = (qs[2] / n, n / nkv);
    let mut out = Coupling::default();
    for t in [q, k, v] {
        out.links.push(Link::identity((t, 0), (y, 0)));
        out.links.push(Link::identity((t, 1), (y, 1)));
    }
    let caches: Vec<ValueId> = [ctx.input(3), ctx.input(4), ctx.output(1), ctx.output(2)]
        .into_iter()
        .flatten()
        .collect();
    for &c in &caches {
        out.links.push(Link::identity((c, 0), (y, 0)));
    }
    if let Some(s) = ctx.input(5) {
        out.links.push(Link::identity((s, 0), (y, 0)));
    }
    let kv_groups = ctx.granularity == crate::Granularity::Heads
        || (ctx.granularity == crate::Granularity::QueryHeads && group == 1);
    if kv_groups && nkv > 1 {
        out.virtuals.push(nkv);
        let per = |div| ChannelMap::DivMod { div, modulo: nkv };
        for (t, div) in [(q, d * group), (y, d * group), (k, d), (v, d)] {
            out.links
                .push(Link::new(DimRef::Axis(t, 2), DimRef::Virtual(0), per(div)));
        }
        for &c in &caches {
            out.links.push(Link::new(
                DimRef::Axis(c, 1),
                DimRef::Virtual(0),
                ChannelMap::Identity,
            ));
        }
        out.head_axes.push((y, 2));
    } else if ctx.granularity == crate::Granularity::QueryHeads && group > 1 {
        out.virtuals.push(group);
        for t in [q, y] {
            out.links.push(Link::new(
                DimRef::Axis(t, 2),
                DimRef::Virtual(0),
                ChannelMap::DivMod {
                    div: d,
                    modulo: group,
                },
            ));
        }
        out.head_axes.push((y, 2));
        let why = "holds the key/value heads, which removing query heads keeps";
        out.fixed.push((k, 2, why.into()));
        out.fixed.push((v, 2, why.into()));
    } else {
        let why = if kv_groups {
            "has one key/value head (its query heads go with --gqa query)"
        } else {
            HEAD_DIMS_FIXED
        };
        for t in [q, k, v, y] {
            out.fixed.push((t, 2, why.into()));
        }
    }
    Ok(out)
}

/// `num_heads` and `kv_num_heads` minus the whole heads removed from the output and the key.
fn rewrite_group_query_attention(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let (y, k) = (
        ctx.output(0).ok_or("output is missing")?,
        ctx.input(1).ok_or("key is missing")?,
    );
    let n = ctx.node.attr_i("num_heads", 0);
    let nkv = ctx.node.attr_i("kv_num_heads", 0);
    let gone_q = whole_heads(removed.removed(y, 2).len(), ctx.out_shape(0)?[2], n)?;
    let gone_kv = whole_heads(removed.removed(k, 2).len(), ctx.in_shape(1)?[2], nkv)?;
    let mut out = heads_rewrite(ctx, "num_heads", n, gone_q);
    out.extend(heads_rewrite(ctx, "kv_num_heads", nkv, gone_kv));
    Ok(out)
}

/// com.microsoft.
pub static ROTARY_EMBEDDING: OpRule = OpRule {
    ops: &["RotaryEmbedding"],
    couple: couple_rotary,
    rewrite: Some(rewrite_rotary),
};

/// Why a rotary embedding's head-dim positions stay.
const ROTATES_PAIRS: &str =
    "rotates pairs of positions within each head (the cos/sin caches index them)";

/// `RotaryEmbedding(input, position_ids, cos_cache, sin_cache) -> output` of the input's
/// shape, `[B, S, N·d]` or `[B, N, S, d]`: every axis passes through; each head is rotated
/// alone, so heads are independent but positions within a head are paired.
/// - 4-D: the head axis passes through (a head axis); the head size is fixed ([`ROTATES_PAIRS`]).
/// - 3-D on the heads graph: channel `i` is in head `i / d` (`d` from `num_heads`, or twice the
///   caches' width when it is 0), tied through a virtual axis; the rewrite lowers a set
///   `num_heads`. On the channel graph the width is fixed ([`ROTATES_PAIRS`]).
fn couple_rotary(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let xs = ctx.in_shape(0)?;
    let mut out = Coupling::default();
    match xs.len() {
        4 => {
            out.links = ctx.same_axes(x, y, 3);
            out.head_axes.push((y, 1));
            out.fixed.push((x, 3, ROTATES_PAIRS.into()));
            out.fixed.push((y, 3, ROTATES_PAIRS.into()));
            return Ok(out);
        }
        3 => out.links = ctx.same_axes(x, y, 2),
        _ => return Err(format!("input {xs:?} is not 3-D or 4-D")),
    }
    let cos = ctx.in_shape(2)?;
    let heads = match ctx.node.attr_i("num_heads", 0) {
        0 => cos.get(1).map_or(0, |&c| xs[2] / (2 * c).max(1)),
        h => usize::try_from(h).unwrap_or(0),
    };
    if heads == 0 || xs[2] % heads != 0 {
        return Err(format!("the heads of input {xs:?} are not known"));
    }
    if ctx.granularity != crate::Granularity::HeadDims && heads > 1 {
        out.virtuals.push(heads);
        let head = ChannelMap::DivMod {
            div: xs[2] / heads,
            modulo: heads,
        };
        for t in [x, y] {
            out.links.push(Link::new(
                DimRef::Axis(t, 2),
                DimRef::Virtual(0),
                head.clone(),
            ));
        }
        out.head_axes.push((y, 2));
    } else {
        out.fixed.push((x, 2, ROTATES_PAIRS.into()));
        out.fixed.push((y, 2, ROTATES_PAIRS.into()));
    }
    Ok(out)
}

/// A set `num_heads` minus the whole heads removed (3-D input; a 4-D input's head axis needs
/// no attribute).
fn rewrite_rotary(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    let y = ctx.output(0).ok_or("output is missing")?;
    let heads = ctx.node.attr_i("num_heads", 0);
    let ys = ctx.out_shape(0)?;
    if heads == 0 || ys.len() != 3 {
        return Ok(Vec::new());
    }
    let gone = whole_heads(removed.removed(y, 2).len(), ys[2], heads)?;
    Ok(heads_rewrite(ctx, "num_heads", heads, gone))
}
