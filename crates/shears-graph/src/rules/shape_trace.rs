//! Where an entry of a computed shape tensor comes from, so that a Reshape or Expand whose
//! target is built at run time (`Shape → Gather → Unsqueeze → Concat`, as the TorchScript
//! exporter emits) can still be rewritten.
//!
//! An entry is either *dynamic* (read from a `Shape` at run time: it follows the pruned tensor
//! by itself) or a *literal* element of a constant that a known node input reads: that input is
//! the one to rewrite. Anything computed from literals by arithmetic is neither, and the caller
//! reports it as not rewritable. A literal reached through a computed shape tensor that other
//! nodes read too (exporters share one `Concat` between two Expands) is *shared*: editing it
//! would resize the other readers' outputs as well, so it is not rewritable either. Never
//! guesses.

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
    let len_of = |v: ValueId| -> Option<usize> {
        let s = g.value(v).shape.as_ref()?;
        Some(s.iter().product())
    };
    let source = match n.op_type.as_str() {
        "Shape" | "Size" => Some(EntrySource::Dynamic),
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
            EntrySource::Literal { .. } | EntrySource::Shared { .. } => None,
        },
        _ => None,
    }?;
    Some(match source {
        EntrySource::Literal { .. } if shared => EntrySource::Shared { value },
        other => other,
    })
}
