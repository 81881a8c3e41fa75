//! Resize (opset 10 and 11+) and its predecessor Upsample: nearest and (bi)linear interpolation,
//! applied one axis at a time, with every coordinate transformation mode but
//! `tf_crop_and_resize`.
//!
//! Opset-10 Resize and Upsample share the legacy semantics: asymmetric coordinates, and nearest
//! taking the floor when enlarging and the ceiling when shrinking (as onnxruntime does).

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{
    bail, floats, input, ints, norm_axis, opt_input, tensor_f32, tensor_i64, Ctx, OpFn, OpResult,
};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("Resize", resize);
    t.insert("Upsample", upsample);
}

/// How output coordinates map to input ones, and how values are taken there.
struct Interp<'a> {
    mode: &'a str,
    coord: &'a str,
    nearest: &'a str,
}

fn resize(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank();
    let legacy = c.opset < 11;
    // Opset 10 has inputs (X, scales); from 11 on (X, roi, scales, sizes).
    let (scales, sizes) = if legacy {
        (opt_input(inputs, 1), None)
    } else {
        (opt_input(inputs, 2), opt_input(inputs, 3))
    };
    let axes: Vec<usize> = match c.attr_ints("axes") {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<OpResult<_>>()?,
        _ => (0..r).collect(),
    };
    if let Some(p) = c.attr_s("keep_aspect_ratio_policy") {
        if p != "stretch" {
            bail!("keep_aspect_ratio_policy '{p}' is not supported");
        }
    }
    if c.attr_i("antialias", 0) != 0 {
        bail!("antialias is not supported");
    }
    let mut scale = vec![1.0f64; r];
    let mut out = x.dims().to_vec();
    match (sizes, scales) {
        (Some(s), _) => {
            let s = super::alloc_dims(&ints(s)?, "sizes")?;
            if s.len() != axes.len() {
                bail!("sizes has {} values for {} axes", s.len(), axes.len());
            }
            for (&a, &n) in axes.iter().zip(&s) {
                out[a] = n;
                scale[a] = n as f64 / x.dims()[a] as f64;
            }
        }
        (None, Some(s)) => read_scales(&floats(s)?, &axes, x.dims(), &mut scale, &mut out)?,
        (None, None) => bail!("neither scales nor sizes is given"),
    }
    let interp = if legacy {
        Interp {
            mode: c.attr_s("mode").unwrap_or("nearest"),
            coord: "asymmetric",
            nearest: "legacy",
        }
    } else {
        Interp {
            mode: c.attr_s("mode").unwrap_or("nearest"),
            coord: c
                .attr_s("coordinate_transformation_mode")
                .unwrap_or("half_pixel"),
            nearest: c.attr_s("nearest_mode").unwrap_or("round_prefer_floor"),
        }
    };
    Ok(vec![apply(x, &out, &scale, &interp)?])
}

fn upsample(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    // Opset 7 has the scales as an attribute, opset 9 as input 1.
    let s = match opt_input(inputs, 1) {
        Some(t) => floats(t)?,
        None => match c.attr("scales") {
            Some(a) => a.floats.clone(),
            None => bail!("no scales (input 1 or attribute scales)"),
        },
    };
    let axes: Vec<usize> = (0..x.rank()).collect();
    let mut scale = vec![1.0; x.rank()];
    let mut out = x.dims().to_vec();
    read_scales(&s, &axes, x.dims(), &mut scale, &mut out)?;
    let mode = c.attr_s("mode").unwrap_or("nearest");
    let interp = Interp {
        mode: if mode == "bilinear" { "linear" } else { mode },
        coord: "asymmetric",
        nearest: "legacy",
    };
    Ok(vec![apply(x, &out, &scale, &interp)?])
}

fn read_scales(
    s: &[f32],
    axes: &[usize],
    dims: &[usize],
    scale: &mut [f64],
    out: &mut [usize],
) -> OpResult<()> {
    if s.len() != axes.len() {
        bail!("scales has {} values for {} axes", s.len(), axes.len());
    }
    for (&a, &f) in axes.iter().zip(s) {
        if f.is_nan() || f <= 0.0 {
            bail!("scale {f} is not positive");
        }
        scale[a] = f as f64;
        out[a] = (dims[a] as f64 * f as f64).floor() as usize;
    }
    Ok(())
}

/// Resizes `x` to `out`, one axis at a time (both modes are separable).
fn apply(x: &Tensor, out: &[usize], scale: &[f64], how: &Interp) -> OpResult<Tensor> {
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    let mut t = x.clone();
    for a in 0..x.rank() {
        let (n_in, n_out) = (x.dims()[a], out[a]);
        if n_in == 0 {
            bail!("cannot resize an empty axis {a}");
        }
        let last = n_in as i64 - 1;
        let mut i0 = Vec::with_capacity(n_out);
        let mut i1 = Vec::with_capacity(n_out);
        let mut w1 = Vec::with_capacity(n_out);
        for o in 0..n_out {
            let src = source_coord(how.coord, o as f64, scale[a], n_in, n_out)?;
            match how.mode {
                "nearest" => i0.push(nearest_index(how.nearest, src, scale[a])?.clamp(0, last)),
                "linear" => {
                    let s = src.clamp(0.0, last as f64);
                    let f = s.floor();
                    i0.push(f as i64);
                    i1.push((f as i64 + 1).min(last));
                    w1.push((s - f) as f32);
                }
                other => bail!("mode '{other}' is not supported"),
            }
        }
        let identity =
            how.mode == "nearest" && n_in == n_out && i0.iter().copied().eq(0..n_in as i64);
        if identity {
            continue;
        }
        let lo = t
            .contiguous()?
            .index_select(&tensor_i64(i0, &[n_out])?, a)?;
        t = if how.mode == "nearest" {
            lo
        } else {
            let hi = t
                .contiguous()?
                .index_select(&tensor_i64(i1, &[n_out])?, a)?;
            let mut wshape = vec![1; x.rank()];
            wshape[a] = n_out;
            let w1 = tensor_f32(w1, &wshape)?;
            // lo + (hi - lo) * w1
            lo.broadcast_add(&(hi - &lo)?.broadcast_mul(&w1)?)?
        };
    }
    Ok(t)
}

/// The input coordinate that output coordinate `x` maps to on one axis.
fn source_coord(mode: &str, x: f64, scale: f64, n_in: usize, n_out: usize) -> OpResult<f64> {
    Ok(match mode {
        "half_pixel" => (x + 0.5) / scale - 0.5,
        "pytorch_half_pixel" => {
            if n_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        "align_corners" => {
            if n_out > 1 {
                x * (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
            } else {
                0.0
            }
        }
        "asymmetric" => x / scale,
        "tf_half_pixel_for_nearest" => (x + 0.5) / scale,
        "half_pixel_symmetric" => {
            let adj = n_out as f64 / (scale * n_in as f64);
            let center = n_in as f64 / 2.0;
            center * (1.0 - adj) + (x + 0.5) / scale - 0.5
        }
        other => bail!("coordinate_transformation_mode '{other}' is not supported"),
    })
}

fn nearest_index(mode: &str, x: f64, scale: f64) -> OpResult<i64> {
    let half = x.fract().abs() == 0.5;
    Ok(match mode {
        "round_prefer_floor" if half => x.floor(),
        "round_prefer_ceil" if half => x.ceil(),
        "round_prefer_floor" | "round_prefer_ceil" => x.round(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "legacy" if scale > 1.0 => x.floor(),
        "legacy" => x.ceil(),
        other => bail!("nearest_mode '{other}' is not supported"),
    } as i64)
}
