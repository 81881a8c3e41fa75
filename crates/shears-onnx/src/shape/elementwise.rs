//! Element-wise ops: unary activations and math (same shape and type as the input), `Cast`,
//! `Dropout`, softmax-like ops along an axis, and the broadcasting (numpy-style) binary and
//! variadic ops, comparisons and `Where`.
//!
//! Integer contents fold through `Identity`, `Neg`, `Abs`, `Cast` (between integer types), the
//! arithmetic ops, `Max`/`Min`/`Sum`, comparisons, logic ops and `Where`. Integer `Div`
//! truncates toward zero and `Mod` follows the sign of the divisor unless `fmod=1`, as in
//! onnxruntime.

use crate::proto::tensor_proto::DataType;

use super::fold::map_n;
use super::{broadcast, invalid, is_integer, norm_axis, Ctx, Fail, Out, ShapeFn, BOOL};

type R = Result<Vec<Out>, Fail>;

/// Computes one output element from the input elements, `None` when it cannot.
type Fold = fn(&[i64]) -> Option<i64>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("Identity", identity),
    ("Neg", neg),
    ("Abs", abs),
    ("Relu", same),
    ("LeakyRelu", same),
    ("PRelu", prelu),
    ("Elu", same),
    ("Selu", same),
    ("Celu", same),
    ("Sigmoid", same),
    ("HardSigmoid", same),
    ("HardSwish", same),
    ("Swish", same),
    ("Tanh", same),
    ("Gelu", same),
    ("Erf", same),
    ("Mish", same),
    ("Softplus", same),
    ("Softsign", same),
    ("ThresholdedRelu", same),
    ("Shrink", same),
    ("Exp", same),
    ("Log", same),
    ("Sqrt", same),
    ("Reciprocal", same),
    ("Floor", same),
    ("Ceil", same),
    ("Round", same),
    ("Sign", same),
    ("Sin", same),
    ("Cos", same),
    ("Tan", same),
    ("Asin", same),
    ("Acos", same),
    ("Atan", same),
    ("Sinh", same),
    ("Cosh", same),
    ("Asinh", same),
    ("Acosh", same),
    ("Atanh", same),
    ("Clip", same),
    ("CumSum", same),
    ("Trilu", same),
    ("BitwiseNot", same),
    ("IsNaN", to_bool),
    ("IsInf", to_bool),
    ("Not", not),
    ("Dropout", dropout),
    ("Cast", cast),
    ("CastLike", cast_like),
    ("Softmax", along_axis),
    ("LogSoftmax", along_axis),
    ("Hardmax", along_axis),
    ("Add", add),
    ("Sub", sub),
    ("Mul", mul),
    ("Div", div),
    ("Mod", modulo),
    ("Pow", pow),
    ("Max", max),
    ("Min", min),
    ("Sum", sum),
    ("Mean", mean),
    ("BitwiseAnd", same_type_binary),
    ("BitwiseOr", same_type_binary),
    ("BitwiseXor", same_type_binary),
    ("Equal", equal),
    ("Less", less),
    ("Greater", greater),
    ("LessOrEqual", less_or_equal),
    ("GreaterOrEqual", greater_or_equal),
    ("And", and),
    ("Or", or),
    ("Xor", xor),
    ("Where", where_),
];

/// Output 0 with input 0's shape and type, contents mapped by `f` when known.
fn unary(c: &Ctx<'_>, f: Option<fn(i64) -> Option<i64>>) -> R {
    let shape = c.shape(0)?.to_vec();
    let dtype = c.dtype(0)?;
    let data = match (f, c.folded_opt(0)) {
        (Some(f), Some(d)) => d.iter().map(|&x| f(x)).collect(),
        _ => None,
    };
    Ok(vec![Out::with_data(shape, dtype, data)])
}

fn same(c: &Ctx<'_>) -> R {
    unary(c, None)
}
fn identity(c: &Ctx<'_>) -> R {
    unary(c, Some(Some))
}
fn neg(c: &Ctx<'_>) -> R {
    unary(c, Some(i64::checked_neg))
}
fn abs(c: &Ctx<'_>) -> R {
    unary(c, Some(i64::checked_abs))
}
fn not(c: &Ctx<'_>) -> R {
    unary(c, Some(|x| Some((x == 0) as i64)))
}

fn to_bool(c: &Ctx<'_>) -> R {
    Ok(vec![Out::new(c.shape(0)?.to_vec(), BOOL)])
}

