//! Ops that cut, join or pick along axes: `Concat`, `Split`, `Slice`, `Gather`,
//! `GatherElements`, `GatherND`, `Pad`. Folded contents go through all but `GatherElements`,
//! `GatherND` and `Pad`.
//!
//! Opset differences: `Split` sizes are the `split` attribute before opset 13, an input since,
//! and may be `num_outputs` (uneven: the last part smaller) from 18; `GatherND` has
//! `batch_dims` from 12 (0 before); `Slice` takes
//! `starts`/`ends`/`axes` attributes before opset 10 and inputs (plus `steps`) since; `Pad`
//! takes `paddings` (opset 1), `pads` (2-10) as attributes and `pads`/`axes` as inputs since 11.

use super::fold::gather_by;
use super::{dim_of, invalid, norm_axes, norm_axis, numel, Ctx, Fail, Out, ShapeFn};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("Concat", concat),
    ("Split", split),
    ("Slice", slice),
    ("Gather", gather),
    ("GatherElements", gather_elements),
    ("GatherND", gather_nd),
    ("Pad", pad),
];

fn concat(c: &Ctx<'_>) -> R {
    let present: Vec<usize> = (0..c.n_inputs()).filter(|&i| c.has(i)).collect();
    let Some(&first) = present.first() else {
        return invalid("no inputs");
    };
    let shapes = present
        .iter()
        .map(|&i| c.shape(i))
        .collect::<Result<Vec<_>, _>>()?;
    let rank = shapes[0].len();
    let Some(axis) = c.node.attr("axis").map(|a| a.i) else {
        return invalid("'axis' is missing");
    };
    let axis = norm_axis(axis, rank)?;
    let mut out = shapes[0].to_vec();
    out[axis] = 0;
    for s in &shapes {
        let same_other = s.len() == rank && (0..rank).all(|d| d == axis || s[d] == out[d]);
        if !same_other {
            return invalid(format!(
                "input shapes {shapes:?} differ outside axis {axis}"
            ));
        }
        out[axis] += s[axis];
    }
    let known: Option<Vec<&[i64]>> = present.iter().map(|&i| c.folded_opt(i)).collect();
    let data = known.map(|parts| {
        // Row-major: for each index over the dims before `axis`, each input's block in turn.
        let outer: usize = out[..axis].iter().product();
        let mut data = Vec::new();
        for o in 0..outer {
            for (p, s) in parts.iter().zip(&shapes) {
                let block: usize = s[axis..].iter().product();
                data.extend_from_slice(&p[o * block..(o + 1) * block]);
            }
        }
        data
    });
    Ok(vec![Out::with_data(out, c.dtype(first)?, data)])
}

/// The part sizes of a `Split` of a dim of size `dim`.
fn split_sizes(c: &Ctx<'_>, dim: usize) -> Result<Vec<usize>, Fail> {
    let n_out = c.n_outputs();
    let explicit = if c.opset() < 13 {
        c.attr_ints("split").map(|s| s.to_vec())
    } else {
        c.ints_input(1)?
    };
    let sizes: Vec<usize> = if let Some(s) = explicit {
        s.iter()
            .map(|&d| dim_of(d, "split size"))
            .collect::<Result<_, _>>()?
    } else if let Some(n) = c.node.attr("num_outputs").map(|a| a.i) {
        if n < 1 || n as usize != n_out {
            return invalid(format!("num_outputs {n} but {n_out} outputs"));
        }
        let n = n as usize;
        let chunk = dim.div_ceil(n);
        let last = dim as i64 - (chunk * (n - 1)) as i64;
        if last < 0 {
            return invalid(format!("cannot split {dim} into {n} parts of {chunk}"));
        }
        let mut s = vec![chunk; n - 1];
        s.push(last as usize);
        s
    } else {
        if n_out == 0 || !dim.is_multiple_of(n_out) {
            return invalid(format!("cannot split {dim} evenly into {n_out} outputs"));
        }
        vec![dim / n_out; n_out]
    };
    if sizes.len() != n_out {
        return invalid(format!("{} split sizes for {n_out} outputs", sizes.len()));
    }
    let total: usize = sizes.iter().sum();
    if total != dim {
        return invalid(format!("split sizes {sizes:?} sum to {total}, not {dim}"));
    }
    Ok(sizes)
}

