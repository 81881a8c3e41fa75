//! Quantization: `QuantizeLinear`, `DequantizeLinear` (per tensor and per axis; integer types
//! up to 32 bits, rounding half to even, saturating to the output type) and the
//! operator-format layers `QLinearConv`, `QLinearMatMul` (dequantize the operands, run the
//! float op, quantize the result), `ConvInteger` and `MatMulInteger` (integer products,
//! computed in f32: exact while every sum stays below 2^24).
//!
//! Integer tensors are i64 here (the evaluator's one integer type), so the range a quantized
//! result saturates to comes from the output's declared or inferred element type.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use shears_onnx::proto::tensor_proto::DataType as D;
use shears_onnx::shape::quant::{quant_axis, QuantAxis};

use super::{bail, conv, floats, input, matmul, opt_input, tensor_f32, tensor_i64, Ctx, OpFn};
use super::{OpError, OpResult};

pub(crate) fn register(t: &mut HashMap<&'static str, OpFn>) {
    t.insert("QuantizeLinear", quantize_linear);
    t.insert("DequantizeLinear", dequantize_linear);
    t.insert("QLinearConv", qlinear_conv);
    t.insert("QLinearMatMul", qlinear_matmul);
    t.insert("ConvInteger", conv_integer);
    t.insert("MatMulInteger", matmul_integer);
}

/// The values of a quantized integer type, as f32 bounds.
fn int_range(dtype: i32) -> OpResult<(f32, f32)> {
    Ok(match D::try_from(dtype) {
        Ok(D::Int8) => (-128.0, 127.0),
        // Q without a zero point or an output type quantizes to uint8.
        Ok(D::Uint8) | Ok(D::Undefined) => (0.0, 255.0),
        Ok(D::Int16) => (-32768.0, 32767.0),
        Ok(D::Uint16) => (0.0, 65535.0),
        Ok(D::Int32) => (i32::MIN as f32, i32::MAX as f32),
        Ok(D::Int4) => (-8.0, 7.0),
        Ok(D::Uint4) => (0.0, 15.0),
        _ => bail!(
            "quantizing to {} is not supported",
            shears_onnx::tensor::dtype_name(dtype)
        ),
    })
}

/// A scale or zero point's values (`default` when the input is omitted).
fn values(t: Option<&Tensor>, default: f32) -> OpResult<Vec<f32>> {
    match t {
        Some(t) => floats(t),
        None => Ok(vec![default]),
    }
}

/// Where each element's scale comes from: one for all, or one per index of an axis.
#[derive(Clone, Copy)]
struct Layout {
    /// Elements per index of the axis (`1` for the last axis).
    inner: usize,
    /// Length of the axis (1 per tensor).
    size: usize,
}

impl Layout {
    fn per_tensor() -> Layout {
        Layout { inner: 1, size: 1 }
    }
    fn per_axis(dims: &[usize], axis: usize) -> Layout {
        Layout {
            inner: dims[axis + 1..].iter().product(),
            size: dims[axis],
        }
    }
    /// The parameter index of element `i`.
    fn at(&self, i: usize) -> usize {
        (i / self.inner) % self.size
    }
    /// Checks that `params` holds one value per index (or one for all).
    fn check(&self, params: &[f32], what: &str) -> OpResult<()> {
        if params.len() != self.size && params.len() != 1 {
            bail!(
                "{what} has {} values for an axis of {}",
                params.len(),
                self.size
            );
        }
        Ok(())
    }
}

/// The layout of a Q/DQ node over `x` with `scale`, as shape inference and the coupling rule
/// read it.
fn qdq_layout(c: &Ctx, x: &Tensor, scale: &Tensor) -> OpResult<Layout> {
    let axis = c.attr("axis").map(|_| c.attr_i("axis", 1));
    match quant_axis(
        c.opset,
        axis,
        c.attr_i("block_size", 0),
        x.dims(),
        scale.dims(),
    )
    .map_err(OpError)?
    {
        QuantAxis::PerTensor => Ok(Layout::per_tensor()),
        QuantAxis::PerAxis(a) => Ok(Layout::per_axis(x.dims(), a)),
        QuantAxis::Blocked(a, bs) => {
            bail!("blocked quantization (block_size {bs} on axis {a}) is not supported")
        }
    }
}