/// `Dropout` (inference): the data passes through; the optional mask is bool.
fn dropout(c: &Ctx<'_>) -> R {
    let shape = c.shape(0)?.to_vec();
    let dtype = c.dtype(0)?;
    let data = c.folded_opt(0).map(|d| d.to_vec());
    Ok(vec![
        Out::with_data(shape.clone(), dtype, data),
        Out::new(shape, BOOL),
    ])
}

fn along_axis(c: &Ctx<'_>) -> R {
    let shape = c.shape(0)?;
    // The default axis changed from 1 to -1 in opset 13; either must be valid for the rank.
    let default = if c.opset() >= 13 { -1 } else { 1 };
    if !shape.is_empty() {
        norm_axis(c.attr_i("axis", default), shape.len())?;
    }
    same(c)
}

/// `Cast` to `to`; integer contents convert as the target type stores them.
fn cast(c: &Ctx<'_>) -> R {
    let to = c.attr_i("to", 0) as i32;
    if DataType::try_from(to).is_err() || to == 0 {
        return invalid(format!("'to' = {to} is not a tensor type"));
    }
    cast_to(c, to)
}

fn cast_like(c: &Ctx<'_>) -> R {
    let to = c.dtype(1)?;
    cast_to(c, to)
}

fn cast_to(c: &Ctx<'_>, to: i32) -> R {
    let shape = c.shape(0)?.to_vec();
    let data = match c.folded_opt(0) {
        Some(d) if is_integer(c.dtype(0)?) && is_integer(to) => {
            d.iter().map(|&x| convert_int(x, to)).collect()
        }
        _ => None,
    };
    Ok(vec![Out::with_data(shape, to, data)])
}

/// `x` as stored in integer type `to` (two's complement wrap-around, as a C cast).
fn convert_int(x: i64, to: i32) -> Option<i64> {
    use DataType as D;
    Some(match DataType::try_from(to).ok()? {
        D::Bool => (x != 0) as i64,
        D::Int8 => x as i8 as i64,
        D::Uint8 => x as u8 as i64,
        D::Int16 => x as i16 as i64,
        D::Uint16 => x as u16 as i64,
        D::Int32 => x as i32 as i64,
        D::Uint32 => x as u32 as i64,
        D::Int64 | D::Uint64 => x,
        _ => return None,
    })
}

/// The broadcast of every present input; output type `dtype` (input 0's when `None`);
/// contents folded by `f` when all inputs are known integers.
fn broadcasting(c: &Ctx<'_>, dtype: Option<i32>, f: Option<Fold>) -> R {
    let present: Vec<usize> = (0..c.n_inputs()).filter(|&i| c.has(i)).collect();
    if present.is_empty() {
        return invalid("no inputs");
    }
    let shapes = present
        .iter()
        .map(|&i| c.shape(i))
        .collect::<Result<Vec<_>, _>>()?;
    let out_shape = broadcast(&shapes)?;
    let in_dtype = c.dtype(present[0])?;
    let out_dtype = dtype.unwrap_or(in_dtype);
    let data = match f {
        Some(f) if is_integer(in_dtype) => {
            let known: Option<Vec<&[i64]>> = present.iter().map(|&i| c.folded_opt(i)).collect();
            known.and_then(|k| {
                let args: Vec<(&[i64], &[usize])> =
                    k.into_iter().zip(shapes.iter().copied()).collect();
                map_n(&out_shape, &args, f)
            })
        }
        _ => None,
    };
    Ok(vec![Out::with_data(out_shape, out_dtype, data)])
}

/// A binary op: its fold reads `a[0]` and `a[1]`, so both inputs must be there.
fn binary(c: &Ctx<'_>, f: Fold) -> R {
    if c.n_inputs() != 2 || !c.has(0) || !c.has(1) {
        return invalid("takes exactly 2 inputs");
    }
    broadcasting(c, None, Some(f))
}

