//! Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin (keepdims, noop_with_empty_axes).
//!
//! The axes are an attribute before they became an input (opset 13 for ReduceSum, 18 for the
//! others); a node carries one form or the other, so the input is read when present and the
//! attribute otherwise.

use std::collections::HashMap;

use candle_core::Tensor;

use super::{bail, input, ints, norm_axis, Ctx, OpFn, OpResult};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("ReduceMean", |c, i| reduce(c, i, Kind::Mean));
    t.insert("ReduceSum", |c, i| reduce(c, i, Kind::Sum));
    t.insert("ReduceMax", |c, i| reduce(c, i, Kind::Max));
    t.insert("ReduceMin", |c, i| reduce(c, i, Kind::Min));
}

#[derive(Clone, Copy)]
enum Kind {
    Mean,
    Sum,
    Max,
    Min,
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
    let mut y = x.clone();
    for &a in &axes {
        y = match kind {
            Kind::Mean => y.mean_keepdim(a)?,
            Kind::Sum => y.sum_keepdim(a)?,
            Kind::Max => y.max_keepdim(a)?,
            Kind::Min => y.min_keepdim(a)?,
        };
    }
    if c.attr_i("keepdims", 1) == 0 {
        let dims: Vec<usize> = (0..r)
            .filter(|i| !axes.contains(i))
            .map(|i| y.dims()[i])
            .collect();
        y = y.reshape(dims)?;
    }
    Ok(vec![y])
}
