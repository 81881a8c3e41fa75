//! Test graphs for the unit tests of this crate: [`GraphBuilder`] (a model written node by
//! node with explicit value names, declaring value shapes as an exporter would), the attribute
//! helpers, and the data-driven [`check`] helper (one node, shapes in, shapes out).
//!
//! The full model builder lives in `shears-testkit`, which depends on this crate: unit tests
//! here cannot use it (its `ModelProto` would be another crate's type), so this is the small
//! proto writer they need.

use crate::error::Result;
use crate::input_shapes::InputShapes;
use crate::model::Model;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto,
};
use crate::tensor;

/// A tensor `ValueInfoProto`; dims `-1` are written as `dim_param` (`N` on axis 0, `d{axis}`
/// elsewhere), and `None` leaves the shape out.
pub fn value_info(name: &str, elem_type: i32, dims: Option<&[i64]>) -> ValueInfoProto {
    ValueInfoProto::tensor(name, elem_type, dims)
}

fn attr(name: &str, ty: AttributeType, fill: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    };
    fill(&mut a);
    a
}
/// An `int` attribute.
pub fn ai(name: &str, v: i64) -> AttributeProto {
    attr(name, AttributeType::Int, |a| a.i = v)
}
/// An `ints` attribute.
pub fn aints(name: &str, v: &[i64]) -> AttributeProto {
    attr(name, AttributeType::Ints, |a| a.ints = v.to_vec())
}
/// A `float` attribute.
pub fn af(name: &str, v: f32) -> AttributeProto {
    attr(name, AttributeType::Float, |a| a.f = v)
}
/// A `floats` attribute.
pub fn afloats(name: &str, v: &[f32]) -> AttributeProto {
    attr(name, AttributeType::Floats, |a| a.floats = v.to_vec())
}
/// A `string` attribute.
pub fn astr(name: &str, v: &str) -> AttributeProto {
    attr(name, AttributeType::String, |a| a.s = v.as_bytes().to_vec())
}
/// A `tensor` attribute.
pub fn atensor(name: &str, t: TensorProto) -> AttributeProto {
    attr(name, AttributeType::Tensor, |a| a.t = Some(Box::new(t)))
}

/// Builds a one-graph model node by node, with explicit value names.
#[derive(Clone)]
pub struct GraphBuilder {
    opset: i64,
    g: GraphProto,
    declared: Vec<ValueInfoProto>,
    nodes: usize,
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

impl GraphBuilder {
    pub fn new(opset: i64) -> Self {
        GraphBuilder {
            opset,
            g: GraphProto::default(),
            declared: Vec::new(),
            nodes: 0,
        }
    }
    pub fn input(&mut self, name: &str, shape: &[usize]) -> &mut Self {
        self.g
            .input
            .push(value_info(name, DataType::Float as i32, Some(&dims(shape))));
        self
    }
    /// An input with dynamic (`None`) dims.
    pub fn input_dyn(&mut self, name: &str, shape: &[Option<usize>]) -> &mut Self {
        let d: Vec<i64> = shape.iter().map(|d| d.map_or(-1, |v| v as i64)).collect();
        self.g
            .input
            .push(value_info(name, DataType::Float as i32, Some(&d)));
        self
    }
    pub fn init(&mut self, t: TensorProto) -> &mut Self {
        self.g.initializer.push(t);
        self
    }
    pub fn init_ints(&mut self, name: &str, shape: &[usize], data: &[i64]) -> &mut Self {
        self.init(tensor::from_i64(name, shape, data))
    }
    pub fn init_f32(&mut self, name: &str, shape: &[usize]) -> &mut Self {
        let n: usize = shape.iter().product();
        self.init(tensor::from_f32(name, shape, &vec![0.5; n]))
    }
    /// A node named `{op}_{index}`.
    pub fn node(&mut self, op: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) {
        let name = format!("{op}_{}", self.nodes);
        self.node_named(&name, op, ins, outs, attrs);
    }
    pub fn node_named(
        &mut self,
        name: &str,
        op: &str,
        ins: &[&str],
        outs: &[&str],
        attrs: Vec<AttributeProto>,
    ) {
        self.nodes += 1;
        self.g.node.push(NodeProto {
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            name: name.to_string(),
            op_type: op.to_string(),
            attribute: attrs,
            ..Default::default()
        });
    }
    /// Declares `name`'s shape in `value_info`, as an exporter would.
    pub fn declare(&mut self, name: &str, shape: &[usize]) {
        self.declared.push(value_info(name, 0, Some(&dims(shape))));
    }
    /// Marks `name` as a graph output, declaring neither type nor shape (so that only
    /// [`GraphBuilder::declare`] declares anything).
    pub fn output(&mut self, name: &str) {
        self.g.output.push(value_info(name, 0, None));
    }
    /// The model's proto: the oldest IR version that supports the opset (at least 8), one
    /// default-domain opset import.
    pub fn proto(&self) -> ModelProto {
        let ir_version = match self.opset {
            ..=18 => 8,
            19..=20 => 9,
            21..=22 => 10,
            _ => 11,
        };
        let mut g = self.g.clone();
        g.value_info.extend(self.declared.iter().cloned());
        ModelProto {
            ir_version,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            graph: Some(g),
            ..Default::default()
        }
    }
    pub fn model(&self) -> Model {
        let proto = self.proto();
        Model::from_proto(proto, "test", crate::external::ExternalStore::none())
            .expect("test graph is valid")
    }
    pub fn infer(&self, specs: &[&str]) -> Result<Model> {
        let mut m = self.model();
        super::infer_shapes(&mut m, &InputShapes::parse(specs)?)?;
        Ok(m)
    }
}

/// One input of a [`check`]ed node.
#[derive(Clone, Debug)]
pub enum In {
    /// A float runtime input of this shape.
    S(Vec<usize>),
    /// An int64 initializer with these dims and contents.
    I(Vec<usize>, Vec<i64>),
    /// A float initializer with these dims and contents.
    F(Vec<usize>, Vec<f32>),
    /// An omitted optional input (`""`).
    None,
}

/// A float input of shape `s`.
pub fn s(shape: &[usize]) -> In {
    In::S(shape.to_vec())
}
/// A 1-D int64 constant.
pub fn i1(data: &[i64]) -> In {
    In::I(vec![data.len()], data.to_vec())
}
/// A scalar int64 constant.
pub fn i0(v: i64) -> In {
    In::I(vec![], vec![v])
}
/// A 1-D float constant.
pub fn f1(data: &[f32]) -> In {
    In::F(vec![data.len()], data.to_vec())
}

/// Inferred outputs by slot: shape and folded contents, `None` where unknown.
pub type Outputs = Vec<Option<(Vec<usize>, Option<Vec<i64>>)>>;

/// Runs one `op` node over `inputs` with `n_out` outputs; the inferred outputs by slot
/// (`None` where unknown), with their folded contents.
pub fn run(
    opset: i64,
    op: &str,
    attrs: Vec<AttributeProto>,
    inputs: &[In],
    n_out: usize,
) -> Result<Outputs> {
    let mut b = GraphBuilder::new(opset);
    let mut names = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        let name = format!("in{i}");
        match inp {
            In::S(shape) => {
                b.input(&name, shape);
            }
            In::I(shape, data) => {
                b.init_ints(&name, shape, data);
            }
            In::F(shape, data) => {
                b.init(tensor::from_f32(&name, shape, data));
            }
            In::None => {
                names.push(String::new());
                continue;
            }
        }
        names.push(name);
    }
    let outs: Vec<String> = (0..n_out).map(|j| format!("out{j}")).collect();
    let ins: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let out_refs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
    b.node_named("n", op, &ins, &out_refs, attrs);
    for o in &outs {
        b.output(o);
    }
    let m = b.infer(&[])?;
    Ok(outs
        .iter()
        .map(|o| {
            let v = m.graph.value(m.graph.value_id(o).expect("output exists"));
            v.shape.clone().map(|s| (s, v.folded.clone()))
        })
        .collect())
}