fn add(c: &Ctx<'_>) -> R {
    binary(c, |a| a[0].checked_add(a[1]))
}
fn sub(c: &Ctx<'_>) -> R {
    binary(c, |a| a[0].checked_sub(a[1]))
}
fn mul(c: &Ctx<'_>) -> R {
    binary(c, |a| a[0].checked_mul(a[1]))
}
fn div(c: &Ctx<'_>) -> R {
    binary(c, |a| a[0].checked_div(a[1]))
}
fn pow(c: &Ctx<'_>) -> R {
    binary(c, |a| a[0].checked_pow(u32::try_from(a[1]).ok()?))
}
fn prelu(c: &Ctx<'_>) -> R {
    // The slope broadcasts to the input (unidirectionally); the output has the input's shape.
    let x = c.shape(0)?;
    let out = broadcast(&[x, c.shape(1)?])?;
    if out != x {
        return invalid("the slope does not broadcast to the input");
    }
    same(c)
}
fn modulo(c: &Ctx<'_>) -> R {
    if c.attr_i("fmod", 0) == 1 {
        broadcasting(c, None, Some(|a| a[0].checked_rem(a[1])))
    } else {
        broadcasting(
            c,
            None,
            Some(|a| {
                let r = a[0].checked_rem(a[1])?;
                Some(if r != 0 && (r < 0) != (a[1] < 0) {
                    r + a[1]
                } else {
                    r
                })
            }),
        )
    }
}
fn max(c: &Ctx<'_>) -> R {
    broadcasting(c, None, Some(|a| a.iter().copied().max()))
}
fn min(c: &Ctx<'_>) -> R {
    broadcasting(c, None, Some(|a| a.iter().copied().min()))
}
fn sum(c: &Ctx<'_>) -> R {
    broadcasting(
        c,
        None,
        Some(|a| a.iter().try_fold(0i64, |s, &x| s.checked_add(x))),
    )
}
fn mean(c: &Ctx<'_>) -> R {
    broadcasting(c, None, None)
}
fn same_type_binary(c: &Ctx<'_>) -> R {
    broadcasting(c, None, None)
}
fn equal(c: &Ctx<'_>) -> R {
    broadcasting(c, Some(BOOL), Some(|a| Some((a[0] == a[1]) as i64)))
}
fn less(c: &Ctx<'_>) -> R {
    broadcasting(c, Some(BOOL), Some(|a| Some((a[0] < a[1]) as i64)))
}
fn greater(c: &Ctx<'_>) -> R {
    broadcasting(c, Some(BOOL), Some(|a| Some((a[0] > a[1]) as i64)))
}
fn less_or_equal(c: &Ctx<'_>) -> R {
    broadcasting(c, Some(BOOL), Some(|a| Some((a[0] <= a[1]) as i64)))
}
fn greater_or_equal(c: &Ctx<'_>) -> R {
    broadcasting(c, Some(BOOL), Some(|a| Some((a[0] >= a[1]) as i64)))
}
fn and(c: &Ctx<'_>) -> R {
    broadcasting(
        c,
        Some(BOOL),
        Some(|a| Some((a[0] != 0 && a[1] != 0) as i64)),
    )
}
fn or(c: &Ctx<'_>) -> R {
    broadcasting(
        c,
        Some(BOOL),
        Some(|a| Some((a[0] != 0 || a[1] != 0) as i64)),
    )
}
fn xor(c: &Ctx<'_>) -> R {
    broadcasting(
        c,
        Some(BOOL),
        Some(|a| Some(((a[0] != 0) != (a[1] != 0)) as i64)),
    )
}

