//! Ops that move, select or create data without arithmetic on it: Reshape, Flatten, Transpose,
//! Concat, Split, Slice, Squeeze/Unsqueeze, Shape, Size, Gather, Expand, Pad, ConstantOfShape,
//! Range, Tile, GatherElements, GatherND.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{
    bail, broadcast_shapes, compute_dtype, input, ints, norm_axis, opt_input, scalar, tensor_f32,
    tensor_i64, to_dims, Ctx, OpFn, OpResult, CPU,
};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("Reshape", reshape);
    t.insert("Flatten", flatten);
    t.insert("Transpose", transpose);
    t.insert("Concat", concat);
    t.insert("Split", split);
    t.insert("Slice", slice);
    t.insert("Squeeze", squeeze);
    t.insert("Unsqueeze", unsqueeze);
    t.insert("Shape", shape);
    t.insert("Size", |_, i| {
        Ok(vec![Tensor::new(input(i, 0)?.elem_count() as i64, &CPU)?])
    });
    t.insert("Gather", gather);
    t.insert("GatherElements", gather_elements);
    t.insert("GatherND", gather_nd);
    t.insert("Expand", expand);
    t.insert("Pad", pad);
    t.insert("ConstantOfShape", constant_of_shape);
    t.insert("Range", range);
    t.insert("Tile", tile);
}

/// Axes given as input `slot` (newer opsets) or as attribute `axes` (older ones).
fn axes_arg(c: &Ctx, inputs: &[Option<Tensor>], slot: usize) -> OpResult<Option<Vec<i64>>> {
    if let Some(Some(t)) = inputs.get(slot) {
        return Ok(Some(ints(t)?));
    }
    Ok(c.attr_ints("axes").map(<[i64]>::to_vec))
}

fn reshape(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let target = match inputs.get(1) {
        Some(Some(t)) => ints(t)?,
        _ => match c.attr_ints("shape") {
            Some(s) => s.to_vec(),
            None => bail!("no target shape (input 1 or attribute shape)"),
        },
    };
    let allowzero = c.attr_i("allowzero", 0) != 0;
    let total = x.elem_count();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &s) in target.iter().enumerate() {
        match s {
            -1 => {
                if infer.replace(i).is_some() {
                    bail!("target shape {target:?} has more than one -1");
                }
                out.push(1);
            }
            0 if !allowzero => match x.dims().get(i) {
                Some(&d) => out.push(d),
                None => bail!(
                    "target shape {target:?} copies dim {i} of a rank-{} input",
                    x.rank()
                ),
            },
            s if s >= 0 => out.push(s as usize),
            s => bail!("target shape {target:?} has invalid dim {s}"),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || total % known != 0 {
            bail!("cannot reshape {:?} into {target:?}", x.dims());
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        bail!("cannot reshape {:?} into {target:?}", x.dims());
    }
    Ok(vec![x.reshape(out)?])
}

fn flatten(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank() as i64;
    let axis = c.attr_i("axis", 1);
    if axis < -r || axis > r {
        bail!("axis {axis} is out of range for rank {r}");
    }
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    let outer: usize = x.dims()[..axis].iter().product();
    let inner: usize = x.dims()[axis..].iter().product();
    Ok(vec![x.reshape((outer, inner))?])
}

fn transpose(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank();
    let perm: Vec<usize> = match c.attr_ints("perm") {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<OpResult<_>>()?,
        _ => (0..r).rev().collect(),
    };
    let mut seen = vec![false; r];
    if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
        bail!("perm {perm:?} is not a permutation of {r} axes");
    }
    Ok(vec![x.permute(perm)?])
}

fn concat(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let parts: Vec<&Tensor> = inputs.iter().flatten().collect();
    let Some(first) = parts.first() else {
        bail!("no inputs");
    };
    let axis = norm_axis(c.attr_i("axis", 0), first.rank())?;
    Ok(vec![Tensor::cat(&parts, axis)?])
}

