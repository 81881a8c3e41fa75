//! Applying a batch of plans to a copy of the model's proto.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use shears_graph::rules::{self, Rewrite};
use shears_onnx::cut::CutView;
use shears_onnx::proto::attribute_proto::AttributeType;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{
    tensor_shape_proto::dimension, type_proto, AttributeProto, ModelProto, NodeProto, TensorProto,
};
use shears_onnx::{tensor, Model, NodeId, ValueKind};
use shears_plan::PruningPlan;

use crate::merge::{merge, Cuts};
use crate::slice::slice_axes;
use crate::ExecError;

/// The result of applying plans.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The pruned model.
    pub proto: ModelProto,
    /// The attribute and shape-constant rewrites made, sorted.
    pub rewrites: Vec<Rewrite>,
    /// [`apply_deferred`]'s cuts not yet made, by the `location` key the cut tensors name:
    /// add them to the store the result is read through (empty for [`apply`]).
    pub cuts: Vec<(String, Arc<CutView>)>,
}

impl Applied {
    /// The applied proto as a model named `source`: its untouched external tensors read from
    /// `from`'s folder, its cut tensors through [`Applied::cuts`], added to a copy of `from`'s
    /// store (which holds any earlier stage's views). Shapes are not inferred yet.
    pub fn into_model(
        self,
        from: &Model,
        source: impl Into<String>,
    ) -> Result<Model, shears_onnx::OnnxError> {
        let mut store = from.external.same_folder();
        store.add_cuts(self.cuts);
        Model::from_proto(self.proto, source, store)
    }
}

/// Applies `plans` (all made for `model`) in one pass; see the crate docs for the invariants.
/// A batch that removes no channel is an error ([`ExecError::NothingRemoved`]).
pub fn apply(model: &Model, plans: &[PruningPlan]) -> Result<Applied, ExecError> {
    let cuts = checked_cuts(model, plans)?;
    apply_cuts(model, &cuts, false)
}

/// [`apply`], except that each cut initializer is left a cut not yet made
/// ([`shears_onnx::cut::CutView`] over its stored payload, or, when it is one already, the
/// composed view over the same source) in [`Applied::cuts`], its tensor pointing at it as
/// external data. Reading the result through `model.external.same_folder()` with the cuts
/// added gives the same values as [`apply`]'s, and saving it the same bytes, but no cut tensor
/// is copied until read, and the saver streams each into its file: what a pruner's stages use.
pub fn apply_deferred(model: &Model, plans: &[PruningPlan]) -> Result<Applied, ExecError> {
    let cuts = checked_cuts(model, plans)?;
    apply_cuts(model, &cuts, true)
}

/// The merged cuts of `plans`, refused when they remove nothing.
fn checked_cuts(model: &Model, plans: &[PruningPlan]) -> Result<Cuts, ExecError> {
    let cuts = merge(model, plans)?;
    if cuts.removed.values().all(|r| r.is_empty()) {
        return Err(ExecError::NothingRemoved { plans: plans.len() });
    }
    Ok(cuts)
}

