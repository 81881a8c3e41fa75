//! `Conv` and `ConvTranspose`, and the sliding-window geometry (`strides`, `dilations`, `pads`,
//! `auto_pad`, `ceil_mode`) they share with pooling.

use super::{dim_of, invalid, Ctx, Fail, Out, ShapeFn};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[("Conv", conv), ("ConvTranspose", conv_transpose)];

/// Window geometry beyond this is rejected, so that the i64 arithmetic below cannot overflow.
const GEOMETRY_LIMIT: i64 = i32::MAX as i64;

fn bounded(values: &[i64], what: &str) -> Result<(), Fail> {
    match values.iter().find(|v| v.abs() > GEOMETRY_LIMIT) {
        Some(v) => invalid(format!("{what} {v} is implausibly large")),
        None => Ok(()),
    }
}

/// An integer-list attribute of one value per spatial dim, or `default` for each.
fn per_dim(c: &Ctx<'_>, name: &str, n: usize, default: i64) -> Result<Vec<i64>, Fail> {
    match c.attr_ints(name) {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n => {
            bounded(v, name)?;
            Ok(v.to_vec())
        }
        Some(v) => invalid(format!(
            "'{name}' has {} values for {n} spatial dims",
            v.len()
        )),
    }
}

/// The `pads` attribute as (begin, end) per spatial dim.
fn pads(c: &Ctx<'_>, n: usize) -> Result<Vec<(i64, i64)>, Fail> {
    match c.attr_ints("pads") {
        None => Ok(vec![(0, 0); n]),
        Some(p) if p.len() == 2 * n => {
            if let Some(bad) = p.iter().find(|&&x| x < 0) {
                return invalid(format!("negative pad {bad}"));
            }
            bounded(p, "pad")?;
            Ok((0..n).map(|i| (p[i], p[n + i])).collect())
        }
        Some(p) => invalid(format!(
            "'pads' has {} values for {n} spatial dims",
            p.len()
        )),
    }
}

fn auto_pad<'a>(c: &Ctx<'a>) -> &'a str {
    match c.attr_s("auto_pad") {
        Some("") | None => "NOTSET",
        Some(s) => s,
    }
}

/// Output spatial dims of a window op (convolution or pooling) over `input` with `kernel`.
///
/// Explicit padding: `floor((in + pb + pe - eff) / s) + 1` with `eff = (k - 1) * d + 1`, or
/// `ceil` under `ceil_mode`, where a last window that would start inside the end padding is
/// dropped (as PyTorch and onnxruntime do). `SAME_UPPER`/`SAME_LOWER`: `ceil(in / s)`;
/// `VALID`: `floor((in - eff) / s) + 1`.
pub(super) fn window_out(
    c: &Ctx<'_>,
    input: &[usize],
    kernel: &[usize],
    ceil_mode: bool,
) -> Result<Vec<usize>, Fail> {
    let n = input.len();
    if kernel.len() != n {
        return invalid(format!(
            "kernel has {} dims for {n} spatial dims",
            kernel.len()
        ));
    }
    let as_i64 = |d: &[usize]| d.iter().map(|&x| x as i64).collect::<Vec<_>>();
    bounded(&as_i64(input), "input dim")?;
    bounded(&as_i64(kernel), "kernel dim")?;
    let strides = per_dim(c, "strides", n, 1)?;
    let dilations = per_dim(c, "dilations", n, 1)?;
    if let Some(bad) = strides.iter().chain(&dilations).find(|&&x| x < 1) {
        return invalid(format!("stride or dilation {bad} is not positive"));
    }
    let pads = pads(c, n)?;
    let mode = auto_pad(c);
    (0..n)
        .map(|i| {
            let (inp, s) = (input[i] as i64, strides[i]);
            let eff = (kernel[i] as i64 - 1) * dilations[i] + 1;
            let out = match mode {
                "SAME_UPPER" | "SAME_LOWER" => (inp + s - 1) / s,
                "VALID" => {
                    if inp < eff {
                        return invalid(format!(
                            "window {eff} is larger than input dim {inp} (VALID)"
                        ));
                    }
                    (inp - eff) / s + 1
                }
                "NOTSET" => {
                    let (pb, pe) = pads[i];
                    let total = inp + pb + pe;
                    if total < eff {
                        return invalid(format!(
                            "window {eff} is larger than padded input dim {total}"
                        ));
                    }
                    let span = total - eff;
                    let mut out = if ceil_mode {
                        (span + s - 1) / s + 1
                    } else {
                        span / s + 1
                    };
                    if ceil_mode && (out - 1) * s >= inp + pb {
                        out -= 1;
                    }
                    out
                }
                other => return invalid(format!("unknown auto_pad '{other}'")),
            };
            dim_of(out, "output dim")
        })
        .collect()
}

