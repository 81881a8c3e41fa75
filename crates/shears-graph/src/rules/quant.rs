//! Quantization: `QuantizeLinear`/`DequantizeLinear` and the operator-format quantized layers
//! `QLinearConv`, `ConvInteger`, `QLinearMatMul`, `MatMulInteger`.
//!
//! Spec (see `shears_onnx::shape::quant` for the opset history):
//! - `QuantizeLinear(x, scale, zp?) -> y` and `DequantizeLinear(x, scale, zp?) -> y` are
//!   element-wise: every axis of `x` is the same axis of `y`. Per tensor (a scalar scale,
//!   opset 10 on) nothing else is tied; per axis (opset 13 `axis`, a 1-D scale of `x[axis]`
//!   values) the scale and zero point are one value per channel of that axis, so they are
//!   sliced with it. Blocked quantization (opset 21 `block_size`: a scale per block of
//!   channels) is refused, naming the block size: removing a channel would regroup blocks.
//! - `QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B?)` and
//!   `ConvInteger(x, w, x_zp?, w_zp?)` couple like `Conv` on their data, weight and bias; a
//!   per-output-channel `w_scale`/`w_zp` (`[M]`) is sliced with the output channels. The input
//!   and output scales are scalars and stay.
//! - `QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)` and
//!   `MatMulInteger(a, b, a_zp?, b_zp?)` couple like `MatMul`; a per-row `a` parameter (`[M]`)
//!   is sliced with `a`'s rows, a per-column `b` parameter (`[N]`) with `b`'s columns.

use shears_onnx::shape::quant::{quant_axis, QuantAxis};
use shears_onnx::ValueId;

use super::conv::{conv_coupling, rewrite_group};
use super::matmul::matmul_coupling;
use super::{Coupling, Ctx, Link, OpRule, RuleResult};

pub static QUANTIZE: OpRule = OpRule {
    ops: &["QuantizeLinear", "DequantizeLinear"],
    couple: couple_qdq,
    rewrite: None,
};

pub static QLINEAR_CONV: OpRule = OpRule {
    ops: &["QLinearConv"],
    couple: couple_qlinear_conv,
    rewrite: Some(rewrite_group),
};

pub static CONV_INTEGER: OpRule = OpRule {
    ops: &["ConvInteger"],
    couple: couple_conv_integer,
    rewrite: Some(rewrite_group),
};

pub static QLINEAR_MATMUL: OpRule = OpRule {
    ops: &["QLinearMatMul"],
    couple: couple_qlinear_matmul,
    rewrite: None,
};

pub static MATMUL_INTEGER: OpRule = OpRule {
    ops: &["MatMulInteger"],
    couple: couple_matmul_integer,
    rewrite: None,
};

fn required(ctx: &Ctx, slot: usize, what: &str) -> Result<ValueId, String> {
    ctx.input(slot)
        .ok_or_else(|| format!("input {what} is missing"))
}

fn couple_qdq(ctx: &Ctx) -> RuleResult {
    let x = required(ctx, 0, "x")?;
    let scale = required(ctx, 1, "scale")?;
    let y = ctx.output(0).ok_or("output y is missing")?;
    let xs = ctx.in_shape(0)?;
    let ss = ctx.in_shape(1)?;
    let axis = ctx.node.attr("axis").map(|_| ctx.node.attr_i("axis", 1));
    let block = ctx.node.attr_i("block_size", 0);
    let layout = quant_axis(ctx.opset(), axis, block, xs, ss)?;
    let mut out = Coupling {
        links: ctx.same_axes(x, y, xs.len()),
        quant_params: vec![1, 2],
        ..Default::default()
    };
    if ctx.node.op_type == "DequantizeLinear" {
        out.quantized.push(0);
        out.relay = super::is_stored(ctx.model, x);
    }
    match layout {
        QuantAxis::PerTensor => {}
        QuantAxis::PerAxis(a) => {
            out.links.push(Link::identity((scale, 0), (x, a)));
            if let Some(zp) = ctx.input(2) {
                out.links.push(Link::identity((zp, 0), (x, a)));
            }
        }
        QuantAxis::Blocked(a, bs) => {
            return Err(format!(
                "blocked quantization (block_size {bs} on axis {a}) is not supported"
            ))
        }
    }
    Ok(out)
}

/// Ties the optional per-channel parameter at `slot` to `target` when it holds one value per
/// index of `target` (a scalar, or `[1]`, belongs to no channel and stays).
fn per_channel(ctx: &Ctx, out: &mut Coupling, slot: usize, target: (ValueId, usize)) {
    let Some(v) = ctx.input(slot) else { return };
    let (Some(s), Some(t)) = (ctx.shape(v), ctx.shape(target.0)) else {
        return;
    };
    if s.len() == 1 && s[0] > 1 && t.get(target.1) == Some(&s[0]) {
        out.links.push(Link::identity((v, 0), target));
    }
}

fn couple_qlinear_conv(ctx: &Ctx) -> RuleResult {
    let x = required(ctx, 0, "x")?;
    let w = required(ctx, 3, "w")?;
    let y = ctx.output(0).ok_or("output y is missing")?;
    let mut out = conv_coupling(ctx, x, w, ctx.input(8), y)?;
    out.quantized = vec![3, 8];
    out.quant_params = vec![1, 2, 4, 5, 6, 7];
    per_channel(ctx, &mut out, 4, (y, 1));
    per_channel(ctx, &mut out, 5, (y, 1));
    Ok(out)
}

fn couple_conv_integer(ctx: &Ctx) -> RuleResult {
    let x = required(ctx, 0, "x")?;
    let w = required(ctx, 1, "w")?;
    let y = ctx.output(0).ok_or("output y is missing")?;
    let mut out = conv_coupling(ctx, x, w, None, y)?;
    out.quantized = vec![1];
    out.quant_params = vec![2, 3];
    per_channel(ctx, &mut out, 3, (y, 1));
    Ok(out)
}

/// `MatMul`'s coupling of `a` (slot `a_slot`) and `b`, with the per-row parameters of `a` and
/// the per-column parameters of `b` at the given slots.
fn quantized_matmul(
    ctx: &Ctx,
    a_slot: usize,
    b_slot: usize,
    a_params: &[usize],
    b_params: &[usize],
) -> RuleResult {
    let a = required(ctx, a_slot, "a")?;
    let b = required(ctx, b_slot, "b")?;
    let y = ctx.output(0).ok_or("output y is missing")?;
    let mut out = matmul_coupling(ctx, a, b, y)?;
    out.quantized = vec![a_slot, b_slot];
    out.quant_params = a_params.iter().chain(b_params).copied().collect();
    let (ar, br) = (ctx.in_shape(a_slot)?.len(), ctx.in_shape(b_slot)?.len());
    if ar >= 2 {
        for &s in a_params {
            per_channel(ctx, &mut out, s, (a, ar - 2));
        }
    }
    if br >= 2 {
        for &s in b_params {
            per_channel(ctx, &mut out, s, (b, br - 1));
        }
    }
    Ok(out)
}

fn couple_qlinear_matmul(ctx: &Ctx) -> RuleResult {
    quantized_matmul(ctx, 0, 3, &[1, 2], &[4, 5])
}

fn couple_matmul_integer(ctx: &Ctx) -> RuleResult {
    quantized_matmul(ctx, 0, 1, &[2], &[3])
}
