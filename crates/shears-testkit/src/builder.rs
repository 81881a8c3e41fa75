//! Building ONNX models in Rust, for tests, examples and benches.
//!
//! [`ModelBuilder`] writes a graph the way PyTorch's exporter would: parameters named
//! `{layer}.weight`, `{layer}.bias`, `{layer}.running_mean`..., nodes named `/{layer}/Conv`, node
//! outputs named `{node}_output_{i}`. The layer helpers ([`layers`]) track the static shape of
//! every value they create, so that `conv(x, "conv1", 16, 3, 1, 1, 1, false)` knows its input
//! channels and makes a correctly shaped weight. Weights are deterministic pseudo-random numbers
//! ([`prng`]): the same builder seed and tensor name always give the same values, and values
//! differ per channel so that a wrong channel index shows numerically.
//!
//! The builder is test tooling: misuse by the calling code (asking for the shape of a value the
//! builder never saw, a rank the op does not allow) panics with a message naming the value.
//! [`zoo`] holds ready-made models covering the couplings Shears must understand.

pub mod layers;
pub mod llama;
pub mod prng;
pub mod quantize;
pub mod zoo;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use shears_onnx::external::ExternalStore;
use shears_onnx::model::Model;
use shears_onnx::proto::attribute_proto::AttributeType;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto,
};

/// The IR version a builder model importing the default domain at `opset` declares: the oldest
/// that supports the opset (as `onnx.helper.VERSION_TABLE` lists it), but at least 8, the
/// version current exporters write even for old opsets.
pub fn ir_version_for_opset(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        _ => 11,
    }
}

/// Builds one ONNX model.
///
/// Invariants: every node name and every value name it creates is unique within the model;
/// nodes are appended in topological order (a node's inputs exist before it is added); the shape
/// recorded for a value (`shape_of`) is the one ONNX shape inference would give, with `-1` for a
/// dimension only known at run time.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    opset: i64,
    name: String,
    seed: u64,
    /// Emit layer parameters as `Constant` nodes instead of initializers.
    weights_as_constants: bool,
    /// Declare every tracked node output in `graph.value_info`.
    declare_value_info: bool,
    /// Prefix of auto-named nodes (`/{scope}/Relu`), empty at top level.
    scope: String,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<String>,
    shapes: HashMap<String, Vec<i64>>,
    dtypes: HashMap<String, i32>,
    node_names: HashSet<String>,
    /// Next `_k` suffix to try per node-name base.
    next_suffix: HashMap<String, usize>,
    /// Every value name defined so far (inputs, initializers, node outputs).
    values: HashSet<String>,
}

impl ModelBuilder {
    /// An empty model importing the default ONNX domain at `opset`.
    pub fn new(opset: i64) -> Self {
        ModelBuilder {
            opset,
            name: "model".into(),
            seed: 0x5eed,
            weights_as_constants: false,
            declare_value_info: false,
            scope: String::new(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            shapes: HashMap::new(),
            dtypes: HashMap::new(),
            node_names: HashSet::new(),
            next_suffix: HashMap::new(),
            values: HashSet::new(),
        }
    }

    /// Names the graph (and the `<builder:NAME>` source of [`ModelBuilder::build_model`]).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the seed the random weights derive from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// From now on, layer parameters are emitted as `Constant` nodes (the "weights as
    /// constants" export style) instead of initializers, keeping the same value names.
    pub fn weights_as_constants(&mut self, on: bool) -> &mut Self {
        self.weights_as_constants = on;
        self
    }

    /// Whether [`ModelBuilder::build`] declares the tracked type and shape of every node output
    /// in `graph.value_info` (as `onnx.shape_inference` would), so tests can compare a shape
    /// inference against the builder's shapes. Off by default: exporters rarely write them.
    pub fn declare_value_info(&mut self, on: bool) -> &mut Self {
        self.declare_value_info = on;
        self
    }

    /// Sets the scope auto-named nodes are placed in: `"layer1.0"` names the next Add
    /// `/layer1.0/Add`. The empty string returns to the top level.
    pub fn set_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        self.scope = scope.into();
        self
    }

