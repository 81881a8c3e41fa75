//! Sparsity facts for `shears inspect`: each sparsifiable weight's zeros and which N:M
//! patterns it satisfies, and the model's zeros over all float initializers.

use shears_onnx::{tensor, Model};

use crate::nm::NmPattern;
use crate::weights;
use crate::SparsifyError;

/// One weight's sparsity.
///
/// Invariant: `patterns` follows the order asked; a pattern is `None` when the weight's
/// reduction size is not a multiple of its M.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WeightSparsity {
    pub weight: String,
    pub layer: String,
    pub op_type: String,
    pub elements: u64,
    pub zeros: u64,
    pub patterns: Vec<(String, Option<bool>)>,
}

/// Every sparsifiable weight of `model` (node order) with its zeros and whether it satisfies
/// each of `patterns`.
pub fn layer_sparsity(
    model: &Model,
    patterns: &[NmPattern],
) -> Result<Vec<WeightSparsity>, SparsifyError> {
    let (found, _) = weights::find(model);
    let mut out = Vec::with_capacity(found.len());
    for w in found {
        let t = model
            .initializer(w.value)
            .ok_or_else(|| SparsifyError::Lost(w.name.clone()))?;
        let (elements, zeros, patterns) = match ZeroTest::of(t.data_type) {
            // Floats are read in place, one pass per question, nothing of the tensor's size
            // allocated: on a multi-gigabyte model, decoding every weight to f32 cost several
            // times the time of copying the file.
            Some(test) => {
                let bytes = model.payload(t)?;
                let elements = bytes.len() / test.elem();
                let nonzero = |i: usize| !test.is_zero(&bytes, i);
                let found = (
                    elements as u64,
                    test.count(&bytes),
                    patterns
                        .iter()
                        .map(|p| (p.to_string(), p.satisfied_by_fn(&w.layout, nonzero)))
                        .collect(),
                );
                // Read once: its pages of the mapped input need not stay resident.
                shears_onnx::load::release_pages(&bytes);
                found
            }
            None => {
                let v = model.f32s(t)?;
                (
                    v.len() as u64,
                    v.iter().filter(|&&x| x == 0.0).count() as u64,
                    patterns
                        .iter()
                        .map(|p| (p.to_string(), p.satisfied_by(&w.layout, &v)))
                        .collect(),
                )
            }
        };
        out.push(WeightSparsity {
            zeros,
            elements,
            patterns,
            weight: w.name,
            layer: w.layer,
            op_type: w.op_type,
        });
    }
    Ok(out)
}

/// Which elements of a little-endian float payload decode to `0.0` as `f32` (as
/// [`Model::f32s`] decodes them), read from the payload's bytes.
///
/// Invariant: `is_zero(bytes, i)` equals `Model::f32s(t)[i] == 0.0` for every element of a
/// payload of the type it was made for.
#[derive(Clone, Copy, Debug)]
enum ZeroTest {
    F32,
    /// Float16 and bfloat16: zero exactly when the bits other than the sign are (a subnormal
    /// widens to a non-zero f32).
    Half,
    /// Narrowed to f32 first: a double too small for f32 reads as zero, as it decodes.
    F64,
}

impl ZeroTest {
    /// The test for `data_type`; `None` for types other than f32, f64, f16 and bf16.
    fn of(data_type: i32) -> Option<ZeroTest> {
        use shears_onnx::proto::tensor_proto::DataType as D;
        match D::try_from(data_type).ok()? {
            D::Float => Some(ZeroTest::F32),
            D::Float16 | D::Bfloat16 => Some(ZeroTest::Half),
            D::Double => Some(ZeroTest::F64),
            _ => None,
        }
    }

    fn elem(self) -> usize {
        match self {
            ZeroTest::F32 => 4,
            ZeroTest::Half => 2,
            ZeroTest::F64 => 8,
        }
    }

    fn is_zero(self, bytes: &[u8], i: usize) -> bool {
        match self {
            ZeroTest::F32 => zero_f32(&bytes[4 * i..4 * i + 4]),
            ZeroTest::Half => zero_half(&bytes[2 * i..2 * i + 2]),
            ZeroTest::F64 => zero_f64(&bytes[8 * i..8 * i + 8]),
        }
    }

