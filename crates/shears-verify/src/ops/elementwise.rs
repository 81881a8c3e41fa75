//! Element-wise ops on several inputs: numpy-broadcasting arithmetic, comparisons and logic,
//! Where; and the type-level ones: Cast, CastLike, Identity, Dropout (inference).

use std::collections::HashMap;

use candle_core::{DType, Tensor, WithDType};

use super::{bail, broadcast_shapes, compute_dtype, input, map_f32, scalar, Ctx, OpFn, OpResult};

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
    t.insert("Mean", mean);
    t.insert("Not", not);
    t.insert("And", |_, i| logic(i, |a, b| a & b));
    t.insert("Or", |_, i| logic(i, |a, b| a | b));
    t.insert("Xor", |_, i| logic(i, |a, b| a ^ b));
    t.insert("BitwiseAnd", |_, i| bitwise(i, |a, b| a & b));
    t.insert("BitwiseOr", |_, i| bitwise(i, |a, b| a | b));
    t.insert("BitwiseXor", |_, i| bitwise(i, |a, b| a ^ b));
    t.insert("BitwiseNot", bitwise_not);
    t.insert("Where", where_);
    t.insert("Identity", |_, i| Ok(vec![input(i, 0)?.clone()]));
    t.insert("Dropout", dropout);
    t.insert("Cast", cast);
    t.insert("CastLike", cast_like);
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

fn mean(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let n = inputs.iter().flatten().count();
    let sum = fold(inputs, Tensor::broadcast_add)?.remove(0);
    if sum.dtype() != DType::F32 {
        bail!("Mean is implemented for float tensors only");
    }
    Ok(vec![sum.affine(1.0 / n as f64, 0.0)?])
}

fn logic(inputs: &[Option<Tensor>], f: fn(u8, u8) -> u8) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    if a.dtype() != DType::U8 || b.dtype() != DType::U8 {
        bail!(
            "expected boolean inputs, found {:?} and {:?}",
            a.dtype(),
            b.dtype()
        );
    }
    // Booleans are 0 or 1, so the bitwise forms are the logical ones.
    Ok(vec![map2::<u8>(a, b, f)?])
}

fn bitwise(inputs: &[Option<Tensor>], f: fn(i64, i64) -> i64) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    if a.dtype() != DType::I64 || b.dtype() != DType::I64 {
        bail!(
            "expected integer inputs, found {:?} and {:?}",
            a.dtype(),
            b.dtype()
        );
    }
    Ok(vec![map2::<i64>(a, b, f)?])
}

fn bitwise_not(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.dtype() != DType::I64 {
        bail!("expected an integer input, found {:?}", x.dtype());
    }
    let v: Vec<i64> = x
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|v| !v)
        .collect();
    Ok(vec![super::tensor_i64(v, x.dims())?])
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
    Ok(vec![convert(x, compute_dtype(to.i as i32)?)?])
}

fn cast_like(_: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, like) = (input(inputs, 0)?, input(inputs, 1)?);
    Ok(vec![convert(x, like.dtype())?])
}

/// `x` in the evaluator's dtype `target`; casting to bool tests for non-zero.
fn convert(x: &Tensor, target: DType) -> OpResult<Tensor> {
    let out = match (x.dtype(), target) {
        (a, b) if a == b => x.clone(),
        (_, DType::U8) => x.ne(0f64)?,
        _ => x.to_dtype(target)?,
    };
    Ok(out)
}
