//! Element-wise ops: numpy-broadcasting arithmetic and comparisons, activations, Softmax, Cast
//! and the identities (Identity, Dropout at inference).

use std::collections::HashMap;

use candle_core::{DType, Tensor, WithDType};

use super::{
    bail, broadcast_shapes, compute_dtype, input, map_f32, norm_axis, scalar, Ctx, OpFn, OpResult,
};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("Add", |_, i| arith(i, Tensor::broadcast_add));
    t.insert("Sub", |_, i| arith(i, Tensor::broadcast_sub));
    t.insert("Mul", |_, i| arith(i, Tensor::broadcast_mul));
    t.insert("Div", div);
    t.insert("Pow", pow);
    t.insert("Mod", modulo);
    t.insert("Max", |_, i| fold(i, Tensor::broadcast_maximum));
    t.insert("Min", |_, i| fold(i, Tensor::broadcast_minimum));
    t.insert("Sum", |_, i| fold(i, Tensor::broadcast_add));
    t.insert("Equal", |_, i| arith(i, Tensor::broadcast_eq));
    t.insert("Less", |_, i| arith(i, Tensor::broadcast_lt));
    t.insert("LessOrEqual", |_, i| arith(i, Tensor::broadcast_le));
    t.insert("Greater", |_, i| arith(i, Tensor::broadcast_gt));
    t.insert("GreaterOrEqual", |_, i| arith(i, Tensor::broadcast_ge));
    t.insert("Not", not);
    t.insert("Where", where_);
    t.insert("Relu", |_, i| unary_f32(i, |v| v.max(0.0)));
    t.insert("LeakyRelu", |c, i| {
        let alpha = c.attr_f("alpha", 0.01);
        unary_f32(i, move |v| if v < 0.0 { v * alpha } else { v })
    });
    t.insert("PRelu", prelu);
    t.insert("Clip", clip);
    t.insert("Sigmoid", |_, i| unary_f32(i, sigmoid));
    t.insert("HardSigmoid", |c, i| {
        let (a, b) = (c.attr_f("alpha", 0.2), c.attr_f("beta", 0.5));
        unary_f32(i, move |v| (a * v + b).clamp(0.0, 1.0))
    });
    t.insert("HardSwish", |_, i| {
        unary_f32(i, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0))
    });
    t.insert("Tanh", |_, i| Ok(vec![input(i, 0)?.tanh()?]));
    t.insert("Gelu", gelu);
    t.insert("Erf", |_, i| Ok(vec![input(i, 0)?.erf()?]));
    t.insert("Exp", |_, i| Ok(vec![input(i, 0)?.exp()?]));
    t.insert("Log", |_, i| Ok(vec![input(i, 0)?.log()?]));
    t.insert("Sqrt", |_, i| Ok(vec![input(i, 0)?.sqrt()?]));
    t.insert("Neg", |_, i| Ok(vec![input(i, 0)?.neg()?]));
    t.insert("Abs", |_, i| Ok(vec![input(i, 0)?.abs()?]));
    t.insert("Reciprocal", |_, i| Ok(vec![input(i, 0)?.recip()?]));
    t.insert("Floor", |_, i| Ok(vec![input(i, 0)?.floor()?]));
    t.insert("Ceil", |_, i| Ok(vec![input(i, 0)?.ceil()?]));
    t.insert("Softmax", |c, i| softmax(c, i, false));
    t.insert("LogSoftmax", |c, i| softmax(c, i, true));
    t.insert("Identity", |_, i| Ok(vec![input(i, 0)?.clone()]));
    t.insert("Dropout", dropout);
    t.insert("Cast", cast);
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

type Binary = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;

/// A broadcasting binary op on two tensors of the same element type.
fn arith(inputs: &[Option<Tensor>], f: Binary) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    same_dtype(a, b)?;
    Ok(vec![f(a, b)?])
}

fn same_dtype(a: &Tensor, b: &Tensor) -> OpResult<()> {
    if a.dtype() != b.dtype() {
        bail!(
            "inputs have different element types ({:?} and {:?})",
            a.dtype(),
            b.dtype()
        );
    }
    Ok(())
}

/// A variadic broadcasting op (Max, Min, Sum) folded left to right.
fn fold(inputs: &[Option<Tensor>], f: Binary) -> OpResult<Vec<Tensor>> {
    let mut acc = input(inputs, 0)?.clone();
    for t in inputs[1..].iter().flatten() {
        same_dtype(&acc, t)?;
        acc = f(&acc, t)?;
    }
    Ok(vec![acc])
}

fn div(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let b = input(inputs, 1)?;
    // Integer division by zero would abort the process instead of giving an error.
    if b.dtype() != DType::F32
        && b.to_dtype(DType::I64)?
            .flatten_all()?
            .to_vec1::<i64>()?
            .contains(&0)
    {
        bail!("integer division by zero");
    }
    arith(inputs, Tensor::broadcast_div)
}

/// Applies `f` pairwise after numpy broadcasting.
fn map2<T: WithDType>(a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> T) -> OpResult<Tensor> {
    let shape = broadcast_shapes(&[a.dims(), b.dims()])?;
    let av = a
        .broadcast_as(shape.as_slice())?
        .flatten_all()?
        .to_vec1::<T>()?;
    let bv = b
        .broadcast_as(shape.as_slice())?
        .flatten_all()?
        .to_vec1::<T>()?;
    let out: Vec<T> = av.into_iter().zip(bv).map(|(x, y)| f(x, y)).collect();
    Ok(Tensor::from_vec(out, shape, &super::CPU)?)
}

