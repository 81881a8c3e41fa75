//! Pooling and reductions.
//!
//! Spec: `MaxPool`, `AveragePool`, `LpPool` (`X[N,C,D...] -> Y[N,C,D'...]`, MaxPool's optional
//! `Indices` the same) and the global pools keep N and C and resize the spatial axes, which are
//! fixed. Reductions (`ReduceMean`, ...) keep every axis they do not reduce: the axes come as an
//! attribute before opset 18 (before 13 for ReduceSum) and as input 1 after; `keepdims`
//! (default 1) decides whether reduced axes stay as size 1; no axes means all axes unless
//! `noop_with_empty_axes`. ArgMax/ArgMin reduce one `axis`.
//!
//! A reduced axis may lose channels (a mean or sum over fewer terms: prunable, mixed), except
//! for ArgMax/ArgMin, whose result is a position along it: fixed. A kept reduced axis has size
//! 1 in the output and carries nothing.

use super::norm::normalize_axis;
use super::{Coupling, Ctx, Link, OpRule, RuleResult};

pub static POOL: OpRule = OpRule {
    ops: &["MaxPool", "AveragePool", "LpPool"],
    couple: couple_pool,
    rewrite: None,
};

pub static GLOBAL_POOL: OpRule = OpRule {
    ops: &["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"],
    couple: couple_pool,
    rewrite: None,
};

pub static REDUCE: OpRule = OpRule {
    ops: &[
        "ReduceMean",
        "ReduceSum",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceSumSquare",
        "ArgMax",
        "ArgMin",
    ],
    couple: couple_reduce,
    rewrite: None,
};

fn couple_pool(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input X is missing")?;
    if ctx.in_shape(0)?.len() < 2 {
        return Err("input has no channel axis".into());
    }
    let mut out = Coupling::default();
    for slot in 0..ctx.node.outputs.len() {
        if let Some(y) = ctx.output(slot) {
            out.links.push(Link::identity((x, 0), (y, 0)));
            out.links.push(Link::identity((x, 1), (y, 1)));
        }
    }
    Ok(out)
}

fn couple_reduce(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let rank = ctx.in_shape(0)?.len();
    let op = ctx.node.op_type.as_str();
    let keepdims = ctx.node.attr_i("keepdims", 1) != 0;
    let axes: Vec<i64> = if op == "ArgMax" || op == "ArgMin" {
        vec![ctx.node.attr_i("axis", 0)]
    } else if let Some(a) = ctx.node.attr_ints("axes") {
        a.to_vec()
    } else if ctx.input(1).is_some() {
        ctx.folded(1)
            .ok_or("axes input is not a constant")?
            .to_vec()
    } else {
        Vec::new()
    };
    let reduced: Vec<usize> = if axes.is_empty() {
        if ctx.node.attr_i("noop_with_empty_axes", 0) != 0 {
            Vec::new()
        } else {
            (0..rank).collect()
        }
    } else {
        axes.iter()
            .map(|&a| normalize_axis(a, rank))
            .collect::<Result<_, _>>()?
    };
    let mut out = Coupling::default();
    if ctx.input(1).is_some() {
        out.shape_only.push(1);
    }
    // ArgMax/ArgMin return positions along the reduced axis: removing channels renumbers them,
    // so that axis keeps its size. The other reductions only lose terms: the reduced axis may
    // shrink, but the result changes (mixed).
    let positional = op == "ArgMax" || op == "ArgMin";
    let mut oa = 0;
    for ax in 0..rank {
        if reduced.contains(&ax) {
            if !positional {
                out.mixing.push((x, ax));
            }
            if keepdims {
                oa += 1;
            }
            continue;
        }
        out.links.push(Link::identity((x, ax), (y, oa)));
        oa += 1;
    }
    Ok(out)
}