    /// The default-domain opset this model imports.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// Declares a float graph input. A negative dimension is dynamic: it is written as a
    /// `dim_param` (`"N"` on axis 0, `"d{axis}"` elsewhere) and tracked as `-1`.
    pub fn input(&mut self, name: &str, dims: &[i64]) -> String {
        self.input_typed(name, dims, DataType::Float as i32)
    }

    /// Declares a graph input of element type `elem_type` (see [`ModelBuilder::input`]).
    pub fn input_typed(&mut self, name: &str, dims: &[i64], elem_type: i32) -> String {
        self.define_value(name);
        let shape: Vec<i64> = dims.iter().map(|&d| if d < 0 { -1 } else { d }).collect();
        self.inputs.push(value_info(name, elem_type, Some(&shape)));
        self.shapes.insert(name.to_string(), shape);
        self.dtypes.insert(name.to_string(), elem_type);
        name.to_string()
    }

    /// Marks `name` as a graph output; its type and shape are the tracked ones, if known.
    pub fn output(&mut self, name: &str) {
        assert!(
            self.values.contains(name),
            "builder: output '{name}' is not a defined value"
        );
        self.outputs.push(name.to_string());
    }

    /// The tracked shape of `v` (`-1` for a dynamic dimension).
    ///
    /// Panics when the builder does not know it (a value made by [`ModelBuilder::node`] without
    /// [`ModelBuilder::set_shape`]).
    pub fn shape_of(&self, v: &str) -> &[i64] {
        self.shapes
            .get(v)
            .unwrap_or_else(|| panic!("builder: shape of '{v}' is unknown; call set_shape"))
    }

    /// The tracked shape of `v`, if known.
    pub fn try_shape_of(&self, v: &str) -> Option<&[i64]> {
        self.shapes.get(v).map(Vec::as_slice)
    }

    /// Records the shape of `v` (for values made with the low-level [`ModelBuilder::node`]).
    pub fn set_shape(&mut self, v: &str, dims: &[i64]) {
        self.shapes.insert(v.to_string(), dims.to_vec());
    }

    /// The tracked element type of `v` (float unless recorded otherwise).
    pub fn dtype_of(&self, v: &str) -> i32 {
        self.dtypes
            .get(v)
            .copied()
            .unwrap_or(DataType::Float as i32)
    }

    /// Records the element type of `v`.
    pub fn set_dtype(&mut self, v: &str, elem_type: i32) {
        self.dtypes.insert(v.to_string(), elem_type);
    }