/// `(x - zp) * scale`, per element's layout index.
fn dequantize(x: &Tensor, layout: Layout, scale: &[f32], zp: &[f32]) -> OpResult<Tensor> {
    layout.check(scale, "scale")?;
    layout.check(zp, "zero point")?;
    let pick = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[layout.at(i)] };
    let data = floats(x)?;
    let out = data
        .iter()
        .enumerate()
        .map(|(i, &q)| (q - pick(zp, i)) * pick(scale, i))
        .collect();
    tensor_f32(out, x.dims())
}

/// `saturate(round_half_even(x / scale) + zp)` into `dtype`'s range, as i64.
fn quantize(x: &Tensor, layout: Layout, scale: &[f32], zp: &[f32], dtype: i32) -> OpResult<Tensor> {
    layout.check(scale, "scale")?;
    layout.check(zp, "zero point")?;
    let (lo, hi) = int_range(dtype)?;
    let pick = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[layout.at(i)] };
    let data = floats(x)?;
    let out = data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let q = (v / pick(scale, i)).round_ties_even() + pick(zp, i);
            q.clamp(lo, hi) as i64
        })
        .collect();
    tensor_i64(out, x.dims())
}

/// The element type a quantizing op saturates to: its output's, else (shapes not inferred)
/// its zero point's at `zp_slot`, else `output_dtype` (opset 21), else uint8.
fn out_dtype(c: &Ctx, zp_slot: usize) -> i32 {
    let known = |t: Option<&i32>| t.copied().filter(|&t| t != 0);
    known(c.out_dtypes.first())
        .or(known(c.in_dtypes.get(zp_slot)))
        .unwrap_or_else(|| c.attr_i("output_dtype", 0) as i32)
}

fn quantize_linear(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
    if c.attr_i("saturate", 1) == 0 {
        bail!("saturate = 0 applies to float8 outputs, which are not supported");
    }
    let layout = qdq_layout(c, x, scale)?;
    let zp = values(opt_input(inputs, 2), 0.0)?;
    Ok(vec![quantize(
        x,
        layout,
        &floats(scale)?,
        &zp,
        out_dtype(c, 2),
    )?])
}

fn dequantize_linear(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
    if x.dtype() != DType::I64 {
        bail!("dequantizing {:?} values is not supported", x.dtype());
    }
    let layout = qdq_layout(c, x, scale)?;
    let zp = values(opt_input(inputs, 2), 0.0)?;
    Ok(vec![dequantize(x, layout, &floats(scale)?, &zp)?])
}

/// The layout of a layer's scale or zero point: per tensor, or one per index of `axis` of
/// `dims` when it has more than one value.
fn param_layout(dims: &[usize], axis: usize, params: &[f32]) -> Layout {
    if params.len() > 1 {
        Layout::per_axis(dims, axis)
    } else {
        Layout::per_tensor()
    }
}

fn qlinear_conv(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let w = input(inputs, 3)?;
    let (xs, xz) = (floats(input(inputs, 1)?)?, floats(input(inputs, 2)?)?);
    let (ws, wz) = (floats(input(inputs, 4)?)?, floats(input(inputs, 5)?)?);
    let (ys, yz) = (
        floats(input(inputs, 6)?)?,
        values(opt_input(inputs, 7), 0.0)?,
    );
    let xf = dequantize(x, Layout::per_tensor(), &xs, &xz)?;
    let wf = dequantize(
        w,
        param_layout(w.dims(), 0, if ws.len() > 1 { &ws } else { &wz }),
        &ws,
        &wz,
    )?;
    // The int32 bias is quantized with scale x_scale * w_scale and zero point 0.
    let bias = match opt_input(inputs, 8) {
        Some(b) => {
            let bs: Vec<f32> = ws.iter().map(|&s| s * xs[0]).collect();
            let layout = param_layout(b.dims(), 0, &bs);
            Some(dequantize(b, layout, &bs, &[0.0])?)
        }
        None => None,
    };
    let y = conv::conv(c, &[Some(xf), Some(wf), bias])?.remove(0);
    Ok(vec![quantize(
        &y,
        Layout::per_tensor(),
        &ys,
        &yz,
        out_dtype(c, 7),
    )?])
}

fn qlinear_matmul(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
    let (as_, az) = (floats(input(inputs, 1)?)?, floats(input(inputs, 2)?)?);
    let (bs, bz) = (floats(input(inputs, 4)?)?, floats(input(inputs, 5)?)?);
    let (ys, yz) = (
        floats(input(inputs, 6)?)?,
        values(opt_input(inputs, 7), 0.0)?,
    );
    let af = dequantize(a, row_layout(a, &as_, &az)?, &as_, &az)?;
    let bf = dequantize(b, col_layout(b, &bs, &bz)?, &bs, &bz)?;
    let y = matmul::matmul(c, &[Some(af), Some(bf)])?.remove(0);
    Ok(vec![quantize(
        &y,
        Layout::per_tensor(),
        &ys,
        &yz,
        out_dtype(c, 7),
    )?])
}

