//! Tensor payloads in every storage form ONNX allows: `raw_data`, the typed fields
//! (`float_data`, `int32_data`, `int64_data`, `double_data`, `uint64_data`) and external data.
//!
//! The canonical view of a payload is its little-endian bytes ([`payload_le`]); typed views
//! ([`decode_f32`], [`decode_i64`]) are built from it. Raw and external payloads are returned as
//! `Bytes` slices of the buffer they live in, so reading a weight copies nothing.

use bytes::Bytes;
use half::{bf16, f16};

use crate::error::{OnnxError, Result};
use crate::external::ExternalStore;
use crate::proto::tensor_proto::{DataLocation, DataType};
use crate::proto::{ModelProto, StringStringEntryProto, TensorProto};

/// Size in bytes of one element of `data_type`, or `None` for strings, sub-byte and unknown types.
pub fn elem_size(data_type: i32) -> Option<usize> {
    use DataType as D;
    Some(match DataType::try_from(data_type).ok()? {
        D::Float | D::Int32 | D::Uint32 => 4,
        D::Uint8 | D::Int8 | D::Bool => 1,
        D::Float8e4m3fn | D::Float8e4m3fnuz | D::Float8e5m2 | D::Float8e5m2fnuz | D::Float8e8m0 => {
            1
        }
        D::Uint16 | D::Int16 | D::Float16 | D::Bfloat16 => 2,
        D::Int64 | D::Uint64 | D::Double | D::Complex64 => 8,
        D::Complex128 => 16,
        D::String | D::Undefined | D::Uint4 | D::Int4 | D::Float4e2m1 | D::Uint2 | D::Int2 => {
            return None
        }
    })
}

/// Integer or bool element types: the ones whose contents can be folded as shape data. The one
/// place that says which dtype codes are integers.
pub fn is_integer(data_type: i32) -> bool {
    use DataType as D;
    matches!(
        DataType::try_from(data_type),
        Ok(D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::Uint8
            | D::Uint16
            | D::Uint32
            | D::Uint64
            | D::Bool)
    )
}

/// Floating-point element types, every width (the ones whose constants count as parameters).
pub fn is_float(data_type: i32) -> bool {
    use DataType as D;
    matches!(
        DataType::try_from(data_type),
        Ok(D::Float
            | D::Double
            | D::Float16
            | D::Bfloat16
            | D::Float8e4m3fn
            | D::Float8e4m3fnuz
            | D::Float8e5m2
            | D::Float8e5m2fnuz
            | D::Float8e8m0
            | D::Float4e2m1)
    )
}

/// Short lower-case name of a data type, as `inspect` prints it.
pub fn dtype_name(data_type: i32) -> &'static str {
    use DataType as D;
    match DataType::try_from(data_type) {
        Ok(D::Float) => "f32",
        Ok(D::Double) => "f64",
        Ok(D::Float16) => "f16",
        Ok(D::Bfloat16) => "bf16",
        Ok(D::Int8) => "i8",
        Ok(D::Int16) => "i16",
        Ok(D::Int32) => "i32",
        Ok(D::Int64) => "i64",
        Ok(D::Uint8) => "u8",
        Ok(D::Uint16) => "u16",
        Ok(D::Uint32) => "u32",
        Ok(D::Uint64) => "u64",
        Ok(D::Bool) => "bool",
        Ok(D::String) => "string",
        Ok(D::Complex64) => "c64",
        Ok(D::Complex128) => "c128",
        Ok(D::Uint4) => "u4",
        Ok(D::Int4) => "i4",
        Ok(D::Float4e2m1) => "f4e2m1",
        Ok(D::Uint2) => "u2",
        Ok(D::Int2) => "i2",
        Ok(D::Float8e4m3fn) => "f8e4m3fn",
        Ok(D::Float8e4m3fnuz) => "f8e4m3fnuz",
        Ok(D::Float8e5m2) => "f8e5m2",
        Ok(D::Float8e5m2fnuz) => "f8e5m2fnuz",
        Ok(D::Float8e8m0) => "f8e8m0",
        Ok(D::Undefined) | Err(_) => "undefined",
    }
}

/// The tensor's dims as `usize`, rejecting negative ones.
pub fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    t.dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| OnnxError::tensor(&t.name, format!("negative dim {d}")))
        })
        .collect()
}

/// Number of elements the tensor's dims describe (1 for a scalar).
pub fn num_elements(t: &TensorProto) -> Result<usize> {
    dims(t)?.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| OnnxError::tensor(&t.name, "element count overflows"))
    })
}

/// Whether the payload lives in an external file.
pub fn is_external(t: &TensorProto) -> bool {
    t.data_location == DataLocation::External as i32
}

