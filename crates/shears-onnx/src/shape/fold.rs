//! Index arithmetic for folding small integer tensors: row-major strides, broadcasting and
//! element-wise maps over known contents.

use super::{numel, Fail, FOLD_LIMIT};

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The flat index into a tensor of `in_shape` that broadcasting maps output element `flat` of
/// `out_shape` to. `in_shape` must broadcast to `out_shape`.
fn broadcast_index(
    out_shape: &[usize],
    out_strides: &[usize],
    in_shape: &[usize],
    flat: usize,
) -> usize {
    let off = out_shape.len() - in_shape.len();
    let in_strides = strides(in_shape);
    let mut idx = 0;
    for (i, &d) in in_shape.iter().enumerate() {
        let coord = (flat / out_strides[off + i]) % out_shape[off + i];
        if d != 1 {
            idx += coord * in_strides[i];
        }
    }
    idx
}

/// `data` (of `in_shape`) broadcast to `out_shape`; `None` past [`FOLD_LIMIT`] elements.
pub(crate) fn broadcast_to(
    data: &[i64],
    in_shape: &[usize],
    out_shape: &[usize],
) -> Result<Option<Vec<i64>>, Fail> {
    let n = numel(out_shape)?;
    if n > FOLD_LIMIT {
        return Ok(None);
    }
    let os = strides(out_shape);
    Ok(Some(
        (0..n)
            .map(|f| data[broadcast_index(out_shape, &os, in_shape, f)])
            .collect(),
    ))
}

/// Applies `f` element-wise over inputs broadcast to `out_shape`; `None` when any element
/// cannot be computed (overflow, division by zero) or the output exceeds [`FOLD_LIMIT`], so the
/// output is left unfolded.
pub(crate) fn map_n(
    out_shape: &[usize],
    inputs: &[(&[i64], &[usize])],
    f: impl Fn(&[i64]) -> Option<i64>,
) -> Option<Vec<i64>> {
    let n = numel(out_shape).ok().filter(|&n| n <= FOLD_LIMIT)?;
    let os = strides(out_shape);
    let mut args = vec![0i64; inputs.len()];
    (0..n)
        .map(|flat| {
            for (a, (data, shape)) in args.iter_mut().zip(inputs) {
                *a = data[broadcast_index(out_shape, &os, shape, flat)];
            }
            f(&args)
        })
        .collect()
}

/// The elements of a tensor of `in_shape` picked by `pick`, which maps each output coordinate
/// (of `out_shape`, row-major) to an input coordinate; `None` past [`FOLD_LIMIT`] elements.
pub(crate) fn gather_by(
    data: &[i64],
    in_shape: &[usize],
    out_shape: &[usize],
    pick: impl Fn(&[usize], &mut [usize]),
) -> Option<Vec<i64>> {
    let n = numel(out_shape).ok().filter(|&n| n <= FOLD_LIMIT)?;
    let os = strides(out_shape);
    let is = strides(in_shape);
    let mut out_coord = vec![0usize; out_shape.len()];
    let mut in_coord = vec![0usize; in_shape.len()];
    (0..n)
        .map(|flat| {
            for (i, c) in out_coord.iter_mut().enumerate() {
                *c = (flat / os[i]) % out_shape[i];
            }
            pick(&out_coord, &mut in_coord);
            let idx: usize = in_coord.iter().zip(&is).map(|(c, s)| c * s).sum();
            data.get(idx).copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_repeats_along_unit_dims() {
        assert_eq!(
            broadcast_to(&[1, 2], &[2, 1], &[2, 3]).unwrap(),
            Some(vec![1, 1, 1, 2, 2, 2])
        );
        assert_eq!(
            broadcast_to(&[1, 2, 3], &[3], &[2, 3]).unwrap(),
            Some(vec![1, 2, 3, 1, 2, 3])
        );
        // Too large to fold: no allocation, no contents.
        assert_eq!(broadcast_to(&[7], &[1], &[1 << 40]).unwrap(), None);
    }

    #[test]
    fn map_n_broadcasts_and_gives_up_on_failure() {
        let a = [10i64, 20];
        let b = [1i64, 2, 3];
        let out = map_n(&[2, 3], &[(&a, &[2, 1]), (&b, &[3])], |x| Some(x[0] + x[1]));
        assert_eq!(out, Some(vec![11, 12, 13, 21, 22, 23]));
        assert_eq!(map_n(&[1], &[(&a[..1], &[1])], |_| None), None);
    }
}
