//! `Resize` and the older `Upsample`.
//!
//! Output dims are `floor(in * scale)` from `scales`, or the `sizes` input, which takes
//! precedence when present and non-empty. Opset differences: `Resize` reads `scales` from input
//! 1 in opset 10 and from input 2 (after `roi`) since 11, `sizes` from input 3; opset 18 adds the
//! `axes` attribute (the scales/sizes cover only those axes) and `keep_aspect_ratio_policy`
//! (`not_larger`/`not_smaller`: one scale for all axes, `round(scale * in)`). `Upsample` reads
//! `scales` as an attribute before opset 9 and as input 1 from 9.

use super::{dim_of, invalid, norm_axes, Ctx, Fail, Out, ShapeFn};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[("Resize", resize), ("Upsample", upsample)];

/// `floor(in * scale)` per axis.
fn scaled(x: &[usize], scales: &[f32]) -> Result<Vec<usize>, Fail> {
    if scales.len() != x.len() {
        return invalid(format!("{} scales for rank {}", scales.len(), x.len()));
    }
    x.iter()
        .zip(scales)
        .map(|(&d, &s)| {
            if s.is_nan() || s <= 0.0 || s.is_infinite() {
                return invalid(format!("scale {s} is not positive"));
            }
            Ok((d as f64 * s as f64).floor() as usize)
        })
        .collect()
}

fn resize(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let axes: Vec<usize> = match c.attr_ints("axes") {
        Some(a) if c.opset() >= 18 => norm_axes(a, x.len())?,
        _ => (0..x.len()).collect(),
    };
    let sub: Vec<usize> = axes.iter().map(|&a| x[a]).collect();
    let scales_slot = if c.opset() < 11 { 1 } else { 2 };
    let has_sizes = c.opset() >= 11 && c.has(3) && c.shape(3)?.iter().product::<usize>() > 0;
    let new_sub: Vec<usize> = if has_sizes {
        let sizes: Vec<usize> = c
            .folded(3)?
            .iter()
            .map(|&d| dim_of(d, "size"))
            .collect::<Result<_, _>>()?;
        if sizes.len() != sub.len() {
            return invalid(format!("{} sizes for {} axes", sizes.len(), sub.len()));
        }
        match c.attr_s("keep_aspect_ratio_policy").unwrap_or("stretch") {
            "stretch" => sizes,
            policy @ ("not_larger" | "not_smaller") => {
                let ratios = sizes.iter().zip(&sub).map(|(&s, &d)| s as f64 / d as f64);
                let scale = if policy == "not_larger" {
                    ratios.fold(f64::INFINITY, f64::min)
                } else {
                    ratios.fold(0.0, f64::max)
                };
                sub.iter()
                    .map(|&d| (scale * d as f64).round() as usize)
                    .collect()
            }
            other => return invalid(format!("unknown keep_aspect_ratio_policy '{other}'")),
        }
    } else if c.has(scales_slot) {
        scaled(&sub, &c.floats(scales_slot)?)?
    } else {
        return invalid("neither scales nor sizes is given");
    };
    let mut out = x.to_vec();
    for (&a, d) in axes.iter().zip(new_sub) {
        out[a] = d;
    }
    Ok(vec![Out::new(out, c.dtype(0)?)])
}

fn upsample(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let scales = if c.opset() < 9 {
        match c.node.attr("scales") {
            Some(a) => a.floats.clone(),
            None => return invalid("'scales' is missing"),
        }
    } else {
        c.floats(1)?
    };
    Ok(vec![Out::new(scaled(x, &scales)?, c.dtype(0)?)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn resize_by_scales_or_sizes() {
        let x = || s(&[1, 3, 7, 10]);
        let empty = || In::F(vec![0], vec![]);
        check(
            13,
            "Resize",
            vec![],
            &[x(), In::None, f1(&[1.0, 1.0, 2.0, 0.5])],
            &[&[1, 3, 14, 5]],
        );
        check(
            11,
            "Resize",
            vec![],
            &[x(), empty(), f1(&[1.0, 1.0, 1.5, 1.5])],
            &[&[1, 3, 10, 15]],
        );
        check(
            11,
            "Resize",
            vec![],
            &[x(), empty(), empty(), i1(&[1, 3, 20, 30])],
            &[&[1, 3, 20, 30]],
        );
        check(
            10,
            "Resize",
            vec![],
            &[x(), f1(&[1.0, 1.0, 2.0, 2.0])],
            &[&[1, 3, 14, 20]],
        );
        check(
            18,
            "Resize",
            vec![aints("axes", &[2, 3])],
            &[x(), In::None, In::None, i1(&[14, 14])],
            &[&[1, 3, 14, 14]],
        );
        check(
            18,
            "Resize",
            vec![aints("axes", &[-1])],
            &[x(), In::None, f1(&[3.0])],
            &[&[1, 3, 7, 30]],
        );
        check(
            18,
            "Resize",
            vec![
                aints("axes", &[2, 3]),
                astr("keep_aspect_ratio_policy", "not_larger"),
            ],
            &[x(), In::None, In::None, i1(&[14, 14])],
            &[&[1, 3, 10, 14]],
        );
        check(
            18,
            "Resize",
            vec![
                aints("axes", &[2, 3]),
                astr("keep_aspect_ratio_policy", "not_smaller"),
            ],
            &[x(), In::None, In::None, i1(&[14, 14])],
            &[&[1, 3, 14, 20]],
        );
        check_err(
            13,
            "Resize",
            vec![],
            &[x(), In::None, f1(&[2.0, 2.0])],
            "scales for rank",
        );
        check_unknown(13, "Resize", vec![], &[x(), In::None, In::None, s(&[4])]);
    }

    #[test]
    fn upsample_by_opset() {
        check(
            7,
            "Upsample",
            vec![afloats("scales", &[1.0, 1.0, 2.0, 2.0])],
            &[s(&[1, 3, 4, 4])],
            &[&[1, 3, 8, 8]],
        );
        check(
            9,
            "Upsample",
            vec![],
            &[s(&[1, 3, 4, 4]), f1(&[1.0, 1.0, 3.0, 3.0])],
            &[&[1, 3, 12, 12]],
        );
    }
}
