//! ResNet-family blocks: plain chains, basic and bottleneck residual blocks (identity and
//! projection shortcuts), RegNet grouped convs, and the BN-folded and weights-as-Constant export
//! styles.

use super::{finish, start};
use crate::builder::ModelBuilder;
use shears_onnx::proto::ModelProto;

/// Three Conv-BN-Relu units: 3 -> 8 -> 16 (stride 2) -> 16.
pub fn conv_bn_relu_chain() -> ModelProto {
    let (mut b, x) = start("conv_bn_relu_chain", &[1, 3, 16, 16]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.conv_bn_relu(&y, "conv2", "bn2", 16, 3, 2, 1, 1);
    let y = b.conv_bn_relu(&y, "conv3", "bn3", 16, 3, 1, 1, 1);
    finish(b, &y)
}

/// ResNet basic block with an identity shortcut, after a stem conv.
pub fn residual_basic_block() -> ModelProto {
    let (mut b, x) = start("residual_basic_block", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = basic_block(&mut b, &stem, "layer1.0", 8, 1);
    finish(b, &y)
}

/// ResNet basic block whose shortcut is a strided 1x1 conv + BN (`downsample.0/.1`).
pub fn residual_downsample_block() -> ModelProto {
    let (mut b, x) = start("residual_downsample_block", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = basic_block(&mut b, &stem, "layer2.0", 16, 2);
    finish(b, &y)
}

/// A ResNet bottleneck block with a projection shortcut (16 -> 4 -> 4 -> 16 channels wide
/// after a 3 -> 8 stem), followed by one with an identity shortcut.
pub fn bottleneck_block() -> ModelProto {
    let (mut b, x) = start("bottleneck_block", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = bottleneck(&mut b, &stem, "layer1.0", 4, 1);
    let y = bottleneck(&mut b, &y, "layer1.1", 4, 1);
    finish(b, &y)
}

/// RegNet-like X block: 1x1 conv, 3x3 grouped conv (group width 8: 32 channels in 4 groups),
/// 1x1 conv, projection shortcut, Add, Relu.
pub fn grouped_conv() -> ModelProto {
    let (mut b, x) = start("grouped_conv", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "stem.0", "stem.1", 16, 3, 2, 1, 1);
    let p = "trunk_output.block1.block1-0";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let y = b.conv_bn_relu(&stem, &n("f.a.0"), &n("f.a.1"), 32, 1, 1, 0, 1);
    let y = b.conv_bn_relu(&y, &n("f.b.0"), &n("f.b.1"), 32, 3, 1, 1, 32 / 8);
    let y = b.conv(&y, &n("f.c.0"), 32, 1, 1, 0, 1, false);
    let y = b.bn(&y, &n("f.c.1"));
    let s = b.conv(&stem, &n("proj.0"), 32, 1, 1, 0, 1, false);
    let s = b.bn(&s, &n("proj.1"));
    let y = b.add(&s, &y);
    let y = b.relu(&y);
    b.set_scope("");
    finish(b, &y)
}

/// The BN-folded export style: a residual block whose convs carry biases and have no
/// BatchNormalization nodes.
pub fn bn_folded() -> ModelProto {
    let (mut b, x) = start("bn_folded", &[1, 3, 8, 8]);
    let stem = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let stem = b.relu(&stem);
    b.set_scope("layer1.0");
    let y = b.conv(&stem, "layer1.0.conv1", 8, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.conv(&y, "layer1.0.conv2", 8, 3, 1, 1, 1, true);
    let y = b.add(&y, &stem);
    let y = b.relu(&y);
    b.set_scope("");
    let y = b.conv(&y, "layer2.0.conv1", 16, 3, 2, 1, 1, true);
    finish(b, &y)
}

/// The residual basic block with every parameter a `Constant` node instead of an initializer.
pub fn constant_weights_residual() -> ModelProto {
    let (mut b, x) = start("constant_weights_residual", &[1, 3, 8, 8]);
    b.weights_as_constants(true);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = basic_block(&mut b, &stem, "layer1.0", 8, 1);
    let y = basic_block(&mut b, &y, "layer2.0", 16, 2);
    finish(b, &y)
}

/// torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn, shortcut (downsampled when the
/// shape changes), Add, Relu.
pub(super) fn basic_block(
    b: &mut ModelBuilder,
    x: &str,
    name: &str,
    out: i64,
    stride: i64,
) -> String {
    let in_ch = b.shape_of(x)[1];
    b.set_scope(name);
    let y = b.conv_bn_relu(
        x,
        &format!("{name}.conv1"),
        &format!("{name}.bn1"),
        out,
        3,
        stride,
        1,
        1,
    );
    let y = b.conv(&y, &format!("{name}.conv2"), out, 3, 1, 1, 1, false);
    let y = b.bn(&y, &format!("{name}.bn2"));
    let short = if stride != 1 || in_ch != out {
        let s = b.conv(
            x,
            &format!("{name}.downsample.0"),
            out,
            1,
            stride,
            0,
            1,
            false,
        );
        b.bn(&s, &format!("{name}.downsample.1"))
    } else {
        x.to_string()
    };
    let y = b.add(&y, &short);
    let y = b.relu(&y);
    b.set_scope("");
    y
}

/// torchvision's Bottleneck (v1.5: stride on the 3x3): 1x1 reduce, 3x3, 1x1 expand (x4),
/// shortcut, Add, Relu.
pub(super) fn bottleneck(
    b: &mut ModelBuilder,
    x: &str,
    name: &str,
    width: i64,
    stride: i64,
) -> String {
    let in_ch = b.shape_of(x)[1];
    let out = width * 4;
    b.set_scope(name);
    let n = |s: &str| format!("{name}.{s}");
    let y = b.conv_bn_relu(x, &n("conv1"), &n("bn1"), width, 1, 1, 0, 1);
    let y = b.conv_bn_relu(&y, &n("conv2"), &n("bn2"), width, 3, stride, 1, 1);
    let y = b.conv(&y, &n("conv3"), out, 1, 1, 0, 1, false);
    let y = b.bn(&y, &n("bn3"));
    let short = if stride != 1 || in_ch != out {
        let s = b.conv(x, &n("downsample.0"), out, 1, stride, 0, 1, false);
        b.bn(&s, &n("downsample.1"))
    } else {
        x.to_string()
    };
    let y = b.add(&y, &short);
    let y = b.relu(&y);
    b.set_scope("");
    y
}
