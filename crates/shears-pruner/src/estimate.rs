//! Parameters and MACs a batch of plans would leave, without slicing any payload: the model's
//! shapes are shrunk as the plans say and measured by the same counter as real models
//! ([`shears_onnx::cost::analyze`]), so the estimate equals the cost of the applied model.

use std::collections::BTreeMap;

use shears_onnx::external::ExternalStore;
use shears_onnx::{Model, ValueKind};
use shears_plan::PruningPlan;

use crate::error::Result;

/// Parameters and MACs of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct Cost {
    pub parameters: u64,
    pub macs: u64,
}

/// The cost of `model` itself.
pub fn cost(model: &Model) -> Result<Cost> {
    let r = shears_onnx::cost::analyze(model)?;
    Ok(Cost {
        parameters: r.parameters,
        macs: r.macs,
    })
}

/// The cost `model` would have once `plans` are applied.
pub fn estimate<'p>(
    model: &Model,
    plans: impl IntoIterator<Item = &'p PruningPlan>,
) -> Result<Cost> {
    let mut removed: BTreeMap<(&str, usize), usize> = BTreeMap::new();
    for p in plans {
        for e in &p.entries {
            *removed.entry((e.tensor.as_str(), e.axis)).or_default() += e.indices.len();
        }
    }
    let mut graph = model.graph.clone();
    let mut proto = model.proto.clone();
    for (&(name, axis), &n) in &removed {
        let Some(v) = graph.value_id(name) else {
            continue;
        };
        if let Some(d) = graph
            .value_mut(v)
            .shape
            .as_mut()
            .and_then(|s| s.get_mut(axis))
        {
            *d = d.saturating_sub(n);
        }
        // Parameters are counted from the tensors' own dims.
        match graph.value(v).kind {
            ValueKind::Initializer(i) => {
                if let Some(t) = proto.graph.as_mut().and_then(|g| g.initializer.get_mut(i)) {
                    if let Some(d) = t.dims.get_mut(axis) {
                        *d = (*d - n as i64).max(0);
                    }
                }
            }
            ValueKind::NodeOutput { node, .. } => {
                let n_node = &mut graph.nodes[node.index()];
                if n_node.op_type == "Constant" {
                    for a in &mut n_node.attrs {
                        if let Some(t) = a.t.as_mut() {
                            if let Some(d) = t.dims.get_mut(axis) {
                                *d = (*d - n as i64).max(0);
                            }
                        }
                    }
                }
            }
            ValueKind::Input => {}
        }
    }
    let shrunk = Model {
        proto,
        graph,
        external: ExternalStore::none(),
        source: model.source.clone(),
        file_size: None,
        symbolic: Default::default(),
    };
    cost(&shrunk)
}