fn split(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let axis = norm_axis(c.attr_i("axis", 0), x.rank())?;
    let dim = x.dims()[axis];
    let n = c.num_outputs();
    let sizes: Vec<usize> = match axes_like_split(c, inputs)? {
        Some(s) => to_dims(&s, "split")?,
        None => {
            let parts = match c.attr("num_outputs") {
                Some(a) => usize::try_from(a.i).unwrap_or(0),
                None => n,
            };
            if parts == 0 {
                bail!("cannot split into 0 parts");
            }
            if c.attr("num_outputs").is_none() && dim % parts != 0 {
                bail!("dim {dim} does not split evenly into {parts} outputs");
            }
            // opset 18's num_outputs: chunks of ceil(dim / n), the last one smaller.
            let chunk = dim.div_ceil(parts);
            (0..parts)
                .map(|i| chunk.min(dim.saturating_sub(i * chunk)))
                .collect()
        }
    };
    if sizes.iter().sum::<usize>() != dim {
        bail!("split sizes {sizes:?} do not add up to dim {dim}");
    }
    let mut start = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for s in sizes {
        out.push(x.narrow(axis, start, s)?);
        start += s;
    }
    Ok(out)
}

/// Split sizes: input 1 from opset 13, attribute `split` before.
fn axes_like_split(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Option<Vec<i64>>> {
    if let Some(t) = opt_input(inputs, 1) {
        return Ok(Some(ints(t)?));
    }
    Ok(c.attr_ints("split")
        .filter(|s| !s.is_empty())
        .map(<[i64]>::to_vec))
}

fn slice(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank();
    let (starts, ends, axes, steps) = if c.opset < 10 {
        let get = |n: &str| c.attr_ints(n).map(<[i64]>::to_vec);
        let Some(starts) = get("starts") else {
            bail!("attribute starts is missing");
        };
        let Some(ends) = get("ends") else {
            bail!("attribute ends is missing");
        };
        (starts, ends, get("axes"), None)
    } else {
        let opt = |slot: usize| -> OpResult<Option<Vec<i64>>> {
            inputs
                .get(slot)
                .and_then(|t| t.as_ref())
                .map(ints)
                .transpose()
        };
        (
            ints(input(inputs, 1)?)?,
            ints(input(inputs, 2)?)?,
            opt(3)?,
            opt(4)?,
        )
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        bail!("starts, ends, axes and steps have different lengths");
    }
    let mut t = x.clone();
    for i in 0..n {
        let axis = norm_axis(axes[i], r)?;
        let dim = t.dims()[axis] as i64;
        let step = steps[i];
        if step == 0 {
            bail!("step 0 on axis {axis}");
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        if dim == 0 {
            continue;
        }
        let (start, end) = if step > 0 {
            (fix(starts[i]).clamp(0, dim), fix(ends[i]).clamp(0, dim))
        } else {
            (
                fix(starts[i]).clamp(0, dim - 1),
                fix(ends[i]).clamp(-1, dim - 1),
            )
        };
        t = if step == 1 {
            t.narrow(axis, start as usize, (end - start).max(0) as usize)?
        } else {
            let mut idx = Vec::new();
            let mut k = start;
            while (step > 0 && k < end) || (step < 0 && k > end) {
                idx.push(k);
                let Some(next) = k.checked_add(step) else {
                    break;
                };
                k = next;
            }
            let len = idx.len();
            t.contiguous()?
                .index_select(&tensor_i64(idx, &[len])?, axis)?
        };
    }
    Ok(vec![t])
}

fn squeeze(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let dims = x.dims();
    let drop: Vec<usize> = match axes_arg(c, inputs, 1)? {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, dims.len()))
            .collect::<OpResult<_>>()?,
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    for &a in &drop {
        if dims[a] != 1 {
            bail!("cannot squeeze axis {a} of size {}", dims[a]);
        }
    }
    let out: Vec<usize> = (0..dims.len())
        .filter(|i| !drop.contains(i))
        .map(|i| dims[i])
        .collect();
    Ok(vec![x.reshape(out)?])
}

fn unsqueeze(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let Some(axes) = axes_arg(c, inputs, 1)? else {
        bail!("no axes (input 1 or attribute axes)");
    };
    let out_rank = x.rank() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, out_rank))
        .collect::<OpResult<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        bail!("repeated axis in {axes:?}");
    }
    let mut src = x.dims().iter();
    let out: Vec<usize> = (0..out_rank)
        .map(|i| {
            if axes.binary_search(&i).is_ok() {
                1
            } else {
                src.next().copied().unwrap_or(1)
            }
        })
        .collect();
    Ok(vec![x.reshape(out)?])
}

