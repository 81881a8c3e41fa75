//! The IR: a model's main graph as nodes in topological order and named values with their
//! producer and consumers.
//!
//! Invariants:
//! - `nodes` is in topological order: every node comes after the producers of all its inputs
//!   (including values its subgraphs capture from this scope). Among independent nodes the file's
//!   order is kept, so the order is deterministic.
//! - Every node has a name, unique in the graph: its own, or `<op_type>_<index in file>` when
//!   it has none (with the index appended again if even that collides).
//! - Every value name is defined once: as a graph input, an initializer, or one node output.
//! - The IR refers to the proto by index (`proto_index`, `ValueKind::Initializer`); it never
//!   copies tensor payloads.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use smallvec::SmallVec;

use crate::error::{OnnxError, Result};
use crate::proto::{
    tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto, ModelProto,
};

/// Index of a node in [`Graph::nodes`] (topological position).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Index of a value in [`Graph::values`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One dimension as a graph input or `value_info` declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Known(usize),
    /// A symbolic (`dim_param`) or absent dimension; the string is the symbol, possibly empty.
    Dynamic(String),
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A graph input that is not an initializer (a real runtime input).
    Input,
    /// `graph.initializer[i]` of the proto.
    Initializer(usize),
    /// Output `slot` of node `node`.
    NodeOutput { node: NodeId, slot: usize },
}

/// A named tensor value of the main graph.
#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    pub kind: ValueKind,
    /// `(consumer, input slot)` pairs in topological order of the consumers.
    pub consumers: Vec<(NodeId, usize)>,
    /// ONNX element type (`TensorProto.DataType` as i32); 0 when unknown.
    pub dtype: i32,
    /// The shape as declared in the file (graph input/output, `value_info`, initializer dims).
    pub declared: Option<Vec<Dim>>,
    /// The static shape, once [`crate::shape::infer_shapes`] has run (or known from the file).
    pub shape: Option<Vec<usize>>,
    /// Integer contents known statically (initializers, constants and folded shape
    /// computations), filled by shape inference for small integer tensors.
    pub folded: Option<Vec<i64>>,
}

/// A node of the main graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Unique name (see the module invariants).
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Index of this node in the proto's `graph.node`.
    pub proto_index: usize,
    /// Input values by slot; `None` where an optional input is omitted (`""`).
    pub inputs: SmallVec<[Option<ValueId>; 4]>,
    /// Output values by slot; `None` where an optional output is omitted.
    pub outputs: SmallVec<[Option<ValueId>; 2]>,
    /// The node's attributes (cheap clone: tensor payloads are shared `Bytes`).
    pub attrs: Vec<AttributeProto>,
}

impl Node {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attrs.iter().find(|a| a.name == name)
    }
    /// Integer attribute `name`, or `default`.
    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }
    /// Float attribute `name`, or `default`.
    pub fn attr_f(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }
    /// Integer-list attribute `name`, if present.
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }
    /// String attribute `name`, if present and UTF-8.
    pub fn attr_s(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(|a| std::str::from_utf8(&a.s).ok())
    }
    /// The value in input `slot`, if that input is present.
    pub fn input(&self, slot: usize) -> Option<ValueId> {
        self.inputs.get(slot).copied().flatten()
    }
    /// The value in output `slot`, if that output is present.
    pub fn output(&self, slot: usize) -> Option<ValueId> {
        self.outputs.get(slot).copied().flatten()
    }
}

/// The analysed main graph of a model.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    pub values: Vec<Value>,
    /// Runtime inputs (graph inputs that are not initializers), in file order.
    pub inputs: Vec<ValueId>,
    /// Initializers the file also lists as graph inputs (IR < 4 requires it; exporters write
    /// it with `keep_initializers_as_inputs`), in input order. They are parameters (a runtime
    /// uses the initializer when the input is not fed), never in `inputs`; their declared type
    /// and shape agree with the initializer (checked when the graph is built), and a pruned
    /// model must keep both in step.
    pub param_inputs: Vec<ValueId>,
    /// Graph outputs, in file order.
    pub outputs: Vec<ValueId>,
    /// Version of the default (`ai.onnx`) opset.
    pub opset: i64,
    value_by_name: HashMap<String, ValueId>,
    node_by_name: HashMap<String, NodeId>,
}

