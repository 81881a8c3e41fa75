//! ONNX sparse tensors (`SparseTensorProto`, COO: non-zero `values` and int64 `indices`, either
//! linear `[NNZ]` or coordinates `[NNZ, rank]`), both ways.
//!
//! Reading: a model's `graph.sparse_initializer`s become ordinary dense initializers when the
//! model is wrapped ([`densify_initializers`]), as onnxruntime does at load, so the IR, shape
//! inference, the evaluator and every transformation see them as constants. Writing:
//! [`to_sparse`] turns a dense tensor into a sparse one (callers decide when that is smaller).

use crate::error::{OnnxError, Result};
use crate::external::ExternalStore;
use crate::proto::tensor_proto::DataType;
use crate::proto::{ModelProto, SparseTensorProto, TensorProto};
use crate::tensor;

/// Moves every sparse initializer of the main graph to `graph.initializer` as a dense tensor
/// (appended in file order), so nothing downstream needs to know the sparse form. Errors name
/// the tensor: indices that are not int64, out of range, repeated, or the wrong count.
pub fn densify_initializers(proto: &mut ModelProto, external: &ExternalStore) -> Result<()> {
    let Some(g) = proto.graph.as_mut() else {
        return Ok(());
    };
    if g.sparse_initializer.is_empty() {
        return Ok(());
    }
    let sparse = std::mem::take(&mut g.sparse_initializer);
    for s in &sparse {
        g.initializer.push(densify(s, external)?);
    }
    Ok(())
}

/// The dense tensor a sparse one describes (zeros everywhere but at its indices), stored raw.
pub fn densify(s: &SparseTensorProto, external: &ExternalStore) -> Result<TensorProto> {
    let values = s
        .values
        .as_ref()
        .ok_or_else(|| OnnxError::tensor("(sparse initializer)", "has no values"))?;
    let name = values.name.clone();
    let bad = |reason: String| OnnxError::tensor(&name, format!("sparse initializer: {reason}"));
    let elem = tensor::elem_size(values.data_type)
        .ok_or_else(|| bad(format!("{} values", tensor::dtype_name(values.data_type))))?;
    let dims: Vec<usize> = s
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dim {d}"))))
        .collect::<Result<_>>()?;
    let total = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(elem))
        .ok_or_else(|| bad("size overflows".into()))?
        / elem.max(1);
    let vals = tensor::payload_le_labelled(values, &name, external)?;
    let nnz = vals.len() / elem;
    if values.dims.len() != 1 {
        return Err(bad(format!(
            "values must be 1-D, found rank {}",
            values.dims.len()
        )));
    }
    let linear: Vec<usize> = match &s.indices {
        None if nnz == 0 => Vec::new(),
        None => return Err(bad("has values but no indices".into())),
        Some(ix) => {
            if ix.data_type != DataType::Int64 as i32 {
                return Err(bad(format!(
                    "indices are {}, not int64",
                    tensor::dtype_name(ix.data_type)
                )));
            }
            let raw = tensor::decode_i64(ix, external)?;
            let to_usize = |v: i64, bound: usize| {
                usize::try_from(v)
                    .ok()
                    .filter(|&u| u < bound)
                    .ok_or_else(|| bad(format!("index {v} out of range")))
            };
            match ix.dims.as_slice() {
                [n] if *n as usize == nnz => raw
                    .iter()
                    .map(|&v| to_usize(v, total))
                    .collect::<Result<_>>()?,
                [n, r] if *n as usize == nnz && *r as usize == dims.len() => raw
                    .chunks_exact(dims.len().max(1))
                    .map(|c| {
                        c.iter()
                            .zip(&dims)
                            .try_fold(0usize, |acc, (&v, &d)| Ok(acc * d + to_usize(v, d)?))
                    })
                    .collect::<Result<_>>()?,
                d => {
                    return Err(bad(format!(
                        "indices of shape {d:?} for {nnz} values of a rank-{} tensor",
                        dims.len()
                    )))
                }
            }
        }
    };
    let mut out = vec![0u8; total * elem];
    let mut seen = vec![false; total];
    for (k, &e) in linear.iter().enumerate() {
        if std::mem::replace(&mut seen[e], true) {
            return Err(bad(format!("index {e} repeated")));
        }
        out[e * elem..(e + 1) * elem].copy_from_slice(&vals[k * elem..(k + 1) * elem]);
    }
    let mut t = TensorProto {
        name,
        data_type: values.data_type,
        doc_string: values.doc_string.clone(),
        ..Default::default()
    };
    tensor::set_raw(&mut t, out, &dims);
    Ok(t)
}