/// Edits a copy of `model`'s proto by `cuts`; with `defer`, initializers become views.
fn apply_cuts(model: &Model, cuts: &Cuts, defer: bool) -> Result<Applied, ExecError> {
    let g = &model.graph;
    let mut proto = model.proto.clone();
    let mut views = Vec::new();

    for &v in cuts.stored.keys() {
        let axes: Vec<(usize, &[u32])> = cuts
            .removed
            .range((v, 0)..=(v, usize::MAX))
            .map(|(&(_, a), r)| (a, r.as_slice()))
            .collect();
        let name = &g.value(v).name;
        match g.value(v).kind {
            ValueKind::Initializer(i) => {
                let graph = proto.graph.as_mut().expect("checked at load");
                let t = &mut graph.initializer[i];
                if defer {
                    views.push(defer_cut(t, &axes, model)?);
                } else {
                    cut_tensor(t, &axes, model)?;
                }
            }
            ValueKind::NodeOutput { node, .. } => {
                let pi = g.node(node).proto_index;
                let graph = proto.graph.as_mut().expect("checked at load");
                cut_constant_node(&mut graph.node[pi].attribute, name, &axes, model)?;
            }
            ValueKind::Input => {
                return Err(ExecError::Tensor {
                    tensor: name.clone(),
                    reason: "is a graph input and cannot be pruned".into(),
                })
            }
        }
    }

    let rewrites = recompute_rewrites(model, cuts)?;
    let mut resized: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut inserts: Vec<(usize, NodeProto)> = Vec::new();
    for rw in &rewrites {
        if let Rewrite::ShapeOverlay { .. } = rw {
            inserts.push(overlay(model, &mut proto, rw)?);
        } else if let Some((name, dims)) = apply_rewrite(model, &mut proto, rw)? {
            resized.insert(name, dims);
        }
    }
    update_value_info(model, &mut proto, cuts, &resized);
    // Inserted last, from the back, so that the proto indices the rewrites used stay valid;
    // each new node goes right before its reader, keeping the node list topologically sorted.
    inserts.sort_by_key(|b| std::cmp::Reverse(b.0));
    let graph = proto.graph.as_mut().expect("checked at load");
    for (at, n) in inserts {
        graph.node.insert(at, n);
    }
    // Only a rewrite (a reader given a private copy) can leave a constant unread.
    if !rewrites.is_empty() {
        drop_orphaned_constants(model, &mut proto);
    }
    // Which tensors were external is the source model's fact, not the result's: savers ask
    // `SaveOptions::keeping_storage_of(model)`.
    Ok(Applied {
        proto,
        rewrites,
        cuts: views,
    })
}

/// Every node next to a cut value recomputes its rewrites from the merged cuts.
fn recompute_rewrites(model: &Model, cuts: &Cuts) -> Result<Vec<Rewrite>, ExecError> {
    let g = &model.graph;
    // With repeats (a value cut on several axes, a node next to several cut values), then
    // sorted once.
    let mut nodes: Vec<NodeId> = Vec::new();
    for &(v, _) in cuts.removed.keys() {
        nodes.extend(g.producer(v));
        nodes.extend(g.value(v).consumers.iter().map(|&(c, _)| c));
    }
    nodes.sort_unstable();
    nodes.dedup();
    let mut out = Vec::new();
    for id in nodes {
        let node = g.node(id);
        let Some(rw) = rules::rule_for(node).and_then(|r| r.rewrite) else {
            continue;
        };
        let ctx = rules::Ctx::new(model, id);
        out.extend(rw(&ctx, cuts).map_err(|reason| ExecError::Rewrite {
            node: node.name.clone(),
            reason,
        })?);
    }
    out.sort();
    out.dedup();
    // Two different rewrites of one target would silently overwrite each other.
    let mut targets: BTreeMap<(String, String), &Rewrite> = BTreeMap::new();
    for rw in &out {
        let key = match rw {
            Rewrite::AttrInt { node, attr, .. } | Rewrite::AttrInts { node, attr, .. } => {
                (node.clone(), attr.clone())
            }
            Rewrite::ConstInts { node, slot, .. } => (node.clone(), format!("#{slot}")),
            Rewrite::SplitSizes { node, .. } => (node.clone(), "split".to_string()),
            Rewrite::ShapeOverlay { node, slot, .. } => (node.clone(), format!("#{slot}")),
        };
        if let Some(prev) = targets.insert(key.clone(), rw) {
            return Err(ExecError::Rewrite {
                node: key.0,
                reason: format!("conflicting rewrites {prev:?} and {rw:?}"),
            });
        }
    }
    Ok(out)
}

/// The element size and dims of `t`, which `axes` must all lie within: an error naming the
/// tensor when its type has no fixed element size or an axis is past its rank.
fn cut_geometry(
    t: &TensorProto,
    axes: &[(usize, &[u32])],
) -> Result<(usize, Vec<usize>), ExecError> {
    let err = |reason: String| ExecError::Tensor {
        tensor: t.name.clone(),
        reason,
    };
    let elem = tensor::elem_size(t.data_type).ok_or_else(|| {
        err(format!(
            "cannot slice elements of type {}",
            tensor::dtype_name(t.data_type)
        ))
    })?;
    let dims = tensor::dims(t)?;
    if let Some(&(axis, _)) = axes.iter().find(|(a, _)| *a >= dims.len()) {
        return Err(err(format!("has no axis {axis}")));
    }
    Ok((elem, dims))
}