impl Graph {
    /// Analyses `model`'s main graph; `file` names the source in errors.
    pub fn build(model: &ModelProto, file: &str) -> Result<Graph> {
        let invalid = |reason: String| OnnxError::InvalidGraph {
            file: file.to_string(),
            reason,
        };
        let g = model
            .graph
            .as_ref()
            .ok_or_else(|| invalid("the model has no graph".into()))?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(1, |o| o.version);

        let mut graph = Graph {
            opset,
            ..Default::default()
        };
        // Sized once: growing these a push at a time costs more than filling them.
        let values = g.initializer.len()
            + g.input.len()
            + g.node.iter().map(|n| n.output.len()).sum::<usize>();
        graph.values.reserve(values);
        graph.value_by_name.reserve(values);
        graph.nodes.reserve(g.node.len());
        graph.node_by_name.reserve(g.node.len());
        let mut declared = declared_shapes(g);
        let mut define =
            |graph: &mut Graph, name: &str, kind: ValueKind, what: &str| -> Result<ValueId> {
                if graph.value_by_name.contains_key(name) {
                    return Err(invalid(format!(
                        "value '{name}' is defined twice (again as {what})"
                    )));
                }
                let id = ValueId(graph.values.len() as u32);
                // Each name is defined once (a second definition is refused above).
                let (dtype, decl) = declared.remove(name).unwrap_or((0, None));
                graph.values.push(Value {
                    name: name.to_string(),
                    kind,
                    consumers: Vec::new(),
                    dtype,
                    declared: decl,
                    shape: None,
                    folded: None,
                });
                graph.value_by_name.insert(name.to_string(), id);
                Ok(id)
            };

        for (i, t) in g.initializer.iter().enumerate() {
            if t.name.is_empty() {
                return Err(invalid(format!("initializer #{i} has no name")));
            }
            let id = define(
                &mut graph,
                &t.name,
                ValueKind::Initializer(i),
                "an initializer",
            )?;
            let v = &mut graph.values[id.index()];
            v.dtype = t.data_type;
            let dims: Option<Vec<usize>> =
                t.dims.iter().map(|&d| usize::try_from(d).ok()).collect();
            if let Some(d) = dims {
                v.declared = Some(d.iter().map(|&x| Dim::Known(x)).collect());
                v.shape = Some(d);
            } else {
                return Err(OnnxError::tensor(
                    &t.name,
                    format!("negative dims {:?}", t.dims),
                ));
            }
        }
        let mut seen_inputs = HashSet::default();
        for vi in &g.input {
            if !seen_inputs.insert(vi.name.as_str()) {
                return Err(invalid(format!(
                    "graph input '{}' is listed twice",
                    vi.name
                )));
            }
            // IR < 4 lists initializers among the inputs too; those are parameters, not
            // runtime inputs, and their declaration must describe the initializer.
            if let Some(&id) = graph.value_by_name.get(&vi.name) {
                check_param_input(g, vi, &graph.values[id.index()])?;
                graph.param_inputs.push(id);
                continue;
            }
            let id = define(&mut graph, &vi.name, ValueKind::Input, "a graph input")?;
            graph.inputs.push(id);
        }

        // Nodes in file order first; the topological order is computed afterwards.
        let file_nodes = &g.node;
        // Names in the file, and names we generate, must all stay distinct.
        let file_names: HashSet<&str> = file_nodes.iter().map(|n| n.name.as_str()).collect();
        let mut generated: HashSet<String> = HashSet::default();
        let mut name_count: HashMap<&str, usize> = HashMap::default();
        for n in file_nodes {
            *name_count.entry(n.name.as_str()).or_default() += 1;
        }
        let mut node_names = Vec::with_capacity(file_nodes.len());
        for (i, n) in file_nodes.iter().enumerate() {
            let name = if !n.name.is_empty() && name_count[n.name.as_str()] == 1 {
                n.name.clone()
            } else {
                let base = if n.name.is_empty() {
                    format!("{}_{i}", n.op_type)
                } else {
                    format!("{}_{i}", n.name)
                };
                let mut name = base.clone();
                while file_names.contains(name.as_str()) || generated.contains(&name) {
                    name = format!("{name}_{i}");
                }
                generated.insert(name.clone());
                name
            };
            node_names.push(name);
        }

        // Producer of each value name by file node index, to order nodes.
        let mut producer: HashMap<&str, usize> = HashMap::default();
        for (i, n) in file_nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(o.as_str(), i).is_some() || graph.value_by_name.contains_key(o) {
                    return Err(invalid(format!(
                        "value '{o}' is defined twice (again by node '{}')",
                        node_names[i]
                    )));
                }
            }
        }
        let deps: Vec<Vec<usize>> = file_nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut d = Vec::new();
                let captured = captured_names(n);
                for name in n.input.iter().filter(|s| !s.is_empty()).chain(captured.iter()) {
                    if let Some(&p) = producer.get(name.as_str()) {
                        d.push(p);
                    } else if !graph.value_by_name.contains_key(name.as_str()) {
                        // Captured names may be defined inside the subgraph itself or by an
                        // enclosing scope we cannot see; only direct inputs must resolve here.
                        if n.input.contains(name) {
                            return Err(invalid(format!(
                                "node '{}' ({}) reads '{name}', which no node, input or initializer defines",
                                node_names[i], n.op_type
                            )));
                        }
                    }
                }
                Ok(d)
            })
            .collect::<Result<_>>()?;
        let order = topo_order(&deps).map_err(|stuck| {
            invalid(format!(
                "the graph has a cycle through node '{}' ({})",
                node_names[stuck], file_nodes[stuck].op_type
            ))
        })?;

        let mut node_id_of_file = vec![NodeId(0); file_nodes.len()];
        for (pos, &fi) in order.iter().enumerate() {
            node_id_of_file[fi] = NodeId(pos as u32);
        }
        for &fi in &order {
            let n = &file_nodes[fi];
            let id = node_id_of_file[fi];
            let mut outputs = SmallVec::new();
            for (slot, o) in n.output.iter().enumerate() {
                if o.is_empty() {
                    outputs.push(None);
                } else {
                    outputs.push(Some(define(
                        &mut graph,
                        o,
                        ValueKind::NodeOutput { node: id, slot },
                        "a node output",
                    )?));
                }
            }
            let mut inputs = SmallVec::new();
            for (slot, name) in n.input.iter().enumerate() {
                if name.is_empty() {
                    inputs.push(None);
                    continue;
                }
                let v = graph.value_by_name[name.as_str()];
                graph.values[v.index()].consumers.push((id, slot));
                inputs.push(Some(v));
            }
            // Each file node is placed once: its name moves into the node.
            let name = std::mem::take(&mut node_names[fi]);
            graph.node_by_name.insert(name.clone(), id);
            graph.nodes.push(Node {
                name,
                op_type: n.op_type.clone(),
                domain: n.domain.clone(),
                proto_index: fi,
                inputs,
                outputs,
                attrs: n.attribute.clone(),
            });
        }

        let mut seen_outputs = HashSet::default();
        for vi in &g.output {
            let id = graph.value_by_name.get(&vi.name).copied().ok_or_else(|| {
                invalid(format!(
                    "graph output '{}' is not produced by anything",
                    vi.name
                ))
            })?;
            if seen_outputs.insert(id) {
                graph.outputs.push(id);
            }
        }
        Ok(graph)
    }

    /// The value called `name`.
    pub fn value_id(&self, name: &str) -> Option<ValueId> {
        self.value_by_name.get(name).copied()
    }
    /// The node called `name` (its unique IR name).
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.node_by_name.get(name).copied()
    }
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }
    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }
    /// The node producing `v`, if a node does.
    pub fn producer(&self, v: ValueId) -> Option<NodeId> {
        match self.value(v).kind {
            ValueKind::NodeOutput { node, .. } => Some(node),
            _ => None,
        }
    }
    /// Whether `v` is a graph output.
    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }
    /// Node ids in topological order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len() as u32).map(NodeId)
    }
}