/// Asserts that `op` over `inputs` infers exactly the output shapes `expect`.
#[track_caller]
pub fn check(opset: i64, op: &str, attrs: Vec<AttributeProto>, inputs: &[In], expect: &[&[usize]]) {
    let got = run(opset, op, attrs, inputs, expect.len())
        .unwrap_or_else(|e| panic!("{op} {inputs:?}: {e}"));
    let got: Vec<Option<Vec<usize>>> = got.into_iter().map(|o| o.map(|(s, _)| s)).collect();
    let want: Vec<Option<Vec<usize>>> = expect.iter().map(|s| Some(s.to_vec())).collect();
    assert_eq!(got, want, "{op} {inputs:?}");
}

/// Asserts that `op` over `inputs` infers output 0 with shape `shape` and contents `data`.
#[track_caller]
pub fn check_fold(
    opset: i64,
    op: &str,
    attrs: Vec<AttributeProto>,
    inputs: &[In],
    shape: &[usize],
    data: &[i64],
) {
    let got = run(opset, op, attrs, inputs, 1).unwrap_or_else(|e| panic!("{op} {inputs:?}: {e}"));
    assert_eq!(
        got[0],
        Some((shape.to_vec(), Some(data.to_vec()))),
        "{op} {inputs:?}"
    );
}

/// Asserts that `op` over `inputs` is rejected with a message containing `needle`.
#[track_caller]
pub fn check_err(opset: i64, op: &str, attrs: Vec<AttributeProto>, inputs: &[In], needle: &str) {
    match run(opset, op, attrs, inputs, 1) {
        Ok(o) => panic!("{op} {inputs:?}: expected an error, got {o:?}"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains(needle), "{op}: '{e}' lacks '{needle}'");
        }
    }
}

/// Asserts that `op` over `inputs` leaves output 0 unknown without failing.
#[track_caller]
pub fn check_unknown(opset: i64, op: &str, attrs: Vec<AttributeProto>, inputs: &[In]) {
    let got = run(opset, op, attrs, inputs, 1).unwrap_or_else(|e| panic!("{op} {inputs:?}: {e}"));
    assert_eq!(got[0], None, "{op} {inputs:?}");
}