/// Removes `axes` (ascending, each with sorted indices) from `t`, storing the result as raw data.
fn cut_tensor(
    t: &mut TensorProto,
    axes: &[(usize, &[u32])],
    model: &Model,
) -> Result<(), ExecError> {
    let (elem, mut dims) = cut_geometry(t, axes)?;
    // Sliced straight from the stored payload (often the mapped file), in one pass: no copy of
    // the whole tensor is made first, and no intermediate copy per axis.
    let source = model.payload(t)?;
    let data = slice_axes(&source, &dims, elem, axes);
    shears_onnx::load::release_pages(&source);
    for &(axis, removed) in axes {
        dims[axis] -= removed.len();
    }
    tensor::set_raw(t, data, &dims);
    Ok(())
}

/// Points `t` at a view of itself without `axes` (see [`apply_deferred`]).
fn defer_cut(
    t: &mut TensorProto,
    axes: &[(usize, &[u32])],
    model: &Model,
) -> Result<(String, Arc<CutView>), ExecError> {
    let (elem, dims) = cut_geometry(t, axes)?;
    let view = match model.external.cut_of(t) {
        Some(v) => v.cut(axes),
        None => CutView::new(
            model.payload(t)?,
            dims,
            elem,
            axes.iter().map(|&(a, r)| (a, r.to_vec())).collect(),
        ),
    }
    .map_err(|reason| ExecError::Tensor {
        tensor: t.name.clone(),
        reason,
    })?;
    let key = shears_onnx::external::cut_key();
    tensor::set_cut(t, key.clone(), &view);
    Ok((key, Arc::new(view)))
}

/// Cuts the tensor a Constant node holds (`value`, or the 1-D `value_floats`/`value_ints`).
fn cut_constant_node(
    attrs: &mut [shears_onnx::proto::AttributeProto],
    name: &str,
    axes: &[(usize, &[u32])],
    model: &Model,
) -> Result<(), ExecError> {
    let a = attrs.first_mut().ok_or_else(|| ExecError::Tensor {
        tensor: name.to_string(),
        reason: "Constant node has no value".into(),
    })?;
    let keep = |n: usize, removed: &[u32]| -> Vec<usize> {
        (0..n)
            .filter(|i| removed.binary_search(&(*i as u32)).is_err())
            .collect()
    };
    match a.name.as_str() {
        "value" => {
            let t = a.t.as_mut().ok_or_else(|| ExecError::Tensor {
                tensor: name.to_string(),
                reason: "Constant value attribute holds no tensor".into(),
            })?;
            cut_tensor(t, axes, model)
        }
        "value_floats" if axes.len() == 1 && axes[0].0 == 0 => {
            let k = keep(a.floats.len(), axes[0].1);
            a.floats = k.iter().map(|&i| a.floats[i]).collect();
            Ok(())
        }
        "value_ints" if axes.len() == 1 && axes[0].0 == 0 => {
            let k = keep(a.ints.len(), axes[0].1);
            a.ints = k.iter().map(|&i| a.ints[i]).collect();
            Ok(())
        }
        other => Err(ExecError::Tensor {
            tensor: name.to_string(),
            reason: format!("cannot cut a Constant '{other}' attribute"),
        }),
    }
}

fn node_index(model: &Model, name: &str) -> Result<(NodeId, usize), ExecError> {
    let id = model
        .graph
        .node_id(name)
        .ok_or_else(|| ExecError::Rewrite {
            node: name.to_string(),
            reason: "no such node".into(),
        })?;
    Ok((id, model.graph.node(id).proto_index))
}

