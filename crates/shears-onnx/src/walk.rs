//! Every [`TensorProto`] of a model, wherever it sits: initializers, sparse initializers,
//! tensor attributes (`Constant` values and others), subgraphs of `If`/`Loop`/`Scan`, function
//! bodies and default attributes, and training-info graphs.
//!
//! Invariant: [`tensors`] and [`tensors_mut`] list the same tensors in the same order (one
//! macro generates both), so an index into one is an index into the other.

use crate::proto::{AttributeProto, GraphProto, ModelProto, SparseTensorProto, TensorProto};

/// A tensor found in a model, with a label naming it for error messages: its own name, or
/// where it sits when it has none (`node 'n' attribute 'value'`).
#[derive(Debug)]
pub struct Found<T> {
    pub label: String,
    pub tensor: T,
    /// Whether the tensor is an attribute value (a `Constant`'s `value`, say) rather than an
    /// initializer.
    pub in_attribute: bool,
}

/// Labels a tensor by its name, falling back to its position.
fn label(t: &TensorProto, place: impl FnOnce() -> String) -> String {
    if t.name.is_empty() {
        place()
    } else {
        t.name.clone()
    }
}

macro_rules! walker {
    ($model_fn:ident, $($m:ident)?) => {
        /// Every tensor of `model` in a fixed order (see the module invariant).
        pub fn $model_fn(model: & $($m)? ModelProto) -> Vec<Found<& $($m)? TensorProto>> {
            fn graph<'a>(g: &'a $($m)? GraphProto, out: &mut Vec<Found<&'a $($m)? TensorProto>>) {
                let gname = g.name.clone();
                for (i, t) in (& $($m)? g.initializer).into_iter().enumerate() {
                    let label = label(t, || format!("initializer #{i} of graph '{gname}'"));
                    out.push(Found { label, tensor: t, in_attribute: false });
                }
                for (i, s) in (& $($m)? g.sparse_initializer).into_iter().enumerate() {
                    sparse(s, &format!("sparse initializer #{i} of graph '{gname}'"), false, out);
                }
                for (i, n) in (& $($m)? g.node).into_iter().enumerate() {
                    let node = if n.name.is_empty() {
                        format!("node #{i} ({}) of graph '{gname}'", n.op_type)
                    } else {
                        format!("node '{}'", n.name)
                    };
                    for a in & $($m)? n.attribute {
                        attribute(a, &node, out);
                    }
                }
            }
            fn sparse<'a>(
                s: &'a $($m)? SparseTensorProto,
                place: &str,
                in_attribute: bool,
                out: &mut Vec<Found<&'a $($m)? TensorProto>>,
            ) {
                if let Some(t) = & $($m)? s.values {
                    let label = label(t, || format!("{place} values"));
                    out.push(Found { label, tensor: t, in_attribute });
                }
                if let Some(t) = & $($m)? s.indices {
                    let label = label(t, || format!("{place} indices"));
                    out.push(Found { label, tensor: t, in_attribute });
                }
            }
            fn attribute<'a>(
                a: &'a $($m)? AttributeProto,
                owner: &str,
                out: &mut Vec<Found<&'a $($m)? TensorProto>>,
            ) {
                let place = format!("{owner} attribute '{}'", a.name);
                if let Some(t) = & $($m)? a.t {
                    let label = label(t, || place.clone());
                    out.push(Found { label, tensor: t, in_attribute: true });
                }
                for (i, t) in (& $($m)? a.tensors).into_iter().enumerate() {
                    let label = label(t, || format!("{place} tensor #{i}"));
                    out.push(Found { label, tensor: t, in_attribute: true });
                }
                if let Some(s) = & $($m)? a.sparse_tensor {
                    sparse(s, &place, true, out);
                }
                for (i, s) in (& $($m)? a.sparse_tensors).into_iter().enumerate() {
                    sparse(s, &format!("{place} sparse tensor #{i}"), true, out);
                }
                if let Some(g) = & $($m)? a.g {
                    graph(g, out);
                }
                for g in & $($m)? a.graphs {
                    graph(g, out);
                }
            }

            let mut out = Vec::new();
            if let Some(g) = & $($m)? model.graph {
                graph(g, &mut out);
            }
            for f in & $($m)? model.functions {
                let owner = format!("function '{}'", f.name);
                for a in & $($m)? f.attribute_proto {
                    attribute(a, &owner, &mut out);
                }
                for (i, n) in (& $($m)? f.node).into_iter().enumerate() {
                    let node = format!("{owner} node #{i} ({})", n.op_type);
                    for a in & $($m)? n.attribute {
                        attribute(a, &node, &mut out);
                    }
                }
            }
            for ti in & $($m)? model.training_info {
                if let Some(g) = & $($m)? ti.initialization {
                    graph(g, &mut out);
                }
                if let Some(g) = & $($m)? ti.algorithm {
                    graph(g, &mut out);
                }
            }
            out
        }
    };
}

walker!(tensors,);
walker!(tensors_mut, mut);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{FunctionProto, NodeProto, TrainingInfoProto};

    fn named(name: &str) -> TensorProto {
        TensorProto {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn finds_tensors_in_every_place_in_a_fixed_order() {
        let attr = |name: &str, t: TensorProto| AttributeProto {
            name: name.into(),
            t: Some(Box::new(t)),
            ..Default::default()
        };
        let sub = GraphProto {
            name: "body".into(),
            initializer: vec![named("sub_init")],
            ..Default::default()
        };
        let mut model = ModelProto {
            graph: Some(GraphProto {
                name: "main".into(),
                initializer: vec![named("w")],
                sparse_initializer: vec![SparseTensorProto {
                    values: Some(named("sv")),
                    indices: Some(TensorProto::default()),
                    dims: vec![4],
                }],
                node: vec![NodeProto {
                    name: "c".into(),
                    op_type: "If".into(),
                    attribute: vec![
                        attr("value", TensorProto::default()),
                        AttributeProto {
                            name: "then_branch".into(),
                            g: Some(Box::new(sub)),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            functions: vec![FunctionProto {
                name: "f".into(),
                attribute_proto: vec![attr("default", named("fdef"))],
                node: vec![NodeProto {
                    op_type: "Constant".into(),
                    attribute: vec![attr("value", TensorProto::default())],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            training_info: vec![TrainingInfoProto {
                initialization: Some(GraphProto {
                    initializer: vec![named("ti")],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let labels: Vec<String> = tensors(&model).into_iter().map(|f| f.label).collect();
        assert_eq!(
            labels,
            [
                "w",
                "sv",
                "sparse initializer #0 of graph 'main' indices",
                "node 'c' attribute 'value'",
                "sub_init",
                "fdef",
                "function 'f' node #0 (Constant) attribute 'value'",
                "ti",
            ]
        );
        let mut_labels: Vec<String> = tensors_mut(&mut model)
            .into_iter()
            .map(|f| f.label)
            .collect();
        assert_eq!(labels, mut_labels);
    }
}
