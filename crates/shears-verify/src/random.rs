//! Seeded random inputs: the same seed gives the same tensors on every platform.

use candle_core::{DType, Tensor};
use shears_onnx::Model;

use crate::error::{Result, VerifyError};
use crate::ops::{compute_dtype, CPU};

/// A small deterministic generator (SplitMix64) with standard-normal samples (Box-Muller).
///
/// Invariant: the sequence depends only on the seed.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard-normal sample.
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// One random value for every runtime input of `model`, at the given concrete shapes (as
/// [`shears_onnx::InputShapes::resolve`] returns them): standard-normal floats, zero integers
/// and booleans (indices and masks for which zero is always valid).
pub fn random_inputs(
    model: &Model,
    shapes: &[(String, Vec<usize>)],
    rng: &mut Rng,
) -> Result<Vec<(String, Tensor)>> {
    let graph = &model.graph;
    let error = |input: &str, reason: String| VerifyError::Input {
        file: model.source.clone(),
        input: input.to_string(),
        reason,
    };
    shapes
        .iter()
        .map(|(name, dims)| {
            let dtype = match graph.value_id(name).map(|v| graph.value(v).dtype) {
                Some(0) | None => DType::F32,
                Some(dt) => compute_dtype(dt).map_err(|e| error(name, e.0))?,
            };
            let count = crate::ops::check_elements(dims, "the input of shape")
                .map_err(|e| error(name, e))? as usize;
            let t = match dtype {
                DType::F32 => {
                    let v: Vec<f32> = (0..count).map(|_| rng.normal()).collect();
                    Tensor::from_vec(v, dims.as_slice(), &CPU)
                }
                other => Tensor::zeros(dims.as_slice(), other, &CPU),
            };
            let t = t.map_err(|e| error(name, crate::ops::candle_message(e)))?;
            Ok((name.clone(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_samples_are_seeded_and_standard() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f32> = (0..20000).map(|_| a.normal()).collect();
        let ys: Vec<f32> = (0..20000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        assert_ne!(Rng::new(8).normal(), xs[0]);
    }
}
