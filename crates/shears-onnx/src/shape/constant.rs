//! Ops whose output is known from attributes or input shapes alone: `Constant`,
//! `ConstantOfShape`, `Shape` (with `start`/`end`, opset 15), `Size`, `Range`, `EyeLike`. These
//! are where shape subgraphs start, so their integer outputs are folded.

use crate::proto::tensor_proto::DataType;

use super::{dim_of, invalid, numel, Ctx, Fail, Out, ShapeFn, FLOAT, INT64};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("Constant", constant),
    ("ConstantOfShape", constant_of_shape),
    ("Shape", shape),
    ("Size", size),
    ("Range", range),
    ("EyeLike", eye_like),
];

fn constant(c: &Ctx<'_>) -> R {
    let Some(v) = c.node.output(0) else {
        return Ok(vec![]);
    };
    if let Some(t) = c.model.constant(v) {
        let shape = crate::tensor::dims(&t).map_err(|e| Fail::Invalid(e.to_string()))?;
        let data = if super::is_integer(t.data_type) && numel(&shape)? <= super::FOLD_LIMIT {
            Some(c.model.i64s(&t).map_err(|e| Fail::Invalid(e.to_string()))?)
        } else {
            None
        };
        return Ok(vec![Out::with_data(shape, t.data_type, data)]);
    }
    let string = DataType::String as i32;
    let Some(a) = c.node.attrs.first() else {
        return invalid("no value attribute");
    };
    match a.name.as_str() {
        "value_string" => Ok(vec![Out::new(vec![], string)]),
        "value_strings" => Ok(vec![Out::new(vec![a.strings.len()], string)]),
        "sparse_value" => match &a.sparse_tensor {
            Some(sp) => {
                let dims = sp
                    .dims
                    .iter()
                    .map(|&d| dim_of(d, "dim"))
                    .collect::<Result<_, _>>()?;
                let dtype = sp.values.as_ref().map_or(0, |v| v.data_type);
                Ok(vec![Out::new(dims, dtype)])
            }
            None => invalid("'sparse_value' has no tensor"),
        },
        other => invalid(format!("unknown value attribute '{other}'")),
    }
}

/// A shape given as a folded 1-D input.
fn shape_input(c: &Ctx<'_>, i: usize) -> Result<Vec<usize>, Fail> {
    c.folded(i)?.iter().map(|&d| dim_of(d, "dim")).collect()
}

fn constant_of_shape(c: &Ctx<'_>) -> R {
    let shape = shape_input(c, 0)?;
    let (dtype, fill) = match c.node.attr("value").and_then(|a| a.t.as_ref()) {
        Some(t) => {
            let fill = if super::is_integer(t.data_type) {
                c.model.i64s(t).ok().and_then(|v| v.first().copied())
            } else {
                None
            };
            (t.data_type, fill)
        }
        None => (FLOAT, None),
    };
    let n = numel(&shape)?;
    let data = fill.filter(|_| n <= super::FOLD_LIMIT).map(|f| vec![f; n]);
    Ok(vec![Out::with_data(shape, dtype, data)])
}

/// `Shape`: the input's dims `[start, end)` (negative values count from the end, clamped).
fn shape(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let r = x.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(c.attr_i("start", 0));
    let end = clamp(c.attr_i("end", r));
    let dims: Vec<i64> = if start < end {
        x[start..end].iter().map(|&d| d as i64).collect()
    } else {
        vec![]
    };
    Ok(vec![Out::with_data(vec![dims.len()], INT64, Some(dims))])
}

fn size(c: &Ctx<'_>) -> R {
    let n = numel(c.shape(0)?)?;
    Ok(vec![Out::with_data(vec![], INT64, Some(vec![n as i64]))])
}

