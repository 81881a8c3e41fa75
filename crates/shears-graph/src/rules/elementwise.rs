//! Element-wise ops: unary (every axis passes through), broadcasting n-ary (numpy rules), PRelu,
//! and the Softmax family.
//!
//! Spec: broadcasting (opset 7+) aligns shapes from the right; an input axis of size 1 against a
//! larger output axis is broadcast and carries no channels, every other axis is the output's
//! axis itself. Before opset 7 `Add`/`Mul` took `broadcast`/`axis` attributes; such nodes are
//! opaque. Softmax, LogSoftmax and Hardmax before opset 13 coerce the input to 2-D at `axis`
//! (default 1) and normalize over all axes from `axis` on; from 13 only over `axis` (default -1).
//! The normalized axes are mixed: prunable, not exact.

use super::norm::normalize_axis;
use super::{Coupling, Ctx, Link, OpRule, RuleResult};

pub static UNARY: OpRule = OpRule {
    ops: &[
        "Relu",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Celu",
        "ThresholdedRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Gelu",
        "Erf",
        "Exp",
        "Log",
        "Sqrt",
        "Neg",
        "Abs",
        "Reciprocal",
        "Softplus",
        "Softsign",
        "Mish",
        "Floor",
        "Ceil",
        "Round",
        "Sign",
        "Not",
        "Identity",
        "Cast",
        "CastLike",
        "Dropout",
        "Clip",
        "Sin",
        "Cos",
        "Tan",
        "Asin",
        "Acos",
        "Atan",
        "Sinh",
        "Cosh",
        "Asinh",
        "Acosh",
        "Atanh",
        "IsNaN",
        "IsInf",
        "Shrink",
        "BitwiseNot",
    ],
    couple: couple_unary,
    rewrite: None,
};

pub static BROADCAST: OpRule = OpRule {
    ops: &[
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Max",
        "Min",
        "Sum",
        "Mean",
        "Equal",
        "Greater",
        "Less",
        "GreaterOrEqual",
        "LessOrEqual",
        "And",
        "Or",
        "Xor",
        "Where",
        "Mod",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
    ],
    couple: couple_broadcast,
    rewrite: None,
};

pub static PRELU: OpRule = OpRule {
    ops: &["PRelu"],
    couple: couple_broadcast,
    rewrite: None,
};

pub static SOFTMAX: OpRule = OpRule {
    ops: &["Softmax", "LogSoftmax", "Hardmax"],
    couple: couple_softmax,
    rewrite: None,
};

/// Output 0 (and any other output of the same shape, such as Dropout's mask) follows input 0
/// axis by axis. Other inputs (Clip bounds, Dropout ratio) are scalars; CastLike's second input
/// only lends its type.
pub(super) fn couple_unary(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let xs = ctx.in_shape(0)?;
    let mut out = Coupling::default();
    for slot in 0..ctx.node.outputs.len() {
        let Some(y) = ctx.output(slot) else { continue };
        if ctx.shape(y) == Some(xs) {
            out.links.extend(ctx.same_axes(x, y, xs.len()));
        }
    }
    if ctx.node.op_type == "CastLike" {
        out.shape_only.push(1);
    }
    Ok(out)
}

pub(super) fn couple_broadcast(ctx: &Ctx) -> RuleResult {
    if ctx.node.attr("broadcast").is_some() {
        return Err("legacy broadcast attribute (opset < 7)".into());
    }
    let y = ctx.output(0).ok_or("output is missing")?;
    let ys = ctx.out_shape(0)?;
    let mut out = Coupling::default();
    for slot in 0..ctx.node.inputs.len() {
        let Some(x) = ctx.input(slot) else { continue };
        let xs = ctx.in_shape(slot)?;
        if xs.len() > ys.len() {
            return Err(format!("input {slot} has higher rank than the output"));
        }
        let lead = ys.len() - xs.len();
        for (ia, &d) in xs.iter().enumerate() {
            let oa = lead + ia;
            if d == ys[oa] {
                out.links.push(Link::identity((x, ia), (y, oa)));
            } else if d != 1 {
                return Err(format!(
                    "input {slot} shape {xs:?} does not broadcast to {ys:?}"
                ));
            }
        }
    }
    Ok(out)
}

fn couple_softmax(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let rank = ctx.in_shape(0)?.len();
    let legacy = ctx.opset() < 13;
    let axis = normalize_axis(ctx.node.attr_i("axis", if legacy { 1 } else { -1 }), rank)?;
    let mut out = Coupling {
        links: ctx.same_axes(x, y, rank),
        ..Default::default()
    };
    let mixed = if legacy { axis..rank } else { axis..axis + 1 };
    out.mixing.extend(mixed.map(|a| (y, a)));
    Ok(out)
}
