//! Unary ops: activations (Relu and its relatives, Sigmoid, Gelu, Clip...), element-wise math
//! (Exp, Sqrt, the trigonometric functions...), and the normalising activations Softmax,
//! LogSoftmax and Hardmax.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{
    axis_split, bail, input, map_f32, norm_axis, scalar, tensor_f32, tensor_i64, with_f32, Ctx,
    OpFn, OpResult,
};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("Relu", |_, i| numeric(i, |v| v.max(0.0), |v| v.max(0)));
    t.insert("LeakyRelu", |c, i| {
        let alpha = c.attr_f("alpha", 0.01);
        unary_f32(i, move |v| if v < 0.0 { v * alpha } else { v })
    });
    t.insert("PRelu", prelu);
    t.insert("ThresholdedRelu", |c, i| {
        let alpha = c.attr_f("alpha", 1.0);
        unary_f32(i, move |v| if v > alpha { v } else { 0.0 })
    });
    t.insert("Elu", |c, i| {
        let alpha = c.attr_f("alpha", 1.0);
        unary_f32(i, move |v| if v < 0.0 { alpha * v.exp_m1() } else { v })
    });
    t.insert("Celu", |c, i| {
        let alpha = c.attr_f("alpha", 1.0);
        unary_f32(i, move |v| {
            v.max(0.0) + (alpha * (v / alpha).exp_m1()).min(0.0)
        })
    });
    t.insert("Selu", |c, i| {
        let alpha = c.attr_f("alpha", 1.673_263_2);
        let gamma = c.attr_f("gamma", 1.050_701);
        unary_f32(i, move |v| {
            gamma * if v > 0.0 { v } else { alpha * v.exp_m1() }
        })
    });
    t.insert("Shrink", |c, i| {
        let (bias, lambd) = (c.attr_f("bias", 0.0), c.attr_f("lambd", 0.5));
        unary_f32(i, move |v| {
            if v < -lambd {
                v + bias
            } else if v > lambd {
                v - bias
            } else {
                0.0
            }
        })
    });
    t.insert("Clip", clip);
    t.insert("Sigmoid", |_, i| unary_f32(i, sigmoid));
    t.insert("HardSigmoid", |c, i| {
        let (a, b) = (c.attr_f("alpha", 0.2), c.attr_f("beta", 0.5));
        unary_f32(i, move |v| (a * v + b).clamp(0.0, 1.0))
    });
    t.insert("HardSwish", |_, i| {
        unary_f32(i, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0))
    });
    t.insert("Softplus", |_, i| unary_f32(i, softplus));
    t.insert("Softsign", |_, i| unary_f32(i, |v| v / (1.0 + v.abs())));
    t.insert("Mish", |_, i| unary_f32(i, |v| v * softplus(v).tanh()));
    t.insert("Gelu", gelu);
    t.insert("Tanh", |_, i| unary_f32(i, f32::tanh));
    t.insert("Erf", |_, i| Ok(vec![float(i)?.erf()?]));
    t.insert("Exp", |_, i| unary_f32(i, f32::exp));
    t.insert("Log", |_, i| unary_f32(i, f32::ln));
    t.insert("Sqrt", |_, i| unary_f32(i, f32::sqrt));
    t.insert("Reciprocal", |_, i| unary_f32(i, f32::recip));
    t.insert("Floor", |_, i| unary_f32(i, f32::floor));
    t.insert("Ceil", |_, i| unary_f32(i, f32::ceil));
    // ONNX rounds halves to even.
    t.insert("Round", |_, i| unary_f32(i, f32::round_ties_even));
    t.insert("Neg", |_, i| numeric(i, |v| -v, i64::wrapping_neg));
    t.insert("Abs", |_, i| numeric(i, f32::abs, i64::wrapping_abs));
    t.insert("Sign", |_, i| {
        numeric(i, |v| if v == 0.0 { 0.0 } else { v.signum() }, i64::signum)
    });
    t.insert("Sin", |_, i| unary_f32(i, f32::sin));
    t.insert("Cos", |_, i| unary_f32(i, f32::cos));
    t.insert("Tan", |_, i| unary_f32(i, f32::tan));
    t.insert("Asin", |_, i| unary_f32(i, f32::asin));
    t.insert("Acos", |_, i| unary_f32(i, f32::acos));
    t.insert("Atan", |_, i| unary_f32(i, f32::atan));
    t.insert("Sinh", |_, i| unary_f32(i, f32::sinh));
    t.insert("Cosh", |_, i| unary_f32(i, f32::cosh));
    t.insert("Asinh", |_, i| unary_f32(i, f32::asinh));
    t.insert("Acosh", |_, i| unary_f32(i, f32::acosh));
    t.insert("Atanh", |_, i| unary_f32(i, f32::atanh));
    t.insert("IsNaN", |_, i| predicate(i, f32::is_nan));
    t.insert("IsInf", |c, i| {
        let (neg, pos) = (
            c.attr_i("detect_negative", 1) != 0,
            c.attr_i("detect_positive", 1) != 0,
        );
        predicate(i, move |v| {
            v.is_infinite() && if v < 0.0 { neg } else { pos }
        })
    });
    t.insert("Softmax", |c, i| softmax(c, i, Norm::Soft));
    t.insert("LogSoftmax", |c, i| softmax(c, i, Norm::Log));
    t.insert("Hardmax", |c, i| softmax(c, i, Norm::Hard));
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// `ln(1 + e^v)` without overflow for large `v`.
fn softplus(v: f32) -> f32 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

