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
pub mod prng;
pub mod zoo;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::external::ExternalStore;
use crate::model::Model;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{dimension, Dimension};
use crate::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The IR version that a model importing the default domain at `opset` declares (the oldest
/// that supports the opset, as `onnx.helper.VERSION_TABLE` lists it).
pub fn ir_version_for_opset(opset: i64) -> i64 {
    match opset {
        ..=8 => 4,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
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
    /// Prefix of auto-named nodes (`/{scope}/Relu`), empty at top level.
    scope: String,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<String>,
    shapes: HashMap<String, Vec<i64>>,
    dtypes: HashMap<String, i32>,
    node_names: HashSet<String>,
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
            scope: String::new(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            shapes: HashMap::new(),
            dtypes: HashMap::new(),
            node_names: HashSet::new(),
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
        let mut k = 1;
        while self.node_names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.node_names.insert(name.clone());
        name
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
        let mut raw = Vec::with_capacity(n * 4);
        for _ in 0..n {
            raw.extend_from_slice(&rng.uniform(lo, hi).to_le_bytes());
        }
        TensorProto {
            name: name.to_string(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            raw_data: Bytes::from(raw),
            ..Default::default()
        }
    }

    /// Adds `t` as a layer parameter: an initializer, or a `Constant` node whose output has the
    /// tensor's name when the builder emits weights as constants.
    pub fn param(&mut self, t: TensorProto) -> String {
        if !self.weights_as_constants {
            return self.initializer(t);
        }
        let name = t.name.clone();
        let (dims, dtype) = (t.dims.clone(), t.data_type);
        self.node_with_outputs(
            &format!("/{name}/Constant"),
            "Constant",
            &[],
            &[&name],
            vec![attr_tensor("value", t)],
        );
        self.shapes.insert(name.clone(), dims);
        self.dtypes.insert(name.clone(), dtype);
        name
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

    /// A float `Constant` node holding `data`; returns its output.
    pub fn constant_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.constant(tensor_f32(name, dims, data))
    }

    /// An int64 `Constant` node holding `data`; returns its output.
    pub fn constant_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.constant(tensor_i64(name, dims, data))
    }

    /// A `Constant` node holding `t` (auto-named in the current scope); returns its output.
    pub fn constant(&mut self, mut t: TensorProto) -> String {
        let (dims, dtype) = (t.dims.clone(), t.data_type);
        t.name.clear();
        let out = self.node("Constant", &[], 1, vec![attr_tensor("value", t)]);
        let out = out.into_iter().next().unwrap_or_default();
        self.shapes.insert(out.clone(), dims);
        self.dtypes.insert(out.clone(), dtype);
        out
    }

    /// The finished model: IR version for the opset, one default-domain opset import, the graph
    /// with typed and shaped inputs and outputs.
    pub fn build(self) -> ModelProto {
        let outputs = self
            .outputs
            .iter()
            .map(|o| value_info(o, self.dtype_of(o), self.shapes.get(o).map(Vec::as_slice)))
            .collect();
        ModelProto {
            ir_version: ir_version_for_opset(self.opset),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            producer_name: "shears-builder".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: self.name,
                initializer: self.initializers,
                input: self.inputs,
                output: outputs,
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
    let mut raw = Vec::with_capacity(data.len() * 4);
    data.iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

/// An int64 tensor stored as `raw_data`.
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    assert_eq!(
        num_elements(dims),
        data.len(),
        "tensor '{name}': dims {dims:?}"
    );
    let mut raw = Vec::with_capacity(data.len() * 8);
    data.iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: DataType::Int64 as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

/// A tensor `ValueInfoProto`; dims `-1` are written as `dim_param` (`N` on axis 0, `d{axis}`
/// elsewhere), and `None` leaves the shape out.
pub fn value_info(name: &str, elem_type: i32, dims: Option<&[i64]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .enumerate()
            .map(|(axis, &d)| Dimension {
                value: Some(if d >= 0 {
                    dimension::Value::DimValue(d)
                } else if axis == 0 {
                    dimension::Value::DimParam("N".into())
                } else {
                    dimension::Value::DimParam(format!("d{axis}"))
                }),
                denotation: String::new(),
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape,
            })),
            denotation: String::new(),
        }),
        ..Default::default()
    }
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
        t: Some(t),
        ..Default::default()
    }
}