    /// Adds a node with an automatic unique name (`/{scope}/{op_type}`, then `_1`, `_2`...) and
    /// `outputs` outputs named `{node}_output_{i}`; returns the output names.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let base = if self.scope.is_empty() {
            format!("/{op_type}")
        } else {
            format!("/{}/{op_type}", self.scope)
        };
        self.node_named(&base, op_type, inputs, outputs, attrs)
    }

    /// Adds a node called `name` (made unique with `_1`, `_2`... if taken); see
    /// [`ModelBuilder::node`].
    pub fn node_named(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let name = self.unique_node_name(name);
        let outs: Vec<String> = (0..outputs).map(|i| format!("{name}_output_{i}")).collect();
        self.push_node(name, op_type, inputs, &outs, attrs);
        outs
    }

    /// Adds a node with explicit output names (an empty name is an omitted optional output).
    pub fn node_with_outputs(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) {
        let name = self.unique_node_name(name);
        let outs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        self.push_node(name, op_type, inputs, &outs, attrs);
    }

    fn push_node(
        &mut self,
        name: String,
        op_type: &str,
        inputs: &[&str],
        outputs: &[String],
        attrs: Vec<AttributeProto>,
    ) {
        for i in inputs.iter().filter(|i| !i.is_empty()) {
            assert!(
                self.values.contains(*i),
                "builder: node '{name}' ({op_type}) reads '{i}', which is not defined yet"
            );
        }
        for o in outputs.iter().filter(|o| !o.is_empty()) {
            self.define_value(o);
        }
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            name,
            op_type: op_type.to_string(),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn unique_node_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        // Resume after the last suffix given to `base`, so a thousand auto-named Relus cost
        // linear, not quadratic, time.
        let next = self.next_suffix.entry(base.to_string()).or_insert(1);
        while self.node_names.contains(&name) {
            name = format!("{base}_{next}");
            *next += 1;
        }
        self.node_names.insert(name.clone());
        name
    }

    /// The last node added, to adjust what no helper covers (a domain, `metadata_props`).
    pub fn last_node_mut(&mut self) -> Option<&mut NodeProto> {
        self.nodes.last_mut()
    }

    /// A value name not used yet, starting from `base`.
    pub fn unique_value_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.values.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    fn define_value(&mut self, name: &str) {
        assert!(
            self.values.insert(name.to_string()),
            "builder: value '{name}' is defined twice"
        );
    }

    /// Adds an initializer (always an initializer, whatever the weights style).
    pub fn initializer(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        self.define_value(&name);
        self.shapes.insert(name.clone(), t.dims.clone());
        self.dtypes.insert(name.clone(), t.data_type);
        self.initializers.push(t);
        name
    }

    /// Adds a float initializer.
    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.initializer(tensor_f32(name, dims, data))
    }

    /// Adds an int64 initializer.
    pub fn init_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.initializer(tensor_i64(name, dims, data))
    }

    /// Adds a float initializer of deterministic pseudo-random values, uniform in
    /// `±1/sqrt(fan_in)` where `fan_in` is the product of all dims but the first (so deep
    /// chains keep activations in range).
    pub fn init_random(&mut self, name: &str, dims: &[i64]) -> String {
        let t = self.random_tensor(name, dims);
        self.initializer(t)
    }

    /// A random tensor as [`ModelBuilder::init_random`] makes it, without adding it.
    pub fn random_tensor(&self, name: &str, dims: &[i64]) -> TensorProto {
        let fan_in: i64 = dims.iter().skip(1).product::<i64>().max(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        self.uniform_tensor(name, dims, -bound, bound)
    }

    /// A float tensor of deterministic pseudo-random values uniform in `[lo, hi)`.
    pub fn uniform_tensor(&self, name: &str, dims: &[i64], lo: f32, hi: f32) -> TensorProto {
        let n = num_elements(dims);
        let mut rng = prng::Rng::for_tensor(self.seed, name);
        let mut raw = vec![0u8; n * 4];
        for chunk in raw.chunks_exact_mut(4) {
            chunk.copy_from_slice(&rng.uniform(lo, hi).to_le_bytes());
        }
        raw_tensor(name, dims, DataType::Float, raw)
    }

    /// Adds `t` as a layer parameter: an initializer, or a `Constant` node whose output has the
    /// tensor's name when the builder emits weights as constants.
    pub fn param(&mut self, t: TensorProto) -> String {
        if self.weights_as_constants {
            self.constant(t)
        } else {
            self.initializer(t)
        }
    }

    /// A random layer parameter (see [`ModelBuilder::init_random`] and [`ModelBuilder::param`]).
    pub fn param_random(&mut self, name: &str, dims: &[i64]) -> String {
        let t = self.random_tensor(name, dims);
        self.param(t)
    }

    /// A uniform random layer parameter in `[lo, hi)`.
    pub fn param_uniform(&mut self, name: &str, dims: &[i64], lo: f32, hi: f32) -> String {
        let t = self.uniform_tensor(name, dims, lo, hi);
        self.param(t)
    }

    /// A float `Constant` node holding `data`; returns its output. An empty `name` auto-names
    /// the node in the current scope (output `/Constant_output_0`); otherwise the output is the
    /// value `name`, produced by the node `/{name}/Constant`.
    pub fn constant_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.constant(tensor_f32(name, dims, data))
    }

    /// An int64 `Constant` node holding `data` (naming as [`ModelBuilder::constant_f32`]).
    pub fn constant_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.constant(tensor_i64(name, dims, data))
    }

    /// A `Constant` node holding `t`, its output named after `t.name` (naming as
    /// [`ModelBuilder::constant_f32`]); returns its output.
    pub fn constant(&mut self, mut t: TensorProto) -> String {
        let (dims, dtype) = (t.dims.clone(), t.data_type);
        let name = std::mem::take(&mut t.name);
        let out = if name.is_empty() {
            let outs = self.node("Constant", &[], 1, vec![attr_tensor("value", t)]);
            outs.into_iter().next().unwrap_or_default()
        } else {
            let node = format!("/{name}/Constant");
            self.node_with_outputs(
                &node,
                "Constant",
                &[],
                &[&name],
                vec![attr_tensor("value", t)],
            );
            name
        };
        self.shapes.insert(out.clone(), dims);
        self.dtypes.insert(out.clone(), dtype);
        out
    }

    /// The finished model: IR version for the opset, the default-domain opset import (plus
    /// version 1 of every other domain a node is in, such as onnxruntime's `com.microsoft`),
    /// the graph with typed and shaped inputs and outputs.
    pub fn build(self) -> ModelProto {
        let other_domains: std::collections::BTreeSet<&str> = self
            .nodes
            .iter()
            .map(|n| n.domain.as_str())
            .filter(|d| !d.is_empty() && *d != "ai.onnx")
            .collect();
        let opset_import = std::iter::once(OperatorSetIdProto {
            domain: String::new(),
            version: self.opset,
        })
        .chain(other_domains.into_iter().map(|d| OperatorSetIdProto {
            domain: d.to_string(),
            version: 1,
        }))
        .collect();
        let outputs = self
            .outputs
            .iter()
            .map(|o| value_info(o, self.dtype_of(o), self.shapes.get(o).map(Vec::as_slice)))
            .collect();
        let graph_outputs: HashSet<&String> = self.outputs.iter().collect();
        let value_infos = if self.declare_value_info {
            self.nodes
                .iter()
                .flat_map(|n| &n.output)
                .filter(|o| !o.is_empty() && !graph_outputs.contains(o))
                .filter_map(|o| {
                    let shape = self.shapes.get(o)?;
                    Some(value_info(o, self.dtype_of(o), Some(shape)))
                })
                .collect()
        } else {
            Vec::new()
        };
        ModelProto {
            ir_version: ir_version_for_opset(self.opset),
            opset_import,
            producer_name: "shears-builder".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: self.name,
                initializer: self.initializers,
                input: self.inputs,
                output: outputs,
                value_info: value_infos,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The finished model wrapped as a [`Model`] named `<builder:NAME>`.
    ///
    /// Panics if the IR rejects it, which means the builder was misused.
    pub fn build_model(self) -> Model {
        let source = format!("<builder:{}>", self.name);
        let proto = self.build();
        Model::from_proto(proto, source, ExternalStore::none())
            .unwrap_or_else(|e| panic!("builder produced an invalid model: {e}"))
    }
}

/// Declares every initializer of `proto`'s main graph as a graph input too, with its element
/// type and dims, after the existing inputs: the layout IR < 4 requires and PyTorch's
/// `keep_initializers_as_inputs=True` writes. Initializers already listed are left as they are.
pub fn initializers_as_inputs(proto: &mut ModelProto) {
    let Some(g) = proto.graph.as_mut() else {
        return;
    };
    let listed: HashSet<String> = g.input.iter().map(|i| i.name.clone()).collect();
    let extra: Vec<ValueInfoProto> = g
        .initializer
        .iter()
        .filter(|t| !listed.contains(&t.name))
        .map(|t| value_info(&t.name, t.data_type, Some(&t.dims)))
        .collect();
    g.input.extend(extra);
}

/// Number of elements of `dims` (1 for a scalar); panics on a negative dim.
fn num_elements(dims: &[i64]) -> usize {
    dims.iter()
        .map(|&d| {
            usize::try_from(d).unwrap_or_else(|_| panic!("builder: negative dim in {dims:?}"))
        })
        .product()
}

/// A float tensor stored as `raw_data`.
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    assert_eq!(
        num_elements(dims),
        data.len(),
        "tensor '{name}': dims {dims:?}"
    );
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_tensor(name, dims, DataType::Float, raw)
}

