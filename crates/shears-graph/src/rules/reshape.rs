//! Reshape and Flatten.
//!
//! Spec: `Reshape(data, shape)` [shape is an attribute before opset 5; `0` copies the input's
//! dimension, `-1` is inferred; `allowzero` from 14], `Flatten(input)` with `axis` (default 1)
//! gives `[d0·…·d(axis-1), d(axis)·…·d(r-1)]`.
//!
//! The rule factors both shapes into runs of axes with equal products (size-1 axes carry
//! nothing and are skipped):
//! - one axis to one axis of the same size: identity;
//! - one axis split into several, or several merged into one: channel `i` of the single axis is
//!   `(i / inner) % size` of one *factor* axis, where `inner` is the product of the factors
//!   inside it. Which factor carries the channels is decided once every other link is known
//!   ([`Factorization::resolve`]): a factor already fixed elsewhere (a spatial axis, a group count)
//!   cannot; among the free ones the largest does (ties: the innermost). The other factors keep
//!   their size. This covers Flatten into Gemm (channel `c` owns features `c·H·W..(c+1)·H·W`),
//!   channel shuffle (`[C] → [g, C/g]`, then `[C/g, g] → [C]`: a permutation, pruned by
//!   position in every group) and attention heads (`[h·d] → [h, d]`: head-dim positions);
//! - a regrouping whose leading axes nest, one size `S` and the other `S·k` (`[C, p·p] ->
//!   [C·p, p]`, an unfold/fold around a per-patch op; `[16, 8, 8] -> [4, 256]`, GroupNorm's
//!   classic decomposition): index `j` of the larger lies inside index `j / k` of the smaller,
//!   so channels of the smaller go with whole blocks of `k` of the larger (a GroupNorm's
//!   channels in whole groups); the trailing axes of the run keep their size;
//! - any other regrouping (`[6, 4] -> [4, 6]`) mixes axes: those axes are fixed, with that
//!   reason.

use std::fmt;

use shears_onnx::ValueId;

use super::{Coupling, Ctx, DimRef, Link, OpRule, Removed, Rewrite, RuleResult};
use crate::channel_map::ChannelMap;

pub static RESHAPE: OpRule = OpRule {
    ops: &["Reshape"],
    couple: couple_reshape,
    rewrite: Some(rewrite_reshape),
};

pub static FLATTEN: OpRule = OpRule {
    ops: &["Flatten"],
    couple: couple_reshape,
    rewrite: None,
};

/// A single axis split into (or merged from) several factor axes, waiting for the choice of the
/// factor that carries the channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The single axis.
    pub single: (ValueId, usize),
    /// The value holding the factor axes.
    pub factors_of: ValueId,
    /// Factor axes and their sizes, outermost first.
    pub factors: Vec<(usize, usize)>,
}

/// The deferred part of a reshape: its split and merged runs of axes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Factorization {
    pub splits: Vec<Split>,
}

impl Factorization {
    /// Links each split/merge to its chosen factor; `is_free(value, axis)` says whether an axis
    /// may still carry channels. Returns the links and, per split, the chosen factor axis.
    pub fn resolve(&self, is_free: &mut dyn FnMut(ValueId, usize) -> bool) -> Vec<Link> {
        self.resolve_preferring(is_free, &mut |_, _| 0)
    }

