//! Normalization layers: BatchNormalization, LayerNormalization (the op, or its decomposition
//! before opset 17), InstanceNormalization, and GroupNorm in both forms exporters write (the
//! opset-21 `GroupNormalization` op, and PyTorch's classic Reshape / InstanceNormalization /
//! Reshape / Mul / Add decomposition).

use super::super::{attr_float, attr_int, tensor_f32, ModelBuilder};
use super::norm_axis;

impl ModelBuilder {
    /// BatchNormalization over axis 1 with `{name}.weight`, `.bias`, `.running_mean` and
    /// `.running_var` (all `[C]`, variance > 0).
    pub fn bn(&mut self, x: &str, name: &str) -> String {
        let s = self.shape_of(x).to_vec();
        let c = s[1];
        let scale = self.param_uniform(&format!("{name}.weight"), &[c], 0.5, 1.5);
        let b = self.param_uniform(&format!("{name}.bias"), &[c], -0.2, 0.2);
        let mean = self.param_uniform(&format!("{name}.running_mean"), &[c], -0.2, 0.2);
        let var = self.param_uniform(&format!("{name}.running_var"), &[c], 0.5, 1.5);
        let attrs = vec![attr_float("epsilon", 1e-5), attr_float("momentum", 0.9)];
        self.layer_op(
            name,
            "BatchNormalization",
            &[x, &scale, &b, &mean, &var],
            attrs,
            s,
        )
    }

    /// Layer normalization over axes `axis..` with `{name}.weight` and `{name}.bias`:
    /// `LayerNormalization` at opset 17+, else the ReduceMean/Sub/Pow/Sqrt/Div form.
    pub fn layernorm(&mut self, x: &str, name: &str, axis: i64) -> String {
        let s = self.shape_of(x).to_vec();
        let a = norm_axis(axis, s.len());
        let norm_dims = s[a..].to_vec();
        let w = self.param_uniform(&format!("{name}.weight"), &norm_dims, 0.5, 1.5);
        let b = self.param_uniform(&format!("{name}.bias"), &norm_dims, -0.2, 0.2);
        if self.opset >= 17 {
            let attrs = vec![attr_int("axis", axis), attr_float("epsilon", 1e-5)];
            return self.layer_op(name, "LayerNormalization", &[x, &w, &b], attrs, s);
        }
        let axes: Vec<i64> = (a as i64..s.len() as i64).collect();
        let scope = std::mem::replace(&mut self.scope, name.to_string());
        let mean = self.reduce_mean(x, &axes, true);
        let centered = self.sub(x, &mean);
        let two = self.scalar_f32(&format!("{name}.pow_exponent"), 2.0);
        let sq = self.pow(&centered, &two);
        let var = self.reduce_mean(&sq, &axes, true);
        let var = self.add_scalar(&var, 1e-5);
        let std = self.sqrt(&var);
        let normed = self.div(&centered, &std);
        let scaled = self.mul(&normed, &w);
        let out = self.add(&scaled, &b);
        self.scope = scope;
        out
    }

    /// InstanceNormalization over axis 1 with `{name}.weight` and `{name}.bias` `[C]`.
    pub fn instance_norm(&mut self, x: &str, name: &str) -> String {
        let s = self.shape_of(x).to_vec();
        norm_axis(1, s.len());
        let scale = self.param_uniform(&format!("{name}.weight"), &[s[1]], 0.5, 1.5);
        let b = self.param_uniform(&format!("{name}.bias"), &[s[1]], -0.2, 0.2);
        let attrs = vec![attr_float("epsilon", 1e-5)];
        self.layer_op(name, "InstanceNormalization", &[x, &scale, &b], attrs, s)
    }

    /// `nn.GroupNorm(groups, C)` on NCHW with `{name}.weight` and `{name}.bias` `[C]`.
    ///
    /// At opset 21+ this is one `GroupNormalization` node (per-channel scale and bias, the
    /// opset-21 signature). Before, it is PyTorch's classic export: Reshape to `[N, groups, -1]`,
    /// InstanceNormalization with unit scale and zero bias over the groups, Reshape back, then
    /// Mul by the weight and Add of the bias, both shaped `[C, 1, 1]`.
    pub fn group_norm(&mut self, x: &str, name: &str, groups: i64) -> String {
        let s = self.shape_of(x).to_vec();
        assert_eq!(
            s.len(),
            4,
            "builder: group_norm '{name}' needs NCHW, got {s:?}"
        );
        let c = s[1];
        assert!(
            c % groups == 0,
            "builder: group_norm '{name}': {c} channels, {groups} groups"
        );
        if self.opset >= 21 {
            let scale = self.param_uniform(&format!("{name}.weight"), &[c], 0.5, 1.5);
            let b = self.param_uniform(&format!("{name}.bias"), &[c], -0.2, 0.2);
            let attrs = vec![attr_float("epsilon", 1e-5), attr_int("num_groups", groups)];
            return self.layer_op(name, "GroupNormalization", &[x, &scale, &b], attrs, s);
        }
        let scope = std::mem::replace(&mut self.scope, name.to_string());
        let grouped = self.reshape(x, &[s[0].max(0), groups, -1]);
        let ones = self.unique_value_name(&format!("{name}.instance_norm_scale"));
        let ones = self.param(tensor_f32(&ones, &[groups], &vec![1.0; groups as usize]));
        let zeros = self.unique_value_name(&format!("{name}.instance_norm_bias"));
        let zeros = self.param(tensor_f32(&zeros, &[groups], &vec![0.0; groups as usize]));
        let gs = self.shape_of(&grouped).to_vec();
        let normed = self.op(
            "InstanceNormalization",
            &[&grouped, &ones, &zeros],
            vec![attr_float("epsilon", 1e-5)],
            gs,
        );
        let back = self.reshape(&normed, &[s[0].max(0), c, s[2], s[3]]);
        let w = self.param_uniform(&format!("{name}.weight"), &[c, 1, 1], 0.5, 1.5);
        let b = self.param_uniform(&format!("{name}.bias"), &[c, 1, 1], -0.2, 0.2);
        let y = self.mul(&back, &w);
        let y = self.add(&y, &b);
        self.scope = scope;
        y
    }
}