/// An int64 tensor stored as `raw_data`.
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    assert_eq!(
        num_elements(dims),
        data.len(),
        "tensor '{name}': dims {dims:?}"
    );
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_tensor(name, dims, DataType::Int64, raw)
}

/// A tensor of `data_type` holding `raw` (little-endian elements) as `raw_data`.
fn raw_tensor(name: &str, dims: &[i64], data_type: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: data_type as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

/// A tensor `ValueInfoProto`; dims `-1` are written as `dim_param` (`N` on axis 0, `d{axis}`
/// elsewhere), and `None` leaves the shape out.
pub fn value_info(name: &str, elem_type: i32, dims: Option<&[i64]>) -> ValueInfoProto {
    ValueInfoProto::tensor(name, elem_type, dims)
}

/// An `int` attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// Replaces the declared dims of graph input or output `name` in `values`, keeping its element
/// type: a model built small can then declare sizes no builder step would accept.
///
/// Panics when `values` declares no tensor `name` (misuse in a test).
pub fn declare(values: &mut [ValueInfoProto], name: &str, dims: &[i64]) {
    let vi = values
        .iter_mut()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no declared value {name}"));
    let elem_type = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(shears_onnx::proto::type_proto::Value::TensorType(t)) => t.elem_type,
        _ => panic!("{name} is not a tensor"),
    };
    *vi = ValueInfoProto::tensor(name, elem_type, Some(dims));
}

