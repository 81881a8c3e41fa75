//! Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare,
//! ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp (keepdims, noop_with_empty_axes), and
//! ArgMax / ArgMin.
//!
//! The axes are an attribute before they became an input (opset 13 for ReduceSum, 18 for the
//! others); a node carries one form or the other, so the input is read when present and the
//! attribute otherwise.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{axis_split, bail, input, ints, norm_axis, tensor_i64, Ctx, OpFn, OpResult};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("ReduceMean", |c, i| reduce(c, i, Kind::Mean));
    t.insert("ReduceSum", |c, i| reduce(c, i, Kind::Sum));
    t.insert("ReduceMax", |c, i| reduce(c, i, Kind::Max));
    t.insert("ReduceMin", |c, i| reduce(c, i, Kind::Min));
    t.insert("ReduceProd", |c, i| reduce(c, i, Kind::Prod));
    t.insert("ReduceSumSquare", |c, i| reduce(c, i, Kind::SumSquare));
    t.insert("ReduceL1", |c, i| reduce(c, i, Kind::L1));
    t.insert("ReduceL2", |c, i| reduce(c, i, Kind::L2));
    t.insert("ReduceLogSum", |c, i| reduce(c, i, Kind::LogSum));
    t.insert("ReduceLogSumExp", |c, i| reduce(c, i, Kind::LogSumExp));
    t.insert("ArgMax", |c, i| arg(c, i, true));
    t.insert("ArgMin", |c, i| arg(c, i, false));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
    SumSquare,
    L1,
    L2,
    LogSum,
    LogSumExp,
}

fn reduce(c: &Ctx, inputs: &[Option<Tensor>], kind: Kind) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let r = x.rank();
    let axes: Vec<i64> = match inputs.get(1) {
        Some(Some(t)) => ints(t)?,
        _ => c.attr_ints("axes").map(<[i64]>::to_vec).unwrap_or_default(),
    };
    if axes.is_empty() && c.attr_i("noop_with_empty_axes", 0) != 0 {
        return Ok(vec![x.clone()]);
    }
    let mut axes: Vec<usize> = if axes.is_empty() {
        (0..r).collect()
    } else {
        axes.iter()
            .map(|&a| norm_axis(a, r))
            .collect::<OpResult<_>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    if axes.iter().any(|&a| x.dims()[a] == 0) && matches!(kind, Kind::Max | Kind::Min) {
        bail!("cannot take the max or min of an empty axis");
    }
    let float = x.dtype() == DType::F32;
    if !float && !matches!(kind, Kind::Sum | Kind::Max | Kind::Min | Kind::Mean) {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    // The element-wise step before summing, and the one after.
    let mut y = match kind {
        Kind::SumSquare | Kind::L2 => x.sqr()?,
        Kind::L1 => x.abs()?,
        Kind::LogSumExp => {
            // Shift by the max so that exp cannot overflow.
            let mut m = x.clone();
            for &a in &axes {
                m = m.max_keepdim(a)?;
            }
            let shifted = x.broadcast_sub(&m)?.exp()?;
            let mut s = shifted;
            for &a in &axes {
                s = s.sum_keepdim(a)?;
            }
            let out = s.log()?.broadcast_add(&m)?;
            return finish(c, out, &axes, r);
        }
        _ => x.clone(),
    };
    for &a in &axes {
        y = match kind {
            Kind::Mean => y.mean_keepdim(a)?,
            Kind::Max => y.max_keepdim(a)?,
            Kind::Min => y.min_keepdim(a)?,
            Kind::Prod => prod_keepdim(&y, a)?,
            _ => y.sum_keepdim(a)?,
        };
    }
    let y = match kind {
        Kind::L2 => y.sqrt()?,
        Kind::LogSum => y.log()?,
        _ => y,
    };
    finish(c, y, &axes, r)
}

/// Drops the reduced axes unless `keepdims`.
fn finish(c: &Ctx, y: Tensor, axes: &[usize], r: usize) -> OpResult<Vec<Tensor>> {
    if c.attr_i("keepdims", 1) != 0 {
        return Ok(vec![y]);
    }
    let dims: Vec<usize> = (0..r)
        .filter(|i| !axes.contains(i))
        .map(|i| y.dims()[i])
        .collect();
    Ok(vec![y.reshape(dims)?])
}

fn prod_keepdim(t: &Tensor, axis: usize) -> OpResult<Tensor> {
    let (outer, n, inner) = axis_split(t.dims(), axis);
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![1f32; outer * inner];
    for o in 0..outer {
        for k in 0..n {
            for i in 0..inner {
                out[o * inner + i] *= v[(o * n + k) * inner + i];
            }
        }
    }
    let mut dims = t.dims().to_vec();
    dims[axis] = 1;
    super::tensor_f32(out, &dims)
}

fn arg(c: &Ctx, inputs: &[Option<Tensor>], max: bool) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.rank() == 0 {
        bail!("expected a tensor of rank 1 or more");
    }
    let axis = norm_axis(c.attr_i("axis", 0), x.rank())?;
    let last = c.attr_i("select_last_index", 0) != 0;
    let (outer, n, inner) = axis_split(x.dims(), axis);
    if n == 0 {
        bail!(
            "cannot take the arg{} of an empty axis",
            if max { "max" } else { "min" }
        );
    }
    let v = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| v[(o * n + k) * inner + i];
            let better = |cand: f64, best: f64| {
                let strictly = if max { cand > best } else { cand < best };
                strictly || (last && cand == best)
            };
            let best = (1..n).fold(0, |b, k| if better(at(k), at(b)) { k } else { b });
            out.push(best as i64);
        }
    }
    let mut dims = x.dims().to_vec();
    if c.attr_i("keepdims", 1) != 0 {
        dims[axis] = 1;
    } else {
        dims.remove(axis);
    }
    Ok(vec![tensor_i64(out, &dims)?])
}