/// Checks that the graph input `vi`, which names the initializer `v`, declares its element type
/// and dims (a symbolic or absent dim matches any size; an absent type or shape matches all).
fn check_param_input(g: &GraphProto, vi: &crate::proto::ValueInfoProto, v: &Value) -> Result<()> {
    let ValueKind::Initializer(i) = v.kind else {
        return Ok(());
    };
    let t = &g.initializer[i];
    let Some(type_proto::Value::TensorType(decl)) =
        vi.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    let fail = |what: String| {
        Err(OnnxError::tensor(
            &t.name,
            format!("is also a graph input, declared with {what}"),
        ))
    };
    if decl.elem_type != 0 && decl.elem_type != t.data_type {
        return fail(format!(
            "element type {} but the initializer holds {}",
            crate::tensor::dtype_name(decl.elem_type),
            crate::tensor::dtype_name(t.data_type)
        ));
    }
    let Some(shape) = &decl.shape else {
        return Ok(());
    };
    let agrees = shape.dim.len() == t.dims.len()
        && shape.dim.iter().zip(&t.dims).all(|(d, &n)| match &d.value {
            Some(dimension::Value::DimValue(v)) => *v == n,
            _ => true,
        });
    if !agrees {
        let dims: Vec<String> = shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) => v.to_string(),
                Some(dimension::Value::DimParam(p)) => p.clone(),
                None => "?".into(),
            })
            .collect();
        return fail(format!(
            "shape [{}] but the initializer has shape {:?}",
            dims.join(", "),
            t.dims
        ));
    }
    Ok(())
}

