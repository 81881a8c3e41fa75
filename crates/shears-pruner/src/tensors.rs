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
        for (a, sums) in axis_sums_of(model, v, &axes)? {
            out.insert((v, a), sums);
        }
    }
    Ok(out)
}

/// The axis sums of the constant `v` along each of `axes` (those past its rank skipped).
///
/// Floating-point payloads are summed straight from their little-endian bytes (a slice of the
/// mapped file), so measuring a tensor allocates nothing of its size: a float16 weight is never
/// widened into an `f32` copy twice its size. The sums are those of [`Dense::axis_sums`]
/// exactly (each element widened to `f64` the same way, added in the same order). Other types
/// are decoded as before.
fn axis_sums_of(model: &Model, v: ValueId, axes: &[usize]) -> Result<Vec<(usize, AxisSums)>> {
    use shears_onnx::proto::tensor_proto::DataType as D;
    let t = model
        .constant(v)
        .ok_or_else(|| shears_onnx::OnnxError::Tensor {
            tensor: model.graph.value(v).name.clone(),
            reason: "is not a constant".into(),
        })?;
    let shape = shears_onnx::tensor::dims(&t)?;
    let sums = |f: &dyn Fn(usize) -> AxisSums| -> Vec<(usize, AxisSums)> {
        axes.iter()
            .filter(|&&a| a < shape.len())
            .map(|&a| (a, f(a)))
            .collect()
    };
    let dtype = D::try_from(t.data_type).unwrap_or(D::Undefined);
    if !matches!(dtype, D::Float | D::Float16 | D::Bfloat16 | D::Double) {
        let d = Dense {
            shape: shape.clone(),
            data: model.f32s(&t)?,
        };
        return Ok(sums(&|a| d.axis_sums(a)));
    }
    let bytes = model.payload(&t)?;
    let out = match dtype {
        D::Float => {
            sums(&|a| le_axis_sums::<4>(&bytes, &shape, a, |b| f32::from_le_bytes(b) as f64))
        }
        D::Float16 => sums(&|a| {
            le_axis_sums::<2>(&bytes, &shape, a, |b| {
                half::f16::from_le_bytes(b).to_f32() as f64
            })
        }),
        D::Bfloat16 => sums(&|a| {
            le_axis_sums::<2>(&bytes, &shape, a, |b| {
                half::bf16::from_le_bytes(b).to_f32() as f64
            })
        }),
        // f64 payloads were narrowed to f32 by `dense`; keep the same values.
        _ => {
            sums(&|a| le_axis_sums::<8>(&bytes, &shape, a, |b| f64::from_le_bytes(b) as f32 as f64))
        }
    };
    // Measured once: its pages of the mapped file need not stay resident.
    shears_onnx::load::release_pages(&bytes);
    Ok(out)
}

/// [`Dense::axis_sums`] over little-endian elements of `N` bytes, widened by `widen`.
fn le_axis_sums<const N: usize>(
    bytes: &[u8],
    shape: &[usize],
    axis: usize,
    widen: impl Fn([u8; N]) -> f64,
) -> AxisSums {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let size = shape[axis];
    let mut s = AxisSums {
        l1: vec![0.0; size],
        l2: vec![0.0; size],
    };
    for o in 0..outer {
        for i in 0..size {
            let start = (o * size + i) * inner * N;
            let (mut a, mut b) = (0.0f64, 0.0f64);
            for c in bytes[start..start + inner * N].chunks_exact(N) {
                let x = widen(c.try_into().expect("chunk of N"));
                a += x.abs();
                b += x * x;
            }
            s.l1[i] += a;
            s.l2[i] += b;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sums_equal_the_decoded_sums_in_every_float_type() {
        use shears_onnx::proto::tensor_proto::DataType as D;
        let values: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.37).collect();
        let shape = [2usize, 3, 4];
        for (dtype, raw) in [
            (
                D::Float,
                values
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            (
                D::Float16,
                values
                    .iter()
                    .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                    .collect(),
            ),
            (
                D::Bfloat16,
                values
                    .iter()
                    .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                    .collect(),
            ),
            (
                D::Double,
                values
                    .iter()
                    .flat_map(|&x| (x as f64 * 1.1).to_le_bytes())
                    .collect(),
            ),
        ] {
            let mut b = shears_onnx::builder::ModelBuilder::new(17);
            let x = b.input("x", &[2, 3, 4]);
            let w = b.initializer(shears_onnx::proto::TensorProto {
                name: "w".into(),
                dims: vec![2, 3, 4],
                data_type: dtype as i32,
                raw_data: raw.into(),
                ..Default::default()
            });
            let y = b.add(&x, &w);
            b.output(&y);
            let model = b.build_model();
            let v = model.graph.value_id("w").unwrap();
            let d = dense(&model, v).unwrap();
            let got = axis_sums_of(&model, v, &[0, 1, 2, 3]).unwrap();
            assert_eq!(got.len(), shape.len(), "axis 3 is past the rank");
            for (a, s) in got {
                assert_eq!(s, d.axis_sums(a), "{dtype:?} axis {a}");
            }
        }
    }

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
