//! Convolutions: Conv (groups, dilations, asymmetric pads, auto_pad, per-axis strides) and
//! ConvTranspose, over 1-D and 2-D spatial inputs.
//!
//! candle's own `conv2d` takes one symmetric padding and one stride for both axes, so the
//! general case is written here: im2col into a `[groups, Cg*kh*kw, N*oh*ow]` matrix and one
//! batched matrix product (candle's gemm), or a direct loop when every output channel reads a
//! single input channel (depthwise), where a product of tiny matrices would be all overhead.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::{bail, input, tensor_f32, to_dims, with_f32, Ctx, OpFn, OpResult, Window};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("Conv", conv);
    t.insert("ConvTranspose", conv_transpose);
}

/// A 2-D convolution's geometry (1-D convolutions use `h == kh == 1`).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    /// Output channels.
    m: usize,
    groups: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// The 2-D geometry of a convolution over input `[n, c, h, w]` (a 1-D one lifted to
    /// height 1) with `m` output channels, `groups`, window `win` and output sizes `out`.
    fn new(input: [usize; 4], m: usize, groups: usize, win: &Window, out: &[usize]) -> Geometry {
        let [n, c, h, w] = input;
        let (k, s, d, pb, _) = lift(win);
        let (oh, ow) = if out.len() == 1 {
            (1, out[0])
        } else {
            (out[0], out[1])
        };
        Geometry {
            n,
            c,
            h,
            w,
            m,
            groups,
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            dh: d[0],
            dw: d[1],
            pt: pb[0],
            pl: pb[1],
            oh,
            ow,
        }
    }
}

/// Lifts a 1-D or 2-D window to 2-D; returns (kernel, strides, dilations, begin, end) per axis.
type Lifted = ([usize; 2], [usize; 2], [usize; 2], [usize; 2], [usize; 2]);

fn lift(w: &Window) -> Lifted {
    if w.kernel.len() == 1 {
        (
            [1, w.kernel[0]],
            [1, w.strides[0]],
            [1, w.dilations[0]],
            [0, w.pad_begin[0]],
            [0, w.pad_end[0]],
        )
    } else {
        (
            [w.kernel[0], w.kernel[1]],
            [w.strides[0], w.strides[1]],
            [w.dilations[0], w.dilations[1]],
            [w.pad_begin[0], w.pad_begin[1]],
            [w.pad_end[0], w.pad_end[1]],
        )
    }
}

/// `(n, c, h, w)` of a 3-D or 4-D input, checking it is float.
fn dims_2d(x: &Tensor) -> OpResult<(usize, usize, usize, usize)> {
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    match *x.dims() {
        [n, c, w] => Ok((n, c, 1, w)),
        [n, c, h, w] => Ok((n, c, h, w)),
        ref d => bail!("implemented for 1-D and 2-D spatial inputs, found shape {d:?}"),
    }
}

fn check_kernel_shape(c: &Ctx, kernel: &[usize]) -> OpResult<()> {
    if let Some(k) = c.attr_ints("kernel_shape") {
        if !k.is_empty() && to_dims(k, "kernel_shape")? != kernel {
            bail!("kernel_shape {k:?} disagrees with the weight's {kernel:?}");
        }
    }
    Ok(())
}

