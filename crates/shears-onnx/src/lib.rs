//! Shears' ONNX layer: protobuf messages ([`proto`]), reading and writing models ([`load`],
//! [`save`], [`external`]), tensor payloads ([`tensor`]), the IR ([`ir`], [`Model`]) and static
//! shape inference ([`shape`]).
//!
//! Nothing above this crate touches protobuf bytes directly.

pub mod cost;
pub mod cut;
pub mod error;
pub mod external;
pub mod input_shapes;
pub mod ir;
pub mod load;
pub mod model;
pub mod ops;
pub mod proto;
pub mod save;
pub mod shape;
pub mod sparse;
pub mod tensor;
pub mod walk;

pub use error::{OnnxError, Result};
pub use input_shapes::InputShapes;
pub use ir::{Dim, Graph, Node, NodeId, Value, ValueId, ValueKind};
pub use model::Model;