fn split(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let axis = norm_axis(c.attr_i("axis", 0), x.len())?;
    let sizes = split_sizes(c, x[axis])?;
    let dtype = c.dtype(0)?;
    let mut start = 0;
    Ok(sizes
        .into_iter()
        .map(|len| {
            let mut shape = x.to_vec();
            shape[axis] = len;
            let data = c.folded_opt(0).and_then(|d| {
                gather_by(d, x, &shape, |o, i| {
                    i.copy_from_slice(o);
                    i[axis] += start;
                })
            });
            start += len;
            Out::with_data(shape, dtype, data)
        })
        .collect())
}

/// `(first index, step, length)` of a slice of a dim of size `dim`, clamped as the spec says.
fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> Result<(usize, i64, usize), Fail> {
    if step == 0 {
        return invalid("step 0");
    }
    if dim == 0 {
        return Ok((0, step, 0));
    }
    // i128: `end` is often i64::MAX or i64::MIN, and `-step` must not overflow.
    let (d, st) = (dim as i128, step as i128);
    let wrap = |v: i64| {
        let v = v as i128;
        if v < 0 {
            v + d
        } else {
            v
        }
    };
    let (s, e) = (wrap(start), wrap(end));
    let (s, len) = if st > 0 {
        let (s, e) = (s.clamp(0, d), e.clamp(0, d));
        (s, if e > s { (e - s + st - 1) / st } else { 0 })
    } else {
        let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
        (s, if s > e { (s - e - st - 1) / -st } else { 0 })
    };
    Ok((s as usize, step, len as usize))
}

fn slice(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let (starts, ends, axes, steps) = if c.opset() < 10 {
        let get = |n: &str| c.attr_ints(n).map(|v| v.to_vec());
        let (Some(s), Some(e)) = (get("starts"), get("ends")) else {
            return invalid("'starts' or 'ends' is missing");
        };
        (s, e, get("axes"), None)
    } else {
        (
            c.folded(1)?.to_vec(),
            c.folded(2)?.to_vec(),
            c.ints_input(3)?,
            c.ints_input(4)?,
        )
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return invalid(format!(
            "starts, ends, axes, steps have {n}, {}, {}, {} values",
            ends.len(),
            axes.len(),
            steps.len()
        ));
    }
    // Rejects repeated axes.
    norm_axes(&axes, x.len())?;
    let mut shape = x.to_vec();
    // (first, step) per axis; untouched axes start at 0 with step 1.
    let mut ranges: Vec<(usize, i64)> = vec![(0, 1); x.len()];
    for k in 0..n {
        let a = norm_axis(axes[k], x.len())?;
        let (first, step, len) = slice_range(x[a], starts[k], ends[k], steps[k])?;
        shape[a] = len;
        ranges[a] = (first, step);
    }
    let data = c.folded_opt(0).and_then(|d| {
        gather_by(d, x, &shape, |o, i| {
            for (a, &(first, step)) in ranges.iter().enumerate() {
                i[a] = (first as i64 + o[a] as i64 * step) as usize;
            }
        })
    });
    Ok(vec![Out::with_data(shape, c.dtype(0)?, data)])
}