fn bias_values(inputs: &[Option<Tensor>], m: usize) -> OpResult<Option<Vec<f32>>> {
    match inputs.get(2) {
        Some(Some(b)) => {
            let v = super::floats(b)?;
            if v.len() != m {
                bail!("bias has {} values for {m} output channels", v.len());
            }
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

pub(crate) fn conv(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, wt) = (input(inputs, 0)?, input(inputs, 1)?);
    let (n, ch, h, w) = dims_2d(x)?;
    if wt.rank() != x.rank() {
        bail!(
            "weight {:?} and input {:?} differ in rank",
            wt.dims(),
            x.dims()
        );
    }
    let kernel = wt.dims()[2..].to_vec();
    check_kernel_shape(c, &kernel)?;
    let groups = usize::try_from(c.attr_i("group", 1)).unwrap_or(0);
    let (m, cg) = (wt.dims()[0], wt.dims()[1]);
    if groups == 0 || ch != cg * groups || m % groups != 0 {
        bail!(
            "input has {ch} channels, weight {:?} with group {groups} expects {}",
            wt.dims(),
            cg * groups
        );
    }
    let spatial = &x.dims()[2..];
    let win = Window::read(c, kernel, spatial)?;
    let oh_ow: Vec<usize> = (0..spatial.len())
        .map(|i| win.out_size(i, spatial[i], false))
        .collect::<OpResult<_>>()?;
    let g = Geometry::new([n, ch, h, w], m, groups, &win, &oh_ow);
    let bias = bias_values(inputs, m)?;
    let y = if cg == 1 {
        conv_direct(&g, x, wt, bias.as_deref())?
    } else {
        conv_gemm(&g, x, wt, bias.as_deref())?
    };
    let mut shape = vec![n, m];
    shape.extend(oh_ow);
    Ok(vec![y.reshape(shape)?])
}

/// The output positions `o < out` whose input coordinate `o * stride + offset` lies in
/// `[0, len)`, as a half-open range.
fn valid(out: usize, stride: usize, offset: isize, len: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + s - 1) / s
    };
    let hi = ((len as isize - offset + s - 1) / s).max(0);
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// Direct convolution for one input channel per group (depthwise and its channel multipliers).
fn conv_direct(g: &Geometry, x: &Tensor, wt: &Tensor, bias: Option<&[f32]>) -> OpResult<Tensor> {
    let mg = g.m / g.groups;
    let plane = g.oh * g.ow;
    let wv = super::floats(wt)?;
    let taps = g.kh * g.kw;
    let mut out = vec![0f32; g.n * g.m * plane];
    with_f32(x, |xs| {
        out.par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(idx, o)| {
                let (n, m) = (idx / g.m, idx % g.m);
                let ic = m / mg;
                let src = &xs[(n * g.c + ic) * g.h * g.w..][..g.h * g.w];
                o.fill(bias.map_or(0.0, |b| b[m]));
                for i in 0..g.kh {
                    let (ylo, yhi) = valid(g.oh, g.sh, (i * g.dh) as isize - g.pt as isize, g.h);
                    for j in 0..g.kw {
                        let wgt = wv[m * taps + i * g.kw + j];
                        let xoff = (j * g.dw) as isize - g.pl as isize;
                        let (xlo, xhi) = valid(g.ow, g.sw, xoff, g.w);
                        // A tap that never lands inside the input adds nothing.
                        if xlo >= xhi {
                            continue;
                        }
                        for oy in ylo..yhi {
                            let iy = oy * g.sh + i * g.dh - g.pt;
                            let row = &src[iy * g.w..][..g.w];
                            let orow = &mut o[oy * g.ow..][..g.ow];
                            if g.sw == 1 {
                                let start = (xlo as isize + xoff) as usize;
                                let inp = &row[start..start + (xhi - xlo)];
                                for (ov, &iv) in orow[xlo..xhi].iter_mut().zip(inp) {
                                    *ov += wgt * iv;
                                }
                            } else {
                                for (ox, ov) in orow.iter_mut().enumerate().take(xhi).skip(xlo) {
                                    let ix = (ox as isize * g.sw as isize + xoff) as usize;
                                    *ov += wgt * row[ix];
                                }
                            }
                        }
                    }
                }
            });
    })?;
    tensor_f32(out, &[g.n, g.m, g.oh, g.ow])
}

/// im2col and one batched product per group.
fn conv_gemm(g: &Geometry, x: &Tensor, wt: &Tensor, bias: Option<&[f32]>) -> OpResult<Tensor> {
    let (mg, cg) = (g.m / g.groups, g.c / g.groups);
    let kdim = cg * g.kh * g.kw;
    let p = g.oh * g.ow;
    let pointwise = g.kh == 1
        && g.kw == 1
        && g.sh == 1
        && g.sw == 1
        && g.pt == 0
        && g.pl == 0
        && g.oh == g.h
        && g.ow == g.w;
    let col = if pointwise && g.n == 1 {
        x.reshape((g.groups, kdim, p))?
    } else {
        let np = g.n * p;
        let mut col = vec![0f32; g.groups * kdim * np];
        with_f32(x, |xs| {
            col.par_chunks_mut(np.max(1))
                .enumerate()
                .for_each(|(row, dst)| im2col_row(g, xs, row, cg, dst));
        })?;
        tensor_f32(col, &[g.groups, kdim, np])?
    };
    let wmat = wt.reshape((g.groups, mg, kdim))?;
    // [G, Mg, N*P] -> [N, G*Mg, P]
    let y = wmat.matmul(&col)?;
    let y = if g.n == 1 {
        y.reshape((1, g.m, p))?
    } else {
        y.reshape((g.groups, mg, g.n, p))?
            .permute((2, 0, 1, 3))?
            .reshape((g.n, g.m, p))?
    };
    match bias {
        Some(b) => Ok(y.broadcast_add(&tensor_f32(b.to_vec(), &[1, g.m, 1])?)?),
        None => Ok(y),
    }
}

