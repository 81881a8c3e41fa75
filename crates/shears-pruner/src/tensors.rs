//! Reading parameter tensors as f32 and reducing them along one axis.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use shears_onnx::{Model, ValueId};

use crate::error::Result;

/// Per index of one axis of a tensor: the sum of absolute values and of squares of the slice at
/// that index (every other axis).
///
/// Invariant: `l1.len() == l2.len()` is the axis length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AxisSums {
    pub l1: Vec<f64>,
    pub l2: Vec<f64>,
}

/// A tensor's values with its shape.
#[derive(Clone, Debug)]
pub struct Dense {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Dense {
    /// `(outer, size, inner)` of `axis`: the tensor seen as `[outer, size, inner]`.
    fn split(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.shape[..axis].iter().product();
        let inner = self.shape[axis + 1..].iter().product();
        (outer, self.shape[axis], inner)
    }

    /// The sums of every index of `axis`, in one pass over the data.
    pub fn axis_sums(&self, axis: usize) -> AxisSums {
        let (outer, size, inner) = self.split(axis);
        let mut s = AxisSums {
            l1: vec![0.0; size],
            l2: vec![0.0; size],
        };
        for o in 0..outer {
            for i in 0..size {
                let start = (o * size + i) * inner;
                let (mut a, mut b) = (0.0f64, 0.0f64);
                for &x in &self.data[start..start + inner] {
                    let x = x as f64;
                    a += x.abs();
                    b += x * x;
                }
                s.l1[i] += a;
                s.l2[i] += b;
            }
        }
        s
    }

    /// The slice at the given indices of `axis`, flattened in index order.
    pub fn slice(&self, axis: usize, indices: &[u32]) -> Vec<f32> {
        let (outer, size, inner) = self.split(axis);
        let mut out = Vec::with_capacity(indices.len() * outer * inner);
        for &i in indices {
            for o in 0..outer {
                let start = (o * size + i as usize) * inner;
                out.extend_from_slice(&self.data[start..start + inner]);
            }
        }
        out
    }
}

/// Decodes the constant `v` of `model` as f32 with its shape.
pub fn dense(model: &Model, v: ValueId) -> Result<Dense> {
    let t = model
        .constant(v)
        .ok_or_else(|| shears_onnx::OnnxError::Tensor {
            tensor: model.graph.value(v).name.clone(),
            reason: "is not a constant".into(),
        })?;
    let shape = shears_onnx::tensor::dims(&t)?;
    let mut data = model.f32s(&t)?;
    if let Some(q) = quantization(model, v, &shape)? {
        dequantize(&mut data, &shape, &q);
    }
    Ok(Dense { shape, data })
}

/// Where a layer reads a quantized integer weight: `(op, weight slot, scale slot, zero-point
/// slot)`; the parameters are per tensor, or per output channel (axis 0) of a convolution.
/// `ConvInteger` and `MatMulInteger` have no scale (the integers are the values).
const QUANTIZED_READERS: &[(&str, usize, Option<usize>, usize)] = &[
    ("DequantizeLinear", 0, Some(1), 2),
    ("QLinearConv", 3, Some(4), 5),
    ("QLinearMatMul", 0, Some(1), 2),
    ("QLinearMatMul", 3, Some(4), 5),
    ("ConvInteger", 1, None, 3),
    ("MatMulInteger", 0, None, 2),
    ("MatMulInteger", 1, None, 3),
];

/// How a layer reads a quantized integer tensor.
///
/// Invariant: `scale` and `zero_point` hold one value, or one per index of `axis`.
struct Quantization {
    scale: Vec<f32>,
    zero_point: Vec<f32>,
    axis: Option<usize>,
}

/// The scale, zero point and per-channel axis through which a layer reads the integer
/// constant `v` of shape `shape`, if one does (the first such reader; a stored integer weight
/// has one). Importance then measures `(q - zero_point) * scale`, the values the float model
/// computes with, not the raw integers.
fn quantization(model: &Model, v: ValueId, shape: &[usize]) -> Result<Option<Quantization>> {
    let g = &model.graph;
    let dtype = g.value(v).dtype;
    if !shears_onnx::tensor::is_integer(dtype) {
        return Ok(None);
    }
    for &(node, slot) in &g.value(v).consumers {
        let n = g.node(node);
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            continue;
        }
        let Some(&(op, _, scale_slot, zp_slot)) = QUANTIZED_READERS
            .iter()
            .find(|(op, s, _, _)| *op == n.op_type && *s == slot)
        else {
            continue;
        };
        let read = |s: Option<usize>| -> Result<Option<Vec<f32>>> {
            match s.and_then(|s| n.input(s)) {
                Some(p) => Ok(model.constant(p).map(|t| model.f32s(&t)).transpose()?),
                None => Ok(None),
            }
        };
        let scale = match scale_slot {
            Some(_) => match read(scale_slot)? {
                Some(s) => s,
                // A scale computed at run time: the integers are all there is to measure.
                None => return Ok(None),
            },
            None => vec![1.0],
        };
        let zp = read(Some(zp_slot))?.unwrap_or_else(|| vec![0.0]);
        let per = scale.len().max(zp.len());
        if ![1, per].contains(&scale.len()) || ![1, per].contains(&zp.len()) {
            return Ok(None);
        }
        let q = |axis| Quantization {
            scale,
            zero_point: zp,
            axis,
        };
        if per <= 1 {
            return Ok(Some(q(None)));
        }
        let axis = match op {
            "DequantizeLinear" => {
                let a = n.attr_i("axis", 1);
                let r = shape.len() as i64;
                if a < -r || a >= r {
                    return Ok(None);
                }
                (if a < 0 { a + r } else { a }) as usize
            }
            "QLinearConv" | "ConvInteger" => 0,
            // Per row of the left operand, per column of the right one.
            _ if slot == 0 => shape.len().saturating_sub(2),
            _ => shape.len().saturating_sub(1),
        };
        if shape.get(axis) != Some(&per) {
            return Ok(None);
        }
        return Ok(Some(q(Some(axis))));
    }
    Ok(None)
}

