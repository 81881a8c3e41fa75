//! Layer helpers of [`ModelBuilder`]: each adds one layer (or the few nodes an exporter writes
//! for it), creates its parameters with the right shapes from the tracked input shape, and
//! records its output shape.
//!
//! Parameter and node names follow PyTorch's exporter: a layer called `layer1.0.conv1` owns
//! `layer1.0.conv1.weight` and `layer1.0.conv1.bias` and is the node `/layer1.0.conv1/Conv`.
//! Parameter-free ops (Relu, Add, ...) are auto-named in the current scope (`/Relu`, `/Relu_1`,
//! or `/layer1.0/Relu` after `set_scope("layer1.0")`). Ops whose arguments became inputs in some
//! opset (Clip's bounds, Split's sizes, Slice's bounds, Unsqueeze's axes, ReduceMean's axes, Pad's
//! pads, Resize's scales) are written in the form the builder's opset requires.

use super::{attr_float, attr_int, attr_ints, attr_string, tensor_f32, tensor_i64, ModelBuilder};
use crate::proto::tensor_proto::DataType;
use crate::proto::AttributeProto;

/// Broadcasts two shapes numpy-style; `-1` (unknown) yields to a known dimension.
pub fn broadcast(a: &[i64], b: &[i64]) -> Vec<i64> {
    let rank = a.len().max(b.len());
    let at = |s: &[i64], i: usize| -> i64 {
        let off = rank - s.len();
        if i < off {
            1
        } else {
            s[i - off]
        }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match (x, y) {
                (1, d) | (d, 1) => d,
                (-1, d) | (d, -1) => d,
                (x, y) => {
                    assert_eq!(x, y, "builder: shapes {a:?} and {b:?} do not broadcast");
                    x
                }
            }
        })
        .collect()
}

/// Output size of a sliding window (Conv, pools) over `d` elements; `-1` stays unknown.
fn window_out(d: i64, kernel: i64, stride: i64, pad_begin: i64, pad_end: i64) -> i64 {
    if d < 0 {
        -1
    } else {
        (d + pad_begin + pad_end - kernel) / stride + 1
    }
}

pub(super) fn norm_axis(axis: i64, rank: usize) -> usize {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    assert!(
        (0..rank as i64).contains(&a),
        "builder: axis {axis} out of range for rank {rank}"
    );
    a as usize
}

fn product_or_unknown(dims: &[i64]) -> i64 {
    if dims.iter().any(|&d| d < 0) {
        -1
    } else {
        dims.iter().product()
    }
}

impl ModelBuilder {
    /// Reserves the auto name of the next `op_type` node in the current scope.
    pub(super) fn auto_node_name(&mut self, op_type: &str) -> String {
        let base = if self.scope.is_empty() {
            format!("/{op_type}")
        } else {
            format!("/{}/{op_type}", self.scope)
        };
        self.unique_node_name(&base)
    }

    /// Adds the already-named (reserved) node with one output `{node}_output_0` of shape
    /// `shape` and the element type of its first input.
    pub(super) fn emit(
        &mut self,
        node: String,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let out = format!("{node}_output_0");
        let dtype = inputs
            .first()
            .filter(|i| !i.is_empty())
            .map_or(DataType::Float as i32, |i| self.dtype_of(i));
        self.push_node(node, op_type, inputs, std::slice::from_ref(&out), attrs);
        self.shapes.insert(out.clone(), shape);
        self.dtypes.insert(out.clone(), dtype);
        out
    }