/// The kernel's spatial dims: `kernel_shape`, which must agree with the weight when both exist.
fn kernel_dims(c: &Ctx<'_>, weight: &[usize]) -> Result<Vec<usize>, Fail> {
    let from_w = weight[2..].to_vec();
    if let Some(k) = c.attr_ints("kernel_shape") {
        let k: Vec<usize> = k
            .iter()
            .map(|&x| dim_of(x, "kernel dim"))
            .collect::<Result<_, _>>()?;
        if k != from_w {
            return invalid(format!(
                "kernel_shape {k:?} disagrees with the weight's spatial dims {from_w:?}"
            ));
        }
    }
    Ok(from_w)
}

fn group(c: &Ctx<'_>) -> Result<usize, Fail> {
    let g = c.attr_i("group", 1);
    if g < 1 {
        return invalid(format!("group {g} is not positive"));
    }
    Ok(g as usize)
}

/// Checks that the optional bias (input `slot`) has `channels` elements.
fn check_bias(c: &Ctx<'_>, slot: usize, channels: usize) -> Result<(), Fail> {
    if c.has(slot) {
        let b = c.shape(slot)?;
        if b != [channels] {
            return invalid(format!("bias has shape {b:?}, expected [{channels}]"));
        }
    }
    Ok(())
}

/// `Conv`: `X [N, C, D...]`, `W [M, C/group, K...]` -> `[N, M, out...]`.
fn conv(c: &Ctx<'_>) -> R {
    Ok(vec![conv_out(c, [0, 1], Some(2), c.dtype(0)?)?])
}

/// The output of a convolution whose input, weight and optional bias are at `slots` (the
/// quantized convolutions place them elsewhere), of element type `dtype`.
pub(super) fn conv_out(
    c: &Ctx<'_>,
    [xs, ws]: [usize; 2],
    bias: Option<usize>,
    dtype: i32,
) -> Result<Out, Fail> {
    let x = c.shape(xs)?;
    let w = c.shape(ws)?;
    if x.len() < 3 || w.len() != x.len() {
        return invalid(format!(
            "input rank {} and weight rank {} (need equal ranks >= 3)",
            x.len(),
            w.len()
        ));
    }
    let g = group(c)?;
    if Some(x[1]) != w[1].checked_mul(g) {
        return invalid(format!(
            "input has {} channels, weight expects {} x group {g}",
            x[1], w[1]
        ));
    }
    if w[0] % g != 0 {
        return invalid(format!(
            "{} output channels do not split into {g} groups",
            w[0]
        ));
    }
    if let Some(bs) = bias {
        check_bias(c, bs, w[0])?;
    }
    let k = kernel_dims(c, w)?;
    let spatial = window_out(c, &x[2..], &k, false)?;
    let mut out = vec![x[0], w[0]];
    out.extend(spatial);
    Ok(Out::new(out, dtype))
}

