//! Layer helpers of [`ModelBuilder`]: each adds one layer (or the few nodes an exporter writes
//! for it), creates its parameters with the right shapes from the tracked input shape, and
//! records its output shape.
//!
//! Parameter and node names follow PyTorch's exporter: a layer called `layer1.0.conv1` owns
//! `layer1.0.conv1.weight` and `layer1.0.conv1.bias` and is the node `/layer1.0.conv1/Conv`.
//! Parameter-free ops (Relu, Add, ...) are auto-named in the current scope (`/Relu`, `/Relu_1`,
//! or `/layer1.0/Relu` after `set_scope("layer1.0")`). Ops whose arguments became inputs in some
//! opset (Clip's bounds, Split's sizes, Slice's bounds, Unsqueeze's axes, ReduceMean's axes, Pad's
//! pads, Resize's scales) are written in the form the builder's opset requires.

mod conv;
mod elementwise;
mod linear;
mod norm;
mod shape_ops;

pub use conv::Conv2d;

use super::{tensor_f32, tensor_i64, ModelBuilder};
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::AttributeProto;

/// Broadcasts two shapes numpy-style; `-1` (unknown) yields to a known dimension.
pub fn broadcast(a: &[i64], b: &[i64]) -> Vec<i64> {
    let rank = a.len().max(b.len());
    let at = |s: &[i64], i: usize| -> i64 {
        let off = rank - s.len();
        if i < off {
            1
        } else {
            s[i - off]
        }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match (x, y) {
                (1, d) | (d, 1) => d,
                (-1, d) | (d, -1) => d,
                (x, y) => {
                    assert_eq!(x, y, "builder: shapes {a:?} and {b:?} do not broadcast");
                    x
                }
            }
        })
        .collect()
}

/// Output size of a sliding window (Conv, pools) over `d` elements; `-1` stays unknown.
fn window_out(d: i64, kernel: i64, stride: i64, pad_begin: i64, pad_end: i64) -> i64 {
    if d < 0 {
        -1
    } else {
        (d + pad_begin + pad_end - kernel) / stride + 1
    }
}

pub(super) fn norm_axis(axis: i64, rank: usize) -> usize {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    assert!(
        (0..rank as i64).contains(&a),
        "builder: axis {axis} out of range for rank {rank}"
    );
    a as usize
}

fn product_or_unknown(dims: &[i64]) -> i64 {
    if dims.iter().any(|&d| d < 0) {
        -1
    } else {
        dims.iter().product()
    }
}

impl ModelBuilder {
    /// Reserves the auto name of the next `op_type` node in the current scope.
    pub(super) fn auto_node_name(&mut self, op_type: &str) -> String {
        let base = if self.scope.is_empty() {
            format!("/{op_type}")
        } else {
            format!("/{}/{op_type}", self.scope)
        };
        self.unique_node_name(&base)
    }

    /// Adds the already-named (reserved) node with one output `{node}_output_0` of shape
    /// `shape` and the element type of its first input.
    pub(super) fn emit(
        &mut self,
        node: String,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let out = format!("{node}_output_0");
        let dtype = inputs
            .first()
            .filter(|i| !i.is_empty())
            .map_or(DataType::Float as i32, |i| self.dtype_of(i));
        self.push_node(node, op_type, inputs, std::slice::from_ref(&out), attrs);
        self.shapes.insert(out.clone(), shape);
        self.dtypes.insert(out.clone(), dtype);
        out
    }

    /// An auto-named node with one output of `shape`.
    pub(super) fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let node = self.auto_node_name(op_type);
        self.emit(node, op_type, inputs, attrs, shape)
    }

    /// A layer node `/{layer}/{op_type}` with one output of `shape`.
    pub(super) fn layer_op(
        &mut self,
        layer: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let node = self.unique_node_name(&format!("/{layer}/{op_type}"));
        self.emit(node, op_type, inputs, attrs, shape)
    }

    /// A scalar float parameter named after `base` (made unique).
    pub fn scalar_f32(&mut self, base: &str, v: f32) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_f32(&name, &[], &[v]))
    }

    /// An int64 vector parameter named after `base` (made unique).
    pub fn vec_i64(&mut self, base: &str, v: &[i64]) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_i64(&name, &[v.len() as i64], v))
    }

    /// A float vector parameter named after `base` (made unique).
    pub fn vec_f32(&mut self, base: &str, v: &[f32]) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_f32(&name, &[v.len() as i64], v))
    }
}