    /// An auto-named node with one output of `shape`.
    pub(super) fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let node = self.auto_node_name(op_type);
        self.emit(node, op_type, inputs, attrs, shape)
    }

    /// A layer node `/{layer}/{op_type}` with one output of `shape`.
    pub(super) fn layer_op(
        &mut self,
        layer: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        shape: Vec<i64>,
    ) -> String {
        let node = self.unique_node_name(&format!("/{layer}/{op_type}"));
        self.emit(node, op_type, inputs, attrs, shape)
    }

    /// A scalar float parameter named after `base` (made unique).
    pub fn scalar_f32(&mut self, base: &str, v: f32) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_f32(&name, &[], &[v]))
    }

    /// An int64 vector parameter named after `base` (made unique).
    pub fn vec_i64(&mut self, base: &str, v: &[i64]) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_i64(&name, &[v.len() as i64], v))
    }

    /// A float vector parameter named after `base` (made unique).
    pub fn vec_f32(&mut self, base: &str, v: &[f32]) -> String {
        let name = self.unique_value_name(base);
        self.param(tensor_f32(&name, &[v.len() as i64], v))
    }

    /// An element-wise op of one input (shape and type preserved).
    pub fn unary(&mut self, op_type: &str, x: &str) -> String {
        let shape = self.shape_of(x).to_vec();
        self.op(op_type, &[x], vec![], shape)
    }

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

    /// Relu.
    pub fn relu(&mut self, x: &str) -> String {
        self.unary("Relu", x)
    }

    /// Sigmoid.
    pub fn sigmoid(&mut self, x: &str) -> String {
        self.unary("Sigmoid", x)
    }

    /// HardSwish (opset 14+).
    pub fn hardswish(&mut self, x: &str) -> String {
        assert!(self.opset >= 14, "builder: HardSwish needs opset 14+");
        self.unary("HardSwish", x)
    }

    /// Erf.
    pub fn erf(&mut self, x: &str) -> String {
        self.unary("Erf", x)
    }

    /// Tanh.
    pub fn tanh(&mut self, x: &str) -> String {
        self.unary("Tanh", x)
    }

    /// Sqrt.
    pub fn sqrt(&mut self, x: &str) -> String {
        self.unary("Sqrt", x)
    }

    /// Gelu: the `Gelu` op at opset 20+, else the Erf form PyTorch's classic exporter writes
    /// (`x * 0.5 * (1 + erf(x / sqrt 2))` as Div, Erf, Add, Mul, Mul).
    pub fn gelu(&mut self, x: &str) -> String {
        if self.opset >= 20 {
            return self.unary("Gelu", x);
        }
        let d = self.div_scalar(x, std::f32::consts::SQRT_2);
        let e = self.erf(&d);
        let a = self.add_scalar(&e, 1.0);
        let m = self.mul(x, &a);
        self.mul_scalar(&m, 0.5)
    }

    /// Clip to `[lo, hi]`: bounds as inputs at opset 11+, as attributes before.
    pub fn clip(&mut self, x: &str, lo: f32, hi: f32) -> String {
        let shape = self.shape_of(x).to_vec();
        let node = self.auto_node_name("Clip");
        if self.opset >= 11 {
            let min = self.scalar_f32(&format!("{node}_min"), lo);
            let max = self.scalar_f32(&format!("{node}_max"), hi);
            self.emit(node, "Clip", &[x, &min, &max], vec![], shape)
        } else {
            let attrs = vec![attr_float("max", hi), attr_float("min", lo)];
            self.emit(node, "Clip", &[x], attrs, shape)
        }
    }

    /// Clip to `[0, 6]` (ReLU6).
    pub fn relu6(&mut self, x: &str) -> String {
        self.clip(x, 0.0, 6.0)
    }

    /// A broadcasting binary op.
    pub fn binary(&mut self, op_type: &str, a: &str, b: &str) -> String {
        let shape = broadcast(self.shape_of(a), self.shape_of(b));
        self.op(op_type, &[a, b], vec![], shape)
    }

    /// Add.
    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.binary("Add", a, b)
    }

    /// Sub.
    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.binary("Sub", a, b)
    }

    /// Mul.
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.binary("Mul", a, b)
    }

    /// Div.
    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.binary("Div", a, b)
    }

    /// Pow.
    pub fn pow(&mut self, a: &str, b: &str) -> String {
        self.binary("Pow", a, b)
    }

    /// A binary op with a scalar constant second operand (named `{node}_B`).
    fn binary_scalar(&mut self, op_type: &str, x: &str, v: f32) -> String {
        let shape = self.shape_of(x).to_vec();
        let node = self.auto_node_name(op_type);
        let c = self.scalar_f32(&format!("{node}_B"), v);
        self.emit(node, op_type, &[x, &c], vec![], shape)
    }

    /// `x + v`.
    pub fn add_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Add", x, v)
    }

    /// `x * v`.
    pub fn mul_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Mul", x, v)
    }

    /// `x / v`.
    pub fn div_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Div", x, v)
    }

    /// Concat along `axis`.
    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        assert!(!xs.is_empty(), "builder: concat of nothing");
        let first = self.shape_of(xs[0]).to_vec();
        let a = norm_axis(axis, first.len());
        let mut shape = first;
        for x in &xs[1..] {
            let d = self.shape_of(x)[a];
            shape[a] = if shape[a] < 0 || d < 0 {
                -1
            } else {
                shape[a] + d
            };
        }
        self.op("Concat", xs, vec![attr_int("axis", axis)], shape)
    }

    /// Split along `axis` into parts of `sizes` (sizes as an input at opset 13+).
    pub fn split(&mut self, x: &str, axis: i64, sizes: &[i64]) -> Vec<String> {
        let s = self.shape_of(x).to_vec();
        let a = norm_axis(axis, s.len());
        assert!(
            s[a] < 0 || sizes.iter().sum::<i64>() == s[a],
            "builder: split sizes {sizes:?} do not add up to {}",
            s[a]
        );
        let node = self.auto_node_name("Split");
        let outs: Vec<String> = (0..sizes.len())
            .map(|i| format!("{node}_output_{i}"))
            .collect();
        let mut inputs = vec![x.to_string()];
        let mut attrs = vec![attr_int("axis", axis)];
        if self.opset >= 13 {
            inputs.push(self.vec_i64(&format!("{node}_split"), sizes));
        } else {
            attrs.push(attr_ints("split", sizes));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let dtype = self.dtype_of(x);
        self.push_node(node, "Split", &refs, &outs, attrs);
        for (o, &n) in outs.iter().zip(sizes) {
            let mut sh = s.clone();
            sh[a] = n;
            self.shapes.insert(o.clone(), sh);
            self.dtypes.insert(o.clone(), dtype);
        }
        outs
    }

    /// Slice (bounds as inputs, opset 10+). `steps` may be empty (all 1).
    pub fn slice(
        &mut self,
        x: &str,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
        steps: &[i64],
    ) -> String {
        assert!(
            self.opset >= 10,
            "builder: Slice with inputs needs opset 10+"
        );
        let mut shape = self.shape_of(x).to_vec();
        let rank = shape.len();
        for (i, &axis) in axes.iter().enumerate() {
            let a = norm_axis(axis, rank);
            let d = shape[a];
            if d < 0 {
                continue;
            }
            let step = steps.get(i).copied().unwrap_or(1);
            let fix = |v: i64| if v < 0 { v + d } else { v };
            let (s, e) = (fix(starts[i]), fix(ends[i]));
            shape[a] = if step > 0 {
                let (s, e) = (s.clamp(0, d), e.clamp(0, d));
                ((e - s + step - 1) / step).max(0)
            } else {
                let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
                ((s - e + (-step) - 1) / (-step)).max(0)
            };
        }
        let node = self.auto_node_name("Slice");
        let st = self.vec_i64(&format!("{node}_starts"), starts);
        let en = self.vec_i64(&format!("{node}_ends"), ends);
        let ax = self.vec_i64(&format!("{node}_axes"), axes);
        let mut inputs = vec![x.to_string(), st, en, ax];
        if !steps.is_empty() {
            inputs.push(self.vec_i64(&format!("{node}_steps"), steps));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.emit(node, "Slice", &refs, vec![], shape)
    }

    fn pool(
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

    /// Flatten at `axis` into 2-D.
    pub fn flatten(&mut self, x: &str, axis: i64) -> String {
        let s = self.shape_of(x).to_vec();
        let a = if axis < 0 {
            axis + s.len() as i64
        } else {
            axis
        } as usize;
        let shape = vec![product_or_unknown(&s[..a]), product_or_unknown(&s[a..])];
        self.op("Flatten", &[x], vec![attr_int("axis", axis)], shape)
    }

    /// Reshape to `shape` (0 copies the input dim, -1 is inferred); the shape is a parameter
    /// named `{node}_shape`.
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let mut out: Vec<i64> = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if d == 0 { s[i] } else { d })
            .collect();
        if let Some(pos) = out.iter().position(|&d| d == -1) {
            let total = product_or_unknown(&s);
            let known: Vec<i64> = out
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != pos)
                .map(|(_, &d)| d)
                .collect();
            let rest = product_or_unknown(&known);
            out[pos] = if total < 0 || rest <= 0 {
                -1
            } else {
                total / rest
            };
        }
        let node = self.auto_node_name("Reshape");
        let sh = self.vec_i64(&format!("{node}_shape"), shape);
        self.emit(node, "Reshape", &[x, &sh], vec![], out)
    }

    /// Reshape by a shape computed in the graph (`shape` is an int64 value).
    pub fn reshape_dynamic(&mut self, x: &str, shape: &str, result: &[i64]) -> String {
        self.op("Reshape", &[x, shape], vec![], result.to_vec())
    }

    /// Transpose by `perm`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let shape = perm.iter().map(|&p| s[p as usize]).collect();
        self.op("Transpose", &[x], vec![attr_ints("perm", perm)], shape)
    }

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

    /// Identity.
    pub fn identity(&mut self, x: &str) -> String {
        self.unary("Identity", x)
    }

    /// Dropout (inference: one output, ratio left at its default).
    pub fn dropout(&mut self, x: &str) -> String {
        self.unary("Dropout", x)
    }

    /// Cast to element type `to` (a `DataType` as i32).
    pub fn cast(&mut self, x: &str, to: i32) -> String {
        let s = self.shape_of(x).to_vec();
        let out = self.op("Cast", &[x], vec![attr_int("to", i64::from(to))], s);
        self.dtypes.insert(out.clone(), to);
        out
    }

    /// Constant zero padding; `pads` is ONNX's `[begin_0.., end_0..]` (an input at opset 11+).
    pub fn pad(&mut self, x: &str, pads: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let r = s.len();
        assert_eq!(pads.len(), 2 * r, "builder: pad needs 2 * rank values");
        let shape = (0..r)
            .map(|i| {
                if s[i] < 0 {
                    -1
                } else {
                    s[i] + pads[i] + pads[r + i]
                }
            })
            .collect();
        let node = self.auto_node_name("Pad");
        if self.opset >= 11 {
            let p = self.vec_i64(&format!("{node}_pads"), pads);
            self.emit(
                node,
                "Pad",
                &[x, &p],
                vec![attr_string("mode", "constant")],
                shape,
            )
        } else {
            let attrs = vec![attr_string("mode", "constant"), attr_ints("pads", pads)];
            self.emit(node, "Pad", &[x], attrs, shape)
        }
    }

    /// Nearest-neighbour Resize by per-axis `scales` (the form `nn.Upsample` exports).
    pub fn resize(&mut self, x: &str, scales: &[f32]) -> String {
        assert!(self.opset >= 11, "builder: Resize helper needs opset 11+");
        let s = self.shape_of(x).to_vec();
        let shape = s
            .iter()
            .zip(scales)
            .map(|(&d, &f)| {
                if d < 0 {
                    -1
                } else {
                    (d as f32 * f).floor() as i64
                }
            })
            .collect();
        let node = self.auto_node_name("Resize");
        let sc = self.vec_f32(&format!("{node}_scales"), scales);
        let roi = if self.opset >= 13 {
            String::new()
        } else {
            self.vec_f32(&format!("{node}_roi"), &[])
        };
        let attrs = vec![
            attr_string("coordinate_transformation_mode", "asymmetric"),
            attr_string("mode", "nearest"),
            attr_string("nearest_mode", "floor"),
        ];
        self.emit(node, "Resize", &[x, &roi, &sc], attrs, shape)
    }

    /// Shape: the int64 vector of `x`'s dims.
    pub fn shape(&mut self, x: &str) -> String {
        let r = self.shape_of(x).len() as i64;
        let out = self.op("Shape", &[x], vec![], vec![r]);
        self.dtypes.insert(out.clone(), DataType::Int64 as i32);
        out
    }

    /// Gather of one scalar index along `axis` (the index is an int64 scalar parameter).
    pub fn gather(&mut self, x: &str, index: i64, axis: i64) -> String {
        let mut s = self.shape_of(x).to_vec();
        let a = norm_axis(axis, s.len());
        s.remove(a);
        let node = self.auto_node_name("Gather");
        let name = self.unique_value_name(&format!("{node}_indices"));
        let idx = self.param(tensor_i64(&name, &[], &[index]));
        self.emit(node, "Gather", &[x, &idx], vec![attr_int("axis", axis)], s)
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

    /// PRelu with one slope per channel, `{name}.weight` `[C, 1, 1]` (how `nn.PReLU(C)`
    /// exports on NCHW).
    pub fn prelu(&mut self, x: &str, name: &str) -> String {
        let s = self.shape_of(x).to_vec();
        let slope = self.param_uniform(&format!("{name}.weight"), &[s[1], 1, 1], 0.05, 0.3);
        self.layer_op(name, "PRelu", &[x, &slope], vec![], s)
    }

    /// Unsqueeze at `axes` (an input at opset 13+).
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let mut s = self.shape_of(x).to_vec();
        let r = s.len() + axes.len();
        let mut sorted: Vec<usize> = axes.iter().map(|&a| norm_axis(a, r)).collect();
        sorted.sort_unstable();
        for a in sorted {
            s.insert(a, 1);
        }
        let node = self.auto_node_name("Unsqueeze");
        if self.opset >= 13 {
            let ax = self.vec_i64(&format!("{node}_axes"), axes);
            self.emit(node, "Unsqueeze", &[x, &ax], vec![], s)
        } else {
            self.emit(node, "Unsqueeze", &[x], vec![attr_ints("axes", axes)], s)
        }
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

trait Transposed2d {
    fn transposed_2d(self) -> Self;
}

impl Transposed2d for crate::proto::TensorProto {
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