    /// [`Factorization::resolve`], except that a free factor `prefer` ranks higher wins over
    /// any other (the head-count factor of an attention Reshape when whole heads are the
    /// units); among factors of equal rank the usual choice applies.
    pub fn resolve_preferring(
        &self,
        is_free: &mut dyn FnMut(ValueId, usize) -> bool,
        prefer: &mut dyn FnMut(ValueId, usize) -> u8,
    ) -> Vec<Link> {
        let mut links = Vec::new();
        for s in &self.splits {
            let mut best: Option<(u8, usize)> = None;
            for (k, &(axis, size)) in s.factors.iter().enumerate() {
                if !is_free(s.factors_of, axis) {
                    continue;
                }
                let preferred = prefer(s.factors_of, axis);
                // `>=` prefers the innermost among equal sizes.
                let better = match best {
                    None => true,
                    Some((bp, b)) => (preferred, size) >= (bp, s.factors[b].1),
                };
                if better {
                    best = Some((preferred, k));
                }
            }
            let best = best.map(|(_, k)| k);
            let Some(k) = best else { continue };
            let inner: usize = s.factors[k + 1..].iter().map(|f| f.1).product();
            links.push(Link::new(
                DimRef::Axis(s.single.0, s.single.1),
                DimRef::Axis(s.factors_of, s.factors[k].0),
                ChannelMap::DivMod {
                    div: inner,
                    modulo: s.factors[k].1,
                },
            ));
        }
        links
    }
}

impl fmt::Display for Factorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .splits
            .iter()
            .map(|s| {
                let fs: Vec<String> = s.factors.iter().map(|(a, n)| format!("{a}:{n}")).collect();
                format!("{}~({})", s.single.1, fs.join(","))
            })
            .collect();
        write!(f, "factors[{}]", parts.join(" "))
    }
}

fn couple_reshape(ctx: &Ctx) -> RuleResult {
    let x = ctx.input(0).ok_or("input is missing")?;
    let y = ctx.output(0).ok_or("output is missing")?;
    let xs = ctx.in_shape(0)?;
    let ys = ctx.out_shape(0)?;
    let runs = factor_runs(xs, ys).ok_or_else(|| format!("{xs:?} and {ys:?} differ in size"))?;
    let mut out = Coupling {
        shape_only: (1..ctx.node.inputs.len()).collect(),
        ..Default::default()
    };
    let mut fact = Factorization::default();
    for (ins, outs) in runs {
        match (ins.as_slice(), outs.as_slice()) {
            ([i], [o]) => out.links.push(Link::identity((x, *i), (y, *o))),
            ([i], os) => fact.splits.push(Split {
                single: (x, *i),
                factors_of: y,
                factors: os.iter().map(|&o| (o, ys[o])).collect(),
            }),
            (is, [o]) => fact.splits.push(Split {
                single: (y, *o),
                factors_of: x,
                factors: is.iter().map(|&i| (i, xs[i])).collect(),
            }),
            (is, os) => {
                let sizes = |shape: &[usize], axes: &[usize]| -> Vec<usize> {
                    axes.iter().map(|&a| shape[a]).collect()
                };
                let (lx, ly) = (xs[is[0]], ys[os[0]]);
                if let Some(link) = regroup_link((x, is[0], lx), (y, os[0], ly)) {
                    // The leading axes nest (`[C, p·p] -> [C·p, p]`): channel `c` of the
                    // smaller is the contiguous block `c·k..(c+1)·k` of the larger, and the
                    // trailing axes only reshuffle positions inside one channel's block.
                    out.links.push(link);
                    let why = format!(
                        "regroups {:?} into {:?}; only the leading axis carries channels",
                        sizes(xs, is),
                        sizes(ys, os)
                    );
                    out.fixed
                        .extend(is[1..].iter().map(|&a| (x, a, why.clone())));
                    out.fixed
                        .extend(os[1..].iter().map(|&a| (y, a, why.clone())));
                    continue;
                }
                // A regrouping whose leading axes do not nest (`[6, 4] -> [4, 6]`): no single
                // axis carries whole channels, so every axis of the run keeps its size.
                let why = format!(
                    "regroups {:?} into {:?}, mixing channels with other axes",
                    sizes(xs, is),
                    sizes(ys, os)
                );
                out.fixed.extend(is.iter().map(|&a| (x, a, why.clone())));
                out.fixed.extend(os.iter().map(|&a| (y, a, why.clone())));
            }
        }
    }
    if !fact.splits.is_empty() {
        out.deferred = Some(fact);
    }
    out.fixed
        .extend(super::shape_ops::unrewritable_entries(ctx, 1, |k, _| {
            Some(k)
        }));
    Ok(out)
}