/// Fills row `row` (= `(group * cg + channel) * kh*kw + i * kw + j`) of the im2col matrix: the
/// input value under kernel tap `(i, j)` for every output position of every sample.
fn im2col_row(g: &Geometry, xs: &[f32], row: usize, cg: usize, dst: &mut [f32]) {
    let taps = g.kh * g.kw;
    let (gc, tap) = (row / taps, row % taps);
    let (grp, cl) = (gc / cg, gc % cg);
    let ic = grp * cg + cl;
    let (i, j) = (tap / g.kw, tap % g.kw);
    let (ylo, yhi) = valid(g.oh, g.sh, (i * g.dh) as isize - g.pt as isize, g.h);
    let xoff = (j * g.dw) as isize - g.pl as isize;
    let (xlo, xhi) = valid(g.ow, g.sw, xoff, g.w);
    if xlo >= xhi {
        // The tap only ever reads padding: the row stays zero.
        return;
    }
    let p = g.oh * g.ow;
    for n in 0..g.n {
        let src = &xs[(n * g.c + ic) * g.h * g.w..][..g.h * g.w];
        let d = &mut dst[n * p..][..p];
        for oy in ylo..yhi {
            let iy = oy * g.sh + i * g.dh - g.pt;
            let r = &src[iy * g.w..][..g.w];
            let drow = &mut d[oy * g.ow..][..g.ow];
            if g.sw == 1 {
                let start = (xlo as isize + xoff) as usize;
                drow[xlo..xhi].copy_from_slice(&r[start..start + (xhi - xlo)]);
            } else {
                for (ox, v) in drow.iter_mut().enumerate().take(xhi).skip(xlo) {
                    *v = r[(ox as isize * g.sw as isize + xoff) as usize];
                }
            }
        }
    }
}