/// `(q - zp) * scale` in place, per index of `axis` when given (parameters of one value apply
/// to every element).
fn dequantize(data: &mut [f32], shape: &[usize], q: &Quantization) {
    let (scale, zp) = (&q.scale, &q.zero_point);
    let (inner, size) = match q.axis {
        Some(a) => (shape[a + 1..].iter().product::<usize>().max(1), shape[a]),
        None => (1, 1),
    };
    let pick = |p: &[f32], k: usize| if p.len() == 1 { p[0] } else { p[k] };
    for (i, x) in data.iter_mut().enumerate() {
        let k = (i / inner) % size.max(1);
        *x = (*x - pick(zp, k)) * pick(scale, k);
    }
}

/// The axis sums of every requested (value, axis), decoding each tensor once.
pub fn all_axis_sums(
    model: &Model,
    wanted: &BTreeSet<(ValueId, usize)>,
) -> Result<HashMap<(ValueId, usize), AxisSums>> {
    let mut by_value: BTreeMap<ValueId, Vec<usize>> = BTreeMap::new();
    for &(v, a) in wanted {
        by_value.entry(v).or_default().push(a);
    }
    let mut out = HashMap::with_capacity(wanted.len());
    for (v, axes) in by_value {
        let t = dense(model, v)?;
        for a in axes {
            if a < t.shape.len() {
                out.insert((v, a), t.axis_sums(a));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_sums_and_slices_follow_the_axis() {
        // [2, 3, 2]: value = 100*o + 10*i + k.
        let mut data = Vec::new();
        for o in 0..2 {
            for i in 0..3 {
                for k in 0..2 {
                    data.push((100 * o + 10 * i + k) as f32);
                }
            }
        }
        let t = Dense {
            shape: vec![2, 3, 2],
            data,
        };
        let s = t.axis_sums(1);
        // index i: {10i, 10i+1, 100+10i, 101+10i}.
        let want_l1: Vec<f64> = (0..3).map(|i| (40 * i + 202) as f64).collect();
        assert_eq!(s.l1, want_l1);
        let sq = |i: i32| -> f64 {
            [10 * i, 10 * i + 1, 100 + 10 * i, 101 + 10 * i]
                .iter()
                .map(|&x| (x * x) as f64)
                .sum()
        };
        assert_eq!(s.l2, vec![sq(0), sq(1), sq(2)]);
        assert_eq!(t.slice(1, &[2]), vec![20.0, 21.0, 120.0, 121.0]);
        assert_eq!(
            t.axis_sums(0).l1,
            vec![
                (0..6).map(|j| (j / 2 * 10 + j % 2) as f64).sum(),
                600.0 + 63.0
            ]
        );
    }

    #[test]
    fn quantized_weights_are_read_through_their_scales() {
        use shears_onnx::proto::tensor_proto::DataType;
        use shears_onnx::proto::TensorProto;
        use shears_testkit::builder::{attr_int, tensor_f32, ModelBuilder};
        let int8 = |name: &str, dims: &[i64], v: &[i8]| TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Int8 as i32,
            raw_data: v.iter().map(|&x| x as u8).collect::<Vec<u8>>().into(),
            ..Default::default()
        };
        // W = [[2, -4], [6, 8]] per row: scales [0.5, 0.25], zero points [0, 2].
        let mut b = ModelBuilder::new(17);
        b.input("x", &[1, 2]);
        b.initializer(int8("wq", &[2, 2], &[2, -4, 6, 8]));
        b.initializer(tensor_f32("ws", &[2], &[0.5, 0.25]));
        b.initializer(int8("wz", &[2], &[0, 2]));
        b.node_with_outputs(
            "dq",
            "DequantizeLinear",
            &["wq", "ws", "wz"],
            &["w"],
            vec![attr_int("axis", 0)],
        );
        b.set_shape("w", &[2, 2]);
        // Per tensor too: a scalar scale.
        b.initializer(int8("vq", &[2, 2], &[1, 2, 3, 4]));
        b.initializer(tensor_f32("vs", &[], &[0.5]));
        b.node_with_outputs("dqv", "DequantizeLinear", &["vq", "vs"], &["v"], vec![]);
        b.set_shape("v", &[2, 2]);
        b.node_with_outputs("mm", "MatMul", &["x", "w"], &["y"], vec![]);
        b.set_shape("y", &[1, 2]);
        b.node_with_outputs("mm2", "MatMul", &["y", "v"], &["z"], vec![]);
        b.set_shape("z", &[1, 2]);
        b.output("z");
        let m = b.build_model();
        let id = |n: &str| m.graph.value_id(n).unwrap();
        assert_eq!(dense(&m, id("wq")).unwrap().data, vec![1.0, -2.0, 1.0, 1.5]);
        assert_eq!(dense(&m, id("vq")).unwrap().data, vec![0.5, 1.0, 1.5, 2.0]);
        // Scales and zero points themselves are read as they are.
        assert_eq!(dense(&m, id("ws")).unwrap().data, vec![0.5, 0.25]);
    }
}
