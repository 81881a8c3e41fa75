//! Gemm and MatMul.
//!
//! Spec:
//! - `Gemm(A, B, C?) -> Y[M,N]`, `Y = alpha·A'·B' + beta·C`, with `A' = transA ? Aᵀ : A`
//!   (`[M,K]`) and `B' = transB ? Bᵀ : B` (`[K,N]`); C broadcasts to `[M,N]` (unidirectional,
//!   opset 7+). The contracted axis K of A and B is one unit per index; N of B, of C and of Y.
//! - `MatMul(A[...,M,K], B[...,K,N]) -> Y[...,M,N]` with numpy semantics: a 1-D A is `[1,K]`
//!   with M dropped from Y, a 1-D B is `[K,1]` with N dropped; batch axes broadcast.

use super::{Coupling, Ctx, Link, OpRule, RuleResult};
use shears_onnx::ValueId;

pub static GEMM: OpRule = OpRule {
    ops: &["Gemm"],
    couple: couple_gemm,
    rewrite: None,
};

pub static MATMUL: OpRule = OpRule {
    ops: &["MatMul"],
    couple: couple_matmul,
    rewrite: None,
};

fn couple_gemm(ctx: &Ctx) -> RuleResult {
    let a = ctx.input(0).ok_or("input A is missing")?;
    let b = ctx.input(1).ok_or("input B is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    if ctx.in_shape(0)?.len() != 2 || ctx.in_shape(1)?.len() != 2 {
        return Err("A and B must be 2-D".into());
    }
    let ta = ctx.node.attr_i("transA", 0) != 0;
    let tb = ctx.node.attr_i("transB", 0) != 0;
    let (a_m, a_k) = if ta { (1, 0) } else { (0, 1) };
    let (b_k, b_n) = if tb { (1, 0) } else { (0, 1) };
    let mut out = Coupling::default();
    out.links.push(Link::identity((a, a_m), (y, 0)));
    out.links.push(Link::identity((a, a_k), (b, b_k)));
    out.links.push(Link::identity((b, b_n), (y, 1)));
    if let Some(c) = ctx.input(2) {
        let cs = ctx.in_shape(2)?;
        let ys = ctx.out_shape(0)?;
        let lead = ys
            .len()
            .checked_sub(cs.len())
            .ok_or("C has higher rank than Y")?;
        for (ia, &d) in cs.iter().enumerate() {
            if d == ys[lead + ia] {
                out.links.push(Link::identity((c, ia), (y, lead + ia)));
            } else if d != 1 {
                return Err(format!("C shape {cs:?} does not broadcast to {ys:?}"));
            }
        }
    }
    if ctx.is_weight(b) {
        out.out_channels = Some((ctx.dequantized_source(b), b_n));
    } else if ctx.is_weight(a) {
        out.out_channels = Some((ctx.dequantized_source(a), a_m));
    }
    Ok(out)
}

fn couple_matmul(ctx: &Ctx) -> RuleResult {
    let a = ctx.input(0).ok_or("input A is missing")?;
    let b = ctx.input(1).ok_or("input B is missing")?;
    let y = ctx.output(0).ok_or("output Y is missing")?;
    matmul_coupling(ctx, a, b, y)
}

/// The coupling of `y = a @ b` with numpy semantics, wherever the op places its operands (the
/// quantized products use other slots).
pub(super) fn matmul_coupling(ctx: &Ctx, a: ValueId, b: ValueId, y: ValueId) -> RuleResult {
    let shape = |v: ValueId| {
        ctx.shape(v)
            .ok_or_else(|| format!("shape of '{}' is unknown", ctx.model.graph.value(v).name))
    };
    let as_ = shape(a)?;
    let bs = shape(b)?;
    let ys = shape(y)?;
    let (ar, br, yr) = (as_.len(), bs.len(), ys.len());
    if ar == 0 || br == 0 {
        return Err("MatMul of a scalar".into());
    }
    let mut out = Coupling::default();
    // Contracted axis.
    let b_k = if br == 1 { 0 } else { br - 2 };
    out.links.push(Link::identity((a, ar - 1), (b, b_k)));
    // Rows of A and columns of B.
    let y_n = (br > 1).then(|| yr - 1);
    let y_m = (ar > 1).then(|| if br > 1 { yr - 2 } else { yr - 1 });
    if let Some(ym) = y_m {
        out.links.push(Link::identity((a, ar - 2), (y, ym)));
    }
    if let Some(yn) = y_n {
        out.links.push(Link::identity((b, br - 1), (y, yn)));
    }
    // Batch axes broadcast from the right onto Y's leading axes.
    let y_batch = yr - usize::from(ar > 1) - usize::from(br > 1);
    let activations = !ctx.is_weight(a) && !ctx.is_weight(b);
    for (v, shape, core) in [(a, as_, 2usize), (b, bs, 2usize)] {
        if shape.len() <= core {
            continue;
        }
        let batch = shape.len() - core;
        let lead = y_batch.checked_sub(batch).ok_or("batch ranks disagree")?;
        for ia in 0..batch {
            if shape[ia] == ys[lead + ia] {
                out.links.push(Link::identity((v, ia), (y, lead + ia)));
                // Between two activations, a batch axis longer than 1 is attention's heads.
                if activations && ys[lead + ia] > 1 && !out.head_axes.contains(&(y, lead + ia)) {
                    out.head_axes.push((y, lead + ia));
                }
            } else if shape[ia] != 1 {
                return Err(format!("batch axes {as_:?} x {bs:?} do not broadcast"));
            }
        }
    }
    if br > 1 && ctx.is_weight(b) {
        out.out_channels = Some((ctx.dequantized_source(b), br - 1));
    }
    // Between two activations (attention's Q·Kᵀ), the contracted channels meet no weight
    // slice that could be zeroed: pruning them changes the product.
    if activations {
        out.mixing.push((a, ar - 1));
    }
    Ok(out)
}