/// (dtype, declared dims) of every value the graph's inputs, outputs and value_info describe.
fn declared_shapes(g: &GraphProto) -> HashMap<&str, (i32, Option<Vec<Dim>>)> {
    let mut out = HashMap::default();
    for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
        let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            continue;
        };
        let dims = t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(v)) if *v >= 0 => Dim::Known(*v as usize),
                    Some(dimension::Value::DimParam(p)) => Dim::Dynamic(p.clone()),
                    _ => Dim::Dynamic(String::new()),
                })
                .collect()
        });
        out.insert(vi.name.as_str(), (t.elem_type, dims));
    }
    out
}

/// Names a node's subgraphs (If/Loop/Scan bodies) read without defining them.
fn captured_names(n: &crate::proto::NodeProto) -> Vec<String> {
    fn walk(g: &GraphProto, out: &mut Vec<String>) {
        let mut defined: HashSet<&str> = HashSet::default();
        for i in &g.input {
            defined.insert(&i.name);
        }
        for t in &g.initializer {
            defined.insert(&t.name);
        }
        for n in &g.node {
            for o in &n.output {
                defined.insert(o);
            }
        }
        for n in &g.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                if !defined.contains(i.as_str()) {
                    out.push(i.clone());
                }
            }
            for a in &n.attribute {
                for sub in a.g.as_deref().into_iter().chain(&a.graphs) {
                    walk(sub, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for a in &n.attribute {
        for sub in a.g.as_deref().into_iter().chain(&a.graphs) {
            walk(sub, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Kahn's algorithm keeping file order among ready nodes; on a cycle, returns a node on it.
fn topo_order(deps: &[Vec<usize>]) -> std::result::Result<Vec<usize>, usize> {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            indegree[i] += 1;
            users[p].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&i| indegree[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.push(std::cmp::Reverse(u));
            }
        }
    }
    if order.len() < n {
        return Err((0..n).find(|&i| indegree[i] > 0).unwrap_or(0));
    }
    Ok(order)
}
