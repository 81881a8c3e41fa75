//! [`Model`]: a decoded ONNX model together with its IR and the means to read its tensors.

use std::borrow::Cow;
use std::path::Path;

use bytes::Bytes;

use crate::error::{OnnxError, Result};
use crate::external::ExternalStore;
use crate::ir::{Graph, NodeId, ValueId, ValueKind};
use crate::proto::{ModelProto, NodeProto, TensorProto};
use crate::tensor;

/// A loaded model: the protobuf exactly as decoded, its analysed main graph, and the store its
/// external tensors are read from.
///
/// Invariants: `graph` was built from `proto` and indexes into it; nothing here mutates `proto`
/// (transformations clone it and build a new `Model`).
#[derive(Debug)]
pub struct Model {
    pub proto: ModelProto,
    pub graph: Graph,
    pub external: ExternalStore,
    /// Where the model came from, for messages (a path, or a name given by the caller).
    pub source: String,
    /// Size of the model file in bytes, when read from a file.
    pub file_size: Option<u64>,
    /// The symbolic input dimensions shape inference left symbolic, and what depends on them
    /// (empty until [`crate::shape::infer_shapes`] runs, and when every dimension is bound).
    pub symbolic: crate::shape::symbolic::Symbolic,
}

impl Model {
    /// Memory-maps and decodes the model at `path`, resolving external data beside it, and
    /// validates every tensor's length and external reference ([`Model::validate_tensors`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let decoded = crate::load::decode_file(path, &source)?;
        let size = decoded.bytes.len() as u64;
        let mut m = Model::from_proto(
            decoded.proto,
            source.clone(),
            ExternalStore::for_model_file(path),
        )
        .map_err(|e| e.in_file(&source))?;
        m.file_size = Some(size);
        m.validate_tensors().map_err(|e| e.in_file(&m.source))?;
        Ok(m)
    }

    /// Checks every tensor's payload length against its dims and type, and every external
    /// reference (safe location, range inside the side file), reading no payload byte.
    pub fn validate_tensors(&self) -> Result<()> {
        tensor::validate_all(&self.proto, &self.external)
    }

    /// Decodes an in-memory model (an external reference is an error: there is no folder) and
    /// validates its tensors as [`Model::load`] does, so a bad length is an error here.
    pub fn from_bytes(bytes: Bytes, source: impl Into<String>) -> Result<Model> {
        let source = source.into();
        let proto = crate::load::decode_model(bytes, &source)?;
        let m = Model::from_proto(proto, source.clone(), ExternalStore::none())
            .map_err(|e| e.in_file(&source))?;
        m.validate_tensors().map_err(|e| e.in_file(&source))?;
        Ok(m)
    }

    /// Wraps an already decoded or built proto. Sparse initializers become dense initializers
    /// (appended after the others), so every reader sees them as ordinary constants.
    pub fn from_proto(
        proto: ModelProto,
        source: impl Into<String>,
        external: ExternalStore,
    ) -> Result<Model> {
        let source = source.into();
        let mut proto = proto;
        // Sparse initializers are read as the dense constants they describe.
        crate::sparse::densify_initializers(&mut proto, &external)?;
        let graph = Graph::build(&proto, &source)?;
        Ok(Model {
            proto,
            graph,
            external,
            source,
            file_size: None,
            symbolic: Default::default(),
        })
    }

    /// The node's protobuf.
    pub fn node_proto(&self, id: NodeId) -> &NodeProto {
        &self.proto.graph.as_ref().expect("checked at load").node[self.graph.node(id).proto_index]
    }

    /// The initializer holding `v`, if `v` is one.
    pub fn initializer(&self, v: ValueId) -> Option<&TensorProto> {
        match self.graph.value(v).kind {
            ValueKind::Initializer(i) => self.proto.graph.as_ref()?.initializer.get(i),
            _ => None,
        }
    }

    /// Whether `v` is stored in the model: an initializer or the output of a default-domain
    /// `Constant` node (checked without copying the tensor, as [`Model::constant`] would).
    pub fn is_stored(&self, v: ValueId) -> bool {
        match self.graph.value(v).kind {
            ValueKind::Initializer(_) => true,
            ValueKind::NodeOutput { node, .. } => {
                let n = self.graph.node(node);
                n.op_type == "Constant" && (n.domain.is_empty() || n.domain == "ai.onnx")
            }
            ValueKind::Input => false,
        }
    }

    /// The constant tensor `v` holds: an initializer, or the output of a `Constant` node
    /// (`value`, `value_float(s)` and `value_int(s)` forms).
    pub fn constant(&self, v: ValueId) -> Option<Cow<'_, TensorProto>> {
        if let Some(t) = self.initializer(v) {
            return Some(Cow::Borrowed(t));
        }
        let node = self.graph.node(self.graph.producer(v)?);
        if node.op_type != "Constant" || !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return None;
        }
        let name = &self.graph.value(v).name;
        let a = node.attrs.first()?;
        match a.name.as_str() {
            "value" => a.t.as_deref().map(|t| {
                let mut t = t.clone();
                t.name = name.clone();
                Cow::Owned(t)
            }),
            "value_float" => Some(Cow::Owned(tensor::from_f32(name.clone(), &[], &[a.f]))),
            "value_floats" => Some(Cow::Owned(tensor::from_f32(
                name.clone(),
                &[a.floats.len()],
                &a.floats,
            ))),
            "value_int" => Some(Cow::Owned(tensor::from_i64(name.clone(), &[], &[a.i]))),
            "value_ints" => Some(Cow::Owned(tensor::from_i64(
                name.clone(),
                &[a.ints.len()],
                &a.ints,
            ))),
            _ => None,
        }
    }

    /// A tensor's values as `f32` (see [`tensor::decode_f32`]).
    pub fn f32s(&self, t: &TensorProto) -> Result<Vec<f32>> {
        tensor::decode_f32(t, &self.external)
    }

    /// A tensor's values as `i64` (see [`tensor::decode_i64`]).
    pub fn i64s(&self, t: &TensorProto) -> Result<Vec<i64>> {
        tensor::decode_i64(t, &self.external)
    }

    /// A tensor's little-endian payload (see [`tensor::payload_le`]).
    pub fn payload(&self, t: &TensorProto) -> Result<Bytes> {
        tensor::payload_le(t, &self.external)
    }

    /// The constant value `v` as f32s, with a clear error when it is not a constant.
    pub fn constant_f32(&self, v: ValueId) -> Result<Vec<f32>> {
        let t = self.constant(v).ok_or_else(|| {
            OnnxError::tensor(
                &self.graph.value(v).name,
                "is not a constant or initializer",
            )
        })?;
        self.f32s(&t)
    }
}
