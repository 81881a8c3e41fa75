//! Quantization: `QuantizeLinear` / `DequantizeLinear` (the QDQ format) and the operator-format
//! quantized layers `QLinearConv`, `QLinearMatMul`, `ConvInteger`, `MatMulInteger`.
//!
//! Spec: `QuantizeLinear(x, y_scale, y_zero_point?) -> y` and
//! `DequantizeLinear(x, x_scale, x_zero_point?) -> y` keep the input's shape. Opset 10: the
//! scale and zero point are scalars (per tensor). Opset 13 adds `axis` (default 1): a 1-D
//! scale of `x[axis]` elements quantizes per axis. Opset 19 adds float8 types and `saturate`;
//! opset 21 adds `block_size` (a scale of `x`'s rank whose `axis` dim is
//! `ceil(x[axis] / block_size)`) and `output_dtype`. Q's output type is its zero point's, else
//! `output_dtype`, else uint8; DQ's is its scale's.
//!
//! The operator-format layers compute on integers: `QLinearConv(x, x_scale, x_zp, w, w_scale,
//! w_zp, y_scale, y_zp, B?)` and `QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale,
//! y_zp)` have Conv's and MatMul's shapes with the output typed by `y_zp`;
//! `ConvInteger(x, w, x_zp?, w_zp?)` and `MatMulInteger(a, b, a_zp?, b_zp?)` output int32.

use super::conv::conv_out;
use super::matmul::matmul_dims;
use super::{invalid, Ctx, Fail, Out, ShapeFn, FLOAT};
use crate::proto::tensor_proto::DataType;

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("QuantizeLinear", quantize),
    ("DequantizeLinear", dequantize),
    ("QLinearConv", qlinear_conv),
    ("QLinearMatMul", qlinear_matmul),
    ("ConvInteger", conv_integer),
    ("MatMulInteger", matmul_integer),
];

const UINT8: i32 = DataType::Uint8 as i32;
const INT32: i32 = DataType::Int32 as i32;

/// How a Q/DQ node's scale applies to its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantAxis {
    /// One scale (and zero point) for the whole tensor.
    PerTensor,
    /// One scale per index of this axis of the input.
    PerAxis(usize),
    /// Blocked quantization (opset 21): `block_size` consecutive indices of this axis share a
    /// scale.
    Blocked(usize, usize),
}

/// The quantization layout of a `QuantizeLinear` / `DequantizeLinear` node whose input has
/// shape `x` and whose scale has shape `scale`, checked against the spec: an error names what
/// disagrees (an `axis` out of range, a per-axis scale whose length is not the axis's).
///
/// Shared with the coupling rules, so that shapes and couplings agree by construction.
pub fn quant_axis(
    opset: i64,
    axis_attr: Option<i64>,
    block_size: i64,
    x: &[usize],
    scale: &[usize],
) -> Result<QuantAxis, String> {
    if block_size < 0 {
        return Err(format!("block_size {block_size} is negative"));
    }
    let axis = || -> Result<usize, String> {
        let a = axis_attr.unwrap_or(1);
        let r = x.len() as i64;
        if a < -r || a >= r {
            return Err(format!(
                "axis {a} is out of range for the input's rank {}",
                x.len()
            ));
        }
        Ok(if a < 0 { a + r } else { a } as usize)
    };
    if block_size > 0 {
        let a = axis()?;
        let bs = block_size as usize;
        let mut want = x.to_vec();
        want[a] = x[a].div_ceil(bs);
        if scale != want.as_slice() {
            return Err(format!(
                "blocked scale has shape {scale:?}, expected {want:?} (block_size {bs} on axis {a} of {x:?})"
            ));
        }
        return Ok(QuantAxis::Blocked(a, bs));
    }
    let elements: usize = scale.iter().product();
    if scale.is_empty() || (scale.len() == 1 && elements == 1 && axis_attr.is_none()) {
        return Ok(QuantAxis::PerTensor);
    }
    if scale.len() != 1 {
        return Err(format!(
            "scale has shape {scale:?}: a scalar or a 1-D per-axis vector was expected"
        ));
    }
    if opset < 13 {
        return Err(format!(
            "a per-axis scale of shape {scale:?} needs opset 13 (the model imports opset {opset})"
        ));
    }
    let a = axis()?;
    if scale[0] != x[a] {
        if scale[0] == 1 {
            return Ok(QuantAxis::PerTensor);
        }
        return Err(format!(
            "per-axis scale has {} elements but axis {a} of the input {x:?} has {}",
            scale[0], x[a]
        ));
    }
    Ok(QuantAxis::PerAxis(a))
}

