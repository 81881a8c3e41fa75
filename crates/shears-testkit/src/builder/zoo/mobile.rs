//! Mobile architectures: MobileNetV2 inverted residuals (depthwise convs, ReLU6 as Clip),
//! squeeze-and-excitation, EfficientNet MBConv, HardSwish/Sigmoid activations.

use super::{finish, start};
use crate::builder::ModelBuilder;
use shears_onnx::proto::ModelProto;

/// MobileNetV2 inverted residual: 1x1 expand (x4) + BN + ReLU6 (Clip), depthwise 3x3
/// (group = C) + BN + Clip, 1x1 project + BN, residual Add.
pub fn mobilenetv2_inverted_residual() -> ModelProto {
    let (mut b, x) = start("mobilenetv2_inverted_residual", &[1, 3, 16, 16]);
    let y = b.conv(&x, "features.0.0", 8, 3, 1, 1, 1, false);
    let y = b.bn(&y, "features.0.1");
    let stem = b.relu6(&y);
    let y = inverted_residual(&mut b, &stem, "features.1", 4, 8);
    finish(b, &y)
}

pub(super) fn inverted_residual(
    b: &mut ModelBuilder,
    x: &str,
    name: &str,
    expand: i64,
    out: i64,
) -> String {
    let in_ch = b.shape_of(x)[1];
    let hidden = in_ch * expand;
    let n = |i: usize| format!("{name}.conv.{i}");
    b.set_scope(name);
    let y = b.conv(x, &format!("{}.0", n(0)), hidden, 1, 1, 0, 1, false);
    let y = b.bn(&y, &format!("{}.1", n(0)));
    let y = b.relu6(&y);
    let y = b.conv(&y, &format!("{}.0", n(1)), hidden, 3, 1, 1, hidden, false);
    let y = b.bn(&y, &format!("{}.1", n(1)));
    let y = b.relu6(&y);
    let y = b.conv(&y, &n(2), out, 1, 1, 0, 1, false);
    let y = b.bn(&y, &n(3));
    let y = if in_ch == out { b.add(x, &y) } else { y };
    b.set_scope("");
    y
}

/// Squeeze-and-excitation: GlobalAveragePool, 1x1 conv `fc1` (C -> C/4) + Relu, 1x1 conv
/// `fc2` (C/4 -> C) + Sigmoid, Mul with the features, then a consumer conv.
pub fn squeeze_excitation() -> ModelProto {
    let (mut b, x) = start("squeeze_excitation", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "features.0.0", "features.0.1", 16, 3, 1, 1, 1);
    let y = se(&mut b, &y, "features.1.se", 4);
    let y = b.conv_bn_relu(&y, "features.2.0", "features.2.1", 8, 1, 1, 0, 1);
    finish(b, &y)
}

pub(super) fn se(b: &mut ModelBuilder, x: &str, name: &str, squeeze: i64) -> String {
    let c = b.shape_of(x)[1];
    b.set_scope(name);
    let s = b.global_avgpool(x);
    let s = b.conv(&s, &format!("{name}.fc1"), squeeze, 1, 1, 0, 1, true);
    let s = b.relu(&s);
    let s = b.conv(&s, &format!("{name}.fc2"), c, 1, 1, 0, 1, true);
    let s = b.sigmoid(&s);
    let y = b.mul(x, &s);
    b.set_scope("");
    y
}

/// EfficientNet MBConv: 1x1 expand + BN + SiLU, depthwise 3x3 + BN + SiLU, squeeze-and-
/// excitation with SiLU, 1x1 project + BN, residual Add.
pub fn efficientnet_mbconv() -> ModelProto {
    let (mut b, x) = start("efficientnet_mbconv", &[1, 3, 8, 8]);
    let stem = b.conv(&x, "features.0.0", 8, 3, 1, 1, 1, false);
    let stem = b.bn(&stem, "features.0.1");
    let stem = silu(&mut b, &stem);
    let p = "features.1.0.block";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let y = b.conv(&stem, &n("0.0"), 32, 1, 1, 0, 1, false);
    let y = b.bn(&y, &n("0.1"));
    let y = silu(&mut b, &y);
    let y = b.conv(&y, &n("1.0"), 32, 3, 1, 1, 32, false);
    let y = b.bn(&y, &n("1.1"));
    let y = silu(&mut b, &y);
    let y = se(&mut b, &y, &n("2"), 2);
    b.set_scope(p);
    let y = b.conv(&y, &n("3.0"), 8, 1, 1, 0, 1, false);
    let y = b.bn(&y, &n("3.1"));
    let y = b.add(&y, &stem);
    b.set_scope("");
    finish(b, &y)
}

pub(super) fn silu(b: &mut ModelBuilder, x: &str) -> String {
    let s = b.sigmoid(x);
    b.mul(x, &s)
}

/// Element-wise activations between convs: HardSwish, Sigmoid, SiLU (`x * sigmoid(x)`).
pub fn hardswish_sigmoid_chain() -> ModelProto {
    let (mut b, x) = start("hardswish_sigmoid_chain", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.hardswish(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    let y = b.sigmoid(&y);
    let y = b.conv(&y, "conv3", 8, 3, 1, 1, 1, true);
    let s = b.sigmoid(&y);
    let y = b.mul(&y, &s);
    let y = b.conv(&y, "conv4", 8, 1, 1, 0, 1, true);
    let y = b.hardswish(&y);
    finish(b, &y)
}