/// An `ints` attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A `float` attribute.
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

/// A `floats` attribute.
pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v.to_vec(),
        ..Default::default()
    }
}

/// A `string` attribute.
pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A `tensor` attribute.
pub fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(Box::new(t)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shears_onnx::tensor::{decode_f32, decode_i64};

    fn init<'a>(m: &'a ModelProto, name: &str) -> &'a TensorProto {
        let g = m.graph.as_ref().unwrap();
        g.initializer
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no initializer {name}"))
    }

    fn node<'a>(m: &'a ModelProto, name: &str) -> &'a NodeProto {
        let g = m.graph.as_ref().unwrap();
        g.node
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn f32s(t: &TensorProto) -> Vec<f32> {
        decode_f32(t, &ExternalStore::none()).unwrap()
    }

    #[test]
    fn conv_makes_pytorch_named_weights_of_the_right_shape() {
        let mut b = ModelBuilder::new(17);
        let x = b.input("x", &[1, 6, 10, 10]);
        let y = b.conv(&x, "layer1.0.conv1", 12, 3, 2, 1, 3, true);
        assert_eq!(y, "/layer1.0.conv1/Conv_output_0");
        assert_eq!(b.shape_of(&y), &[1, 12, 5, 5]);
        let y2 = b.conv(&y, "dw", 12, 5, 1, 0, 12, false);
        assert_eq!(b.shape_of(&y2), &[1, 12, 1, 1]);
        b.output(&y2);
        let m = b.build();
        assert_eq!(init(&m, "layer1.0.conv1.weight").dims, vec![12, 2, 3, 3]);
        assert_eq!(init(&m, "layer1.0.conv1.bias").dims, vec![12]);
        assert_eq!(init(&m, "dw.weight").dims, vec![12, 1, 5, 5]);
        let n = node(&m, "/layer1.0.conv1/Conv");
        assert_eq!(
            n.input,
            ["x", "layer1.0.conv1.weight", "layer1.0.conv1.bias"]
        );
        let attr = |n: &NodeProto, a: &str| n.attribute.iter().find(|x| x.name == a).cloned();
        assert_eq!(attr(n, "group").unwrap().i, 3);
        assert_eq!(attr(n, "strides").unwrap().ints, [2, 2]);
        assert_eq!(attr(n, "pads").unwrap().ints, [1, 1, 1, 1]);
        assert_eq!(attr(n, "kernel_shape").unwrap().ints, [3, 3]);
        let out = &m.graph.as_ref().unwrap().output[0];
        assert_eq!(out, &value_info(&y2, 1, Some(&[1, 12, 1, 1])));
    }

    #[test]
    fn bn_has_four_parameters_with_positive_variance() {
        let mut b = ModelBuilder::new(17);
        let x = b.input("x", &[1, 64, 4, 4]);
        let y = b.bn(&x, "bn1");
        b.output(&y);
        let m = b.build();
        assert_eq!(
            node(&m, "/bn1/BatchNormalization").input,
            [
                "x",
                "bn1.weight",
                "bn1.bias",
                "bn1.running_mean",
                "bn1.running_var"
            ]
        );
        let var = f32s(init(&m, "bn1.running_var"));
        assert_eq!(var.len(), 64);
        assert!(var.iter().all(|&v| v >= 0.5));
    }

    #[test]
    fn random_weights_are_deterministic_and_differ_per_channel() {
        let build = |seed| {
            let mut b = ModelBuilder::new(17).seed(seed);
            let x = b.input("x", &[1, 4, 3, 3]);
            let y = b.conv(&x, "c", 8, 3, 1, 1, 1, true);
            b.output(&y);
            b.build()
        };
        assert_eq!(build(1), build(1));
        assert_ne!(init(&build(1), "c.weight"), init(&build(2), "c.weight"));
        let w = f32s(init(&build(1), "c.weight"));
        let per_out = 4 * 3 * 3;
        let channels: Vec<&[f32]> = w.chunks(per_out).collect();
        for i in 0..channels.len() {
            for j in i + 1..channels.len() {
                assert_ne!(channels[i], channels[j], "channels {i} and {j} equal");
            }
        }
        let bound = 1.0 / (per_out as f32).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let bias = f32s(init(&build(1), "c.bias"));
        let mut sorted = bias.clone();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), bias.len(), "bias values repeat");
    }

    #[test]
    fn auto_names_are_unique_and_scoped() {
        let mut b = ModelBuilder::new(17);
        let x = b.input("x", &[1, 2]);
        let a = b.relu(&x);
        let c = b.relu(&a);
        b.set_scope("layer1.0");
        let d = b.relu(&c);
        b.output(&d);
        assert_eq!(
            [a.as_str(), c.as_str(), d.as_str()],
            [
                "/Relu_output_0",
                "/Relu_1_output_0",
                "/layer1.0/Relu_output_0"
            ]
        );
    }

    #[test]
    fn opset_decides_between_attribute_and_input_forms() {
        let clip = |opset| {
            let mut b = ModelBuilder::new(opset);
            let x = b.input("x", &[1, 4]);
            let y = b.clip(&x, 0.0, 6.0);
            b.output(&y);
            let m = b.build();
            node(&m, "/Clip").clone()
        };
        let old = clip(9);
        assert_eq!(old.input.len(), 1);
        assert_eq!(old.attribute.len(), 2);
        let new = clip(13);
        assert_eq!(new.input, ["x", "/Clip_min", "/Clip_max"]);
        assert!(new.attribute.is_empty());

        let mut b = ModelBuilder::new(12);
        let x = b.input("x", &[1, 6, 2]);
        let parts = b.split(&x, 1, &[2, 4]);
        assert_eq!(b.shape_of(&parts[1]), &[1, 4, 2]);
        let m = b.clone().build();
        assert_eq!(node(&m, "/Split").input.len(), 1);
        let mut b13 = ModelBuilder::new(13);
        let x = b13.input("x", &[1, 6, 2]);
        b13.split(&x, 1, &[2, 4]);
        let m = b13.build();
        assert_eq!(node(&m, "/Split").input, ["x", "/Split_split"]);
        assert_eq!(
            decode_i64(init(&m, "/Split_split"), &ExternalStore::none()).unwrap(),
            [2, 4]
        );
    }

    #[test]
    fn gelu_is_one_op_at_opset_20_and_erf_form_before() {
        let ops = |opset| {
            let mut b = ModelBuilder::new(opset);
            let x = b.input("x", &[1, 4]);
            let y = b.gelu(&x);
            b.output(&y);
            let m = b.build();
            let g = m.graph.unwrap();
            g.node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ops(20), ["Gelu"]);
        assert_eq!(ops(17), ["Div", "Erf", "Add", "Mul", "Mul"]);
    }

    #[test]
    fn shape_tracking_of_reshaping_ops() {
        let mut b = ModelBuilder::new(17);
        let x = b.input("x", &[-1, 8, 4, 4]);
        let r = b.reshape(&x, &[0, 2, 4, 16]);
        assert_eq!(b.shape_of(&r), &[-1, 2, 4, 16]);
        let t = b.transpose(&r, &[0, 2, 1, 3]);
        assert_eq!(b.shape_of(&t), &[-1, 4, 2, 16]);
        let f = b.flatten(&t, 1);
        assert_eq!(b.shape_of(&f), &[-1, 128]);
        let s = b.slice(&x, &[4], &[i64::MAX], &[1], &[]);
        assert_eq!(b.shape_of(&s), &[-1, 4, 4, 4]);
        let s2 = b.slice(&x, &[-1], &[i64::MIN], &[1], &[-2]);
        assert_eq!(b.shape_of(&s2), &[-1, 4, 4, 4]);
        let p = b.pad(&x, &[0, 0, 1, 2, 0, 0, 1, 2]);
        assert_eq!(b.shape_of(&p), &[-1, 8, 6, 8]);
        let z = b.resize(&p, &[1.0, 1.0, 2.0, 0.5]);
        assert_eq!(b.shape_of(&z), &[-1, 8, 12, 4]);
        let m = b.reduce_mean(&z, &[2, 3], false);
        assert_eq!(b.shape_of(&m), &[-1, 8]);
        let y = b.reshape(&f, &[-1, 64, 2]);
        assert_eq!(b.shape_of(&y), &[-1, 64, 2]);
        let y = b.matmul_weight(&y, "proj", 5);
        assert_eq!(b.shape_of(&y), &[-1, 64, 5]);
        b.output(&y);
        let m = b.build();
        assert_eq!(init(&m, "proj.weight").dims, [2, 5]);
        let input = &m.graph.as_ref().unwrap().input[0];
        assert_eq!(input, &value_info("x", 1, Some(&[-1, 8, 4, 4])));
    }

    #[test]
    fn weights_as_constants_keeps_names_and_values() {
        let build = |constants: bool| {
            let mut b = ModelBuilder::new(17);
            b.weights_as_constants(constants);
            let x = b.input("x", &[1, 3, 4, 4]);
            let y = b.conv(&x, "conv1", 4, 3, 1, 1, 1, true);
            b.output(&y);
            b.build()
        };
        let (inits, consts) = (build(false), build(true));
        let g = consts.graph.as_ref().unwrap();
        assert!(g.initializer.is_empty());
        let c = node(&consts, "/conv1.weight/Constant");
        assert_eq!(c.output, ["conv1.weight"]);
        let mut t = *c.attribute[0].t.clone().unwrap();
        t.name = "conv1.weight".into();
        assert_eq!(&t, init(&inits, "conv1.weight"));
        assert_eq!(
            node(&consts, "/conv1/Conv").input,
            node(&inits, "/conv1/Conv").input
        );
    }

    #[test]
    fn value_info_declares_every_intermediate_when_asked() {
        let mut b = ModelBuilder::new(17);
        b.declare_value_info(true);
        let x = b.input("x", &[1, 3, 8, 8]);
        let y = b.conv(&x, "c", 4, 3, 2, 1, 1, false);
        let z = b.relu(&y);
        b.output(&z);
        let g = b.build().graph.unwrap();
        assert_eq!(g.value_info, [value_info(&y, 1, Some(&[1, 4, 4, 4]))]);
    }

    #[test]
    fn build_model_is_accepted_by_the_ir() {
        let mut b = ModelBuilder::new(17).named("tiny");
        let x = b.input("x", &[1, 3, 4, 4]);
        let y = b.conv(&x, "c", 4, 1, 1, 0, 1, false);
        b.output(&y);
        let m = b.build_model();
        assert_eq!(m.source, "<builder:tiny>");
        assert_eq!(m.graph.nodes.len(), 1);
        assert_eq!(m.proto.ir_version, 8);
        assert_eq!(m.graph.opset, 17);
    }

    #[test]
    #[should_panic(expected = "reads 'nope'")]
    fn reading_an_undefined_value_panics_with_its_name() {
        let mut b = ModelBuilder::new(17);
        b.node("Relu", &["nope"], 1, vec![]);
    }
}