/// `data[..axis] ++ indices.shape ++ data[axis + 1..]`.
fn gather(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let idx = c.shape(1)?;
    if x.is_empty() {
        return invalid("data is a scalar");
    }
    let axis = norm_axis(c.attr_i("axis", 0), x.len())?;
    let mut out = x[..axis].to_vec();
    out.extend_from_slice(idx);
    out.extend_from_slice(&x[axis + 1..]);
    let dim = x[axis] as i64;
    let indices = match c.folded_opt(1) {
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|&&i| i < -dim || i >= dim) {
                return invalid(format!(
                    "index {bad} is out of range for axis {axis} of size {dim}"
                ));
            }
            Some(ids)
        }
        None => None,
    };
    let data = match (c.folded_opt(0), indices) {
        (Some(d), Some(ids)) => {
            let r = idx.len();
            gather_by(d, x, &out, |o, i| {
                i[..axis].copy_from_slice(&o[..axis]);
                let pos: usize = o[axis..axis + r]
                    .iter()
                    .zip(super::fold::strides(idx))
                    .map(|(c, s)| c * s)
                    .sum();
                let id = ids[pos];
                i[axis] = if id < 0 { id + dim } else { id } as usize;
                i[axis + 1..].copy_from_slice(&o[axis + r..]);
            })
        }
        _ => None,
    };
    Ok(vec![Out::with_data(out, c.dtype(0)?, data)])
}

fn gather_elements(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let idx = c.shape(1)?;
    if x.len() != idx.len() {
        return invalid(format!(
            "data rank {} and indices rank {} differ",
            x.len(),
            idx.len()
        ));
    }
    norm_axis(c.attr_i("axis", 0), x.len())?;
    Ok(vec![Out::new(idx.to_vec(), c.dtype(0)?)])
}