/// `Range(start, limit, delta)`: `max(ceil((limit - start) / delta), 0)` elements.
fn range(c: &Ctx<'_>) -> R {
    let dtype = c.dtype(0)?;
    for i in 0..3 {
        if numel(c.shape(i)?)? != 1 {
            return invalid(format!("input {i} is not a scalar"));
        }
    }
    if let (Some(s), Some(l), Some(d)) = (c.folded_opt(0), c.folded_opt(1), c.folded_opt(2)) {
        let (s, l, d) = (s[0], l[0], d[0]);
        if d == 0 {
            return invalid("delta is 0");
        }
        let span = l as i128 - s as i128;
        let n = ((span + d as i128 - d.signum() as i128) / d as i128).max(0) as usize;
        let data = (n <= super::FOLD_LIMIT).then(|| (0..n as i64).map(|k| s + k * d).collect());
        return Ok(vec![Out::with_data(vec![n], dtype, data)]);
    }
    let (s, l, d) = (c.floats(0)?[0], c.floats(1)?[0], c.floats(2)?[0]);
    if d == 0.0 {
        return invalid("delta is 0");
    }
    let n = ((l - s) / d).ceil().max(0.0) as usize;
    Ok(vec![Out::new(vec![n], dtype)])
}

fn eye_like(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    if x.len() != 2 {
        return invalid(format!("input rank {} (need 2)", x.len()));
    }
    let dtype = match c.attr_i("dtype", 0) as i32 {
        0 => c.dtype(0)?,
        d => d,
    };
    Ok(vec![Out::new(x.to_vec(), dtype)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::tensor;

    #[test]
    fn shape_and_size_fold() {
        check_fold(
            17,
            "Shape",
            vec![],
            &[s(&[1, 3, 224, 224])],
            &[4],
            &[1, 3, 224, 224],
        );
        check_fold(
            15,
            "Shape",
            vec![ai("start", 2)],
            &[s(&[1, 3, 224, 224])],
            &[2],
            &[224, 224],
        );
        check_fold(
            15,
            "Shape",
            vec![ai("start", -3), ai("end", -1)],
            &[s(&[1, 3, 5, 7])],
            &[2],
            &[3, 5],
        );
        check_fold(
            15,
            "Shape",
            vec![ai("start", 3), ai("end", 1)],
            &[s(&[1, 3, 5, 7])],
            &[0],
            &[],
        );
        check_fold(17, "Size", vec![], &[s(&[2, 3, 4])], &[], &[24]);
    }

    #[test]
    fn constants() {
        check_fold(17, "Constant", vec![ai("value_int", 5)], &[], &[], &[5]);
        check_fold(
            17,
            "Constant",
            vec![aints("value_ints", &[1, -1])],
            &[],
            &[2],
            &[1, -1],
        );
        check(
            17,
            "Constant",
            vec![afloats("value_floats", &[1.0, 2.0, 3.0])],
            &[],
            &[&[3]],
        );
        check(
            17,
            "Constant",
            vec![atensor("value", tensor::from_f32("", &[2, 2], &[0.0; 4]))],
            &[],
            &[&[2, 2]],
        );
        check_fold(
            17,
            "Constant",
            vec![atensor("value", tensor::from_i64("", &[1, 2], &[4, 5]))],
            &[],
            &[1, 2],
            &[4, 5],
        );
        check_fold(
            17,
            "ConstantOfShape",
            vec![atensor("value", tensor::from_i64("", &[1], &[1]))],
            &[i1(&[2, 2])],
            &[2, 2],
            &[1, 1, 1, 1],
        );
        check(
            17,
            "ConstantOfShape",
            vec![],
            &[i1(&[3, 1, 4])],
            &[&[3, 1, 4]],
        );
        check_unknown(17, "ConstantOfShape", vec![], &[s(&[3])]);
    }

    #[test]
    fn range_lengths() {
        check_fold(
            17,
            "Range",
            vec![],
            &[i0(0), i0(5), i0(2)],
            &[3],
            &[0, 2, 4],
        );
        check_fold(
            17,
            "Range",
            vec![],
            &[i0(10), i0(4), i0(-3)],
            &[2],
            &[10, 7],
        );
        check_fold(17, "Range", vec![], &[i0(3), i0(1), i0(1)], &[0], &[]);
        check(
            17,
            "Range",
            vec![],
            &[
                In::F(vec![], vec![0.0]),
                In::F(vec![], vec![1.0]),
                In::F(vec![], vec![0.25]),
            ],
            &[&[4]],
        );
        check_err(17, "Range", vec![], &[i0(0), i0(5), i0(0)], "delta");
    }
}
