//! Normalisations: `BatchNormalization` (inference and training outputs), `LayerNormalization`
//! (with its optional mean and inverse-std outputs), `InstanceNormalization`,
//! `GroupNormalization`, `LpNormalization`, `LRN`, `MeanVarianceNormalization`. The output has
//! the input's shape; per-channel parameters are checked against the channel count.

use super::{broadcast, invalid, norm_axis, Ctx, Fail, Out, ShapeFn, FLOAT};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("BatchNormalization", batch_norm),
    ("InstanceNormalization", instance_norm),
    ("LayerNormalization", layer_norm),
    // onnxruntime's RMSNorm, in the default domain as onnxruntime registers it: `(X, scale) ->
    // (Y, inv_std_var?)`, normalised from `axis` like LayerNormalization.
    ("SimplifiedLayerNormalization", layer_norm),
    ("GroupNormalization", same),
    ("LpNormalization", same),
    ("LRN", same),
    ("MeanVarianceNormalization", same),
];

fn same(c: &Ctx<'_>) -> R {
    Ok(vec![Out::new(c.shape(0)?.to_vec(), c.dtype(0)?)])
}

/// Checks that inputs `slots` (where present and known) are `[channels]`.
fn per_channel(c: &Ctx<'_>, slots: &[(usize, &str)], channels: usize) -> Result<(), Fail> {
    for &(i, what) in slots {
        if c.has(i) {
            let s = c.shape(i)?;
            if s != [channels] {
                return invalid(format!(
                    "{what} has shape {s:?}, expected [{channels}] (the input's channels)"
                ));
            }
        }
    }
    Ok(())
}

/// `Y = X` shaped; the optional training outputs (running or saved statistics) are `[C]`.
fn batch_norm(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    if x.len() < 2 {
        return invalid(format!("input rank {} (need >= 2)", x.len()));
    }
    let ch = x[1];
    per_channel(c, &[(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")], ch)?;
    let dtype = c.dtype(0)?;
    let mut outs = vec![Out::new(x.to_vec(), dtype)];
    for _ in 1..c.n_outputs() {
        outs.push(Out::new(vec![ch], dtype));
    }
    Ok(outs)
}

fn instance_norm(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    if x.len() < 3 {
        return invalid(format!("input rank {} (need >= 3)", x.len()));
    }
    per_channel(c, &[(1, "scale"), (2, "bias")], x[1])?;
    same(c)
}

/// Normalises over `X[axis..]`; `Mean`/`InvStdDev` are `X[..axis]` followed by ones.
fn layer_norm(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let axis = norm_axis(c.attr_i("axis", -1), x.len())?;
    let normalized = &x[axis..];
    for (i, what) in [(1, "scale"), (2, "bias")] {
        if c.has(i) {
            let s = c.shape(i)?;
            if broadcast(&[s, normalized]).ok().as_deref() != Some(normalized) {
                return invalid(format!(
                    "{what} of shape {s:?} does not broadcast to the normalised dims {normalized:?}"
                ));
            }
        }
    }
    let mut stat = x[..axis].to_vec();
    stat.resize(x.len(), 1);
    let stash = c.attr_i("stash_type", FLOAT as i64) as i32;
    Ok(vec![
        Out::new(x.to_vec(), c.dtype(0)?),
        Out::new(stat.clone(), stash),
        Out::new(stat, stash),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn batch_norm_keeps_the_shape_and_checks_channels() {
        let c = || s(&[16]);
        check(
            17,
            "BatchNormalization",
            vec![],
            &[s(&[2, 16, 8, 8]), c(), c(), c(), c()],
            &[&[2, 16, 8, 8]],
        );
        check(
            15,
            "BatchNormalization",
            vec![ai("training_mode", 1)],
            &[s(&[2, 16, 8, 8]), c(), c(), c(), c()],
            &[&[2, 16, 8, 8], &[16], &[16]],
        );
        check(
            17,
            "BatchNormalization",
            vec![],
            &[s(&[4, 16]), c(), c(), c(), c()],
            &[&[4, 16]],
        );
        check_err(
            17,
            "BatchNormalization",
            vec![],
            &[s(&[2, 8, 4, 4]), c(), c(), c(), c()],
            "scale",
        );
    }

    #[test]
    fn layer_norm_axis_and_statistics() {
        check(
            17,
            "LayerNormalization",
            vec![],
            &[s(&[1, 17, 32]), s(&[32]), s(&[32])],
            &[&[1, 17, 32], &[1, 17, 1], &[1, 17, 1]],
        );
        check(
            17,
            "LayerNormalization",
            vec![ai("axis", 1)],
            &[s(&[2, 4, 6]), s(&[4, 6])],
            &[&[2, 4, 6], &[2, 1, 1]],
        );
        check(
            17,
            "LayerNormalization",
            vec![ai("axis", -2)],
            &[s(&[2, 4, 6]), s(&[4, 6])],
            &[&[2, 4, 6]],
        );
        check_err(
            17,
            "LayerNormalization",
            vec![],
            &[s(&[1, 17, 32]), s(&[16])],
            "scale",
        );
        check_err(
            17,
            "LayerNormalization",
            vec![ai("axis", 3)],
            &[s(&[1, 17, 32]), s(&[32])],
            "axis 3",
        );
    }

    #[test]
    fn other_norms() {
        check(
            17,
            "InstanceNormalization",
            vec![],
            &[s(&[1, 4, 5, 5]), s(&[4]), s(&[4])],
            &[&[1, 4, 5, 5]],
        );
        check_err(
            17,
            "InstanceNormalization",
            vec![],
            &[s(&[1, 4, 5, 5]), s(&[3]), s(&[4])],
            "scale",
        );
        check(
            17,
            "LRN",
            vec![ai("size", 3)],
            &[s(&[1, 4, 5, 5])],
            &[&[1, 4, 5, 5]],
        );
    }
}