/// Applies one rewrite; returns the name and new dims of a constant edited in place.
fn apply_rewrite(
    model: &Model,
    proto: &mut ModelProto,
    rw: &Rewrite,
) -> Result<Option<(String, Vec<usize>)>, ExecError> {
    let graph = proto.graph.as_mut().expect("checked at load");
    match rw {
        Rewrite::AttrInt { node, attr, .. } | Rewrite::AttrInts { node, attr, .. } => {
            let (_, pi) = node_index(model, node)?;
            let a = graph.node[pi]
                .attribute
                .iter_mut()
                .find(|a| &a.name == attr)
                .ok_or_else(|| ExecError::Rewrite {
                    node: node.clone(),
                    reason: format!("has no attribute '{attr}'"),
                })?;
            match rw {
                Rewrite::AttrInt { new, .. } => a.i = *new,
                Rewrite::AttrInts { new, .. } => a.ints = new.clone(),
                _ => unreachable!("an attribute rewrite"),
            }
            Ok(None)
        }
        Rewrite::ConstInts {
            node,
            slot,
            tensor: tname,
            new,
            new_dims,
            ..
        } => {
            let (id, pi) = node_index(model, node)?;
            let v = model
                .graph
                .node(id)
                .input(*slot)
                .ok_or_else(|| ExecError::Rewrite {
                    node: node.clone(),
                    reason: format!("has no input {slot}"),
                })?;
            let source = model.constant(v).ok_or_else(|| ExecError::Rewrite {
                node: node.clone(),
                reason: format!("input {slot} '{tname}' is not a constant"),
            })?;
            let replacement = int_tensor(&source, new, new_dims)?;
            let value = model.graph.value(v);
            let shared = value.consumers.len() > 1;
            let in_place = Some((value.name.clone(), new_dims.clone()));
            match (&value.kind, shared) {
                (ValueKind::Initializer(i), false) => {
                    let t = &mut graph.initializer[*i];
                    let name = std::mem::take(&mut t.name);
                    *t = TensorProto {
                        name,
                        ..replacement
                    };
                    Ok(in_place)
                }
                (ValueKind::NodeOutput { node: c, .. }, false)
                    if model.graph.node(*c).op_type == "Constant" =>
                {
                    let cpi = model.graph.node(*c).proto_index;
                    let a = &mut graph.node[cpi].attribute[0];
                    a.name = "value".into();
                    a.r#type = shears_onnx::proto::attribute_proto::AttributeType::Tensor as i32;
                    a.floats.clear();
                    a.ints.clear();
                    a.t = Some(Box::new(replacement));
                    Ok(in_place)
                }
                _ => {
                    // Shared with other readers: give this input a private copy.
                    let fresh = add_initializer(model, proto, tname, replacement);
                    let graph = proto.graph.as_mut().expect("checked at load");
                    graph.node[pi].input[*slot] = fresh;
                    Ok(None)
                }
            }
        }
        Rewrite::SplitSizes { node, new, .. } => {
            let (_, pi) = node_index(model, node)?;
            if model.graph.opset < 13 {
                graph.node[pi].attribute.push(AttributeProto {
                    name: "split".into(),
                    r#type: AttributeType::Ints as i32,
                    ints: new.clone(),
                    ..Default::default()
                });
                return Ok(None);
            }
            // The spec allows either sizes or `num_outputs`, not both.
            graph.node[pi].attribute.retain(|a| a.name != "num_outputs");
            let like = TensorProto {
                name: node.clone(),
                data_type: DataType::Int64 as i32,
                ..Default::default()
            };
            let sizes = int_tensor(&like, new, &[new.len()])?;
            let fresh = add_initializer(model, proto, &format!("{node}.split"), sizes);
            let inputs = &mut proto.graph.as_mut().expect("checked at load").node[pi].input;
            inputs.resize(inputs.len().max(2), String::new());
            inputs[1] = fresh;
            Ok(None)
        }
        Rewrite::ShapeOverlay { .. } => unreachable!("applied by `overlay`"),
    }
}