/// [`quant_axis`] for a Q/DQ node, with the zero point checked against the scale.
fn check_qdq(c: &Ctx<'_>) -> Result<(), Fail> {
    let x = c.shape(0)?;
    let scale = c.shape(1)?;
    let axis = c.node.attr(AXIS).map(|_| c.attr_i(AXIS, 1));
    quant_axis(c.opset(), axis, c.attr_i("block_size", 0), x, scale).map_err(Fail::Invalid)?;
    if c.has(2) {
        let zp = c.shape(2)?;
        // The spec asks for equal shapes; exporters write a `[]` zero point beside a `[1]`
        // scale, which onnxruntime accepts.
        let n = |s: &[usize]| s.iter().product::<usize>();
        if zp != scale && !(zp.len() <= 1 && scale.len() <= 1 && n(zp) == n(scale)) {
            return invalid(format!("zero point has shape {zp:?}, the scale {scale:?}"));
        }
    }
    Ok(())
}

const AXIS: &str = "axis";

fn quantize(c: &Ctx<'_>) -> R {
    check_qdq(c)?;
    let dtype = if c.has(2) {
        c.dtype(2)?
    } else {
        match c.attr_i("output_dtype", 0) {
            0 => UINT8,
            t => t as i32,
        }
    };
    Ok(vec![Out::new(c.shape(0)?.to_vec(), dtype)])
}

fn dequantize(c: &Ctx<'_>) -> R {
    check_qdq(c)?;
    let dtype = match c.dtype(1)? {
        0 => FLOAT,
        t => t,
    };
    Ok(vec![Out::new(c.shape(0)?.to_vec(), dtype)])
}

/// Checks that the scale or zero point at `slot` is a scalar or one value per `channels`.
fn per_channel_or_scalar(
    c: &Ctx<'_>,
    slot: usize,
    what: &str,
    channels: usize,
) -> Result<(), Fail> {
    if !c.has(slot) {
        return Ok(());
    }
    let s = c.shape(slot)?;
    let n: usize = s.iter().product();
    if s.len() <= 1 && (n == 1 || n == channels) {
        return Ok(());
    }
    invalid(format!(
        "{what} has shape {s:?}: a scalar or [{channels}] was expected"
    ))
}

/// Checks that the scale or zero point at `slot` is a scalar.
fn scalar(c: &Ctx<'_>, slot: usize, what: &str) -> Result<(), Fail> {
    if c.has(slot) {
        let s = c.shape(slot)?;
        if s.iter().product::<usize>() != 1 || s.len() > 1 {
            return invalid(format!("{what} has shape {s:?}: a scalar was expected"));
        }
    }
    Ok(())
}

fn y_dtype(c: &Ctx<'_>, slot: usize) -> Result<i32, Fail> {
    Ok(if c.has(slot) { c.dtype(slot)? } else { UINT8 })
}

fn qlinear_conv(c: &Ctx<'_>) -> R {
    let out = conv_out(c, [0, 3], Some(8), y_dtype(c, 7)?)?;
    let m = out.shape[1];
    scalar(c, 1, "x_scale")?;
    scalar(c, 2, "x_zero_point")?;
    per_channel_or_scalar(c, 4, "w_scale", m)?;
    per_channel_or_scalar(c, 5, "w_zero_point", m)?;
    scalar(c, 6, "y_scale")?;
    scalar(c, 7, "y_zero_point")?;
    Ok(vec![out])
}

fn conv_integer(c: &Ctx<'_>) -> R {
    // No bias slot: slot 2 is the input's zero point, checked below.
    let out = conv_out(c, [0, 1], None, INT32)?;
    let m = out.shape[1];
    scalar(c, 2, "x_zero_point")?;
    per_channel_or_scalar(c, 3, "w_zero_point", m)?;
    Ok(vec![out])
}

/// `(M, N)` of a product's output, for per-row and per-column parameters (1 when absent).
fn rows_cols(a: &[usize], b: &[usize]) -> (usize, usize) {
    let m = if a.len() > 1 { a[a.len() - 2] } else { 1 };
    let n = if b.len() > 1 { b[b.len() - 1] } else { 1 };
    (m, n)
}

fn qlinear_matmul(c: &Ctx<'_>) -> R {
    let (a, b) = (c.shape(0)?, c.shape(3)?);
    let (out, _) = matmul_dims(a, b)?;
    let (m, n) = rows_cols(a, b);
    per_channel_or_scalar(c, 1, "a_scale", m)?;
    per_channel_or_scalar(c, 2, "a_zero_point", m)?;
    per_channel_or_scalar(c, 4, "b_scale", n)?;
    per_channel_or_scalar(c, 5, "b_zero_point", n)?;
    scalar(c, 6, "y_scale")?;
    scalar(c, 7, "y_zero_point")?;
    Ok(vec![Out::new(out, y_dtype(c, 7)?)])
}