/// Per-row parameters of a product's left operand (`[M]` of its second-to-last axis), when
/// its scale or zero point has more than one value.
fn row_layout(a: &Tensor, scale: &[f32], zp: &[f32]) -> OpResult<Layout> {
    operand_layout(a, 2, "row", scale, zp)
}

/// Per-column parameters of a product's right operand (`[N]` of its last axis), when its
/// scale or zero point has more than one value.
fn col_layout(b: &Tensor, scale: &[f32], zp: &[f32]) -> OpResult<Layout> {
    operand_layout(b, 1, "column", scale, zp)
}

/// Parameters along axis `rank - from_end` of a 2-D-or-more product operand when its scale or
/// zero point has more than one value, else per tensor.
fn operand_layout(
    t: &Tensor,
    from_end: usize,
    what: &str,
    scale: &[f32],
    zp: &[f32],
) -> OpResult<Layout> {
    let p = if scale.len() > 1 { scale } else { zp };
    if p.len() <= 1 {
        return Ok(Layout::per_tensor());
    }
    if t.rank() < 2 {
        bail!(
            "a per-{what} parameter needs a 2-D operand, found {:?}",
            t.dims()
        );
    }
    Ok(param_layout(t.dims(), t.rank() - from_end, p))
}

/// An f32 result of integer arithmetic as the int32 it holds.
fn to_int(y: &Tensor) -> OpResult<Tensor> {
    let v = floats(y)?;
    tensor_i64(v.iter().map(|&x| x.round() as i64).collect(), y.dims())
}

fn conv_integer(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
    let xz = values(opt_input(inputs, 2), 0.0)?;
    let wz = values(opt_input(inputs, 3), 0.0)?;
    let xf = dequantize(x, Layout::per_tensor(), &[1.0], &xz)?;
    let wf = dequantize(w, param_layout(w.dims(), 0, &wz), &[1.0], &wz)?;
    let y = conv::conv(c, &[Some(xf), Some(wf)])?.remove(0);
    Ok(vec![to_int(&y)?])
}