fn shape(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank() as i64;
    let clampi = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
    let start = clampi(c.attr_i("start", 0));
    let end = clampi(c.attr_i("end", r));
    let dims: Vec<i64> = x.dims()[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    let n = dims.len();
    Ok(vec![tensor_i64(dims, &[n])?])
}

fn gather(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, idx) = (input(inputs, 0)?, input(inputs, 1)?);
    let axis = norm_axis(c.attr_i("axis", 0), x.rank())?;
    let dim = x.dims()[axis] as i64;
    let fixed: Vec<i64> = ints(idx)?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + dim } else { i };
            if (0..dim).contains(&j) {
                Ok(j)
            } else {
                bail!("index {i} is out of range for axis {axis} of size {dim}")
            }
        })
        .collect::<OpResult<_>>()?;
    let n = fixed.len();
    let picked = x
        .contiguous()?
        .index_select(&tensor_i64(fixed, &[n])?, axis)?;
    let mut out = x.dims()[..axis].to_vec();
    out.extend_from_slice(idx.dims());
    out.extend_from_slice(&x.dims()[axis + 1..]);
    Ok(vec![picked.reshape(out)?])
}

/// An index into an axis of `size`, negatives counting from the end, checked.
fn index_in(i: i64, size: usize, what: &str) -> OpResult<usize> {
    let n = size as i64;
    let j = if i < 0 { i + n } else { i };
    if !(0..n).contains(&j) {
        bail!("{what} index {i} is out of range for size {size}");
    }
    Ok(j as usize)
}

/// The elements of `x` at the flat (row-major) `offsets`, shaped `dims`, in any dtype.
fn take_flat(x: &Tensor, offsets: Vec<i64>, dims: Vec<usize>) -> OpResult<Tensor> {
    let n = offsets.len();
    let flat = x.contiguous()?.flatten_all()?;
    Ok(flat
        .index_select(&tensor_i64(offsets, &[n])?, 0)?
        .reshape(dims)?)
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}

fn gather_elements(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, idx) = (input(inputs, 0)?, input(inputs, 1)?);
    let (xd, id) = (x.dims(), idx.dims());
    if xd.len() != id.len() {
        bail!(
            "data rank {} and indices rank {} differ",
            xd.len(),
            id.len()
        );
    }
    let axis = norm_axis(c.attr_i("axis", 0), xd.len())?;
    if let Some(d) = (0..xd.len()).find(|&d| d != axis && id[d] > xd[d]) {
        bail!("indices axis {d} ({}) exceeds data's ({})", id[d], xd[d]);
    }
    let (xs, is) = (strides(xd), strides(id));
    let values = ints(idx)?;
    let mut offsets = Vec::with_capacity(values.len());
    for (flat, &v) in values.iter().enumerate() {
        let mut off = 0;
        for d in 0..id.len() {
            let coord = if d == axis {
                index_in(v, xd[axis], "GatherElements")?
            } else {
                (flat / is[d]) % id[d]
            };
            off += coord * xs[d];
        }
        offsets.push(off as i64);
    }
    Ok(vec![take_flat(x, offsets, id.to_vec())?])
}