/// Number of payload bytes the tensor's dims and type call for, or `None` for types without a
/// fixed-size binary form (strings, undefined). Sub-byte types are packed: 4-bit types two
/// elements per byte, 2-bit types four, the last byte padded.
pub fn byte_len(t: &TensorProto) -> Result<Option<usize>> {
    use DataType as D;
    let n = num_elements(t)?;
    let per_byte = match DataType::try_from(t.data_type) {
        Ok(D::Uint4 | D::Int4 | D::Float4e2m1) => 2,
        Ok(D::Uint2 | D::Int2) => 4,
        _ => {
            return match elem_size(t.data_type) {
                Some(size) => n
                    .checked_mul(size)
                    .map(Some)
                    .ok_or_else(|| OnnxError::tensor(&t.name, "byte size overflows")),
                None => Ok(None),
            }
        }
    };
    Ok(Some(n.div_ceil(per_byte)))
}

/// The payload as little-endian bytes, whatever its storage form, checked against dims and type.
///
/// Raw and external payloads are zero-copy slices; typed fields are encoded into a new buffer.
pub fn payload_le(t: &TensorProto, external: &ExternalStore) -> Result<Bytes> {
    payload_le_labelled(t, &t.name, external)
}

/// [`payload_le`], naming the tensor `label` in errors (for tensors that have no name).
pub fn payload_le_labelled(
    t: &TensorProto,
    label: &str,
    external: &ExternalStore,
) -> Result<Bytes> {
    let expected = byte_len(t)?.ok_or_else(|| {
        OnnxError::tensor(
            label,
            format!(
                "data type {} has no fixed-size binary form",
                dtype_name(t.data_type)
            ),
        )
    })?;
    let bytes = if is_external(t) {
        external.read_labelled(t, label)?
    } else if !t.raw_data.is_empty() || expected == 0 {
        t.raw_data.clone()
    } else {
        typed_to_le(t, num_elements(t)?)?
    };
    check_len(t, label, bytes.len(), expected)?;
    Ok(bytes)
}

fn check_len(t: &TensorProto, label: &str, actual: usize, expected: usize) -> Result<()> {
    if actual == expected {
        return Ok(());
    }
    Err(OnnxError::tensor(
        label,
        format!(
            "payload has {actual} bytes but dims {:?} of {} need {expected}",
            t.dims,
            dtype_name(t.data_type),
        ),
    ))
}

/// Checks, without reading or copying any payload byte, that the tensor's stored data is as
/// long as its dims and type require, and for external data that the location is safe and the
/// byte range lies inside the side file. `label` names the tensor in errors.
pub fn validate(t: &TensorProto, label: &str, external: &ExternalStore) -> Result<()> {
    use DataType as D;
    if DataType::try_from(t.data_type).is_err() || t.data_type == D::Undefined as i32 {
        return Err(OnnxError::tensor(
            label,
            format!("unknown data type {}", t.data_type),
        ));
    }
    let n = num_elements(t)?;
    let Some(expected) = byte_len(t)? else {
        // Strings: one entry per element, in `string_data` only.
        if is_external(t) || !t.raw_data.is_empty() || t.string_data.len() != n {
            return Err(OnnxError::tensor(
                label,
                format!(
                    "a string tensor of dims {:?} needs {n} string_data entries, found {}",
                    t.dims,
                    t.string_data.len()
                ),
            ));
        }
        return Ok(());
    };
    let actual = if is_external(t) {
        // Slicing the mapped side file touches no page of it; a cut view is not made.
        external.payload_len(t, label)?
    } else if !t.raw_data.is_empty() || expected == 0 {
        t.raw_data.len()
    } else {
        typed_len(t, label)?
    };
    check_len(t, label, actual, expected)
}

/// [`validate`]s every tensor of the model (see [`crate::walk`]), stopping at the first error.
pub fn validate_all(proto: &ModelProto, external: &ExternalStore) -> Result<()> {
    crate::walk::tensors(proto)
        .into_iter()
        .try_for_each(|f| validate(f.tensor, &f.label, external))
}

/// Bytes the typed-field payload of `t` stands for, from the entry count of the field its type
/// uses (the layout [`typed_to_le`] writes).
fn typed_len(t: &TensorProto, label: &str) -> Result<usize> {
    use DataType as D;
    let dt = DataType::try_from(t.data_type).unwrap_or(D::Undefined);
    let (entries, width) = match dt {
        D::Float | D::Complex64 => (t.float_data.len(), 4),
        D::Double | D::Complex128 => (t.double_data.len(), 8),
        D::Int64 => (t.int64_data.len(), 8),
        D::Uint64 => (t.uint64_data.len(), 8),
        D::Uint32 => (t.uint64_data.len(), 4),
        D::Int32 => (t.int32_data.len(), 4),
        D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16 => (t.int32_data.len(), 2),
        D::Int8
        | D::Uint8
        | D::Bool
        | D::Float8e4m3fn
        | D::Float8e4m3fnuz
        | D::Float8e5m2
        | D::Float8e5m2fnuz
        | D::Float8e8m0 => (t.int32_data.len(), 1),
        _ => {
            return Err(OnnxError::tensor(
                label,
                format!(
                    "{} data must be stored in raw_data or externally",
                    dtype_name(t.data_type)
                ),
            ))
        }
    };
    Ok(entries * width)
}

