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
    let data = model.f32s(&t)?;
    Ok(Dense { shape, data })
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
}
