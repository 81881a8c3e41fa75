//! Pooling: MaxPool (pads, dilations, ceil_mode), AveragePool (pads, ceil_mode,
//! count_include_pad, dilations), LpPool, and the global forms GlobalAveragePool, GlobalMaxPool
//! and GlobalLpPool, over 1-D and 2-D inputs.
//!
//! Written directly rather than on candle's pools, which have no padding, dilation or
//! ceil_mode: padded cells never win a max, and an average divides by the cells it covered.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::{bail, input, tensor_f32, to_dims, with_f32, Ctx, OpFn, OpResult, Window};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("MaxPool", |c, i| pool(c, i, Kind::Max));
    t.insert("AveragePool", |c, i| pool(c, i, Kind::Average));
    t.insert("LpPool", |c, i| {
        pool(c, i, Kind::Lp(c.attr_i("p", 2) as f32))
    });
    t.insert("GlobalAveragePool", |_, i| global(i, Global::Mean));
    t.insert("GlobalMaxPool", |_, i| global(i, Global::Max));
    t.insert("GlobalLpPool", |c, i| {
        global(i, Global::Lp(c.attr_i("p", 2) as f32))
    });
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Max,
    Average,
    /// `(sum |x|^p)^(1/p)` over the window; padding contributes nothing.
    Lp(f32),
}

/// One spatial axis of a pool: for output `o` the window covers input coordinates
/// `o * stride - pad + t * dilation` for taps `t < kernel`.
#[derive(Clone, Copy)]
struct Axis {
    len: usize,
    out: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    /// Input length plus both pads: taps at or beyond it lie in the ceil_mode overhang.
    padded: usize,
}

impl Axis {
    /// Taps of output `o` inside the input, and how many taps fall inside the padded input.
    fn taps(&self, o: usize) -> (impl Iterator<Item = usize> + '_, usize) {
        let start = (o * self.stride) as isize - self.pad as isize;
        let coords = (0..self.kernel).map(move |t| start + (t * self.dilation) as isize);
        let in_padded = coords
            .clone()
            .filter(|&c| c + (self.pad as isize) < self.padded as isize)
            .count();
        let inside = coords
            .filter(|&c| c >= 0 && (c as usize) < self.len)
            .map(|c| c as usize);
        (inside, in_padded)
    }
}

fn pool(c: &Ctx, inputs: &[Option<Tensor>], kind: Kind) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    if c.num_outputs() > 1 && c.node.output(1).is_some() {
        bail!("the Indices output is not supported");
    }
    let dims = x.dims().to_vec();
    if dims.len() != 3 && dims.len() != 4 {
        bail!("implemented for 1-D and 2-D spatial inputs, found shape {dims:?}");
    }
    let spatial = &dims[2..];
    let Some(kernel) = c.attr_ints("kernel_shape") else {
        bail!("attribute kernel_shape is missing");
    };
    let kernel = to_dims(kernel, "kernel_shape")?;
    if kernel.len() != spatial.len() || kernel.contains(&0) {
        bail!("kernel_shape {kernel:?} does not fit input {dims:?}");
    }
    let win = Window::read(c, kernel, spatial)?;
    let ceil_mode = c.attr_i("ceil_mode", 0) != 0;
    let include_pad = c.attr_i("count_include_pad", 0) != 0;
    let mut axes = Vec::with_capacity(2);
    if spatial.len() == 1 {
        axes.push(Axis {
            len: 1,
            out: 1,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad: 0,
            padded: 1,
        });
    }
    for (i, &len) in spatial.iter().enumerate() {
        axes.push(Axis {
            len,
            out: win.out_size(i, len, ceil_mode)?,
            kernel: win.kernel[i],
            stride: win.strides[i],
            dilation: win.dilations[i],
            pad: win.pad_begin[i],
            padded: len + win.pad_begin[i] + win.pad_end[i],
        });
    }
    let (ay, ax) = (axes[0], axes[1]);
    let planes = dims[0] * dims[1];
    let (ip, op) = (ay.len * ax.len, ay.out * ax.out);
    let mut out = vec![0f32; planes * op];
    with_f32(x, |xs| {
        out.par_chunks_mut(op.max(1))
            .enumerate()
            .for_each(|(pl, o)| {
                let src = &xs[pl * ip..][..ip];
                for oy in 0..ay.out {
                    let (ys, ny) = ay.taps(oy);
                    let ys: Vec<usize> = ys.collect();
                    for ox in 0..ax.out {
                        let (xs_, nx) = ax.taps(ox);
                        let mut max = f32::NEG_INFINITY;
                        let mut sum = 0f32;
                        let mut count = 0usize;
                        for ix in xs_ {
                            for &iy in &ys {
                                let v = src[iy * ax.len + ix];
                                // NaN propagates like in the reference implementations.
                                if v > max || v.is_nan() {
                                    max = v;
                                }
                                sum += match kind {
                                    Kind::Lp(p) => v.abs().powf(p),
                                    _ => v,
                                };
                                count += 1;
                            }
                        }
                        o[oy * ax.out + ox] = match kind {
                            // A window entirely in the padding (possible with dilations):
                            // the lowest float for a max and 0 for an average, as onnxruntime.
                            Kind::Max if count == 0 => f32::MIN,
                            Kind::Max => max,
                            Kind::Lp(p) => sum.powf(1.0 / p),
                            Kind::Average => {
                                let div = if include_pad { ny * nx } else { count };
                                sum / div.max(1) as f32
                            }
                        };
                    }
                }
            });
    })?;
    let mut shape = vec![dims[0], dims[1]];
    shape.extend(axes[axes.len() - spatial.len()..].iter().map(|a| a.out));
    Ok(vec![tensor_f32(out, &shape)?])
}

#[derive(Clone, Copy)]
enum Global {
    Mean,
    Max,
    Lp(f32),
}

fn global(inputs: &[Option<Tensor>], kind: Global) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.rank() < 2 {
        bail!("expected [N, C, ...], found shape {:?}", x.dims());
    }
    let (n, ch) = (x.dims()[0], x.dims()[1]);
    let flat = x.reshape((n, ch, ()))?;
    let y = match kind {
        Global::Max => flat.max_keepdim(2)?,
        Global::Mean => flat.mean_keepdim(2)?,
        Global::Lp(p) => {
            let p = p as f64;
            flat.abs()?.powf(p)?.sum_keepdim(2)?.powf(1.0 / p)?
        }
    };
    let mut shape = vec![n, ch];
    shape.extend(std::iter::repeat_n(1, x.rank() - 2));
    Ok(vec![y.reshape(shape)?])
}