/// Encodes the typed-field payload of `t` (which holds `n` elements) as little-endian bytes.
fn typed_to_le(t: &TensorProto, n: usize) -> Result<Bytes> {
    use DataType as D;
    let dt = DataType::try_from(t.data_type).unwrap_or(D::Undefined);
    let mut out: Vec<u8> = Vec::with_capacity(n * elem_size(t.data_type).unwrap_or(1));
    match dt {
        D::Float => t
            .float_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        D::Complex64 => t
            .float_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        D::Double | D::Complex128 => t
            .double_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        D::Int64 => t
            .int64_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        D::Uint64 => t
            .uint64_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        D::Uint32 => t
            .uint64_data
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as u32).to_le_bytes())),
        D::Int32 => t
            .int32_data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        // The spec stores every type narrower than 32 bits in int32_data, one element each.
        D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16 => t
            .int32_data
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as u16).to_le_bytes())),
        D::Int8
        | D::Uint8
        | D::Bool
        | D::Float8e4m3fn
        | D::Float8e4m3fnuz
        | D::Float8e5m2
        | D::Float8e5m2fnuz
        | D::Float8e8m0 => t.int32_data.iter().for_each(|&v| out.push(v as u8)),
        _ => {
            return Err(OnnxError::tensor(
                &t.name,
                format!("cannot read typed data of {}", dtype_name(t.data_type)),
            ))
        }
    }
    Ok(Bytes::from(out))
}

/// The payload converted to `f32` (from f32, f64, f16, bf16 and the integer types).
pub fn decode_f32(t: &TensorProto, external: &ExternalStore) -> Result<Vec<f32>> {
    let b = payload_le(t, external)?;
    let dt = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    let mut out = Vec::new();
    if extend_f32_le(dt, &b, &mut out) {
        return Ok(out);
    }
    Ok(decode_i64(t, external)?
        .into_iter()
        .map(|v| v as f32)
        .collect())
}

/// Appends the little-endian floating-point payload `raw` of type `dtype` (f32, f64, f16,
/// bf16) to `out` as `f32`, f64 narrowed, the others exact; `false`, appending nothing, for a
/// type that is not floating point. Readers that widen a tensor row by row (importance) and
/// whole (`decode_f32`) share it, so both see the same values.
pub fn extend_f32_le(dtype: DataType, raw: &[u8], out: &mut Vec<f32>) -> bool {
    use DataType as D;
    match dtype {
        D::Float => out.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        D::Double => out.extend(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32),
        ),
        D::Float16 => f16_to_f32(raw, out),
        D::Bfloat16 => out.extend(
            raw.chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        _ => return false,
    }
    true
}

/// Appends the little-endian float16 values of `raw` to `out` as `f32` (exact: every float16
/// is an `f32`). With F16C, eight at a time straight from the bytes; the tail, or every value
/// without it, through `half`, which rounds nothing either.
fn f16_to_f32(raw: &[u8], out: &mut Vec<f32>) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports F16C and AVX, checked just above.
        done = unsafe { f16c_to_f32(raw, out) };
    }
    out.extend(
        raw[done..]
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
    );
}

/// The F16C part of [`f16_to_f32`]: converts whole groups of eight values, returning the
/// number of bytes of `raw` consumed.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
fn f16c_to_f32(raw: &[u8], out: &mut Vec<f32>) -> usize {
    use std::arch::x86_64::*;
    let groups = raw.len() / 16;
    out.reserve(groups * 8);
    let start = out.len();
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<f32>();
    for g in 0..groups {
        // SAFETY: group `g` is bytes 16g..16g+16 of `raw`, and its eight results go to the
        // reserved (uninitialised) capacity at 8g; x86 is little-endian, as the payload is.
        unsafe {
            let h = _mm_loadu_si128(raw.as_ptr().add(16 * g).cast::<__m128i>());
            _mm256_storeu_ps(dst.add(8 * g), _mm256_cvtph_ps(h));
        }
    }
    // SAFETY: the `groups * 8` values after `start` were all written above.
    unsafe { out.set_len(start + groups * 8) };
    groups * 16
}