/// The link between the leading axes of a regrouped run when one divides the other: in row-major
/// order index `j` of the larger (size `S·k`) lies inside index `j / k` of the smaller (size
/// `S`), so removing a channel of the smaller removes a whole block of `k` of the larger and
/// leaves every other element in order.
fn regroup_link(a: (ValueId, usize, usize), b: (ValueId, usize, usize)) -> Option<Link> {
    let (small, big) = if a.2 < b.2 { (a, b) } else { (b, a) };
    if small.2 < 2 || big.2 % small.2 != 0 {
        return None;
    }
    Some(Link::new(
        DimRef::Axis(big.0, big.1),
        DimRef::Axis(small.0, small.1),
        ChannelMap::DivMod {
            div: big.2 / small.2,
            modulo: small.2,
        },
    ))
}

/// Pairs runs of input and output axes (size-1 axes skipped) whose products agree.
fn factor_runs(xs: &[usize], ys: &[usize]) -> Option<Vec<(Vec<usize>, Vec<usize>)>> {
    let a: Vec<usize> = (0..xs.len()).filter(|&i| xs[i] != 1).collect();
    let b: Vec<usize> = (0..ys.len()).filter(|&i| ys[i] != 1).collect();
    let (mut i, mut j) = (0, 0);
    let mut runs = Vec::new();
    while i < a.len() && j < b.len() {
        let (mut gi, mut gj) = (vec![a[i]], vec![b[j]]);
        let (mut pi, mut pj) = (xs[a[i]], ys[b[j]]);
        i += 1;
        j += 1;
        while pi != pj {
            if pi < pj {
                pi *= xs[*a.get(i)?];
                gi.push(a[i]);
                i += 1;
            } else {
                pj *= ys[*b.get(j)?];
                gj.push(b[j]);
                j += 1;
            }
        }
        runs.push((gi, gj));
    }
    (i == a.len() && j == b.len()).then_some(runs)
}

fn rewrite_reshape(ctx: &Ctx, removed: &dyn Removed) -> Result<Vec<Rewrite>, String> {
    if ctx.input(1).is_none() {
        // Opset < 5: the target is the `shape` attribute.
        let y = ctx.output(0).ok_or("output is missing")?;
        let ys = ctx.out_shape(0)?;
        let Some(old) = ctx.node.attr_ints("shape").map(|s| s.to_vec()) else {
            return Ok(Vec::new());
        };
        let new: Vec<i64> = old
            .iter()
            .enumerate()
            .map(|(k, &e)| {
                let gone = removed.removed(y, k).len() as i64;
                if gone > 0 && e == ys[k] as i64 {
                    e - gone
                } else {
                    e
                }
            })
            .collect();
        if new == old {
            return Ok(Vec::new());
        }
        return Ok(vec![Rewrite::AttrInts {
            node: ctx.node.name.clone(),
            attr: "shape".into(),
            old,
            new,
        }]);
    }
    super::shape_ops::rewrite_shape_input(ctx, removed, 1, |k, _| Some(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_common_reshapes() {
        // Flatten [1,C,H,W] -> [1, C*H*W]
        assert_eq!(
            factor_runs(&[1, 8, 2, 3], &[1, 48]),
            Some(vec![(vec![1, 2, 3], vec![1])])
        );
        // channel shuffle split [1,12,4,4] -> [1,2,6,4,4]
        assert_eq!(
            factor_runs(&[1, 12, 4, 4], &[1, 2, 6, 4, 4]),
            Some(vec![
                (vec![1], vec![1, 2]),
                (vec![2], vec![3]),
                (vec![3], vec![4])
            ])
        );
        // a regrouping: [6, 4] -> [4, 6]
        assert_eq!(
            factor_runs(&[6, 4], &[4, 6]),
            Some(vec![(vec![0, 1], vec![0, 1])])
        );
        assert_eq!(factor_runs(&[6], &[4]), None);
    }
}