/// `GatherND(data[r], indices[q])`: the last indices axis holds `k` coordinates into data's axes
/// `b..b+k` (`b` = `batch_dims`, whose axes both share); the output is
/// `indices[..q-1] ++ data[b+k..]`.
fn gather_nd(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let idx = c.shape(1)?;
    let b = c.attr_i("batch_dims", 0);
    let Some(&k) = idx.last() else {
        return invalid("indices are a scalar");
    };
    let b = usize::try_from(b)
        .ok()
        .filter(|&b| b < idx.len() && b < x.len())
        .ok_or_else(|| Fail::Invalid(format!("batch_dims {b} is out of range")))?;
    if k < 1 || b + k > x.len() {
        return invalid(format!(
            "indices of {k} coordinates do not fit data of rank {} with batch_dims {b}",
            x.len()
        ));
    }
    if x[..b] != idx[..b] {
        return invalid(format!(
            "batch axes of data {x:?} and indices {idx:?} differ"
        ));
    }
    let mut out = idx[..idx.len() - 1].to_vec();
    out.extend_from_slice(&x[b + k..]);
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

fn pad(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let (pads, axes) = if c.opset() < 11 {
        let name = if c.opset() < 2 { "paddings" } else { "pads" };
        match c.attr_ints(name) {
            Some(p) => (p.to_vec(), None),
            None => return invalid(format!("'{name}' is missing")),
        }
    } else {
        (c.folded(1)?.to_vec(), c.ints_input(3)?)
    };
    let axes = match axes {
        Some(a) => norm_axes(&a, x.len())?,
        None => (0..x.len()).collect(),
    };
    let n = axes.len();
    if pads.len() != 2 * n {
        return invalid(format!("{} pads for {n} axes", pads.len()));
    }
    let mut out = x.to_vec();
    for (k, &a) in axes.iter().enumerate() {
        let d = x[a] as i64 + pads[k] + pads[n + k];
        out[a] = dim_of(d, "padded dim")?;
    }
    numel(&out)?;
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn concat_along_axes() {
        check(
            17,
            "Concat",
            vec![ai("axis", 1)],
            &[s(&[1, 8, 4, 4]), s(&[1, 12, 4, 4]), s(&[1, 6, 4, 4])],
            &[&[1, 26, 4, 4]],
        );
        check(
            17,
            "Concat",
            vec![ai("axis", -3)],
            &[s(&[1, 8, 4, 4]), s(&[1, 2, 4, 4])],
            &[&[1, 10, 4, 4]],
        );
        check_err(
            17,
            "Concat",
            vec![ai("axis", 1)],
            &[s(&[1, 8, 4, 4]), s(&[1, 8, 5, 4])],
            "differ",
        );
        check_err(17, "Concat", vec![], &[s(&[1, 8])], "'axis'");
        check_fold(
            17,
            "Concat",
            vec![ai("axis", 0)],
            &[i1(&[1]), i1(&[-1, 4])],
            &[3],
            &[1, -1, 4],
        );
        check_fold(
            17,
            "Concat",
            vec![ai("axis", 1)],
            &[
                In::I(vec![2, 1], vec![1, 2]),
                In::I(vec![2, 2], vec![3, 4, 5, 6]),
            ],
            &[2, 3],
            &[1, 3, 4, 2, 5, 6],
        );
    }

    #[test]
    fn split_even_uneven_and_by_opset() {
        check(
            17,
            "Split",
            vec![ai("axis", 1)],
            &[s(&[1, 6, 4])],
            &[&[1, 3, 4], &[1, 3, 4]],
        );
        check(
            11,
            "Split",
            vec![ai("axis", 1), aints("split", &[2, 4])],
            &[s(&[1, 6, 4])],
            &[&[1, 2, 4], &[1, 4, 4]],
        );
        check(
            13,
            "Split",
            vec![ai("axis", -1)],
            &[s(&[1, 6, 5]), i1(&[1, 4])],
            &[&[1, 6, 1], &[1, 6, 4]],
        );
        check(
            18,
            "Split",
            vec![ai("axis", 0), ai("num_outputs", 3)],
            &[s(&[7, 2])],
            &[&[3, 2], &[3, 2], &[1, 2]],
        );
        check(
            18,
            "Split",
            vec![ai("num_outputs", 2)],
            &[s(&[6])],
            &[&[3], &[3]],
        );
        let two = |op_inputs: &[In], attrs| run(17, "Split", attrs, op_inputs, 2);
        let e = two(&[s(&[5])], vec![]).unwrap_err().to_string();
        assert!(e.contains("evenly"), "{e}");
        let e = two(&[s(&[5]), i1(&[2, 2])], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sum to 4"), "{e}");
        let out = two(&[i1(&[1, 2, 3, 4, 5]), i1(&[2, 3])], vec![]).unwrap();
        assert_eq!(out[0], Some((vec![2], Some(vec![1, 2]))));
        assert_eq!(out[1], Some((vec![3], Some(vec![3, 4, 5]))));
    }

    /// (input, starts, ends, axes, steps, output)
    type SliceCase = (
        &'static [usize],
        &'static [i64],
        &'static [i64],
        &'static [i64],
        &'static [i64],
        &'static [usize],
    );

    #[test]
    fn slice_steps_and_negative_indices() {
        // (input, starts, ends, axes, steps, output)
        let cases: &[SliceCase] = &[
            (&[10], &[2], &[8], &[0], &[1], &[6]),
            (&[10], &[0], &[10], &[0], &[3], &[4]),
            (&[10], &[-3], &[i64::MAX], &[0], &[1], &[3]),
            (&[10], &[-1], &[i64::MIN], &[0], &[-1], &[10]),
            (&[10], &[8], &[2], &[0], &[-2], &[3]),
            (&[10], &[5], &[2], &[0], &[1], &[0]),
            (&[10], &[-100], &[100], &[0], &[1], &[10]),
            (&[4, 6, 8], &[1, 0], &[3, -1], &[-1, 1], &[2, 1], &[4, 5, 1]),
            (&[1, 17, 32], &[0], &[1], &[1], &[1], &[1, 1, 32]),
        ];
        for (x, st, en, ax, sp, out) in cases {
            check(
                17,
                "Slice",
                vec![],
                &[s(x), i1(st), i1(en), i1(ax), i1(sp)],
                &[out],
            );
        }
        check(
            17,
            "Slice",
            vec![],
            &[s(&[5, 6]), i1(&[1]), i1(&[3])],
            &[&[2, 6]],
        );
        check(
            9,
            "Slice",
            vec![
                aints("starts", &[1]),
                aints("ends", &[-1]),
                aints("axes", &[1]),
            ],
            &[s(&[5, 6])],
            &[&[5, 4]],
        );
        check_fold(
            17,
            "Slice",
            vec![],
            &[
                i1(&[1, 2, 3, 4, 5]),
                i1(&[-1]),
                i1(&[0]),
                i1(&[0]),
                i1(&[-2]),
            ],
            &[2],
            &[5, 3],
        );
        check_fold(
            17,
            "Slice",
            vec![],
            &[i1(&[1, 3, 224, 224]), i1(&[2]), i1(&[i64::MAX])],
            &[2],
            &[224, 224],
        );
        check_err(
            17,
            "Slice",
            vec![],
            &[s(&[5]), i1(&[0]), i1(&[1]), i1(&[0]), i1(&[0])],
            "step 0",
        );
    }

    #[test]
    fn gather_shapes_and_folding() {
        check(17, "Gather", vec![], &[s(&[5, 4]), i0(2)], &[&[4]]);
        check(
            17,
            "Gather",
            vec![ai("axis", 1)],
            &[s(&[2, 3, 4]), i1(&[0, 2])],
            &[&[2, 2, 4]],
        );
        check(
            17,
            "Gather",
            vec![ai("axis", -1)],
            &[s(&[2, 3, 4]), In::I(vec![2, 2], vec![0, 1, 2, 3])],
            &[&[2, 3, 2, 2]],
        );
        check_fold(
            17,
            "Gather",
            vec![],
            &[i1(&[1, 3, 224, 224]), i0(-1)],
            &[],
            &[224],
        );
        check_fold(
            17,
            "Gather",
            vec![],
            &[i1(&[1, 3, 224, 224]), i1(&[0, 1])],
            &[2],
            &[1, 3],
        );
        check_err(17, "Gather", vec![], &[s(&[5, 4]), i0(5)], "out of range");
        check(
            17,
            "GatherElements",
            vec![ai("axis", 1)],
            &[s(&[3, 4]), s(&[3, 2])],
            &[&[3, 2]],
        );
        // Row pairs of a [1, 5, 6] sequence: [1, 2, 2] indices give [1, 2, 6].
        check(
            13,
            "GatherND",
            vec![],
            &[s(&[1, 5, 6]), s(&[1, 2, 2])],
            &[&[1, 2, 6]],
        );
        check(
            13,
            "GatherND",
            vec![ai("batch_dims", 1)],
            &[s(&[2, 5, 6]), s(&[2, 3, 1])],
            &[&[2, 3, 6]],
        );
        check_err(
            13,
            "GatherND",
            vec![],
            &[s(&[5, 6]), s(&[2, 3])],
            "do not fit",
        );
        check_err(
            13,
            "GatherND",
            vec![ai("batch_dims", 1)],
            &[s(&[2, 5, 6]), s(&[3, 1])],
            "batch axes",
        );
    }

    #[test]
    fn pad_by_opset() {
        check(
            11,
            "Pad",
            vec![],
            &[s(&[1, 3, 4, 4]), i1(&[0, 0, 1, 2, 0, 0, 3, 4])],
            &[&[1, 3, 8, 10]],
        );
        check(
            2,
            "Pad",
            vec![aints("pads", &[0, 1, 0, 1])],
            &[s(&[2, 2])],
            &[&[2, 4]],
        );
        check(
            18,
            "Pad",
            vec![],
            &[s(&[1, 3, 4, 4]), i1(&[1, 1, 2, 2]), In::None, i1(&[-2, -1])],
            &[&[1, 3, 7, 7]],
        );
        check(11, "Pad", vec![], &[s(&[4]), i1(&[-1, -1])], &[&[2]]);
        check_err(11, "Pad", vec![], &[s(&[4]), i1(&[1])], "pads");
    }
}
