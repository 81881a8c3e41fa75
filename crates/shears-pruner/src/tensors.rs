//! Reading parameter tensors as f32 and reducing them along one axis.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use shears_onnx::ops::QuantizedAxis;
use shears_onnx::{Model, ValueId};

use crate::error::Result;
use crate::sums::{rows_per_block, AxisAccumulator};

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

    /// The sums of every index of `axis`, in one pass over the data, in the fixed order of
    /// the crate's magnitude kernel (the same bits as the sums measured from the stored bytes).
    pub fn axis_sums(&self, axis: usize) -> AxisSums {
        values_axis_sums(&self.data, &self.shape, &[axis])
            .pop()
            .unwrap_or_default()
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
        // `facts` knows only the default domain.
        let Some(reader) = shears_onnx::ops::facts(n).quantized_read(slot) else {
            continue;
        };
        let (scale_slot, zp_slot) = (reader.scale_slot, reader.zero_point_slot);
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
        let axis = match reader.axis {
            // The layout the shape inference and the coupling rule decided on, not a second
            // reading of `axis`.
            QuantizedAxis::Attribute => {
                let scale_shape = n
                    .input(1)
                    .and_then(|s| g.value(s).shape.as_deref())
                    .unwrap_or(&[]);
                let axis = n.attr("axis").map(|_| n.attr_i("axis", 1));
                match shears_onnx::shape::quant::quant_axis(
                    g.opset,
                    axis,
                    n.attr_i("block_size", 0),
                    shape,
                    scale_shape,
                ) {
                    Ok(shears_onnx::shape::quant::QuantAxis::PerAxis(a)) => a,
                    _ => return Ok(None),
                }
            }
            QuantizedAxis::First => 0,
            QuantizedAxis::Rows => shape.len().saturating_sub(2),
            QuantizedAxis::Columns => shape.len().saturating_sub(1),
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
    // Tensors are measured in parallel, each by one thread in one pass over its bytes: the
    // sums of a tensor do not depend on the others, so they are the same bits whatever the
    // scheduling. Results are taken in value order, so the first error is always the same one.
    use rayon::prelude::*;
    let by_value: Vec<(ValueId, Vec<usize>)> = by_value.into_iter().collect();
    let sums: Vec<Result<Vec<(usize, AxisSums)>>> = by_value
        .par_iter()
        .map(|(v, axes)| axis_sums_of(model, *v, axes))
        .collect();
    let mut out = HashMap::with_capacity(wanted.len());
    for ((v, _), found) in by_value.iter().zip(sums) {
        for (a, s) in found? {
            out.insert((*v, a), s);
        }
    }
    Ok(out)
}

/// The axis sums of the constant `v` along each of `axes` (those past its rank skipped).
///
/// Floating-point payloads are summed straight from their little-endian bytes (a slice of the
/// mapped file), so measuring a tensor allocates nothing of its size: a float16 weight is never
/// widened into an `f32` copy twice its size. The sums are those of [`Dense::axis_sums`]
/// exactly (the same rows, widened the same way, through the same kernel). Other types are
/// decoded first.
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
    let valid: Vec<usize> = axes.iter().copied().filter(|&a| a < shape.len()).collect();
    let widen = |raw: &[u8], out: &mut Vec<f32>| {
        out.clear();
        shears_onnx::tensor::extend_f32_le(dtype, raw, out);
    };
    let elem = shears_onnx::tensor::elem_size(t.data_type).unwrap_or(4);
    let all = if let Some(view) = model.external.cut_of(&t) {
        // An earlier stage's cut, not made: its rows are summed as the view streams them,
        // in the blocks a made copy would be read in, so the sums are the same bits.
        let mut sink = RowSums::new(&shape, elem, &valid, widen);
        view.write_to(&mut sink)
            .expect("summing rows never fails to write");
        sink.finish()
    } else {
        let bytes = model.payload(&t)?;
        let all = match aligned_f32s(&bytes, dtype) {
            Some(values) => values_axis_sums(values, &shape, &valid),
            None => row_axis_sums(&bytes, &shape, elem, &valid, widen),
        };
        // Measured once: its pages of the mapped file need not stay resident.
        shears_onnx::load::release_pages(&bytes);
        all
    };
    Ok(valid.into_iter().zip(all).collect())
}