fn gather_nd(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, idx) = (input(inputs, 0)?, input(inputs, 1)?);
    let (xd, id) = (x.dims(), idx.dims());
    let Ok(b) = usize::try_from(c.attr_i("batch_dims", 0)) else {
        bail!("batch_dims is negative");
    };
    let Some((&k, lead)) = id.split_last() else {
        bail!("indices are a scalar");
    };
    if lead.len() < b || b + k > xd.len() || xd[..b] != id[..b] {
        bail!("indices {id:?} do not address data {xd:?} with batch_dims {b}");
    }
    let xs = strides(xd);
    let inner: usize = xd[b + k..].iter().product();
    // Index tuples per batch element: the indices' axes between the batch and the last.
    let per_batch: usize = lead[b..].iter().product();
    let batch_stride: usize = xd[b..].iter().product();
    let values = ints(idx)?;
    let tuples = lead.iter().product::<usize>();
    let mut offsets = Vec::with_capacity(tuples * inner);
    for t in 0..tuples {
        let mut base = (t / per_batch.max(1)) * batch_stride;
        for j in 0..k {
            base += index_in(values[t * k + j], xd[b + j], "GatherND")? * xs[b + j];
        }
        offsets.extend((base..base + inner).map(|o| o as i64));
    }
    let mut dims = lead.to_vec();
    dims.extend_from_slice(&xd[b + k..]);
    Ok(vec![take_flat(x, offsets, dims)?])
}

fn expand(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let target = to_dims(&ints(input(inputs, 1)?)?, "shape")?;
    let out = broadcast_shapes(&[x.dims(), &target])?;
    super::check_elements(&out, "the output of shape").map_err(super::OpError)?;
    Ok(vec![x.broadcast_as(out)?])
}

fn pad(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank();
    let (pads, value) = if c.opset < 11 {
        let Some(p) = c.attr_ints("pads") else {
            bail!("attribute pads is missing");
        };
        (p.to_vec(), c.attr_f("value", 0.0) as f64)
    } else {
        let v = match opt_input(inputs, 2) {
            Some(t) => scalar(t)?,
            None => 0.0,
        };
        (ints(input(inputs, 1)?)?, v)
    };
    let axes: Vec<usize> = match opt_input(inputs, 3) {
        Some(a) => ints(a)?
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<OpResult<_>>()?,
        None => (0..r).collect(),
    };
    let n = axes.len();
    if pads.len() != 2 * n {
        bail!("pads has {} values for {n} axes", pads.len());
    }
    let mode = c.attr_s("mode").unwrap_or("constant");
    let mut t = x.clone();
    for (i, &axis) in axes.iter().enumerate() {
        t = pad_axis(&t, axis, pads[i], pads[n + i], mode, value)?;
    }
    Ok(vec![t])
}

/// Pads (or, with negative amounts, crops) one axis.
fn pad_axis(
    t: &Tensor,
    axis: usize,
    begin: i64,
    end: i64,
    mode: &str,
    value: f64,
) -> OpResult<Tensor> {
    let mut t = t.clone();
    let dim = t.dims()[axis] as i64;
    // Negative pads crop.
    let crop_b = (-begin).max(0);
    let crop_e = (-end).max(0);
    if crop_b + crop_e > dim {
        bail!("negative pads remove more than the {dim} elements of axis {axis}");
    }
    if crop_b + crop_e > 0 {
        t = t.narrow(axis, crop_b as usize, (dim - crop_b - crop_e) as usize)?;
    }
    let (b, e) = (begin.max(0) as usize, end.max(0) as usize);
    if b == 0 && e == 0 {
        return Ok(t);
    }
    let dim = t.dims()[axis];
    if mode == "constant" {
        let mut parts = Vec::with_capacity(3);
        for (len, is_pad) in [(b, true), (dim, false), (e, true)] {
            if is_pad && len > 0 {
                let mut shape = t.dims().to_vec();
                shape[axis] = len;
                parts.push(Tensor::full(value as f32, shape, &CPU)?.to_dtype(t.dtype())?);
            } else if !is_pad {
                parts.push(t.clone());
            }
        }
        return Ok(Tensor::cat(&parts, axis)?);
    }
    if dim == 0 {
        bail!("cannot {mode}-pad an empty axis {axis}");
    }
    let d = dim as i64;
    let source = |i: i64| -> OpResult<i64> {
        Ok(match mode {
            "edge" => i.clamp(0, d - 1),
            "wrap" => i.rem_euclid(d),
            "reflect" => {
                if d == 1 {
                    0
                } else {
                    let period = 2 * (d - 1);
                    let m = i.rem_euclid(period);
                    if m < d {
                        m
                    } else {
                        period - m
                    }
                }
            }
            other => bail!("unknown pad mode '{other}'"),
        })
    };
    let idx: Vec<i64> = (-(b as i64)..d + e as i64)
        .map(source)
        .collect::<OpResult<_>>()?;
    let len = idx.len();
    Ok(t.contiguous()?
        .index_select(&tensor_i64(idx, &[len])?, axis)?)
}

