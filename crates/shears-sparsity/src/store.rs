//! Writing sparsified weights: zeroed elements in place (the tensor keeps its dtype and its
//! storage form), and, for `--store sparse`, the weights that get smaller as COO sparse
//! initializers.

use std::collections::BTreeMap;

use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{ModelProto, TensorProto};
use shears_onnx::{sparse, tensor, Model, ValueKind};

use crate::SparsifyError;

/// A copy of `model` where the elements `zero[name]` of each named initializer are zero
/// (same graph, shapes and names; every other byte as it was).
pub fn copy_with(
    model: &Model,
    zero: &BTreeMap<String, Vec<usize>>,
) -> Result<Model, SparsifyError> {
    let mut proto = model.proto.clone();
    if let Some(g) = proto.graph.as_mut() {
        for t in g.initializer.iter_mut() {
            if let Some(elements) = zero.get(&t.name) {
                let mut bytes = tensor::payload_le(t, &model.external)?.to_vec();
                let elem = tensor::elem_size(t.data_type)
                    .ok_or_else(|| SparsifyError::Lost(t.name.clone()))?;
                for &e in elements {
                    bytes[e * elem..(e + 1) * elem].fill(0);
                }
                write_keeping_form(t, bytes);
            }
        }
    }
    let mut out = Model::from_proto(proto, model.source.clone(), model.external.same_folder())?;
    // Only payloads changed: the analysed graph (shapes included) still describes the proto.
    out.graph = model.graph.clone();
    out.symbolic = model.symbolic.clone();
    out.file_size = model.file_size;
    Ok(out)
}

/// Stores little-endian `bytes` in `t` in the form it had: typed fields stay typed (float32 in
/// `float_data`, float64 in `double_data`, 16-bit floats as bit patterns in `int32_data`),
/// everything else becomes `raw_data` (an external tensor is made external again by the saver,
/// `SaveOptions::keeping_storage_of`).
fn write_keeping_form(t: &mut TensorProto, bytes: Vec<u8>) {
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let typed = t.raw_data.is_empty() && !tensor::is_external(t);
    let dt = DataType::try_from(t.data_type).ok();
    match (typed, dt) {
        (true, Some(DataType::Float)) => {
            t.float_data = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
        }
        (true, Some(DataType::Double)) => {
            t.double_data = bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                .collect();
        }
        (true, Some(DataType::Float16 | DataType::Bfloat16)) => {
            t.int32_data = bytes
                .chunks_exact(2)
                .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect();
        }
        _ => tensor::set_raw(t, bytes, &dims),
    }
}

/// How one weight was stored by [`store_sparse`].
///
/// Invariant: `sparse` iff `sparse_bytes < dense_bytes` and the model's IR version has sparse
/// initializers (6 and later).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Storage {
    pub weight: String,
    pub dense_bytes: u64,
    /// Values plus int64 linear indices.
    pub sparse_bytes: u64,
    pub sparse: bool,
}

/// `model`'s proto with each of `weights` (initializer names) moved to
/// `graph.sparse_initializer` where the COO form (values + int64 linear indices) is smaller
/// than the dense payload. An initializer also declared as a graph input stays dense (a
/// runtime may feed it), and so does everything below IR version 6, which has no sparse
/// initializers.
pub fn store_sparse(
    model: &Model,
    weights: &[String],
) -> Result<(ModelProto, Vec<Storage>), SparsifyError> {
    let mut proto = model.proto.clone();
    let mut report = Vec::new();
    let g = &model.graph;
    let mut moved = Vec::new();
    let allowed = model.proto.ir_version >= 6;
    for name in weights {
        let Some(v) = g.value_id(name) else { continue };
        let ValueKind::Initializer(i) = g.value(v).kind else {
            continue;
        };
        if g.param_inputs.contains(&v) {
            continue;
        }
        let t = model
            .initializer(v)
            .ok_or_else(|| SparsifyError::Lost(name.clone()))?;
        let bytes = model.payload(t)?;
        let elem = tensor::elem_size(t.data_type).unwrap_or(1);
        let nnz = bytes
            .chunks_exact(elem)
            .filter(|c| c.iter().any(|&b| b != 0))
            .count() as u64;
        let dense_bytes = bytes.len() as u64;
        let sparse_bytes = nnz * (elem as u64 + 8);
        let sparse = allowed && sparse_bytes < dense_bytes;
        if sparse {
            moved.push((i, sparse::to_sparse(t, &bytes)?));
        }
        report.push(Storage {
            weight: name.clone(),
            dense_bytes,
            sparse_bytes,
            sparse,
        });
    }
    if let Some(gp) = proto.graph.as_mut() {
        // Removing from the back keeps the earlier indices valid.
        moved.sort_by_key(|&(i, _)| std::cmp::Reverse(i));
        let mut sparse_list = Vec::new();
        for (i, s) in moved {
            gp.initializer.remove(i);
            sparse_list.push(s);
        }
        sparse_list.reverse();
        gp.sparse_initializer.extend(sparse_list);
    }
    Ok((proto, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn typed_tensors_stay_typed_and_raw_ones_raw() {
        let mut typed = TensorProto {
            name: "w".into(),
            dims: vec![2, 2],
            data_type: DataType::Float as i32,
            float_data: vec![1.0, 2.0, 3.0, 4.0],
            ..Default::default()
        };
        write_keeping_form(&mut typed, le(&[1.0, 0.0, 3.0, 0.0]));
        assert_eq!(typed.float_data, vec![1.0, 0.0, 3.0, 0.0]);
        assert!(typed.raw_data.is_empty());

        let mut half = TensorProto {
            name: "h".into(),
            dims: vec![2],
            data_type: DataType::Float16 as i32,
            int32_data: vec![0x3c00, 0x4000],
            ..Default::default()
        };
        write_keeping_form(&mut half, vec![0x00, 0x3c, 0x00, 0x00]);
        assert_eq!(half.int32_data, vec![0x3c00, 0]);

        let mut raw = tensor::from_f32("r", &[2], &[1.0, 2.0]);
        write_keeping_form(&mut raw, le(&[0.0, 2.0]));
        assert_eq!(&raw.raw_data[..], &le(&[0.0, 2.0])[..]);
        assert!(raw.float_data.is_empty());
    }
}
