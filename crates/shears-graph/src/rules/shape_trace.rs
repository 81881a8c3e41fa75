//! Where an entry of a computed shape tensor comes from, so that a Reshape or Expand whose
//! target is built at run time (`Shape → Gather → Unsqueeze → Concat`, as the TorchScript
//! exporter emits) can still be rewritten.
//!
//! An entry is either *dynamic* (read from a `Shape` at run time: it follows the pruned tensor
//! by itself) or a *literal* element of a constant that a known node input reads: that input is
//! the one to rewrite, or a *product* of a size read at run time and a literal (grouped-query
//! attention's `num_key_value_heads * n_rep`), which follows by itself exactly when the removed
//! channels are the read axis's: the rewrite checks that against the cut. Anything else computed
//! from literals by arithmetic is none of these, and the caller reports it as not rewritable. A
//! literal reached through a computed shape tensor that other nodes read too (exporters share
//! one `Concat` between two Expands) is *shared*: editing it would resize the other readers'
//! outputs as well, so the rewrite overlays the entry on a private copy for the one reader
//! (`Rewrite::ShapeOverlay`). Never guesses.

use shears_onnx::{Model, NodeId, ValueId};

/// The origin of one element of an integer shape tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntrySource {
    /// Read from a tensor's shape at run time.
    Dynamic,
    /// Element `index` of the constant `tensor`, read by input `slot` of `node`.
    Literal {
        node: NodeId,
        slot: usize,
        tensor: ValueId,
        index: usize,
    },
    /// A literal reached through `value`, a computed shape tensor that several nodes read.
    Shared { value: ValueId },
    /// The size of `axis` of `value`, read at run time, times the literal `factor`, which is
    /// the scalar constant read by input `slot` of `node` (`at`); `at` is `None` when the
    /// product reaches the entry through a tensor other nodes read too, so the factor cannot be
    /// edited for this reader alone.
    Product {
        value: ValueId,
        axis: usize,
        factor: i64,
        at: Option<(NodeId, usize)>,
    },
}

/// Traces element `index` of `value`, which input `slot` of `consumer` reads.
pub fn trace_entry(
    model: &Model,
    consumer: NodeId,
    slot: usize,
    value: ValueId,
    index: usize,
) -> Option<EntrySource> {
    let g = &model.graph;
    if model.constant(value).is_some() {
        return Some(EntrySource::Literal {
            node: consumer,
            slot,
            tensor: value,
            index,
        });
    }
    let p = g.producer(value)?;
    let n = g.node(p);
    let readers = &g.value(value).consumers;
    let shared = readers.iter().any(|&(r, _)| r != consumer);
    let is_1d = |v: ValueId| is_1d_of(model, v);
    let len_of = |v: ValueId| -> Option<usize> {
        let s = g.value(v).shape.as_ref()?;
        Some(s.iter().product())
    };
    let source = match n.op_type.as_str() {
        "Shape" | "Size" => Some(EntrySource::Dynamic),
        // A 1-D shape tensor reshaped to 1-D keeps its entries in place.
        "Reshape" if is_1d(n.input(0)?) && is_1d(value) => {
            trace_entry(model, p, 0, n.input(0)?, index)
        }
        // `Where(Equal(x, c), _, x)` with `c` negative where this entry is: the entry is `x`'s
        // (the idiom replacing -1 by 1 in an Expand shape), as a size is never negative.
        // A constant condition picks each entry from one side (`Rewrite::ShapeOverlay`'s
        // private copies are `Where(mask, values, shared)`).
        "Where" if model.constant(n.input(0)?).is_some() => {
            let mask = model.constant(n.input(0)?)?;
            let picks = mask_bytes(model, &mask)?;
            let pick = match picks.as_slice() {
                [one] => *one,
                m => *m.get(index)?,
            };
            let s = if pick { 1 } else { 2 };
            trace_entry(model, p, s, n.input(s)?, index)
        }
        "Where" => {
            let x = n.input(2)?;
            let cond = g.producer(n.input(0)?).map(|c| g.node(c))?;
            let c = match (cond.op_type.as_str(), cond.input(0), cond.input(1)) {
                ("Equal", Some(a), Some(c)) if a == x => c,
                ("Equal", Some(c), Some(a)) if a == x => c,
                _ => return None,
            };
            let negative = g.value(c).folded.as_deref().is_some_and(|f| match f {
                [one] => *one < 0,
                f => f.get(index).is_some_and(|&e| e < 0),
            });
            if !negative {
                return None;
            }
            trace_entry(model, p, 2, x, index)
        }
        // A size read at run time times a literal scalar.
        "Mul" => {
            let (a, b) = (n.input(0)?, n.input(1)?);
            let literal = |v: ValueId| -> Option<i64> {
                let t = model.constant(v)?;
                match model.i64s(&t).ok()?.as_slice() {
                    [f] => Some(*f),
                    _ => None,
                }
            };
            let (dynamic, factor, slot) = match (literal(a), literal(b)) {
                (None, Some(f)) => (a, f, 1),
                (Some(f), None) => (b, f, 0),
                _ => return None,
            };
            let (value, axis) = shape_source(model, dynamic, index)?;
            Some(EntrySource::Product {
                value,
                axis,
                factor,
                at: Some((p, slot)),
            })
        }
        "Identity" | "Cast" | "Unsqueeze" | "Squeeze" => {
            trace_entry(model, p, 0, n.input(0)?, index)
        }
        "Concat" => {
            let mut offset = 0;
            let mut found = None;
            for (s, v) in n.inputs.iter().enumerate() {
                let v = (*v)?;
                let len = len_of(v)?;
                if index < offset + len {
                    found = trace_entry(model, p, s, v, index - offset);
                    break;
                }
                offset += len;
            }
            found
        }
        // Selecting from a shape keeps it dynamic; selecting from a constant is a literal of
        // the gathered constant only through the indices, which we do not follow.
        "Gather" | "Slice" => match trace_entry(model, p, 0, n.input(0)?, 0)? {
            EntrySource::Dynamic => Some(EntrySource::Dynamic),
            _ => None,
        },
        _ => None,
    }?;
    Some(match source {
        EntrySource::Literal { .. } if shared => EntrySource::Shared { value },
        EntrySource::Product {
            value: v,
            axis,
            factor,
            ..
        } if shared => EntrySource::Product {
            value: v,
            axis,
            factor,
            at: None,
        },
        other => other,
    })
}