fn constant_of_shape(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    use shears_onnx::external::ExternalStore;
    use shears_onnx::tensor::{decode_f32, decode_i64};
    let dims = super::alloc_dims(&ints(input(inputs, 0)?)?, "the shape")?;
    let Some(t) = c.attr("value").and_then(|a| a.t.as_ref()) else {
        return Ok(vec![Tensor::zeros(dims, DType::F32, &CPU)?]);
    };
    let store = ExternalStore::none();
    let err = |e: shears_onnx::OnnxError| super::OpError(e.to_string());
    let out = match compute_dtype(t.data_type)? {
        DType::F32 => match decode_f32(t, &store).map_err(err)?.first() {
            Some(&v) => Tensor::full(v, dims, &CPU)?,
            None => bail!("attribute value is empty"),
        },
        dtype => match decode_i64(t, &store).map_err(err)?.first() {
            Some(&v) if dtype == DType::U8 => Tensor::full(u8::from(v != 0), dims, &CPU)?,
            Some(&v) => Tensor::full(v, dims, &CPU)?,
            None => bail!("attribute value is empty"),
        },
    };
    Ok(vec![out])
}

fn range(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (s, l, d) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let (start, limit, delta) = (scalar(s)?, scalar(l)?, scalar(d)?);
    if delta == 0.0 {
        bail!("delta is 0");
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    // Checked before the conversion, which would saturate into an impossible allocation.
    if !n.is_finite() || n > super::MAX_ELEMENTS as f64 {
        bail!(
            "start {start}, limit {limit}, delta {delta} give {n} elements, over the evaluator's \
             limit of {}",
            super::MAX_ELEMENTS
        );
    }
    let n = n as usize;
    let out = if s.dtype() == DType::I64 {
        let (st, dl) = (start as i64, delta as i64);
        // Every value lies between start and limit, but the f64 bounds may round past i64.
        let values: Option<Vec<i64>> = (0..n as i64)
            .map(|i| i.checked_mul(dl).and_then(|x| x.checked_add(st)))
            .collect();
        let Some(values) = values else {
            bail!("start {start}, delta {delta}: the values overflow 64 bits");
        };
        tensor_i64(values, &[n])?
    } else {
        tensor_f32(
            (0..n).map(|i| (start + i as f64 * delta) as f32).collect(),
            &[n],
        )?
    };
    Ok(vec![out])
}

fn tile(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let reps = to_dims(&ints(input(inputs, 1)?)?, "repeats")?;
    if reps.len() != x.rank() {
        bail!("repeats has {} values for rank {}", reps.len(), x.rank());
    }
    let out: Vec<usize> = x
        .dims()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.saturating_mul(r))
        .collect();
    super::check_elements(&out, "the output of shape").map_err(super::OpError)?;
    Ok(vec![x.repeat(reps)?])
}