/// A name derived from `base` that no value of the model, and no initializer or node output
/// added to `proto` so far, has.
fn fresh_name(model: &Model, proto: &ModelProto, base: &str) -> String {
    let graph = proto.graph.as_ref().expect("checked at load");
    let mut k = 0;
    loop {
        let candidate = format!("{base}.pruned{k}");
        if model.graph.value_id(&candidate).is_none()
            && model.graph.node_id(&candidate).is_none()
            && !graph.initializer.iter().any(|t| t.name == candidate)
            && !graph
                .node
                .iter()
                .any(|n| n.name == candidate || n.output.contains(&candidate))
        {
            return candidate;
        }
        k += 1;
    }
}

/// Gives the reader of a shared computed shape tensor a private copy with some literal
/// entries changed: `Where(mask, values, tensor)`. Returns the new node and the proto index
/// of its reader, before which it must be inserted.
fn overlay(
    model: &Model,
    proto: &mut ModelProto,
    rw: &Rewrite,
) -> Result<(usize, NodeProto), ExecError> {
    let Rewrite::ShapeOverlay {
        node,
        slot,
        tensor: tname,
        entries,
    } = rw
    else {
        unreachable!("called for overlays only")
    };
    let err = |reason: String| ExecError::Rewrite {
        node: node.clone(),
        reason,
    };
    let (id, pi) = node_index(model, node)?;
    let v = model
        .graph
        .node(id)
        .input(*slot)
        .ok_or_else(|| err(format!("has no input {slot}")))?;
    let len = match model.graph.value(v).shape.as_deref() {
        Some([n]) => *n,
        _ => {
            return Err(err(format!(
                "input {slot} '{tname}' is not a 1-D shape tensor"
            )))
        }
    };
    if model.graph.opset < 9 {
        return Err(err(format!(
            "input {slot} '{tname}' is shared with other nodes and opset {} has no Where to give this one a private copy",
            model.graph.opset
        )));
    }
    let mut mask = vec![0u8; len];
    let mut values = vec![0i64; len];
    for &(k, _, new) in entries {
        if k >= len {
            return Err(err(format!("entry {k} of '{tname}' is out of range")));
        }
        mask[k] = 1;
        values[k] = new;
    }
    let int64 = TensorProto {
        name: tname.clone(),
        data_type: DataType::Int64 as i32,
        ..Default::default()
    };
    let values = int_tensor(&int64, &values, &[len])?;
    let mask = TensorProto {
        dims: vec![len as i64],
        data_type: DataType::Bool as i32,
        raw_data: Bytes::from(mask),
        ..Default::default()
    };
    let mask = add_initializer(model, proto, &format!("{tname}.mask"), mask);
    let values = add_initializer(model, proto, &format!("{tname}.values"), values);
    // One overlay per (reader, slot): named after both, so overlays not yet inserted into the
    // proto cannot collide.
    let out = fresh_name(model, proto, &format!("{tname}.{node}.{slot}"));
    let name = fresh_name(model, proto, &format!("{node}.overlay{slot}"));
    proto.graph.as_mut().expect("checked at load").node[pi].input[*slot] = out.clone();
    Ok((
        pi,
        NodeProto {
            name,
            op_type: "Where".into(),
            input: vec![mask, values, tname.clone()],
            output: vec![out],
            ..Default::default()
        },
    ))
}

/// Adds initializer `t` under a name derived from `base` that no value or initializer of the
/// model has yet; returns that name.
fn add_initializer(model: &Model, proto: &mut ModelProto, base: &str, t: TensorProto) -> String {
    let fresh = fresh_name(model, proto, base);
    let graph = proto.graph.as_mut().expect("checked at load");
    graph.initializer.push(TensorProto {
        name: fresh.clone(),
        ..t
    });
    // IR < 4 requires every initializer to be declared as a graph input too.
    if model.proto.ir_version < 4 {
        graph
            .input
            .push(param_input(graph.initializer.last().expect("pushed")));
    }
    fresh
}

/// The graph input declaring initializer `t` (its element type and dims).
fn param_input(t: &TensorProto) -> shears_onnx::proto::ValueInfoProto {
    shears_onnx::proto::ValueInfoProto::tensor(&t.name, t.data_type, Some(&t.dims))
}