/// A float32 payload read in place, when the CPU is little-endian and the bytes are aligned
/// for `f32` (payloads of a side file always are): no row is copied before it is summed.
fn aligned_f32s(bytes: &[u8], dtype: shears_onnx::proto::tensor_proto::DataType) -> Option<&[f32]> {
    if dtype != shears_onnx::proto::tensor_proto::DataType::Float || cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32, and `align_to` only hands out the aligned
    // middle of the slice.
    let (head, values, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(values)
}

/// The sums of `axes` of decoded `values` of `shape`, through the same kernel as bytes.
fn values_axis_sums(values: &[f32], shape: &[usize], axes: &[usize]) -> Vec<AxisSums> {
    let mut acc = AxisAccumulator::new(shape, axes);
    let block = rows_per_block(acc.row_len()) * acc.row_len();
    for b in values.chunks(block.max(1)) {
        acc.add_block(b);
    }
    acc.finish()
}

/// [`Dense::axis_sums`] of every axis in `axes` (each below the rank), in one pass over the
/// little-endian payload `bytes` (elements of `elem` bytes), [`rows_per_block`] rows at a time
/// widened to `f32` by `widen`: the same bits as the decoded sums, since both feed the same
/// rows to the same kernel ([`crate::sums`]).
fn row_axis_sums(
    bytes: &[u8],
    shape: &[usize],
    elem: usize,
    axes: &[usize],
    widen: impl FnMut(&[u8], &mut Vec<f32>),
) -> Vec<AxisSums> {
    let mut sink = RowSums::new(shape, elem, axes, widen);
    sink.add(bytes);
    sink.finish()
}

/// A writer summing the little-endian payload streamed into it: bytes are gathered into
/// blocks of [`rows_per_block`] rows counted from the first, each widened by `widen` and added to
/// the kernel, so the sums do not depend on how the bytes arrive (whole, or in a cut view's
/// chunks).
///
/// Invariant: `pending` holds less than one block; blocks before it are summed.
struct RowSums<W: FnMut(&[u8], &mut Vec<f32>)> {
    acc: AxisAccumulator,
    block_bytes: usize,
    pending: Vec<u8>,
    values: Vec<f32>,
    widen: W,
}

impl<W: FnMut(&[u8], &mut Vec<f32>)> RowSums<W> {
    fn new(shape: &[usize], elem: usize, axes: &[usize], widen: W) -> Self {
        let acc = AxisAccumulator::new(shape, axes);
        let block_bytes = rows_per_block(acc.row_len()) * acc.row_len() * elem;
        RowSums {
            acc,
            block_bytes,
            pending: Vec::new(),
            values: Vec::new(),
            widen,
        }
    }

    fn block(&mut self, raw: &[u8]) {
        (self.widen)(raw, &mut self.values);
        self.acc.add_block(&self.values);
    }

    fn add(&mut self, mut data: &[u8]) {
        if self.block_bytes == 0 {
            return;
        }
        if !self.pending.is_empty() {
            let take = (self.block_bytes - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < self.block_bytes {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            self.block(&block);
            self.pending = block;
            self.pending.clear();
        }
        let mut blocks = data.chunks_exact(self.block_bytes);
        for b in &mut blocks {
            self.block(b);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    /// The sums; the last block may be short (whole rows).
    fn finish(mut self) -> Vec<AxisSums> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.block(&rest);
        }
        self.acc.finish()
    }
}

impl<W: FnMut(&[u8], &mut Vec<f32>)> std::io::Write for RowSums<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.add(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_sums_from_bytes_equal_the_decoded_sums() {
        // 4 full batches and a tail of 3 rows; values spread over magnitudes so a change of
        // summation order would show in the last bits.
        let (rows, cols) = (19usize, 7usize);
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 1.37e-3 * (1.0 + (i % 5) as f32 * 1e3))
            .collect();
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let d = Dense {
            shape: vec![rows, cols],
            data,
        };
        let widen = |b: &[u8], out: &mut Vec<f32>| {
            out.clear();
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        };
        for axes in [&[0usize][..], &[1], &[0, 1]] {
            let got = row_axis_sums(&raw, &d.shape, 4, axes, widen);
            for (&a, s) in axes.iter().zip(&got) {
                assert_eq!(*s, d.axis_sums(a), "axes {axes:?}, axis {a}");
            }
        }
    }

    #[test]
    fn sums_of_some_axes_equal_the_decoded_sums_of_each() {
        // A 4-D weight measured on some of its axes in one pass: every sum must equal the
        // decoded one of its axis alone exactly, whichever axes share the pass.
        let values: Vec<f32> = (0..48)
            .map(|i| ((i * 7) % 13) as f32 * 0.31 - 1.7)
            .collect();
        let mut b = shears_testkit::builder::ModelBuilder::new(17);
        let x = b.input("x", &[2, 3, 2, 4]);
        let w = b.init_f32("w", &[2, 3, 2, 4], &values);
        let y = b.add(&x, &w);
        b.output(&y);
        let model = b.build_model();
        let v = model.graph.value_id("w").unwrap();
        let d = dense(&model, v).unwrap();
        for axes in [&[0][..], &[1], &[0, 1], &[1, 0], &[2], &[0, 2]] {
            let got = axis_sums_of(&model, v, axes).unwrap();
            assert_eq!(got.len(), axes.len());
            for (a, s) in got {
                assert_eq!(s, d.axis_sums(a), "axes {axes:?}, axis {a}");
            }
        }
    }

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
            let mut b = shears_testkit::builder::ModelBuilder::new(17);
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
    fn rows_streamed_in_any_chunks_sum_as_the_whole_payload() {
        // 37 rows of 70: whole blocks and a short one; chunks that split rows and blocks.
        let (rows, cols) = (37usize, 70usize);
        let raw: Vec<u8> = (0..rows * cols)
            .flat_map(|i| half::f16::from_f32(((i * 37 % 101) as f32 - 50.0) * 0.07).to_le_bytes())
            .collect();
        let widen = |b: &[u8], out: &mut Vec<f32>| {
            out.clear();
            shears_onnx::tensor::extend_f32_le(
                shears_onnx::proto::tensor_proto::DataType::Float16,
                b,
                out,
            );
        };
        let whole = row_axis_sums(&raw, &[rows, cols], 2, &[0, 1], widen);
        for chunk in [1usize, 3, 139, 140, 1121, 5000] {
            let mut sink = RowSums::new(&[rows, cols], 2, &[0, 1], widen);
            for c in raw.chunks(chunk) {
                std::io::Write::write_all(&mut sink, c).unwrap();
            }
            assert_eq!(sink.finish(), whole, "chunks of {chunk}");
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