fn conv_transpose(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, wt) = (input(inputs, 0)?, input(inputs, 1)?);
    let (n, ch, h, w) = dims_2d(x)?;
    if wt.rank() != x.rank() {
        bail!(
            "weight {:?} and input {:?} differ in rank",
            wt.dims(),
            x.dims()
        );
    }
    let kernel = wt.dims()[2..].to_vec();
    check_kernel_shape(c, &kernel)?;
    let groups = usize::try_from(c.attr_i("group", 1)).unwrap_or(0);
    let mg = wt.dims()[1];
    if groups == 0 || wt.dims()[0] != ch || ch % groups != 0 {
        bail!(
            "input has {ch} channels, weight {:?} with group {groups} does not match",
            wt.dims()
        );
    }
    let m = mg * groups;
    let spatial = x.dims()[2..].to_vec();
    let ns = spatial.len();
    if spatial.contains(&0) || kernel.contains(&0) {
        bail!(
            "empty spatial axis in input {:?} or weight {:?}",
            x.dims(),
            wt.dims()
        );
    }
    let list = |name: &str, default: usize| -> OpResult<Vec<usize>> {
        match c.attr_ints(name) {
            Some(v) if !v.is_empty() => {
                if v.len() != ns {
                    bail!(
                        "attribute {name} has {} values for {ns} spatial axes",
                        v.len()
                    );
                }
                to_dims(v, name)
            }
            _ => Ok(vec![default; ns]),
        }
    };
    let strides = list("strides", 1)?;
    let dilations = list("dilations", 1)?;
    let out_pad = list("output_padding", 0)?;
    if strides.contains(&0) || dilations.contains(&0) {
        bail!("strides and dilations must be positive");
    }
    let auto_pad = c.attr_s("auto_pad").unwrap_or("NOTSET");
    let full: Vec<usize> = (0..ns)
        .map(|i| strides[i] * (spatial[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1)
        .collect();
    let explicit = c.attr_ints("output_shape").filter(|s| !s.is_empty());
    let (begin, end): (Vec<usize>, Vec<usize>) = match (explicit, auto_pad) {
        (None, "NOTSET" | "") => match c.attr_ints("pads") {
            Some(p) if !p.is_empty() => {
                if p.len() != 2 * ns {
                    bail!(
                        "attribute pads has {} values for {ns} spatial axes",
                        p.len()
                    );
                }
                (to_dims(&p[..ns], "pads")?, to_dims(&p[ns..], "pads")?)
            }
            _ => (vec![0; ns], vec![0; ns]),
        },
        (None, "VALID") => (vec![0; ns], vec![0; ns]),
        (target, mode) => {
            // The spec's rule: pad whatever separates the full output from the requested one.
            let target: Vec<usize> = match target {
                Some(t) => {
                    let t = to_dims(&t[t.len().saturating_sub(ns)..], "output_shape")?;
                    if t.len() != ns {
                        bail!("output_shape has fewer than {ns} values");
                    }
                    t
                }
                None => (0..ns).map(|i| spatial[i] * strides[i]).collect(),
            };
            let mut b = vec![0; ns];
            let mut e = vec![0; ns];
            for i in 0..ns {
                let Some(total) = full[i].checked_sub(target[i]) else {
                    bail!("output_shape {target:?} is larger than the full output");
                };
                if mode == "SAME_UPPER" {
                    b[i] = total / 2;
                    e[i] = total - total / 2;
                } else {
                    b[i] = total - total / 2;
                    e[i] = total / 2;
                }
            }
            (b, e)
        }
    };
    let mut outs = Vec::with_capacity(ns);
    for i in 0..ns {
        match full[i].checked_sub(begin[i] + end[i]) {
            Some(o) if o > 0 => outs.push(o),
            _ => bail!("pads leave no output on spatial axis {i}"),
        }
    }
    let win = Window {
        kernel,
        strides,
        dilations,
        pad_begin: begin,
        pad_end: end,
    };
    let g = Geometry::new([n, ch, h, w], m, groups, &win, &outs);
    let bias = bias_values(inputs, m)?;
    let y = transpose_gemm(&g, x, wt, bias.as_deref())?;
    let mut shape = vec![n, m];
    shape.extend(outs);
    Ok(vec![y.reshape(shape)?])
}

/// `W_g^T @ x_g` per group, then col2im: each output plane gathers the taps that land on it.
fn transpose_gemm(g: &Geometry, x: &Tensor, wt: &Tensor, bias: Option<&[f32]>) -> OpResult<Tensor> {
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let hw = g.h * g.w;
    let taps = g.kh * g.kw;
    let wmat = wt.reshape((g.groups, cg, mg * taps))?.transpose(1, 2)?;
    let xmat = x
        .reshape((g.n, g.groups, cg, hw))?
        .permute((1, 2, 0, 3))?
        .reshape((g.groups, cg, g.n * hw))?;
    // [G, Mg*kh*kw, N*H*W]
    let col = wmat.matmul(&xmat)?;
    let plane = g.oh * g.ow;
    let mut out = vec![0f32; g.n * g.m * plane];
    with_f32(&col, |cs| {
        out.par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(idx, o)| {
                let (n, m) = (idx / g.m, idx % g.m);
                let (grp, mo) = (m / mg, m % mg);
                o.fill(bias.map_or(0.0, |b| b[m]));
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let row = (grp * mg + mo) * taps + i * g.kw + j;
                        let src = &cs[row * g.n * hw + n * hw..][..hw];
                        for iy in 0..g.h {
                            let oy = (iy * g.sh + i * g.dh) as isize - g.pt as isize;
                            if oy < 0 || oy as usize >= g.oh {
                                continue;
                            }
                            let orow = &mut o[oy as usize * g.ow..][..g.ow];
                            for ix in 0..g.w {
                                let ox = (ix * g.sw + j * g.dw) as isize - g.pl as isize;
                                if ox >= 0 && (ox as usize) < g.ow {
                                    orow[ox as usize] += src[iy * g.w + ix];
                                }
                            }
                        }
                    }
                }
            });
    })?;
    tensor_f32(out, &[g.n, g.m, g.oh, g.ow])
}