/// The payload converted to `i64` (from every integer type and bool).
pub fn decode_i64(t: &TensorProto, external: &ExternalStore) -> Result<Vec<i64>> {
    use DataType as D;
    let b = payload_le(t, external)?;
    let dt = DataType::try_from(t.data_type).unwrap_or(D::Undefined);
    Ok(match dt {
        D::Int64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect(),
        D::Uint64 => b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunk of 8")) as i64)
            .collect(),
        D::Int32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        D::Uint32 => b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        D::Int16 => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        D::Uint16 => b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        D::Int8 => b.iter().map(|&v| v as i8 as i64).collect(),
        D::Uint8 | D::Bool => b.iter().map(|&v| v as i64).collect(),
        D::Float | D::Double | D::Float16 | D::Bfloat16 => {
            return Err(OnnxError::tensor(
                &t.name,
                format!("expected integers, found {}", dtype_name(t.data_type)),
            ))
        }
        _ => {
            return Err(OnnxError::tensor(
                &t.name,
                format!("cannot read {} as integers", dtype_name(t.data_type)),
            ))
        }
    })
}

/// Points `t` at the cut view stored under `key` (see [`crate::external::cut_key`]): its dims
/// become the view's, its payload is the view's bytes, read through the model's
/// [`ExternalStore`] (which must hold the view) and written by the saver as [`set_raw`] would
/// have stored them.
pub fn set_cut(t: &mut TensorProto, key: String, view: &crate::cut::CutView) {
    set_raw(t, Vec::new(), &view.dims());
    t.data_location = DataLocation::External as i32;
    t.external_data = vec![
        StringStringEntryProto::new("location", key),
        StringStringEntryProto::new("offset", "0".to_string()),
        StringStringEntryProto::new("length", view.len().to_string()),
    ];
}

/// Replaces `t`'s payload with little-endian `raw` bytes and `dims`, clearing the typed fields
/// and any external-data reference, so the tensor holds exactly this payload inline.
pub fn set_raw(t: &mut TensorProto, raw: Vec<u8>, dims: &[usize]) {
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.raw_data = Bytes::from(raw);
    t.float_data.clear();
    t.int32_data.clear();
    t.int64_data.clear();
    t.double_data.clear();
    t.uint64_data.clear();
    t.string_data.clear();
    t.external_data.clear();
    t.data_location = DataLocation::Default as i32;
}

/// A float32 tensor stored as `raw_data`.
pub fn from_f32(name: impl Into<String>, dims: &[usize], data: &[f32]) -> TensorProto {
    debug_assert_eq!(dims.iter().product::<usize>(), data.len());
    let mut raw = Vec::with_capacity(data.len() * 4);
    data.iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

/// An int64 tensor stored as `raw_data`.
pub fn from_i64(name: impl Into<String>, dims: &[usize], data: &[i64]) -> TensorProto {
    debug_assert_eq!(dims.iter().product::<usize>(), data.len());
    let mut raw = Vec::with_capacity(data.len() * 8);
    data.iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_float16_widens_as_half_widens_it() {
        // All 65536 bit patterns, plus a tail shorter than one group of eight.
        let raw: Vec<u8> = (0..=u16::MAX)
            .chain([0x3c00, 0xbc00, 0x7c01])
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut got = vec![1.5f32];
        f16_to_f32(&raw, &mut got);
        assert_eq!(got.len(), 1 + raw.len() / 2);
        for (c, g) in raw.chunks_exact(2).zip(&got[1..]) {
            let want = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "{c:?}: {g} vs {want}"
            );
        }
    }

    #[test]
    fn typed_and_raw_storage_decode_to_the_same_values() {
        let raw = from_f32("w", &[2, 2], &[1.0, -2.0, 3.5, 0.25]);
        let typed = TensorProto {
            name: "w".into(),
            dims: vec![2, 2],
            data_type: DataType::Float as i32,
            float_data: vec![1.0, -2.0, 3.5, 0.25],
            ..Default::default()
        };
        let ext = ExternalStore::none();
        assert_eq!(
            decode_f32(&raw, &ext).unwrap(),
            decode_f32(&typed, &ext).unwrap()
        );
        assert_eq!(
            payload_le(&raw, &ext).unwrap(),
            payload_le(&typed, &ext).unwrap()
        );
    }

    #[test]
    fn length_mismatch_names_the_tensor() {
        let mut t = from_f32("conv.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        t.dims = vec![3, 2];
        let err = payload_le(&t, &ExternalStore::none())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("conv.weight") && err.contains("need 24"),
            "{err}"
        );
    }

    #[test]
    fn int_types_widen_to_i64() {
        let t = TensorProto {
            name: "s".into(),
            dims: vec![3],
            data_type: DataType::Int32 as i32,
            int32_data: vec![-1, 0, 7],
            ..Default::default()
        };
        assert_eq!(
            decode_i64(&t, &ExternalStore::none()).unwrap(),
            vec![-1, 0, 7]
        );
        assert!(decode_i64(&from_f32("f", &[1], &[1.0]), &ExternalStore::none()).is_err());
    }
}