fn matmul_integer(c: &Ctx<'_>) -> R {
    let (a, b) = (c.shape(0)?, c.shape(1)?);
    let (out, _) = matmul_dims(a, b)?;
    let (m, n) = rows_cols(a, b);
    per_channel_or_scalar(c, 2, "a_zero_point", m)?;
    per_channel_or_scalar(c, 3, "b_zero_point", n)?;
    Ok(vec![Out::new(out, INT32)])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn qdq_keeps_the_shape_per_tensor_and_per_axis() {
        for op in ["QuantizeLinear", "DequantizeLinear"] {
            check(
                17,
                op,
                vec![],
                &[s(&[1, 4, 5, 5]), f1(&[0.5])],
                &[&[1, 4, 5, 5]],
            );
            check(
                17,
                op,
                vec![],
                &[s(&[1, 4, 5, 5]), In::F(vec![], vec![0.5])],
                &[&[1, 4, 5, 5]],
            );
            check(
                17,
                op,
                vec![ai("axis", 0)],
                &[s(&[3, 4]), f1(&[0.5, 0.25, 1.0])],
                &[&[3, 4]],
            );
            check(
                13,
                op,
                vec![ai("axis", -1)],
                &[s(&[3, 4]), f1(&[0.5; 4]), i1(&[0; 4])],
                &[&[3, 4]],
            );
        }
    }

    #[test]
    fn qdq_errors_name_what_disagrees() {
        for op in ["QuantizeLinear", "DequantizeLinear"] {
            check_err(
                17,
                op,
                vec![ai("axis", 2)],
                &[s(&[3, 4]), f1(&[0.5; 4])],
                "axis 2 is out of range",
            );
            check_err(
                17,
                op,
                vec![ai("axis", 0)],
                &[s(&[3, 4]), f1(&[0.5; 4])],
                "per-axis scale has 4 elements but axis 0",
            );
            check_err(
                10,
                op,
                vec![],
                &[s(&[3, 4]), f1(&[0.5; 4])],
                "needs opset 13",
            );
            check_err(
                17,
                op,
                vec![ai("axis", 0)],
                &[s(&[3, 4]), f1(&[0.5; 3]), i1(&[0; 2])],
                "zero point has shape [2]",
            );
            check_err(
                21,
                op,
                vec![ai("axis", 1), ai("block_size", 2)],
                &[s(&[3, 4]), f1(&[0.5; 3])],
                "blocked scale",
            );
        }
        check(
            21,
            "DequantizeLinear",
            vec![ai("axis", 1), ai("block_size", 3)],
            &[s(&[2, 4]), In::F(vec![2, 2], vec![0.5; 4])],
            &[&[2, 4]],
        );
    }

    #[test]
    fn quantized_layers_have_their_float_shapes() {
        let sc = || In::F(vec![], vec![0.5]);
        let zp = || In::I(vec![], vec![0]);
        check(
            17,
            "QLinearConv",
            vec![aints("pads", &[1, 1, 1, 1])],
            &[
                s(&[1, 3, 8, 8]),
                sc(),
                zp(),
                s(&[6, 3, 3, 3]),
                f1(&[0.5; 6]),
                i1(&[0; 6]),
                sc(),
                zp(),
                i1(&[0; 6]),
            ],
            &[&[1, 6, 8, 8]],
        );
        check_err(
            17,
            "QLinearConv",
            vec![],
            &[
                s(&[1, 3, 8, 8]),
                sc(),
                zp(),
                s(&[6, 3, 3, 3]),
                f1(&[0.5; 5]),
                zp(),
                sc(),
                zp(),
            ],
            "w_scale has shape [5]",
        );
        check(
            17,
            "ConvInteger",
            vec![],
            &[s(&[1, 3, 8, 8]), s(&[6, 3, 3, 3]), zp(), i1(&[0; 6])],
            &[&[1, 6, 6, 6]],
        );
        check(
            17,
            "QLinearMatMul",
            vec![],
            &[
                s(&[2, 5, 4]),
                sc(),
                zp(),
                s(&[4, 7]),
                f1(&[0.5; 7]),
                i1(&[0; 7]),
                sc(),
                zp(),
            ],
            &[&[2, 5, 7]],
        );
        check(
            17,
            "MatMulInteger",
            vec![],
            &[s(&[5, 4]), s(&[4, 7]), zp(), zp()],
            &[&[5, 7]],
        );
    }
}
