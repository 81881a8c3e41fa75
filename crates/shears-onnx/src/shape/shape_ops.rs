//! Ops that rearrange a tensor without computing on it: `Reshape`, `Flatten`, `Transpose`,
//! `Squeeze`, `Unsqueeze`, `Expand`, `Tile`, `DepthToSpace`, `SpaceToDepth`. Folded contents
//! pass through the ones that keep the row-major order, and are permuted by `Transpose`.
//!
//! Opset differences: `Reshape` takes its target as the `shape` attribute before opset 5 and as
//! an input since (with `allowzero` from 14); `Squeeze`/`Unsqueeze` take `axes` as an attribute
//! before opset 13 and as an input since.

use super::fold::{broadcast_to, gather_by};
use super::{broadcast, dim_of, invalid, norm_axes, norm_axis, numel, Ctx, Fail, Out, ShapeFn};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("Reshape", reshape),
    ("Flatten", flatten),
    ("Transpose", transpose),
    ("Squeeze", squeeze),
    ("Unsqueeze", unsqueeze),
    ("Expand", expand),
    ("Tile", tile),
    ("DepthToSpace", depth_to_space),
    ("SpaceToDepth", space_to_depth),
];

/// Output 0 of shape `shape` with input 0's type and, in row-major order, its contents.
fn same_data(c: &Ctx<'_>, shape: Vec<usize>) -> R {
    let data = c.folded_opt(0).map(|d| d.to_vec());
    Ok(vec![Out::with_data(shape, c.dtype(0)?, data)])
}

/// The target shape of a `Reshape` of `input` to `spec` (`0` copies the input's dim unless
/// `allow_zero`, one `-1` takes what is left).
pub(crate) fn reshape_target(
    input: &[usize],
    spec: &[i64],
    allow_zero: bool,
) -> Result<Vec<usize>, Fail> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 => {
                if infer_at.replace(i).is_some() {
                    return invalid(format!("target {spec:?} has more than one -1"));
                }
                out.push(1);
            }
            0 if !allow_zero => match input.get(i) {
                Some(&x) => out.push(x),
                None => {
                    return invalid(format!(
                        "target {spec:?} copies dim {i} (0) but the input {input:?} has rank {}",
                        input.len()
                    ))
                }
            },
            d if d < 0 => return invalid(format!("target {spec:?} has dim {d}")),
            d => out.push(d as usize),
        }
    }
    if allow_zero && infer_at.is_some() && spec.contains(&0) {
        return invalid(format!("target {spec:?} has both 0 and -1 with allowzero"));
    }
    let known = numel(&out)?;
    match infer_at {
        Some(i) => {
            if known == 0 || total % known != 0 {
                return invalid(format!(
                    "cannot reshape {input:?} ({total} elements) to {spec:?}"
                ));
            }
            out[i] = total / known;
        }
        None if known != total => {
            return invalid(format!(
                "cannot reshape {input:?} ({total} elements) to {spec:?} ({known} elements)"
            ))
        }
        None => {}
    }
    Ok(out)
}

fn reshape(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let spec: Vec<i64> = if c.opset() < 5 {
        match c.attr_ints("shape") {
            Some(s) => s.to_vec(),
            None => return invalid("'shape' attribute is missing"),
        }
    } else {
        let s = c.shape(1)?;
        if s.len() != 1 {
            return invalid(format!("shape input has rank {} (need 1)", s.len()));
        }
        c.folded(1)?.to_vec()
    };
    let out = reshape_target(x, &spec, c.attr_i("allowzero", 0) != 0)?;
    same_data(c, out)
}

/// `[prod(X[..axis]), prod(X[axis..])]`; `axis` in `[-r, r]`.
fn flatten(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let r = x.len() as i64;
    let axis = c.attr_i("axis", 1);
    if axis < -r || axis > r {
        return invalid(format!("axis {axis} is out of range for rank {r}"));
    }
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    same_data(c, vec![numel(&x[..axis])?, numel(&x[axis..])?])
}

fn transpose(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let perm: Vec<usize> = match c.attr_ints("perm") {
        Some(p) => {
            let mut seen = vec![false; x.len()];
            let mut out = Vec::with_capacity(p.len());
            for &a in p {
                let a = norm_axis(a, x.len())?;
                if std::mem::replace(&mut seen[a], true) {
                    return invalid(format!("perm {p:?} repeats axis {a}"));
                }
                out.push(a);
            }
            if out.len() != x.len() {
                return invalid(format!("perm {p:?} does not match rank {}", x.len()));
            }
            out
        }
        None => (0..x.len()).rev().collect(),
    };
    let shape: Vec<usize> = perm.iter().map(|&a| x[a]).collect();
    let data = c.folded_opt(0).and_then(|d| {
        gather_by(d, x, &shape, |o, i| {
            for (k, &a) in perm.iter().enumerate() {
                i[a] = o[k];
            }
        })
    });
    Ok(vec![Out::with_data(shape, c.dtype(0)?, data)])
}

