//! Symbolic input dimensions (`dim_param`, or a dimension with neither value nor name) that the
//! user did not bind with `--input-shape`.
//!
//! Shapes are inferred with every symbol at a placeholder ([`BASE`]), then once more per symbol
//! with that symbol moved to [`PROBE`]: a value axis whose size, or a value whose folded
//! contents, differ between the two runs depends on the symbol. Everything else is provably
//! independent of it, for sizes are computed by the same rules from the same constants. The
//! dependency graph fixes every dependent axis (naming the symbol and the node), so no channel
//! whose size or coupling involves a symbol is ever pruned, and the file keeps its `dim_param`s:
//! nothing in the output is computed from a placeholder.

use std::collections::BTreeMap;

use crate::error::{OnnxError, Result};
use crate::input_shapes::{InputShapes, Symbol};
use crate::ir::ValueId;
use crate::model::Model;

/// The size every symbol is analysed at: a model's costs are then per batch element (or per
/// token, for a sequence axis), and its shapes equal those of a batch-1 export.
pub const BASE: usize = 1;

/// The size a symbol is moved to, to see what depends on it: a prime, unlike any channel count
/// a rule could mistake it for, and small, so that folded shape tensors stay folded.
pub const PROBE: usize = 7;

/// The symbols of a model's inputs and what depends on them (see the module documentation).
///
/// Invariants: every symbol index in `axes` and `contents` is below `symbols.len()`; `axes`
/// lists each value's axes once, ascending. Empty when every input dimension is bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symbolic {
    pub symbols: Vec<Symbol>,
    /// Per value, `(axis, symbol)` for every axis whose size depends on a symbol (the first
    /// symbol found, when several do).
    pub axes: BTreeMap<ValueId, Vec<(usize, usize)>>,
    /// Values whose statically known contents (shape tensors) depend on a symbol.
    pub contents: BTreeMap<ValueId, usize>,
}

impl Symbolic {
    /// Whether no input dimension is symbolic.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The symbol axis `axis` of `v` depends on, if any.
    pub fn axis(&self, v: ValueId, axis: usize) -> Option<&Symbol> {
        let (_, s) = self.axes.get(&v)?.iter().find(|(a, _)| *a == axis)?;
        self.symbols.get(*s)
    }

    /// The symbol the folded contents of `v` depend on, if any.
    pub fn contents(&self, v: ValueId) -> Option<&Symbol> {
        self.symbols.get(*self.contents.get(&v)?)
    }

    /// Whether every symbol is declared only on axis 0 of inputs: a batch.
    pub fn only_batch(&self) -> bool {
        self.symbols
            .iter()
            .all(|s| s.uses.iter().all(|(_, axis)| *axis == 0))
    }
}

/// What one inference run left on every value.
type Snapshot = Vec<(Option<Vec<usize>>, Option<Vec<i64>>)>;

fn snapshot(model: &Model) -> Snapshot {
    model
        .graph
        .values
        .iter()
        .map(|v| (v.shape.clone(), v.folded.clone()))
        .collect()
}

/// Infers `model` once more per symbol with that symbol at [`PROBE`], records what changed,
/// and leaves `model` as the [`BASE`] run (which the caller has just made) left it.
pub(super) fn probe(
    model: &mut Model,
    inputs: &InputShapes,
    symbols: Vec<Symbol>,
) -> Result<Symbolic> {
    let base = snapshot(model);
    let mut out = Symbolic::default();
    for (k, symbol) in symbols.iter().enumerate() {
        let mut sizes = vec![BASE; symbols.len()];
        sizes[k] = PROBE;
        let resolved = inputs.resolve_with(&model.graph, &symbols, &sizes)?;
        super::infer_resolved(model, resolved).map_err(|e| OnnxError::Symbolic {
            dim: symbol.to_string(),
            reason: format!("with it at {PROBE} instead of {BASE}, {e}"),
        })?;
        for (i, (b, v)) in base.iter().zip(&model.graph.values).enumerate() {
            let Some(bs) = &b.0 else { continue };
            let changed: Vec<usize> = match &v.shape {
                Some(ps) if ps.len() == bs.len() => {
                    (0..bs.len()).filter(|&a| bs[a] != ps[a]).collect()
                }
                _ => (0..bs.len()).collect(),
            };
            let id = ValueId(i as u32);
            if !changed.is_empty() {
                let axes = out.axes.entry(id).or_default();
                for a in changed {
                    if !axes.iter().any(|(x, _)| *x == a) {
                        axes.push((a, k));
                    }
                }
                axes.sort_unstable();
            }
            if b.1.is_some() && b.1 != v.folded {
                out.contents.entry(id).or_insert(k);
            }
        }
    }
    for (v, (shape, folded)) in model.graph.values.iter_mut().zip(base) {
        v.shape = shape;
        v.folded = folded;
    }
    out.symbols = symbols;
    Ok(out)
}
