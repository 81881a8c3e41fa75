//! Pooling: `MaxPool` (with its optional `Indices` output), `AveragePool`, `LpPool` over a
//! `kernel_shape` window (geometry shared with convolution), and the global pools.

use super::conv::window_out;
use super::{dim_of, invalid, Ctx, Fail, Out, ShapeFn, INT64};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("MaxPool", max_pool),
    ("AveragePool", windowed),
    ("LpPool", windowed),
    ("GlobalAveragePool", global),
    ("GlobalMaxPool", global),
    ("GlobalLpPool", global),
];

/// `[N, C, out...]` for the node's window over input 0.
fn pooled(c: &Ctx<'_>) -> Result<Out, Fail> {
    let x = c.shape(0)?;
    if x.len() < 3 {
        return invalid(format!("input rank {} (need >= 3)", x.len()));
    }
    let Some(k) = c.attr_ints("kernel_shape") else {
        return invalid("'kernel_shape' is missing");
    };
    let k: Vec<usize> = k
        .iter()
        .map(|&d| dim_of(d, "kernel dim"))
        .collect::<Result<_, _>>()?;
    let ceil_mode = c.attr_i("ceil_mode", 0) != 0;
    let mut out = x[..2].to_vec();
    out.extend(window_out(c, &x[2..], &k, ceil_mode)?);
    Ok(Out::new(out, c.dtype(0)?))
}

fn windowed(c: &Ctx<'_>) -> R {
    Ok(vec![pooled(c)?])
}

fn max_pool(c: &Ctx<'_>) -> R {
    let y = pooled(c)?;
    let indices = Out::new(y.shape.clone(), INT64);
    Ok(vec![y, indices])
}

/// `[N, C, 1, ...]`.
fn global(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    if x.len() < 3 {
        return invalid(format!("input rank {} (need >= 3)", x.len()));
    }
    let mut out = x[..2].to_vec();
    out.resize(x.len(), 1);
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn pool_output_sizes() {
        let k3s2 = || vec![aints("kernel_shape", &[3, 3]), aints("strides", &[2, 2])];
        let with = |mut a: Vec<_>, extra: Vec<_>| {
            a.extend(extra);
            a
        };
        let cases: Vec<(&str, &[usize], Vec<_>, &[usize])> = vec![
            (
                "MaxPool",
                &[1, 64, 112, 112],
                with(k3s2(), vec![aints("pads", &[1, 1, 1, 1])]),
                &[1, 64, 56, 56],
            ),
            (
                "MaxPool",
                &[1, 16, 32, 32],
                with(k3s2(), vec![ai("ceil_mode", 1)]),
                &[1, 16, 16, 16],
            ),
            ("MaxPool", &[1, 16, 32, 32], k3s2(), &[1, 16, 15, 15]),
            (
                "MaxPool",
                &[1, 1, 6, 6],
                with(
                    vec![aints("kernel_shape", &[2, 2]), aints("strides", &[2, 2])],
                    vec![ai("ceil_mode", 1), aints("pads", &[1, 1, 1, 1])],
                ),
                &[1, 1, 4, 4],
            ),
            (
                "MaxPool",
                &[1, 1, 5, 5],
                with(
                    vec![aints("kernel_shape", &[2, 2]), aints("strides", &[2, 2])],
                    vec![ai("ceil_mode", 1)],
                ),
                &[1, 1, 3, 3],
            ),
            (
                "AveragePool",
                &[1, 8, 16, 16],
                vec![aints("kernel_shape", &[2, 2]), aints("strides", &[2, 2])],
                &[1, 8, 8, 8],
            ),
            (
                "AveragePool",
                &[1, 8, 15, 15],
                with(k3s2(), vec![astr("auto_pad", "SAME_UPPER")]),
                &[1, 8, 8, 8],
            ),
            (
                "AveragePool",
                &[1, 8, 10],
                vec![aints("kernel_shape", &[3])],
                &[1, 8, 8],
            ),
            (
                "LpPool",
                &[1, 8, 10, 10],
                vec![aints("kernel_shape", &[2, 2])],
                &[1, 8, 9, 9],
            ),
        ];
        for (op, x, attrs, out) in cases {
            check(17, op, attrs, &[s(x)], &[out]);
        }
        check(
            17,
            "GlobalAveragePool",
            vec![],
            &[s(&[2, 32, 7, 5])],
            &[&[2, 32, 1, 1]],
        );
        check(
            17,
            "GlobalMaxPool",
            vec![],
            &[s(&[2, 32, 7])],
            &[&[2, 32, 1]],
        );
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_padding() {
        let attrs = |pads: &[i64]| {
            vec![
                aints("kernel_shape", &[2]),
                aints("strides", &[2]),
                aints("pads", pads),
                ai("ceil_mode", 1),
            ]
        };
        // in 4, pads 0+1: ceil((5 - 2) / 2) + 1 = 3, but window 3 would start at 4, past the
        // input (4 + begin pad 0): dropped, as PyTorch and onnxruntime do.
        check(
            17,
            "MaxPool",
            attrs(&[0, 1]),
            &[s(&[1, 1, 4])],
            &[&[1, 1, 2]],
        );
        // in 4, pads 1+1: ceil((6 - 2) / 2) + 1 = 3; window 3 starts at 4 < 4 + 1: kept.
        check(
            17,
            "MaxPool",
            attrs(&[1, 1]),
            &[s(&[1, 1, 4])],
            &[&[1, 1, 3]],
        );
        // in 5, no pads: ceil(3 / 2) + 1 = 3; window 3 starts at 4 < 5: kept (floor gives 2).
        check(
            17,
            "MaxPool",
            attrs(&[0, 0]),
            &[s(&[1, 1, 5])],
            &[&[1, 1, 3]],
        );
    }

    #[test]
    fn max_pool_indices_output() {
        check(
            17,
            "MaxPool",
            vec![aints("kernel_shape", &[2, 2])],
            &[s(&[1, 2, 4, 4])],
            &[&[1, 2, 3, 3], &[1, 2, 3, 3]],
        );
        check_err(17, "MaxPool", vec![], &[s(&[1, 2, 4, 4])], "kernel_shape");
    }
}
