//! Convolutions and pooling: Conv, ConvTranspose and the pools, weights shaped from the
//! tracked input channels.

use super::super::{attr_int, attr_ints, ModelBuilder};
use super::window_out;
use shears_onnx::proto::AttributeProto;

impl ModelBuilder {
    /// A 2-D convolution `{name}.weight` `[out_ch, C/group, kernel, kernel]` (and `{name}.bias`)
    /// over an NCHW input, square kernel, symmetric padding.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        x: &str,
        name: &str,
        out_ch: i64,
        kernel: i64,
        stride: i64,
        pad: i64,
        group: i64,
        bias: bool,
    ) -> String {
        self.conv2d(
            x,
            name,
            Conv2d {
                out_ch,
                kernel: [kernel, kernel],
                stride: [stride, stride],
                pads: [pad, pad, pad, pad],
                dilation: [1, 1],
                group,
                bias,
            },
        )
    }

    /// A 2-D convolution with every knob (see [`Conv2d`]).
    pub fn conv2d(&mut self, x: &str, name: &str, c: Conv2d) -> String {
        let s = self.shape_of(x).to_vec();
        assert_eq!(
            s.len(),
            4,
            "builder: conv '{name}' needs an NCHW input, '{x}' is {s:?}"
        );
        let in_ch = s[1];
        assert!(
            in_ch > 0 && in_ch % c.group == 0 && c.out_ch % c.group == 0,
            "builder: conv '{name}': channels {in_ch} -> {} not divisible by group {}",
            c.out_ch,
            c.group
        );
        let w = self.param_random(
            &format!("{name}.weight"),
            &[c.out_ch, in_ch / c.group, c.kernel[0], c.kernel[1]],
        );
        let mut inputs = vec![x.to_string(), w];
        if c.bias {
            inputs.push(self.param_uniform(&format!("{name}.bias"), &[c.out_ch], -0.1, 0.1));
        }
        let eff = |k: i64, d: i64| (k - 1) * d + 1;
        let shape = vec![
            s[0],
            c.out_ch,
            window_out(
                s[2],
                eff(c.kernel[0], c.dilation[0]),
                c.stride[0],
                c.pads[0],
                c.pads[2],
            ),
            window_out(
                s[3],
                eff(c.kernel[1], c.dilation[1]),
                c.stride[1],
                c.pads[1],
                c.pads[3],
            ),
        ];
        let attrs = vec![
            attr_ints("dilations", &c.dilation),
            attr_int("group", c.group),
            attr_ints("kernel_shape", &c.kernel),
            attr_ints("pads", &c.pads),
            attr_ints("strides", &c.stride),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.layer_op(name, "Conv", &refs, attrs, shape)
    }

    /// ConvTranspose (`nn.ConvTranspose2d`): weight `{name}.weight` `[C, out_ch/group, k, k]`
    /// (input channels first), optional `{name}.bias` `[out_ch]`; output size
    /// `(H - 1) * stride - 2 * pad + kernel`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose(
        &mut self,
        x: &str,
        name: &str,
        out_ch: i64,
        kernel: i64,
        stride: i64,
        pad: i64,
        group: i64,
        bias: bool,
    ) -> String {
        let s = self.shape_of(x).to_vec();
        assert_eq!(
            s.len(),
            4,
            "builder: conv_transpose '{name}' needs NCHW, got {s:?}"
        );
        assert!(
            s[1] % group == 0 && out_ch % group == 0,
            "builder: '{name}' group {group}"
        );
        let w = self.param_random(
            &format!("{name}.weight"),
            &[s[1], out_ch / group, kernel, kernel],
        );
        let mut inputs = vec![x.to_string(), w];
        if bias {
            inputs.push(self.param_uniform(&format!("{name}.bias"), &[out_ch], -0.1, 0.1));
        }
        let up = |d: i64| {
            if d < 0 {
                -1
            } else {
                (d - 1) * stride - 2 * pad + kernel
            }
        };
        let shape = vec![s[0], out_ch, up(s[2]), up(s[3])];
        let attrs = vec![
            attr_ints("dilations", &[1, 1]),
            attr_int("group", group),
            attr_ints("kernel_shape", &[kernel, kernel]),
            attr_ints("pads", &[pad, pad, pad, pad]),
            attr_ints("strides", &[stride, stride]),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.layer_op(name, "ConvTranspose", &refs, attrs, shape)
    }

    /// `conv` (no bias) then `bn` then `relu`: the usual CNN unit. The BN is `{bn_name}`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_bn_relu(
        &mut self,
        x: &str,
        conv_name: &str,
        bn_name: &str,
        out_ch: i64,
        kernel: i64,
        stride: i64,
        pad: i64,
        group: i64,
    ) -> String {
        let y = self.conv(x, conv_name, out_ch, kernel, stride, pad, group, false);
        let y = self.bn(&y, bn_name);
        self.relu(&y)
    }

    pub(super) fn pool(
        &mut self,
        op_type: &str,
        x: &str,
        kernel: i64,
        stride: i64,
        pad: i64,
        extra: Vec<AttributeProto>,
    ) -> String {
        let s = self.shape_of(x).to_vec();
        let shape = vec![
            s[0],
            s[1],
            window_out(s[2], kernel, stride, pad, pad),
            window_out(s[3], kernel, stride, pad, pad),
        ];
        let mut attrs = extra;
        attrs.extend([
            attr_int("ceil_mode", 0),
            attr_ints("kernel_shape", &[kernel, kernel]),
            attr_ints("pads", &[pad, pad, pad, pad]),
            attr_ints("strides", &[stride, stride]),
        ]);
        self.op(op_type, &[x], attrs, shape)
    }

    /// MaxPool with a square kernel.
    pub fn maxpool(&mut self, x: &str, kernel: i64, stride: i64, pad: i64) -> String {
        let extra = if self.opset >= 10 {
            vec![attr_ints("dilations", &[1, 1])]
        } else {
            vec![]
        };
        self.pool("MaxPool", x, kernel, stride, pad, extra)
    }

    /// AveragePool with a square kernel (padding counted, as `nn.AvgPool2d` does by default).
    pub fn avgpool(&mut self, x: &str, kernel: i64, stride: i64, pad: i64) -> String {
        self.pool(
            "AveragePool",
            x,
            kernel,
            stride,
            pad,
            vec![attr_int("count_include_pad", 1)],
        )
    }

    /// GlobalAveragePool: `[N, C, H, W]` to `[N, C, 1, 1]`.
    pub fn global_avgpool(&mut self, x: &str) -> String {
        let mut s = self.shape_of(x).to_vec();
        s.iter_mut().skip(2).for_each(|d| *d = 1);
        self.op("GlobalAveragePool", &[x], vec![], s)
    }
}

/// Every knob of a 2-D convolution. `pads` is `[top, left, bottom, right]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    pub out_ch: i64,
    pub kernel: [i64; 2],
    pub stride: [i64; 2],
    pub pads: [i64; 4],
    pub dilation: [i64; 2],
    pub group: i64,
    pub bias: bool,
}