/// `t` (whose little-endian payload is `payload`) as a sparse tensor with linear indices: the
/// elements whose bytes are not all zero (so `-0.0` is kept as a value).
pub fn to_sparse(t: &TensorProto, payload: &[u8]) -> Result<SparseTensorProto> {
    let elem = tensor::elem_size(t.data_type)
        .ok_or_else(|| OnnxError::tensor(&t.name, "has no fixed-size elements"))?;
    let mut values = Vec::new();
    let mut indices = Vec::new();
    for (e, c) in payload.chunks_exact(elem).enumerate() {
        if c.iter().any(|&b| b != 0) {
            values.extend_from_slice(c);
            indices.push(e as i64);
        }
    }
    let mut v = TensorProto {
        name: t.name.clone(),
        data_type: t.data_type,
        doc_string: t.doc_string.clone(),
        ..Default::default()
    };
    tensor::set_raw(&mut v, values, &[indices.len()]);
    let mut ix = tensor::from_i64(String::new(), &[indices.len()], &indices);
    ix.name = String::new();
    Ok(SparseTensorProto {
        values: Some(v),
        indices: Some(ix),
        dims: t.dims.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(t: &TensorProto) -> Vec<f32> {
        tensor::decode_f32(t, &ExternalStore::none()).unwrap()
    }

    #[test]
    fn round_trips_linear_and_coordinate_indices() {
        let dense = tensor::from_f32("w", &[2, 3], &[0.0, 1.5, 0.0, -2.0, 0.0, -0.0]);
        let s = to_sparse(&dense, &dense.raw_data).unwrap();
        assert_eq!(s.values.as_ref().unwrap().dims, vec![3]);
        assert_eq!(
            tensor::decode_i64(s.indices.as_ref().unwrap(), &ExternalStore::none()).unwrap(),
            vec![1, 3, 5]
        );
        let back = densify(&s, &ExternalStore::none()).unwrap();
        assert_eq!(back.dims, vec![2, 3]);
        assert_eq!(back.raw_data, dense.raw_data);

        let coo = SparseTensorProto {
            values: Some(tensor::from_f32("w", &[2], &[7.0, 8.0])),
            indices: Some(tensor::from_i64("", &[2, 2], &[0, 2, 1, 0])),
            dims: vec![2, 3],
        };
        let d = densify(&coo, &ExternalStore::none()).unwrap();
        assert_eq!(f32s(&d), vec![0.0, 0.0, 7.0, 8.0, 0.0, 0.0]);
    }

    #[test]
    fn refuses_bad_indices_naming_the_tensor() {
        let mk = |ix: TensorProto| SparseTensorProto {
            values: Some(tensor::from_f32("w", &[2], &[7.0, 8.0])),
            indices: Some(ix),
            dims: vec![2, 3],
        };
        let none = ExternalStore::none();
        let e = densify(&mk(tensor::from_i64("", &[2], &[0, 6])), &none).unwrap_err();
        assert!(e.to_string().contains('w') && format!("{e}").contains("out of range"));
        let e = densify(&mk(tensor::from_i64("", &[2], &[1, 1])), &none).unwrap_err();
        assert!(e.to_string().contains("repeated"), "{e}");
        let e = densify(&mk(tensor::from_i64("", &[3], &[0, 1, 2])), &none).unwrap_err();
        assert!(e.to_string().contains("indices of shape"), "{e}");
        let e = densify(&mk(tensor::from_f32("", &[2], &[0.0, 1.0])), &none).unwrap_err();
        assert!(e.to_string().contains("not int64"), "{e}");
    }
}