/// An integer tensor like `like` (same element type) holding `values` with `dims`.
fn int_tensor(
    like: &TensorProto,
    values: &[i64],
    dims: &[usize],
) -> Result<TensorProto, ExecError> {
    let mut raw = Vec::new();
    match DataType::try_from(like.data_type) {
        Ok(DataType::Int64) => values
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Ok(DataType::Int32) => values
            .iter()
            .for_each(|&v| raw.extend_from_slice(&(v as i32).to_le_bytes())),
        _ => {
            return Err(ExecError::Tensor {
                tensor: like.name.clone(),
                reason: format!(
                    "cannot rewrite a {} shape constant",
                    tensor::dtype_name(like.data_type)
                ),
            })
        }
    }
    Ok(TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: like.data_type,
        raw_data: Bytes::from(raw),
        ..Default::default()
    })
}

/// Shrinks the declared dims of `value_info` entries and graph inputs (initializers listed as
/// inputs declare their shape there) for cut values, and sets those of shape constants rewritten
/// in place to their new dims, so no shape in the file contradicts a tensor.
fn update_value_info(
    model: &Model,
    proto: &mut ModelProto,
    cuts: &Cuts,
    resized: &BTreeMap<String, Vec<usize>>,
) {
    let g = &model.graph;
    let graph = proto.graph.as_mut().expect("checked at load");
    for vi in graph.input.iter_mut().chain(graph.value_info.iter_mut()) {
        let Some(v) = g.value_id(&vi.name) else {
            continue;
        };
        let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        let Some(shape) = t.shape.as_mut() else {
            continue;
        };
        if let Some(dims) = resized.get(&vi.name) {
            shape.dim = dims
                .iter()
                .map(|&n| shears_onnx::proto::tensor_shape_proto::Dimension {
                    value: Some(dimension::Value::DimValue(n as i64)),
                    denotation: String::new(),
                })
                .collect();
            continue;
        }
        for (axis, d) in shape.dim.iter_mut().enumerate() {
            let gone = cuts.removed.get(&(v, axis)).map_or(0, |r| r.len()) as i64;
            if let Some(dimension::Value::DimValue(n)) = d.value.as_mut() {
                *n -= gone;
            }
        }
    }
}

/// Removes initializers and Constant nodes that no node, subgraph or graph output reads any more (a shape constant
/// every reader of which got a private rewritten copy). Initializers unused in the source stay.
fn drop_orphaned_constants(model: &Model, proto: &mut ModelProto) {
    let graph = proto.graph.as_mut().expect("checked at load");
    let mut used: HashSet<&str> = HashSet::new();
    fn walk<'a>(g: &'a shears_onnx::proto::GraphProto, used: &mut HashSet<&'a str>) {
        for n in &g.node {
            used.extend(n.input.iter().map(String::as_str));
            for a in &n.attribute {
                for sub in a.g.as_deref().into_iter().chain(&a.graphs) {
                    walk(sub, used);
                }
            }
        }
        used.extend(g.input.iter().map(|i| i.name.as_str()));
        used.extend(g.output.iter().map(|o| o.name.as_str()));
    }
    walk(graph, &mut used);
    let g = &model.graph;
    // Keep anything the source itself did not read: dropping it is not ours to decide.
    let orphaned = |name: &str| {
        !used.contains(name)
            && g.value_id(name)
                .is_some_and(|v| !g.value(v).consumers.is_empty())
    };
    // Decided while `used` borrows the names, removed after.
    let drop_init: Vec<bool> = graph
        .initializer
        .iter()
        .map(|t| orphaned(&t.name))
        .collect();
    // Constant nodes are initializers by another name.
    let drop_node: Vec<bool> = graph
        .node
        .iter()
        .map(|n| n.op_type == "Constant" && n.output.len() == 1 && orphaned(&n.output[0]))
        .collect();
    if drop_init.iter().chain(&drop_node).any(|&d| d) {
        let mut k = drop_init.iter();
        graph
            .initializer
            .retain(|_| !k.next().copied().unwrap_or(false));
        let mut k = drop_node.iter();
        graph.node.retain(|_| !k.next().copied().unwrap_or(false));
    }
}
