//! Normalization layers beyond BatchNormalization and LayerNormalization: InstanceNormalization
//! and GroupNorm, the latter in both forms exporters write (the `GroupNormalization` op, and
//! PyTorch's classic Reshape / InstanceNormalization / Reshape / Mul / Add decomposition).

use super::layers::norm_axis;
use super::{attr_float, attr_int, tensor_f32, ModelBuilder};

impl ModelBuilder {
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
