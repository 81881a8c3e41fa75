//! Matrix ops and what surrounds them in transformer exports: Gemm, MatMul (by a weight or
//! between values), Linear as MatMul + Add, Softmax, ReduceMean.

use super::super::{attr_float, attr_int, attr_ints, ModelBuilder};
use super::{broadcast, norm_axis};

impl ModelBuilder {
    /// Gemm as `nn.Linear` exports it: `{name}.weight` `[out, in]` with `transB=1` (or
    /// `[in, out]` without), `{name}.bias` `[out]`.
    pub fn gemm(&mut self, x: &str, name: &str, out: i64, trans_b: bool) -> String {
        let s = self.shape_of(x).to_vec();
        assert_eq!(
            s.len(),
            2,
            "builder: gemm '{name}' needs a 2-D input, '{x}' is {s:?}"
        );
        let dims = if trans_b { [out, s[1]] } else { [s[1], out] };
        let w = self.param_random(&format!("{name}.weight"), &dims);
        let b = self.param_uniform(&format!("{name}.bias"), &[out], -0.1, 0.1);
        let mut attrs = vec![attr_float("alpha", 1.0), attr_float("beta", 1.0)];
        if trans_b {
            attrs.push(attr_int("transB", 1));
        }
        self.layer_op(name, "Gemm", &[x, &w, &b], attrs, vec![s[0], out])
    }

    /// MatMul by a weight `{name}.weight` `[in, out]` over the last axis.
    pub fn matmul_weight(&mut self, x: &str, name: &str, out: i64) -> String {
        let mut s = self.shape_of(x).to_vec();
        let k = *s
            .last()
            .unwrap_or_else(|| panic!("builder: matmul '{name}' on a scalar"));
        let w = self.param(
            self.random_tensor(&format!("{name}.weight"), &[out, k])
                .transposed_2d(),
        );
        *s.last_mut().unwrap_or(&mut 0) = out;
        self.layer_op(name, "MatMul", &[x, &w], vec![], s)
    }

    /// `nn.Linear` on an N-D input as exporters write it: MatMul by `{name}.weight` `[in, out]`
    /// then Add of `{name}.bias` `[out]`.
    pub fn linear(&mut self, x: &str, name: &str, out: i64) -> String {
        let y = self.matmul_weight(x, name, out);
        let b = self.param_uniform(&format!("{name}.bias"), &[out], -0.1, 0.1);
        let shape = self.shape_of(&y).to_vec();
        self.layer_op(name, "Add", &[&y, &b], vec![], shape)
    }

    /// MatMul of two values (batch dims broadcast).
    pub fn matmul(&mut self, a: &str, b: &str) -> String {
        let (sa, sb) = (self.shape_of(a).to_vec(), self.shape_of(b).to_vec());
        assert!(
            sa.len() >= 2 && sb.len() >= 2,
            "builder: matmul needs rank >= 2 ({sa:?} x {sb:?})"
        );
        let mut shape = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        shape.push(sa[sa.len() - 2]);
        shape.push(sb[sb.len() - 1]);
        self.op("MatMul", &[a, b], vec![], shape)
    }

    /// Softmax over `axis`.
    pub fn softmax(&mut self, x: &str, axis: i64) -> String {
        let s = self.shape_of(x).to_vec();
        self.op("Softmax", &[x], vec![attr_int("axis", axis)], s)
    }

    /// ReduceMean over `axes` (axes as an input at opset 18+).
    pub fn reduce_mean(&mut self, x: &str, axes: &[i64], keepdims: bool) -> String {
        let s = self.shape_of(x).to_vec();
        let reduced: Vec<usize> = axes.iter().map(|&a| norm_axis(a, s.len())).collect();
        let shape: Vec<i64> = s
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (reduced.contains(&i), keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        let node = self.auto_node_name("ReduceMean");
        let mut attrs = vec![attr_int("keepdims", i64::from(keepdims))];
        if self.opset >= 18 {
            let ax = self.vec_i64(&format!("{node}_axes"), axes);
            self.emit(node, "ReduceMean", &[x, &ax], attrs, shape)
        } else {
            attrs.insert(0, attr_ints("axes", axes));
            self.emit(node, "ReduceMean", &[x], attrs, shape)
        }
    }
}

trait Transposed2d {
    fn transposed_2d(self) -> Self;
}

impl Transposed2d for shears_onnx::proto::TensorProto {
    /// The `[r, c]` float tensor as `[c, r]` (so a Linear weight drawn as `[out, in]` becomes
    /// the `[in, out]` matrix MatMul multiplies by, with the same values per output feature).
    fn transposed_2d(mut self) -> Self {
        let (r, c) = (self.dims[0] as usize, self.dims[1] as usize);
        let src = self.raw_data.clone();
        let mut dst = vec![0u8; src.len()];
        for i in 0..r {
            for j in 0..c {
                let s = (i * c + j) * 4;
                let d = (j * r + i) * 4;
                dst[d..d + 4].copy_from_slice(&src[s..s + 4]);
            }
        }
        self.dims = vec![c as i64, r as i64];
        self.raw_data = dst.into();
        self
    }
}