fn matmul_integer(c: &Ctx, inputs: &[Option<Tensor>]) -> OpResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    let az = values(opt_input(inputs, 2), 0.0)?;
    let bz = values(opt_input(inputs, 3), 0.0)?;
    let af = dequantize(a, row_layout(a, &[1.0], &az)?, &[1.0], &az)?;
    let bf = dequantize(b, col_layout(b, &[1.0], &bz)?, &[1.0], &bz)?;
    let y = matmul::matmul(c, &[Some(af), Some(bf)])?.remove(0);
    Ok(vec![to_int(&y)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::CPU;
    use shears_onnx::Node;
    use shears_testkit::builder::attr_int;

    fn node(op: &str, attrs: Vec<shears_onnx::proto::AttributeProto>) -> Node {
        Node {
            name: "n".into(),
            op_type: op.into(),
            domain: String::new(),
            proto_index: 0,
            inputs: Default::default(),
            outputs: Default::default(),
            attrs,
        }
    }

    fn run(
        op: &str,
        attrs: Vec<shears_onnx::proto::AttributeProto>,
        dtype: D,
        ins: Vec<Option<Tensor>>,
    ) -> Tensor {
        let n = node(op, attrs);
        let dt = [dtype as i32];
        let c = Ctx {
            node: &n,
            opset: 17,
            in_dtypes: &[],
            out_dtypes: &dt,
        };
        let f = table_fn(op);
        f(&c, &ins).unwrap().remove(0)
    }

    fn table_fn(op: &str) -> OpFn {
        let mut t = HashMap::new();
        register(&mut t);
        t[op]
    }

    fn f(v: &[f32], dims: &[usize]) -> Option<Tensor> {
        Some(Tensor::from_vec(v.to_vec(), dims, &CPU).unwrap())
    }
    fn i(v: &[i64], dims: &[usize]) -> Option<Tensor> {
        Some(Tensor::from_vec(v.to_vec(), dims, &CPU).unwrap())
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        // x / 0.5: 0.5 -> 1, 1.25 -> 2.5 -> 2, 1.75 -> 3.5 -> 4, -0.75 -> -1.5 -> -2; + zp 10.
        let x = f(&[0.5, 1.25, 1.75, -0.75, 100.0, -100.0], &[6]);
        let y = run(
            "QuantizeLinear",
            vec![],
            D::Int8,
            vec![x.clone(), f(&[0.5], &[]), i(&[10], &[])],
        );
        assert_eq!(y.to_vec1::<i64>().unwrap(), vec![11, 12, 14, 8, 127, -128]);
        let y = run(
            "QuantizeLinear",
            vec![],
            D::Uint8,
            vec![x, f(&[0.5], &[]), i(&[10], &[])],
        );
        assert_eq!(y.to_vec1::<i64>().unwrap(), vec![11, 12, 14, 8, 210, 0]);
    }

    #[test]
    fn per_axis_parameters_follow_their_axis() {
        // [2, 3] per axis 0: row 0 scale 1 zp 0, row 1 scale 2 zp 1.
        let q = i(&[1, 2, 3, 1, 2, 3], &[2, 3]);
        let s = f(&[1.0, 2.0], &[2]);
        let z = i(&[0, 1], &[2]);
        let y = run(
            "DequantizeLinear",
            vec![attr_int("axis", 0)],
            D::Float,
            vec![q, s.clone(), z.clone()],
        );
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 0.0, 2.0, 4.0]
        );
        let back = run(
            "QuantizeLinear",
            vec![attr_int("axis", 0)],
            D::Int8,
            vec![Some(y), s, z],
        );
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![1, 2, 3, 1, 2, 3]
        );
        // Per axis 1 (the default): columns.
        let y = run(
            "DequantizeLinear",
            vec![],
            D::Float,
            vec![
                i(&[1, 1, 1, 1, 1, 1], &[2, 3]),
                f(&[1.0, 2.0, 3.0], &[3]),
                None,
            ],
        );
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn integer_products_are_exact_and_qlinear_requantizes() {
        // a = [[1, 2], [3, 4]] - 1, b = [[1, 0], [0, 1]] - [0, 1] per column.
        let a = i(&[1, 2, 3, 4], &[2, 2]);
        let b = i(&[1, 0, 0, 1], &[2, 2]);
        let y = run(
            "MatMulInteger",
            vec![],
            D::Int32,
            vec![a.clone(), b.clone(), i(&[1], &[]), i(&[0, 1], &[2])],
        );
        // a' = [[0, 1], [2, 3]], b' = [[1, -1], [0, 0]] -> [[0, 0], [2, -2]].
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![0, 0, 2, -2]
        );
        // QLinearMatMul with scales 0.5 (a), 2 (b), 0.25 (y), zp 3 for y:
        // real a = [[0, .5], [1, 1.5]], real b = 2 * b' -> a@b = [[0, 0], [2, -2]]; / 0.25 + 3.
        let y = run(
            "QLinearMatMul",
            vec![],
            D::Uint8,
            vec![
                a,
                f(&[0.5], &[]),
                i(&[1], &[]),
                b,
                f(&[2.0], &[]),
                i(&[0, 1], &[2]),
                f(&[0.25], &[]),
                i(&[3], &[]),
            ],
        );
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![3, 3, 11, 0]
        );
    }

    #[test]
    fn qlinear_conv_is_dequantize_conv_quantize() {
        // 1x1 conv, 2 input channels, 2 outputs, per-channel weight scales, an int32 bias.
        let x = i(&[2, 4, 6, 8], &[1, 2, 1, 2]); // zp 2, scale 0.5 -> [0, 1], [2, 3]
        let w = i(&[1, 1, 2, -1], &[2, 2, 1, 1]); // scales [1, 0.5], zp 0
        let b = i(&[2, -4], &[2]); // scale 0.5 * [1, 0.5] -> [1, -1]
        let y = run(
            "QLinearConv",
            vec![],
            D::Int8,
            vec![
                x,
                f(&[0.5], &[]),
                i(&[2], &[]),
                w,
                f(&[1.0, 0.5], &[2]),
                i(&[0, 0], &[2]),
                f(&[1.0], &[]),
                i(&[0], &[]),
                b,
            ],
        );
        // out0 = x0 + x1 + 1 = [3, 5]; out1 = 1 * x0 - 0.5 * x1 - 1 = [-2, -1.5 -> -2].
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![3, 5, -2, -2]
        );
    }
}
