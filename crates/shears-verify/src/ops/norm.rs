//! Normalisations: BatchNormalization (inference), LayerNormalization, InstanceNormalization and
//! GroupNormalization.
//!
//! Statistics are accumulated in f64 with two passes (mean, then squared deviations), so that a
//! large mean does not swamp the variance.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::{bail, floats, input, norm_axis, tensor_f32, with_f32, Ctx, OpFn, OpResult};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("BatchNormalization", batch_norm);
    t.insert("LayerNormalization", layer_norm);
    t.insert("InstanceNormalization", instance_norm);
    t.insert("GroupNormalization", group_norm);
    t.insert("LRN", lrn);
}

/// `y = x / (bias + alpha / size * sum of x² over the channels c - (size-1)/2 ..= c +
/// ceil((size-1)/2))^beta`, over `[N, C, rest]`.
fn lrn(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs)?;
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("input has no channel axis");
    }
    let size = c.attr_i("size", 0);
    if size < 1 {
        bail!("size must be positive, found {size}");
    }
    let (alpha, beta, bias) = (
        c.attr_f("alpha", 1e-4) as f64,
        c.attr_f("beta", 0.75) as f64,
        c.attr_f("bias", 1.0) as f64,
    );
    let (n, ch) = (dims[0], dims[1]);
    let inner: usize = dims[2..].iter().product();
    let (before, after) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
    let out = with_f32(x, |v| {
        let mut out = vec![0f32; v.len()];
        for b in 0..n {
            for k in 0..ch {
                let lo = (k as i64 - before).max(0) as usize;
                let hi = ((k as i64 + after) as usize).min(ch - 1);
                for i in 0..inner {
                    let at = |c: usize| v[(b * ch + c) * inner + i] as f64;
                    let sq: f64 = (lo..=hi).map(|c| at(c) * at(c)).sum();
                    let scale = (bias + alpha / size as f64 * sq).powf(beta);
                    out[(b * ch + k) * inner + i] = (at(k) / scale) as f32;
                }
            }
        }
        out
    })?;
    Ok(vec![tensor_f32(out, dims)?])
}

fn float_input(inputs: &[Option<Tensor>]) -> OpResult<&Tensor> {
    let x = input(inputs, 0)?;
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    Ok(x)
}

/// Values of a per-channel parameter input, checked to hold `n` values.
fn per_channel(inputs: &[Option<Tensor>], slot: usize, n: usize, what: &str) -> OpResult<Vec<f32>> {
    let v = floats(input(inputs, slot)?)?;
    if v.len() != n {
        bail!("{what} has {} values for {n} channels", v.len());
    }
    Ok(v)
}

/// `y = x * a[c] + b[c]` over an `[N, C, rest]` tensor, in one pass.
fn affine_channels(x: &Tensor, a: &[f32], b: &[f32]) -> OpResult<Tensor> {
    let ch = a.len();
    let inner = x.elem_count() / (x.dims()[0] * ch).max(1);
    let out = with_f32(x, |xs| {
        let mut out = vec![0f32; xs.len()];
        out.par_chunks_mut(inner.max(1))
            .zip(xs.par_chunks(inner.max(1)))
            .enumerate()
            .for_each(|(i, (o, s))| {
                let c = i % ch;
                for (ov, &sv) in o.iter_mut().zip(s) {
                    *ov = sv * a[c] + b[c];
                }
            });
        out
    })?;
    tensor_f32(out, x.dims())
}

fn batch_norm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs)?;
    if x.rank() < 2 {
        bail!("expected [N, C, ...], found shape {:?}", x.dims());
    }
    if c.attr_i("training_mode", 0) != 0 {
        bail!("training_mode=1 is not supported (inference only)");
    }
    let ch = x.dims()[1];
    let eps = c.attr_f("epsilon", 1e-5);
    let scale = per_channel(inputs, 1, ch, "scale")?;
    let bias = per_channel(inputs, 2, ch, "B")?;
    let mean = per_channel(inputs, 3, ch, "input_mean")?;
    let var = per_channel(inputs, 4, ch, "input_var")?;
    let a: Vec<f32> = (0..ch).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
    let b: Vec<f32> = (0..ch).map(|i| bias[i] - mean[i] * a[i]).collect();
    Ok(vec![affine_channels(x, &a, &b)?])
}

