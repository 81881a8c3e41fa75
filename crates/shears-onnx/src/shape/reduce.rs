//! Reductions: `Reduce*` over `axes` (kept as 1 or removed by `keepdims`) and
//! `ArgMax`/`ArgMin` over one `axis`.
//!
//! Opset differences: `axes` is an attribute before opset 18 (before 13 for `ReduceSum`) and an
//! optional input since; with no axes every axis is reduced, unless `noop_with_empty_axes` is set
//! (then the input passes through).

use super::{norm_axes, norm_axis, Ctx, Fail, Out, ShapeFn, INT64};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("ReduceMean", reduce),
    ("ReduceSum", reduce_sum),
    ("ReduceMax", reduce),
    ("ReduceMin", reduce),
    ("ReduceProd", reduce),
    ("ReduceL1", reduce),
    ("ReduceL2", reduce),
    ("ReduceLogSum", reduce),
    ("ReduceLogSumExp", reduce),
    ("ReduceSumSquare", reduce),
    ("ArgMax", arg),
    ("ArgMin", arg),
];

/// The reduced shape of `x` over `axes` (`None`: every axis).
fn reduced(x: &[usize], axes: Option<Vec<usize>>, keepdims: bool) -> Vec<usize> {
    let axes = axes.unwrap_or_else(|| (0..x.len()).collect());
    x.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// A reduction whose `axes` moved from attribute to input at `input_since`.
fn reduce_with(c: &Ctx<'_>, input_since: i64) -> R {
    let x = c.shape(0)?;
    let axes = if c.opset() < input_since {
        c.attr_ints("axes").map(|a| a.to_vec())
    } else {
        c.ints_input(1)?
    };
    let keepdims = c.attr_i("keepdims", 1) != 0;
    let axes = match axes {
        Some(a) if !a.is_empty() => Some(norm_axes(&a, x.len())?),
        _ if c.attr_i("noop_with_empty_axes", 0) != 0 => {
            return Ok(vec![Out::new(x.to_vec(), c.dtype(0)?)]);
        }
        _ => None,
    };
    Ok(vec![Out::new(reduced(x, axes, keepdims), c.dtype(0)?)])
}

fn reduce(c: &Ctx<'_>) -> R {
    reduce_with(c, 18)
}

fn reduce_sum(c: &Ctx<'_>) -> R {
    reduce_with(c, 13)
}

fn arg(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let axis = norm_axis(c.attr_i("axis", 0), x.len())?;
    let keepdims = c.attr_i("keepdims", 1) != 0;
    Ok(vec![Out::new(
        reduced(x, Some(vec![axis]), keepdims),
        INT64,
    )])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn reduce_axes_by_opset() {
        check(
            17,
            "ReduceMean",
            vec![aints("axes", &[2, 3])],
            &[s(&[1, 32, 4, 4])],
            &[&[1, 32, 1, 1]],
        );
        check(
            17,
            "ReduceMean",
            vec![aints("axes", &[-1]), ai("keepdims", 0)],
            &[s(&[1, 17, 32])],
            &[&[1, 17]],
        );
        check(
            18,
            "ReduceMean",
            vec![],
            &[s(&[1, 32, 4, 4]), i1(&[-2, -1])],
            &[&[1, 32, 1, 1]],
        );
        check(
            18,
            "ReduceMean",
            vec![ai("keepdims", 0)],
            &[s(&[1, 32, 4, 4])],
            &[&[]],
        );
        check(
            18,
            "ReduceMax",
            vec![ai("noop_with_empty_axes", 1)],
            &[s(&[2, 3])],
            &[&[2, 3]],
        );
        check(
            11,
            "ReduceSum",
            vec![aints("axes", &[1])],
            &[s(&[2, 3])],
            &[&[2, 1]],
        );
        check(
            13,
            "ReduceSum",
            vec![ai("keepdims", 0)],
            &[s(&[2, 3]), i1(&[0])],
            &[&[3]],
        );
        check_err(
            17,
            "ReduceMean",
            vec![aints("axes", &[4])],
            &[s(&[1, 2, 3])],
            "axis 4",
        );
        check_unknown(18, "ReduceMean", vec![], &[s(&[1, 32, 4, 4]), s(&[2])]);
    }

    #[test]
    fn arg_reductions() {
        check(
            17,
            "ArgMax",
            vec![ai("axis", 1)],
            &[s(&[2, 10])],
            &[&[2, 1]],
        );
        check(
            17,
            "ArgMin",
            vec![ai("axis", -1), ai("keepdims", 0)],
            &[s(&[2, 10])],
            &[&[2]],
        );
    }
}