fn float(inputs: &[Option<Tensor>]) -> OpResult<&Tensor> {
    let x = input(inputs, 0)?;
    if x.dtype() != DType::F32 {
        bail!("implemented for float tensors only, found {:?}", x.dtype());
    }
    Ok(x)
}

fn unary_f32(inputs: &[Option<Tensor>], f: impl Fn(f32) -> f32 + Sync) -> OpResult<Vec<Tensor>> {
    Ok(vec![map_f32(float(inputs)?, f)?])
}

/// A unary op defined on floats and on integers (shape arithmetic uses the integer form).
fn numeric(
    inputs: &[Option<Tensor>],
    f: impl Fn(f32) -> f32 + Sync,
    g: impl Fn(i64) -> i64,
) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    match x.dtype() {
        DType::F32 => Ok(vec![map_f32(x, f)?]),
        DType::I64 => {
            let v = x.flatten_all()?.to_vec1::<i64>()?;
            Ok(vec![tensor_i64(v.into_iter().map(g).collect(), x.dims())?])
        }
        other => bail!("not implemented for {other:?}"),
    }
}

/// A float test giving a boolean tensor.
fn predicate(inputs: &[Option<Tensor>], f: impl Fn(f32) -> bool) -> OpResult<Vec<Tensor>> {
    let x = float(inputs)?;
    let v: Vec<u8> = with_f32(x, |s| s.iter().map(|&v| u8::from(f(v))).collect())?;
    Ok(vec![Tensor::from_vec(v, x.dims(), &super::CPU)?])
}

fn prelu(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, slope) = (float(inputs)?, input(inputs, 1)?);
    let neg = x.minimum(0f64)?.broadcast_mul(slope)?;
    Ok(vec![x.relu()?.broadcast_add(&neg)?])
}

fn clip(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    // Before opset 11 the bounds are attributes; from 11 on they are optional inputs.
    let (lo, hi) = if c.opset < 11 {
        (
            Some(c.attr_f("min", f32::NEG_INFINITY) as f64),
            Some(c.attr_f("max", f32::INFINITY) as f64),
        )
    } else {
        let get = |slot: usize| -> OpResult<Option<f64>> {
            match inputs.get(slot).and_then(|t| t.as_ref()) {
                Some(t) => Ok(Some(scalar(t)?)),
                None => Ok(None),
            }
        };
        (get(1)?, get(2)?)
    };
    let lo32 = lo.map_or(f32::NEG_INFINITY, |v| v as f32);
    let hi32 = hi.map_or(f32::INFINITY, |v| v as f32);
    let lo64 = lo.map_or(i64::MIN, |v| v as i64);
    let hi64 = hi.map_or(i64::MAX, |v| v as i64);
    // max then min (not clamp), so that min > max gives max, as the spec's reference does.
    numeric(
        inputs,
        move |v| v.max(lo32).min(hi32),
        move |v| v.max(lo64).min(hi64),
    )
}

fn gelu(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = float(inputs)?;
    let out = match c.attr_s("approximate").unwrap_or("none") {
        "none" => x.gelu_erf()?,
        "tanh" => x.gelu()?,
        other => bail!("unknown approximate '{other}'"),
    };
    Ok(vec![out])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Norm {
    Soft,
    Log,
    Hard,
}

fn softmax(c: &Ctx, inputs: &[Option<Tensor>], norm: Norm) -> OpResult<Vec<Tensor>> {
    let x = float(inputs)?;
    let rank = x.rank().max(1);
    let dims = x.dims().to_vec();
    // Before opset 13 the input is coerced to 2-D [prod(dims[..axis]), prod(dims[axis..])] and
    // normalised over the whole second dimension; from 13 on only `axis` is normalised.
    let (t, axis) = if c.opset < 13 {
        let axis = norm_axis(c.attr_i("axis", 1), rank)?;
        let outer: usize = dims[..axis].iter().product();
        (x.reshape((outer, x.elem_count() / outer.max(1)))?, 1)
    } else {
        (x.clone(), norm_axis(c.attr_i("axis", -1), rank)?)
    };
    let out = match norm {
        Norm::Hard => hardmax(&t, axis)?,
        Norm::Soft | Norm::Log => {
            let shifted = t.broadcast_sub(&t.max_keepdim(axis)?)?;
            let e = shifted.exp()?;
            let sum = e.sum_keepdim(axis)?;
            if norm == Norm::Log {
                shifted.broadcast_sub(&sum.log()?)?
            } else {
                e.broadcast_div(&sum)?
            }
        }
    };
    Ok(vec![out.reshape(dims)?])
}

/// 1 at the first largest value along `axis`, 0 elsewhere.
fn hardmax(t: &Tensor, axis: usize) -> OpResult<Tensor> {
    let (outer, n, inner) = axis_split(t.dims(), axis);
    let out = with_f32(t, |s| {
        let mut out = vec![0f32; s.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * n + k) * inner + i;
                let best = (0..n).fold(0, |b, k| if s[at(k)] > s[at(b)] { k } else { b });
                if n > 0 {
                    out[at(best)] = 1.0;
                }
            }
        }
        out
    })?;
    tensor_f32(out, t.dims())
}
