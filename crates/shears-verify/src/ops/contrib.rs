//! onnxruntime's fused transformer ops (domain `com.microsoft`; docs/fused.md), from its
//! `ContribOperators.md`, and `SimplifiedLayerNormalization`, which onnxruntime registers in the
//! default domain:
//! - `SkipLayerNormalization`: `s = input + skip + bias`, LayerNormalization of `s` over the
//!   last axis with `gamma`, `beta`; outputs `(y, mean, inv_std_var, s)`.
//! - `SkipSimplifiedLayerNormalization`: the same with RMSNorm (`s / sqrt(mean(s²) + eps)`,
//!   no shift); it has no mean, so a node asking for output 1 is refused.
//! - `SimplifiedLayerNormalization(X, scale)`: RMSNorm over `axis..`; outputs `(y,
//!   inv_std_var)`.
//! - `Gelu`, `BiasGelu(A, B)`: exact (erf) Gelu of `A + B`; `FastGelu(X, bias?)`: its tanh
//!   approximation.
//!
//! Statistics are accumulated in f64, as the default domain's normalizations are.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::{bail, floats, input, norm_axis, opt_input, tensor_f32, with_f32, Ctx, OpFn, OpResult};

/// The com.microsoft ops.
pub(crate) fn register_ms(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("SkipLayerNormalization", |c, i| skip_norm(c, i, false));
    t.insert("SkipSimplifiedLayerNormalization", |c, i| {
        skip_norm(c, i, true)
    });
    t.insert("Gelu", |_, i| Ok(vec![biased(i)?.gelu_erf()?]));
    t.insert("BiasGelu", |_, i| {
        input(i, 1)?;
        Ok(vec![biased(i)?.gelu_erf()?])
    });
    t.insert("FastGelu", |_, i| Ok(vec![biased(i)?.gelu()?]));
    t.insert("Attention", attention);
    t.insert("MultiHeadAttention", multi_head_attention);
    super::contrib_rotary::register_ms(t);
}

/// `Attention` without past state: `qkv = input·weights + bias`, then per head
/// `softmax(scale·q·kᵀ + mask)·v`, heads concatenated. As onnxruntime's CPU kernel computes it
/// (checked against it with a mask and `unidirectional` together): a `[batch, sequence]`
/// `mask_index` adds `mask_filter_value` (default -10000) at its zeros, and `unidirectional`
/// puts the lowest float at every later position, whatever the mask. Other mask forms, past
/// state and attention bias are refused.
fn attention(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs, 0)?;
    let w = float_input(inputs, 1)?;
    let (&[b, s, hin], &[win, total]) = (x.dims(), w.dims()) else {
        bail!(
            "input {:?} / weights {:?} are not 3-D / 2-D",
            x.dims(),
            w.dims()
        );
    };
    if win != hin {
        bail!("weights have {win} rows for an input of width {hin}");
    }
    for (slot, what) in [
        (4, "past"),
        (5, "attention_bias"),
        (6, "past_sequence_length"),
    ] {
        if opt_input(inputs, slot).is_some() {
            bail!("input {slot} ({what}) is not supported");
        }
    }
    if c.node.output(1).is_some() {
        bail!("output 1 (present) is not supported");
    }
    let [qn, _, vn] =
        shears_onnx::shape::contrib::qkv_sizes(c.attr_ints("qkv_hidden_sizes"), total)
            .map_err(super::OpError)?;
    let heads = usize::try_from(c.attr_i("num_heads", 0)).unwrap_or(0);
    if heads == 0 || qn % heads != 0 || vn % heads != 0 {
        bail!("num_heads {heads} does not divide the q and v sizes {qn} and {vn}");
    }
    let (hd, vd) = (qn / heads, vn / heads);
    let mut qkv = x.broadcast_matmul(w)?;
    if let Some(bias) = opt_input(inputs, 2) {
        qkv = qkv.broadcast_add(bias)?;
    }
    // [B, S, parts] -> [B, N, S, d] for each part.
    let part = |from: usize, d: usize| -> OpResult<Tensor> {
        Ok(qkv
            .narrow(2, from, heads * d)?
            .reshape((b, s, heads, d))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let (q, k, v) = (part(0, hd)?, part(qn, hd)?, part(2 * qn, vd)?);
    let scale = attention_scale(c, hd);
    let add = score_mask(c, opt_input(inputs, 3), b, s, s)?;
    Ok(vec![attend(&q, &k, &v, scale, add)?.reshape((b, s, vn))?])
}

/// The additive mask on `[b, s, l]` scores, as onnxruntime's CPU kernels make it: a `[b, l]`
/// key mask adds `mask_filter_value` (default -10000) at its zeros, and `unidirectional` puts
/// the lowest float at every later key position, whatever the mask. `None` when neither.
fn score_mask(
    c: &Ctx,
    mask: Option<&Tensor>,
    b: usize,
    s: usize,
    l: usize,
) -> OpResult<Option<Tensor>> {
    let causal = c.attr_i("unidirectional", 0) != 0;
    if mask.is_none() && !causal {
        return Ok(None);
    }
    let filter = c.attr_f("mask_filter_value", -10000.0);
    let mut add = vec![0f32; b * s * l];
    if let Some(mask) = mask {
        if mask.dims() != [b, l] {
            bail!(
                "a mask of shape {:?} is not supported (only [batch, key sequence])",
                mask.dims()
            );
        }
        let m = floats(mask)?;
        for bi in 0..b {
            for i in 0..s {
                for j in 0..l {
                    if m[bi * l + j] == 0.0 {
                        add[(bi * s + i) * l + j] = filter;
                    }
                }
            }
        }
    }
    if causal {
        for bi in 0..b {
            for i in 0..s {
                for j in i + 1..l {
                    add[(bi * s + i) * l + j] = f32::MIN;
                }
            }
        }
    }
    Ok(Some(tensor_f32(add, &[b, 1, s, l])?))
}

/// `softmax(scale·q·kᵀ + add)·v` per head, with `q` `[B, N, S, d]`, `k` `[B, N, L, d]`, `v`
/// `[B, N, L, dv]`: the heads concatenated, `[B, S, N·dv]` (not yet reshaped).
pub(super) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    add: Option<Tensor>,
) -> OpResult<Tensor> {
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
    if let Some(add) = add {
        scores = scores.broadcast_add(&add)?;
    }
    let max = scores.max_keepdim(3)?;
    let e = scores.broadcast_sub(&max)?.exp()?;
    let probs = e.broadcast_div(&e.sum_keepdim(3)?)?;
    Ok(probs.matmul(v)?.transpose(1, 2)?.contiguous()?)
}