/// The (value, axis) whose run-time size element `index` of `v` is: `Shape(value)` gathered at
/// a constant index, through Unsqueeze, Squeeze, Cast, Identity and Concat.
pub fn shape_source(model: &Model, v: ValueId, index: usize) -> Option<(ValueId, usize)> {
    let g = &model.graph;
    let n = g.node(g.producer(v)?);
    match n.op_type.as_str() {
        "Identity" | "Cast" | "Unsqueeze" | "Squeeze" => shape_source(model, n.input(0)?, index),
        "Concat" => {
            let mut offset = 0;
            for v in n.inputs.iter() {
                let v = (*v)?;
                let len: usize = g.value(v).shape.as_ref()?.iter().product();
                if index < offset + len {
                    return shape_source(model, v, index - offset);
                }
                offset += len;
            }
            None
        }
        "Gather" => {
            let shape = g.node(g.producer(n.input(0)?)?);
            if shape.op_type != "Shape"
                || shape
                    .attrs
                    .iter()
                    .any(|a| a.name == "start" || a.name == "end")
            {
                return None;
            }
            let t = shape.input(0)?;
            let rank = g.value(t).shape.as_ref()?.len() as i64;
            let c = model.constant(n.input(1)?)?;
            let idx = model.i64s(&c).ok()?;
            let i = match idx.as_slice() {
                [i] => *i,
                _ => *idx.get(index)?,
            };
            let i = if i < 0 { i + rank } else { i };
            (0..rank).contains(&i).then_some((t, i as usize))
        }
        _ => None,
    }
}

fn is_1d_of(model: &Model, v: ValueId) -> bool {
    model
        .graph
        .value(v)
        .shape
        .as_ref()
        .is_some_and(|s| s.len() == 1)
}

/// The values of a constant boolean tensor.
fn mask_bytes(model: &Model, t: &shears_onnx::proto::TensorProto) -> Option<Vec<bool>> {
    use shears_onnx::proto::tensor_proto::DataType;
    if t.data_type != DataType::Bool as i32 {
        return None;
    }
    if !t.raw_data.is_empty() || t.data_location == 1 {
        let raw = model.payload(t).ok()?;
        return Some(raw.iter().map(|&b| b != 0).collect());
    }
    Some(t.int32_data.iter().map(|&b| b != 0).collect())
}