/// `axes` from the attribute (opset < 13) or input 1 (opset >= 13); `None` when absent.
fn axes_attr_or_input(c: &Ctx<'_>) -> Result<Option<Vec<i64>>, Fail> {
    if c.opset() < 13 {
        Ok(c.attr_ints("axes").map(|a| a.to_vec()))
    } else {
        c.ints_input(1)
    }
}

fn squeeze(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let out: Vec<usize> = match axes_attr_or_input(c)? {
        None => x.iter().copied().filter(|&d| d != 1).collect(),
        Some(axes) => {
            let axes = norm_axes(&axes, x.len())?;
            if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
                return invalid(format!("cannot squeeze axis {a} of size {} in {x:?}", x[a]));
            }
            x.iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
    };
    same_data(c, out)
}

fn unsqueeze(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let Some(axes) = axes_attr_or_input(c)? else {
        return invalid("'axes' is missing");
    };
    let rank = x.len() + axes.len();
    let axes = norm_axes(&axes, rank)?;
    let mut rest = x.iter();
    let out: Vec<usize> = (0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect();
    same_data(c, out)
}

/// `Expand(x, shape)`: the broadcast of `x` and `shape`.
fn expand(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let target: Vec<usize> = c
        .folded(1)?
        .iter()
        .map(|&d| dim_of(d, "expand dim"))
        .collect::<Result<_, _>>()?;
    let out = broadcast(&[x, &target])?;
    let data = match c.folded_opt(0) {
        Some(d) => broadcast_to(d, x, &out)?,
        None => None,
    };
    Ok(vec![Out::with_data(out, c.dtype(0)?, data)])
}

fn tile(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let reps = c.folded(1)?;
    if reps.len() != x.len() {
        return invalid(format!("{} repeats for rank {}", reps.len(), x.len()));
    }
    let out = x
        .iter()
        .zip(reps)
        .map(|(&d, &r)| {
            d.checked_mul(dim_of(r, "repeat")?)
                .ok_or_else(|| Fail::Invalid(format!("{d} x {r} overflows")))
        })
        .collect::<Result<Vec<_>, Fail>>()?;
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

fn blocksize(c: &Ctx<'_>, x: &[usize]) -> Result<usize, Fail> {
    if x.len() != 4 {
        return invalid(format!("input rank {} (need 4)", x.len()));
    }
    let b = c.attr_i("blocksize", 0);
    if !(1..=1 << 16).contains(&b) {
        return invalid(format!("blocksize {b} is not in 1..=65536"));
    }
    Ok(b as usize)
}

fn depth_to_space(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let b = blocksize(c, x)?;
    if x[1] % (b * b) != 0 {
        return invalid(format!(
            "{} channels are not divisible by blocksize² {}",
            x[1],
            b * b
        ));
    }
    let (Some(h), Some(w)) = (x[2].checked_mul(b), x[3].checked_mul(b)) else {
        return invalid("output dims overflow");
    };
    Ok(vec![Out::new(
        vec![x[0], x[1] / (b * b), h, w],
        c.dtype(0)?,
    )])
}

fn space_to_depth(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let b = blocksize(c, x)?;
    if x[2] % b != 0 || x[3] % b != 0 {
        return invalid(format!(
            "spatial dims {:?} are not divisible by blocksize {b}",
            &x[2..]
        ));
    }
    let Some(ch) = x[1].checked_mul(b * b) else {
        return invalid("output channels overflow");
    };
    Ok(vec![Out::new(
        vec![x[0], ch, x[2] / b, x[3] / b],
        c.dtype(0)?,
    )])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn reshape_zero_and_minus_one() {
        let cases: &[(&[usize], &[i64], &[usize])] = &[
            (&[1, 512, 1, 1], &[1, -1], &[1, 512]),
            (&[2, 3, 4], &[0, -1], &[2, 12]),
            (&[2, 3, 4], &[0, 0, 2, 2], &[2, 3, 2, 2]),
            (&[17, 1, 96], &[17, 1, 3, 32], &[17, 1, 3, 32]),
            (&[1, 16, 4, 4], &[1, 2, 8, 4, 4], &[1, 2, 8, 4, 4]),
            (&[6], &[-1], &[6]),
            (&[4, 3], &[2, 0, -1], &[2, 3, 2]),
        ];
        for (x, spec, out) in cases {
            check(17, "Reshape", vec![], &[s(x), i1(spec)], &[out]);
        }
        check(
            4,
            "Reshape",
            vec![aints("shape", &[0, -1])],
            &[s(&[2, 3, 4])],
            &[&[2, 12]],
        );
        // allowzero: 0 is a real zero-sized dim.
        check(
            14,
            "Reshape",
            vec![ai("allowzero", 1)],
            &[s(&[0, 3]), i1(&[3, 0])],
            &[&[3, 0]],
        );
        check_err(
            14,
            "Reshape",
            vec![ai("allowzero", 1)],
            &[s(&[2, 3]), i1(&[0, 6])],
            "cannot reshape",
        );
        check_err(
            17,
            "Reshape",
            vec![],
            &[s(&[2, 3]), i1(&[4, -1])],
            "cannot reshape",
        );
        check_err(
            17,
            "Reshape",
            vec![],
            &[s(&[2, 3]), i1(&[-1, -1])],
            "more than one -1",
        );
        check_err(
            17,
            "Reshape",
            vec![],
            &[s(&[2, 3]), i1(&[5])],
            "cannot reshape",
        );
        // A target that is not known statically leaves the output unknown.
        check_unknown(17, "Reshape", vec![], &[s(&[2, 3]), s(&[2])]);
    }

    #[test]
    fn flatten_axes() {
        check(17, "Flatten", vec![], &[s(&[2, 3, 4, 5])], &[&[2, 60]]);
        check(
            17,
            "Flatten",
            vec![ai("axis", 0)],
            &[s(&[2, 3, 4])],
            &[&[1, 24]],
        );
        check(
            17,
            "Flatten",
            vec![ai("axis", 3)],
            &[s(&[2, 3, 4])],
            &[&[24, 1]],
        );
        check(
            17,
            "Flatten",
            vec![ai("axis", -1)],
            &[s(&[2, 3, 4])],
            &[&[6, 4]],
        );
        check_err(
            17,
            "Flatten",
            vec![ai("axis", 4)],
            &[s(&[2, 3, 4])],
            "axis 4",
        );
    }

    #[test]
    fn transpose_perm() {
        check(
            17,
            "Transpose",
            vec![aints("perm", &[0, 2, 3, 1])],
            &[s(&[1, 8, 4, 5])],
            &[&[1, 4, 5, 8]],
        );
        check(17, "Transpose", vec![], &[s(&[2, 3, 4])], &[&[4, 3, 2]]);
        check_err(
            17,
            "Transpose",
            vec![aints("perm", &[0, 0, 1])],
            &[s(&[2, 3, 4])],
            "repeats",
        );
        check_fold(
            17,
            "Transpose",
            vec![],
            &[In::I(vec![2, 3], vec![1, 2, 3, 4, 5, 6])],
            &[3, 2],
            &[1, 4, 2, 5, 3, 6],
        );
    }

    #[test]
    fn squeeze_unsqueeze_axes_by_opset() {
        check(
            11,
            "Squeeze",
            vec![aints("axes", &[0, -1])],
            &[s(&[1, 3, 1])],
            &[&[3]],
        );
        check(
            13,
            "Squeeze",
            vec![],
            &[s(&[1, 3, 1]), i1(&[-1])],
            &[&[1, 3]],
        );
        check(13, "Squeeze", vec![], &[s(&[1, 3, 1])], &[&[3]]);
        check_err(
            13,
            "Squeeze",
            vec![],
            &[s(&[1, 3, 1]), i1(&[1])],
            "cannot squeeze",
        );
        check(
            11,
            "Unsqueeze",
            vec![aints("axes", &[0, 3])],
            &[s(&[3, 4])],
            &[&[1, 3, 4, 1]],
        );
        check(
            13,
            "Unsqueeze",
            vec![],
            &[s(&[3, 4]), i1(&[-1, 1])],
            &[&[3, 1, 4, 1]],
        );
        check_fold(13, "Unsqueeze", vec![], &[i0(7), i1(&[0])], &[1], &[7]);
        check_err(13, "Unsqueeze", vec![], &[s(&[3]), i1(&[0, 0])], "repeat");
        check_err(13, "Unsqueeze", vec![], &[s(&[3]), i1(&[3])], "axis 3");
    }

    #[test]
    fn expand_tile_depth_space() {
        check(
            17,
            "Expand",
            vec![],
            &[s(&[1, 1, 32]), i1(&[1, 4, 32])],
            &[&[1, 4, 32]],
        );
        check(
            17,
            "Expand",
            vec![],
            &[s(&[3, 1]), i1(&[2, 1, 6])],
            &[&[2, 3, 6]],
        );
        check_fold(
            17,
            "Expand",
            vec![],
            &[i1(&[5]), i1(&[3])],
            &[3],
            &[5, 5, 5],
        );
        check_err(
            17,
            "Expand",
            vec![],
            &[s(&[3, 2]), i1(&[3, 4])],
            "broadcast",
        );
        check(17, "Tile", vec![], &[s(&[2, 3]), i1(&[2, 1])], &[&[4, 3]]);
        check(
            17,
            "DepthToSpace",
            vec![ai("blocksize", 2)],
            &[s(&[1, 8, 3, 3])],
            &[&[1, 2, 6, 6]],
        );
        check(
            17,
            "SpaceToDepth",
            vec![ai("blocksize", 2)],
            &[s(&[1, 2, 6, 6])],
            &[&[1, 8, 3, 3]],
        );
    }
}