/// `ConvTranspose`: `X [N, C, D...]`, `W [C, M/group, K...]` -> `[N, M, out...]` with
/// `out = s * (in - 1) + output_padding + (k - 1) * d + 1 - pb - pe`, or `output_shape`.
fn conv_transpose(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let w = c.shape(1)?;
    if x.len() < 3 || w.len() != x.len() {
        return invalid(format!(
            "input rank {} and weight rank {} (need equal ranks >= 3)",
            x.len(),
            w.len()
        ));
    }
    let g = group(c)?;
    if x[1] != w[0] {
        return invalid(format!(
            "input has {} channels, weight expects {}",
            x[1], w[0]
        ));
    }
    let Some(m) = w[1].checked_mul(g) else {
        return invalid(format!("{} x group {g} output channels overflow", w[1]));
    };
    check_bias(c, 2, m)?;
    let k = kernel_dims(c, w)?;
    let n = x.len() - 2;
    let mut out = vec![x[0], m];
    bounded(
        &x[2..]
            .iter()
            .chain(&k)
            .map(|&d| d as i64)
            .collect::<Vec<_>>(),
        "dim",
    )?;
    if let Some(os) = c.attr_ints("output_shape") {
        // Spatial dims only; some exporters write the full shape.
        let os = if os.len() == n + 2 { &os[2..] } else { os };
        if os.len() != n {
            return invalid(format!(
                "'output_shape' has {} values for {n} spatial dims",
                os.len()
            ));
        }
        for &d in os {
            out.push(dim_of(d, "output_shape")?);
        }
        return Ok(vec![Out::new(out, c.dtype(0)?)]);
    }
    let strides = per_dim(c, "strides", n, 1)?;
    let dilations = per_dim(c, "dilations", n, 1)?;
    let out_pad = per_dim(c, "output_padding", n, 0)?;
    if let Some(bad) = strides.iter().chain(&dilations).find(|&&x| x < 1) {
        return invalid(format!("stride or dilation {bad} is not positive"));
    }
    let pads = pads(c, n)?;
    let mode = auto_pad(c);
    for i in 0..n {
        let inp = x[2 + i] as i64;
        let d = match mode {
            "SAME_UPPER" | "SAME_LOWER" => inp * strides[i],
            "NOTSET" | "VALID" => {
                let (pb, pe) = if mode == "VALID" { (0, 0) } else { pads[i] };
                strides[i] * (inp - 1) + out_pad[i] + (k[i] as i64 - 1) * dilations[i] + 1 - pb - pe
            }
            other => return invalid(format!("unknown auto_pad '{other}'")),
        };
        out.push(dim_of(d, "output dim")?);
    }
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    type Case = (
        &'static [usize],
        &'static [usize],
        Vec<crate::proto::AttributeProto>,
        &'static [usize],
    );

    fn w(shape: &[usize]) -> In {
        s(shape)
    }

    #[test]
    fn conv_output_sizes() {
        // (input, weight, attrs, output)
        let cases: Vec<Case> = vec![
            (
                &[1, 3, 224, 224],
                &[64, 3, 7, 7],
                vec![aints("strides", &[2, 2]), aints("pads", &[3, 3, 3, 3])],
                &[1, 64, 112, 112],
            ),
            (
                &[1, 8, 32, 32],
                &[8, 1, 3, 3],
                vec![ai("group", 8), aints("pads", &[1, 1, 1, 1])],
                &[1, 8, 32, 32],
            ),
            (
                &[1, 16, 9, 9],
                &[32, 8, 3, 3],
                vec![ai("group", 2)],
                &[1, 32, 7, 7],
            ),
            (
                &[2, 4, 10, 10],
                &[6, 4, 3, 3],
                vec![aints("dilations", &[2, 2])],
                &[2, 6, 6, 6],
            ),
            (
                &[1, 4, 10, 7],
                &[6, 4, 3, 3],
                vec![astr("auto_pad", "SAME_UPPER"), aints("strides", &[2, 2])],
                &[1, 6, 5, 4],
            ),
            (
                &[1, 4, 10, 7],
                &[6, 4, 3, 3],
                vec![astr("auto_pad", "SAME_LOWER"), aints("strides", &[3, 3])],
                &[1, 6, 4, 3],
            ),
            (
                &[1, 4, 10, 7],
                &[6, 4, 3, 3],
                vec![astr("auto_pad", "VALID"), aints("strides", &[2, 2])],
                &[1, 6, 4, 3],
            ),
            (
                &[1, 2, 16],
                &[4, 2, 5],
                vec![aints("pads", &[2, 2])],
                &[1, 4, 16],
            ),
            (&[1, 2, 4, 4, 4], &[3, 2, 3, 3, 3], vec![], &[1, 3, 2, 2, 2]),
        ];
        for (x, wt, attrs, out) in cases {
            check(17, "Conv", attrs, &[s(x), w(wt)], &[out]);
        }
        check(
            17,
            "Conv",
            vec![],
            &[s(&[1, 3, 8, 8]), w(&[4, 3, 3, 3]), s(&[4])],
            &[&[1, 4, 6, 6]],
        );
    }

    #[test]
    fn conv_rejects_inconsistent_weights() {
        check_err(
            17,
            "Conv",
            vec![],
            &[s(&[1, 3, 8, 8]), w(&[4, 2, 3, 3])],
            "3 channels",
        );
        check_err(
            17,
            "Conv",
            vec![ai("group", 2)],
            &[s(&[1, 4, 8, 8]), w(&[3, 2, 3, 3])],
            "groups",
        );
        check_err(
            17,
            "Conv",
            vec![],
            &[s(&[1, 3, 8, 8]), w(&[4, 3, 3, 3]), s(&[5])],
            "bias",
        );
        check_err(
            17,
            "Conv",
            vec![aints("kernel_shape", &[5, 5])],
            &[s(&[1, 3, 8, 8]), w(&[4, 3, 3, 3])],
            "kernel_shape",
        );
        check_err(
            17,
            "Conv",
            vec![],
            &[s(&[1, 3, 2, 2]), w(&[4, 3, 3, 3])],
            "larger than",
        );
    }

    #[test]
    fn conv_transpose_output_sizes() {
        let cases: Vec<Case> = vec![
            (
                &[1, 8, 4, 4],
                &[8, 4, 3, 3],
                vec![
                    aints("strides", &[2, 2]),
                    aints("pads", &[1, 1, 1, 1]),
                    aints("output_padding", &[1, 1]),
                ],
                &[1, 4, 8, 8],
            ),
            (
                &[1, 8, 4, 4],
                &[8, 4, 3, 3],
                vec![aints("strides", &[2, 2]), aints("pads", &[1, 1, 1, 1])],
                &[1, 4, 7, 7],
            ),
            (
                &[1, 8, 4, 4],
                &[8, 2, 2, 2],
                vec![aints("strides", &[2, 2]), ai("group", 2)],
                &[1, 4, 8, 8],
            ),
            (
                &[1, 8, 5, 3],
                &[8, 4, 3, 3],
                vec![aints("strides", &[2, 2]), astr("auto_pad", "SAME_UPPER")],
                &[1, 4, 10, 6],
            ),
            (
                &[1, 8, 4, 4],
                &[8, 4, 3, 3],
                vec![aints("strides", &[2, 2]), aints("output_shape", &[9, 9])],
                &[1, 4, 9, 9],
            ),
            (
                &[1, 8, 4, 4],
                &[8, 4, 3, 3],
                vec![aints("dilations", &[2, 2])],
                &[1, 4, 8, 8],
            ),
        ];
        for (x, wt, attrs, out) in cases {
            check(17, "ConvTranspose", attrs, &[s(x), w(wt)], &[out]);
        }
        check_err(
            17,
            "ConvTranspose",
            vec![],
            &[s(&[1, 8, 4, 4]), w(&[4, 4, 3, 3])],
            "channels",
        );
    }
}