    /// The zeros of the whole payload, one tight loop per type.
    fn count(self, bytes: &[u8]) -> u64 {
        let n = match self {
            ZeroTest::F32 => bytes.chunks_exact(4).filter(|c| zero_f32(c)).count(),
            ZeroTest::Half => bytes.chunks_exact(2).filter(|c| zero_half(c)).count(),
            ZeroTest::F64 => bytes.chunks_exact(8).filter(|c| zero_f64(c)).count(),
        };
        n as u64
    }
}

fn zero_f32(c: &[u8]) -> bool {
    u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff == 0
}

fn zero_half(c: &[u8]) -> bool {
    u16::from_le_bytes([c[0], c[1]]) & 0x7fff == 0
}

fn zero_f64(c: &[u8]) -> bool {
    f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32 == 0.0
}

/// Zeros and elements over every float initializer of `model` (f32, f64, f16, bf16).
pub fn model_zeros(model: &Model) -> Result<(u64, u64), SparsifyError> {
    let mut zeros = 0;
    let mut total = 0;
    if let Some(g) = model.proto.graph.as_ref() {
        for t in &g.initializer {
            if !weights::is_float(t.data_type) {
                continue;
            }
            match ZeroTest::of(t.data_type) {
                Some(test) => {
                    let bytes = tensor::payload_le(t, &model.external)?;
                    zeros += test.count(&bytes);
                    total += (bytes.len() / test.elem()) as u64;
                    shears_onnx::load::release_pages(&bytes);
                }
                None => {
                    let v = tensor::decode_f32(t, &model.external)?;
                    zeros += v.iter().filter(|&&x| x == 0.0).count() as u64;
                    total += v.len() as u64;
                }
            }
        }
    }
    Ok((zeros, total))
}

#[cfg(test)]
mod tests {
    use super::ZeroTest;
    use shears_onnx::proto::tensor_proto::DataType as D;

    /// `is_zero` and `count` against the values decoded to f32, for each float type, with the
    /// edge cases: signed zeros, subnormals, NaN, and doubles too small for f32.
    #[test]
    fn zero_tests_read_what_decoding_to_f32_reads() {
        let f16s = [0.0f32, -0.0, 1.0, -2.5, f32::NAN]
            .map(half::f16::from_f32)
            .into_iter()
            .chain([half::f16::from_bits(1), half::f16::from_bits(0x8001)]);
        let f16_bytes: Vec<u8> = f16s.clone().flat_map(|x| x.to_le_bytes()).collect();
        let f16_vals: Vec<f32> = f16s.map(half::f16::to_f32).collect();
        let bf16s = [0.0f32, -0.0, 3.0, 1e-40]
            .map(half::bf16::from_f32)
            .into_iter()
            .chain([half::bf16::from_bits(1)]);
        let bf16_bytes: Vec<u8> = bf16s.clone().flat_map(|x| x.to_le_bytes()).collect();
        let bf16_vals: Vec<f32> = bf16s.map(half::bf16::to_f32).collect();
        let f32s = [0.0f32, -0.0, 1e-45, f32::NAN, 7.0];
        let f32_bytes: Vec<u8> = f32s.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f64s = [0.0f64, -0.0, 1e-300, 1e-30, -4.0];
        let f64_bytes: Vec<u8> = f64s.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f64_vals: Vec<f32> = f64s.iter().map(|&x| x as f32).collect();
        let cases = [
            (D::Float16, f16_bytes, f16_vals),
            (D::Bfloat16, bf16_bytes, bf16_vals),
            (D::Float, f32_bytes, f32s.to_vec()),
            (D::Double, f64_bytes, f64_vals),
        ];
        for (dtype, bytes, values) in cases {
            let test = ZeroTest::of(dtype as i32).expect("a float type");
            assert_eq!(bytes.len() / test.elem(), values.len(), "{dtype:?}");
            for (i, v) in values.iter().enumerate() {
                assert_eq!(test.is_zero(&bytes, i), *v == 0.0, "{dtype:?} element {i}");
            }
            let zeros = values.iter().filter(|&&v| v == 0.0).count() as u64;
            assert_eq!(test.count(&bytes), zeros, "{dtype:?}");
        }
        assert!(ZeroTest::of(D::Int8 as i32).is_none());
    }
}