/// `Where(cond, x, y)`: the broadcast of all three, with `x`'s type.
fn where_(c: &Ctx<'_>) -> R {
    let shapes = [c.shape(0)?, c.shape(1)?, c.shape(2)?];
    let out_shape = broadcast(&shapes)?;
    let dtype = c.dtype(1)?;
    let data = match (c.folded_opt(0), c.folded_opt(1), c.folded_opt(2)) {
        (Some(k), Some(x), Some(y)) if is_integer(dtype) => map_n(
            &out_shape,
            &[(k, shapes[0]), (x, shapes[1]), (y, shapes[2])],
            |a| Some(if a[0] != 0 { a[1] } else { a[2] }),
        ),
        _ => None,
    };
    Ok(vec![Out::with_data(out_shape, dtype, data)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn a_binary_op_with_one_folded_input_is_an_error_not_a_panic() {
        for op in ["Add", "Sub", "Mul", "Div", "Pow"] {
            let mut b = GraphBuilder::new(17);
            b.input("x", &[2]);
            b.init_ints("a", &[2], &[1, 2]);
            b.node(op, &["a"], &["y"], vec![]);
            b.output("y");
            let e = b.infer(&[]).unwrap_err().to_string();
            assert!(e.contains("takes exactly 2 inputs"), "{op}: {e}");
        }
    }

    #[test]
    fn unary_keeps_the_shape() {
        for op in [
            "Relu",
            "Sigmoid",
            "HardSwish",
            "Gelu",
            "Erf",
            "Sqrt",
            "Clip",
            "Identity",
        ] {
            check(17, op, vec![], &[s(&[1, 3, 5, 5])], &[&[1, 3, 5, 5]]);
        }
        check(17, "Dropout", vec![], &[s(&[2, 7])], &[&[2, 7], &[2, 7]]);
        check(
            17,
            "Softmax",
            vec![ai("axis", -1)],
            &[s(&[2, 7])],
            &[&[2, 7]],
        );
        check_err(17, "Softmax", vec![ai("axis", 2)], &[s(&[2, 7])], "axis 2");
    }

    #[test]
    fn clip_bounds_as_attributes_or_inputs() {
        check(
            6,
            "Clip",
            vec![af("min", 0.0), af("max", 6.0)],
            &[s(&[1, 8])],
            &[&[1, 8]],
        );
        check(
            11,
            "Clip",
            vec![],
            &[
                s(&[1, 8]),
                In::F(vec![], vec![0.0]),
                In::F(vec![], vec![6.0]),
            ],
            &[&[1, 8]],
        );
        check(
            11,
            "Clip",
            vec![],
            &[s(&[1, 8]), In::None, In::F(vec![], vec![6.0])],
            &[&[1, 8]],
        );
    }

    #[test]
    fn binary_ops_broadcast() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[1, 16, 8, 8], &[1, 16, 1, 1], &[1, 16, 8, 8]),
            (&[1, 16, 8, 8], &[16, 1, 1], &[1, 16, 8, 8]),
            (&[4, 1, 3], &[5, 1], &[4, 5, 3]),
            (&[3], &[], &[3]),
        ];
        for (a, b, out) in cases {
            for op in ["Add", "Mul", "Sub", "Div", "Pow"] {
                check(17, op, vec![], &[s(a), s(b)], &[out]);
                check(17, op, vec![], &[s(b), s(a)], &[out]);
            }
        }
        check(
            17,
            "Sum",
            vec![],
            &[s(&[2, 1]), s(&[3]), s(&[1, 1, 1])],
            &[&[1, 2, 3]],
        );
        check(
            17,
            "Where",
            vec![],
            &[s(&[2, 1]), s(&[3]), s(&[])],
            &[&[2, 3]],
        );
        check_err(
            17,
            "Add",
            vec![],
            &[s(&[2, 3]), s(&[4, 3])],
            "do not broadcast",
        );
    }

    #[test]
    fn integer_arithmetic_folds() {
        check_fold(
            17,
            "Add",
            vec![],
            &[i1(&[1, 2, 3]), i0(10)],
            &[3],
            &[11, 12, 13],
        );
        check_fold(
            17,
            "Mul",
            vec![],
            &[i1(&[2, 3]), i1(&[4, 5])],
            &[2],
            &[8, 15],
        );
        check_fold(17, "Div", vec![], &[i1(&[7, -7]), i0(2)], &[2], &[3, -3]);
        check_fold(17, "Mod", vec![], &[i1(&[7, -7]), i0(3)], &[2], &[1, 2]);
        check_fold(
            17,
            "Mod",
            vec![ai("fmod", 1)],
            &[i1(&[7, -7]), i0(3)],
            &[2],
            &[1, -1],
        );
        check_fold(
            17,
            "Equal",
            vec![],
            &[i1(&[1, 2, 3]), i0(2)],
            &[3],
            &[0, 1, 0],
        );
        check_fold(
            17,
            "Where",
            vec![],
            &[i1(&[1, 0]), i1(&[5, 6]), i0(-1)],
            &[2],
            &[5, -1],
        );
        check_fold(17, "Neg", vec![], &[i1(&[4, -2])], &[2], &[-4, 2]);
        check_fold(
            17,
            "Max",
            vec![],
            &[i1(&[1, 9]), i1(&[5, 2])],
            &[2],
            &[5, 9],
        );
        // Division by zero leaves the contents unknown; the shape is still known.
        let out = run(17, "Div", vec![], &[i1(&[1]), i0(0)], 1).unwrap();
        assert_eq!(out[0], Some((vec![1], None)));
    }

    #[test]
    fn cast_converts_folded_integers() {
        use crate::proto::tensor_proto::DataType;
        check_fold(
            17,
            "Cast",
            vec![ai("to", DataType::Int32 as i64)],
            &[i1(&[3, 1 << 32])],
            &[2],
            &[3, 0],
        );
        check_fold(
            17,
            "Cast",
            vec![ai("to", DataType::Bool as i64)],
            &[i1(&[3, 0])],
            &[2],
            &[1, 0],
        );
        // To float: the shape is known, the contents are not tracked.
        let out = run(
            17,
            "Cast",
            vec![ai("to", DataType::Float as i64)],
            &[i1(&[3])],
            1,
        )
        .unwrap();
        assert_eq!(out[0], Some((vec![1], None)));
        check_err(17, "Cast", vec![], &[i1(&[3])], "'to'");
    }
}