/// `scale`, or `1 / sqrt(d)` when it is 0 (unset).
pub(super) fn attention_scale(c: &Ctx, d: usize) -> f64 {
    match c.attr_f("scale", 0.0) {
        0.0 => 1.0 / (d as f64).sqrt(),
        s => s as f64,
    }
}

/// `[B, S, N·d]` -> `[B, N, S, d]`.
pub(super) fn split_heads(x: &Tensor, heads: usize) -> OpResult<Tensor> {
    let &[b, s, w] = x.dims() else {
        bail!("{:?} is not [batch, sequence, width]", x.dims());
    };
    Ok(x.reshape((b, s, heads, w / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// `MultiHeadAttention(query, key, value, bias?, key_padding_mask?, ...)` with separate
/// `[B, S, D]`, `[B, L, D]`, `[B, L, Dv]` inputs: per head `softmax(scale·q·kᵀ + mask)·v`,
/// with [`score_mask`]'s mask. Packed inputs, bias, attention bias, past state and the
/// present outputs are refused.
fn multi_head_attention(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let q = float_input(inputs, 0)?;
    let (Some(k), Some(v)) = (opt_input(inputs, 1), opt_input(inputs, 2)) else {
        bail!("packed query/key/value (no key or value input) is not supported");
    };
    for &(slot, what) in shears_onnx::shape::contrib::MHA_UNFOLLOWED_INPUTS {
        if opt_input(inputs, slot).is_some() {
            bail!("input {slot} ({what}) is not supported");
        }
    }
    if (1..4).any(|s| c.node.output(s).is_some()) {
        bail!("the present and qk outputs are not supported");
    }
    let (&[b, s, dq], &[kb, l, dk], &[vb, vl, dv]) = (q.dims(), k.dims(), v.dims()) else {
        bail!(
            "query {:?}, key {:?}, value {:?} are not all 3-D (packed k/v is not supported)",
            q.dims(),
            k.dims(),
            v.dims()
        );
    };
    if kb != b || vb != b || vl != l || dk != dq {
        bail!(
            "query {:?}, key {:?}, value {:?} are not [B, S, D], [B, L, D], [B, L, Dv]",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    let heads = usize::try_from(c.attr_i("num_heads", 0)).unwrap_or(0);
    if heads == 0 || dq % heads != 0 || dv % heads != 0 {
        bail!("num_heads {heads} does not divide the widths {dq} and {dv}");
    }
    let scale = attention_scale(c, dq / heads);
    let add = score_mask(c, opt_input(inputs, 4), b, s, l)?;
    let (q, k, v) = (
        split_heads(q, heads)?,
        split_heads(k, heads)?,
        split_heads(v, heads)?,
    );
    Ok(vec![attend(&q, &k, &v, scale, add)?.reshape((b, s, dv))?])
}

/// The default-domain ops onnxruntime registers.
pub(crate) fn register_default(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("SimplifiedLayerNormalization", simplified_layer_norm);
}

pub(super) fn float_input(inputs: &[Option<Tensor>], slot: usize) -> OpResult<&Tensor> {
    let x = input(inputs, slot)?;
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    Ok(x)
}

/// Input 0 plus the optional bias in slot 1, broadcast from the right.
fn biased(inputs: &[Option<Tensor>]) -> OpResult<Tensor> {
    let x = float_input(inputs, 0)?;
    Ok(match opt_input(inputs, 1) {
        Some(b) => x.broadcast_add(b)?,
        None => x.clone(),
    })
}

/// A `[len]` vector input, checked.
fn vector(inputs: &[Option<Tensor>], slot: usize, len: usize, what: &str) -> OpResult<Vec<f32>> {
    let v = floats(input(inputs, slot)?)?;
    if v.len() != len {
        bail!("{what} has {} values, expected {len}", v.len());
    }
    Ok(v)
}

/// Normalizes each `len`-long row in place, by LayerNormalization (`rms` false) or RMSNorm;
/// returns each row's mean (0 for RMSNorm) and inverse deviation.
fn normalize(data: &mut [f32], len: usize, eps: f32, rms: bool) -> Vec<(f32, f32)> {
    data.par_chunks_mut(len.max(1))
        .map(|row| {
            let n = row.len().max(1) as f64;
            let mean = if rms {
                0.0
            } else {
                row.iter().map(|&v| v as f64).sum::<f64>() / n
            };
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for v in row.iter_mut() {
                *v = ((*v as f64 - mean) * inv) as f32;
            }
            (mean as f32, inv as f32)
        })
        .collect()
}

fn skip_norm(c: &Ctx, inputs: &[Option<Tensor>], rms: bool) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs, 0)?;
    let dims = x.dims().to_vec();
    let Some(&hidden) = dims.last() else {
        bail!("input is a scalar (needs a hidden axis)");
    };
    if rms && c.node.output(1).is_some() {
        bail!("output 1 (mean) is not defined for the simplified normalization");
    }
    let skip = float_input(inputs, 1)?;
    let mut sum = x.broadcast_add(skip)?;
    // Slots after gamma: beta then bias, or (simplified) bias alone.
    let (beta_slot, bias_slot) = if rms { (None, 3) } else { (Some(3), 4) };
    if let Some(b) = opt_input(inputs, bias_slot) {
        sum = sum.broadcast_add(b)?;
    }
    if sum.dims() != dims.as_slice() {
        bail!(
            "skip of shape {:?} does not broadcast to {dims:?}",
            skip.dims()
        );
    }
    let gamma = vector(inputs, 2, hidden, "gamma")?;
    let beta = match beta_slot.and_then(|s| opt_input(inputs, s).map(|_| s)) {
        Some(s) => Some(vector(inputs, s, hidden, "beta")?),
        None => None,
    };
    let eps = c.attr_f("epsilon", 1e-12);
    let mut data = with_f32(&sum, <[f32]>::to_vec)?;
    let stats = normalize(&mut data, hidden, eps, rms);
    data.par_chunks_mut(hidden.max(1)).for_each(|row| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = *v * gamma[j] + beta.as_ref().map_or(0.0, |b| b[j]);
        }
    });
    let mut stat_dims = dims[..dims.len() - 1].to_vec();
    stat_dims.push(1);
    Ok(vec![
        tensor_f32(data, &dims)?,
        tensor_f32(stats.iter().map(|s| s.0).collect(), &stat_dims)?,
        tensor_f32(stats.iter().map(|s| s.1).collect(), &stat_dims)?,
        sum,
    ])
}

fn simplified_layer_norm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs, 0)?;
    let r = x.rank();
    let axis = norm_axis(c.attr_i("axis", -1), r)?;
    let eps = c.attr_f("epsilon", 1e-5);
    let norm_dims = &x.dims()[axis..];
    let len: usize = norm_dims.iter().product();
    let scale = floats(&input(inputs, 1)?.broadcast_as(norm_dims)?)?;
    let mut data = with_f32(x, <[f32]>::to_vec)?;
    let stats = normalize(&mut data, len, eps, true);
    data.par_chunks_mut(len.max(1)).for_each(|row| {
        for (j, v) in row.iter_mut().enumerate() {
            *v *= scale[j];
        }
    });
    let mut stat_dims = x.dims()[..axis].to_vec();
    stat_dims.extend(std::iter::repeat_n(1, r - axis));
    Ok(vec![
        tensor_f32(data, x.dims())?,
        tensor_f32(stats.iter().map(|s| s.1).collect(), &stat_dims)?,
    ])
}