/// Normalises each row of `rows x len` data in place: `(v - mean) / sqrt(var + eps)`;
/// returns each row's mean and inverse standard deviation.
fn normalize_rows(data: &mut [f32], len: usize, eps: f32) -> Vec<(f32, f32)> {
    data.par_chunks_mut(len.max(1))
        .map(|row| {
            let n = row.len().max(1) as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for v in row.iter_mut() {
                *v = ((*v as f64 - mean) * inv) as f32;
            }
            (mean as f32, inv as f32)
        })
        .collect()
}

fn layer_norm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs)?;
    let r = x.rank();
    let axis = norm_axis(c.attr_i("axis", -1), r)?;
    let eps = c.attr_f("epsilon", 1e-5);
    let norm_dims = &x.dims()[axis..];
    let len: usize = norm_dims.iter().product();
    let rows = x.elem_count() / len.max(1);
    // Scale and bias broadcast to the normalised dims.
    let expand = |slot: usize| -> OpResult<Option<Vec<f32>>> {
        match inputs.get(slot) {
            Some(Some(t)) => Ok(Some(floats(&t.broadcast_as(norm_dims)?)?)),
            _ => Ok(None),
        }
    };
    let Some(scale) = expand(1)? else {
        bail!("required input 1 (Scale) is missing");
    };
    let bias = expand(2)?;
    let mut data = with_f32(x, <[f32]>::to_vec)?;
    let stats = normalize_rows(&mut data, len, eps);
    data.par_chunks_mut(len.max(1)).for_each(|row| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = *v * scale[j] + bias.as_ref().map_or(0.0, |b| b[j]);
        }
    });
    let y = tensor_f32(data, x.dims())?;
    // Mean and InvStdDev have the input's shape with the normalised dims set to 1.
    let mut stat_shape = x.dims()[..axis].to_vec();
    stat_shape.extend(std::iter::repeat_n(1, r - axis));
    let mean = tensor_f32(stats.iter().map(|s| s.0).collect(), &stat_shape)?;
    let inv = tensor_f32(stats.iter().map(|s| s.1).collect(), &stat_shape)?;
    debug_assert_eq!(stats.len(), rows);
    Ok(vec![y, mean, inv])
}

fn instance_norm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs)?;
    if x.rank() < 3 {
        bail!("expected [N, C, D1, ...], found shape {:?}", x.dims());
    }
    let ch = x.dims()[1];
    let eps = c.attr_f("epsilon", 1e-5);
    let scale = per_channel(inputs, 1, ch, "scale")?;
    let bias = per_channel(inputs, 2, ch, "B")?;
    let len: usize = x.dims()[2..].iter().product();
    let mut data = with_f32(x, <[f32]>::to_vec)?;
    normalize_rows(&mut data, len, eps);
    let y = tensor_f32(data, x.dims())?;
    Ok(vec![affine_channels(&y, &scale, &bias)?])
}

fn group_norm(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float_input(inputs)?;
    if x.rank() < 2 {
        bail!("expected [N, C, ...], found shape {:?}", x.dims());
    }
    let ch = x.dims()[1];
    let groups = match c.attr("num_groups") {
        Some(a) if a.i > 0 => a.i as usize,
        _ => bail!("attribute num_groups is missing or not positive"),
    };
    if ch % groups != 0 {
        bail!("{ch} channels do not divide into {groups} groups");
    }
    let eps = c.attr_f("epsilon", 1e-5);
    let per_ch = ch / groups;
    // Opset 18 gives scale and bias per group, opset 21 per channel; the length tells which.
    let expand = |slot: usize, what: &str| -> OpResult<Vec<f32>> {
        let v = floats(input(inputs, slot)?)?;
        if v.len() == ch {
            Ok(v)
        } else if v.len() == groups {
            Ok((0..ch).map(|i| v[i / per_ch]).collect())
        } else {
            bail!(
                "{what} has {} values for {ch} channels in {groups} groups",
                v.len()
            )
        }
    };
    let scale = expand(1, "scale")?;
    let bias = expand(2, "bias")?;
    let len = x.elem_count() / (x.dims()[0] * groups).max(1);
    let mut data = with_f32(x, <[f32]>::to_vec)?;
    normalize_rows(&mut data, len, eps);
    let y = tensor_f32(data, x.dims())?;
    Ok(vec![affine_channels(&y, &scale, &bias)?])
}