fn pow(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let y = input(inputs, 1)?;
    if x.dtype() != DType::F32 {
        bail!(
            "Pow is implemented for float bases only, found {:?}",
            x.dtype()
        );
    }
    if y.elem_count() == 1 {
        let e = scalar(y)? as f32;
        let out = if e == 2.0 {
            x.sqr()?
        } else if e == 1.0 {
            x.clone()
        } else {
            map_f32(x, move |v| v.powf(e))?
        };
        let shape = broadcast_shapes(&[x.dims(), y.dims()])?;
        return Ok(vec![out.reshape(shape)?]);
    }
    let y = y.to_dtype(DType::F32)?;
    Ok(vec![map2::<f32>(x, &y, f32::powf)?])
}

fn modulo(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    same_dtype(a, b)?;
    let fmod = c.attr_i("fmod", 0) != 0;
    let out = match a.dtype() {
        DType::F32 => {
            if !fmod {
                bail!("Mod on floats requires fmod=1");
            }
            map2::<f32>(a, b, |x, y| x % y)?
        }
        DType::I64 => {
            if ints_contain_zero(b)? {
                bail!("integer modulo by zero");
            }
            if fmod {
                map2::<i64>(a, b, |x, y| x.wrapping_rem(y))?
            } else {
                // Python semantics: the result takes the divisor's sign.
                map2::<i64>(a, b, |x, y| {
                    let r = x.wrapping_rem(y);
                    if r != 0 && ((r < 0) != (y < 0)) {
                        r + y
                    } else {
                        r
                    }
                })?
            }
        }
        other => bail!("Mod is not implemented for {other:?}"),
    };
    Ok(vec![out])
}

fn ints_contain_zero(t: &Tensor) -> OpResult<bool> {
    Ok(t.flatten_all()?.to_vec1::<i64>()?.contains(&0))
}

fn not(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    Ok(vec![x.eq(0u8)?])
}

fn where_(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (c, a, b) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    same_dtype(a, b)?;
    let shape = broadcast_shapes(&[c.dims(), a.dims(), b.dims()])?;
    let c = c.broadcast_as(shape.as_slice())?;
    let a = a.broadcast_as(shape.as_slice())?;
    let b = b.broadcast_as(shape.as_slice())?;
    Ok(vec![c.where_cond(&a, &b)?])
}

fn unary_f32(inputs: &[Option<Tensor>], f: impl Fn(f32) -> f32 + Sync) -> OpResult<Vec<Tensor>> {
    Ok(vec![map_f32(input(inputs, 0)?, f)?])
}

fn prelu(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, slope) = (input(inputs, 0)?, input(inputs, 1)?);
    let neg = x.minimum(0f64)?.broadcast_mul(slope)?;
    Ok(vec![x.relu()?.broadcast_add(&neg)?])
}

fn clip(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
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
    let out = match x.dtype() {
        DType::F32 => {
            let lo = lo.map_or(f32::NEG_INFINITY, |v| v as f32);
            let hi = hi.map_or(f32::INFINITY, |v| v as f32);
            // max then min (not clamp) so that min > max gives max, as the spec's reference does.
            map_f32(x, move |v| v.max(lo).min(hi))?
        }
        DType::I64 => {
            let lo = lo.map_or(i64::MIN, |v| v as i64);
            let hi = hi.map_or(i64::MAX, |v| v as i64);
            let v: Vec<i64> = x.flatten_all()?.to_vec1::<i64>()?;
            let v = v.into_iter().map(|e| e.max(lo).min(hi)).collect();
            super::tensor_i64(v, x.dims())?
        }
        other => bail!("Clip is not implemented for {other:?}"),
    };
    Ok(vec![out])
}

fn gelu(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let out = match c.attr_s("approximate").unwrap_or("none") {
        "none" => x.gelu_erf()?,
        "tanh" => x.gelu()?,
        other => bail!("unknown approximate '{other}'"),
    };
    Ok(vec![out])
}

fn softmax(c: &Ctx, inputs: &[Option<Tensor>], log: bool) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
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
    let shifted = t.broadcast_sub(&t.max_keepdim(axis)?)?;
    let e = shifted.exp()?;
    let sum = e.sum_keepdim(axis)?;
    let out = if log {
        shifted.broadcast_sub(&sum.log()?)?
    } else {
        e.broadcast_div(&sum)?
    };
    Ok(vec![out.reshape(dims)?])
}

fn dropout(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let mut out = vec![x.clone()];
    if c.num_outputs() > 1 {
        out.push(Tensor::ones(x.dims(), DType::U8, &super::CPU)?);
    }
    Ok(out)
}

fn cast(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let Some(to) = c.attr("to") else {
        bail!("attribute 'to' is missing");
    };
    let target = compute_dtype(to.i as i32)?;
    let out = match (x.dtype(), target) {
        (a, b) if a == b => x.clone(),
        (_, DType::U8) => x.ne(0f64)?,
        _ => x.to_dtype(target)?,
    };
    Ok(vec![out])
}
