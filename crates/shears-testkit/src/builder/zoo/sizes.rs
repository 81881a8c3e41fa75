//! Size generators for benches: a full ResNet-50 and an arbitrarily deep conv chain.

use super::resnet::bottleneck;
use super::{finish, start};
use crate::builder::{attr_ints, declare};
use shears_onnx::proto::ModelProto;

/// ResNet-50 exactly as torchvision builds it (v1.5, 224x224 input, 1000 classes):
/// 25,557,032 parameters counting BN weight and bias but not running statistics.
pub fn resnet50_like() -> ModelProto {
    let (mut b, x) = start("resnet50_like", &[1, 3, 224, 224]);
    let y = b.conv(&x, "conv1", 64, 7, 2, 3, 1, false);
    let y = b.bn(&y, "bn1");
    let y = b.relu(&y);
    let mut y = b.maxpool(&y, 3, 2, 1);
    for (li, (blocks, width)) in [(3, 64), (4, 128), (6, 256), (3, 512)]
        .into_iter()
        .enumerate()
    {
        for bi in 0..blocks {
            let stride = if bi == 0 && li > 0 { 2 } else { 1 };
            y = bottleneck(&mut b, &y, &format!("layer{}.{bi}", li + 1), width, stride);
        }
    }
    let y = b.global_avgpool(&y);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "fc", 1000, true);
    finish(b, &y)
}

/// `layers` Conv(3x3, 16 channels)-BN-Relu units on an 8x8 input, with a residual Add every
/// fourth unit: a long graph for benches whose per-node cost must stay flat.
pub fn deep_chain(layers: usize) -> ModelProto {
    let (mut b, x) = start("deep_chain", &[1, 16, 8, 8]);
    let mut y = x;
    let mut skip = y.clone();
    for i in 0..layers {
        y = b.conv_bn_relu(
            &y,
            &format!("layers.{i}.conv"),
            &format!("layers.{i}.bn"),
            16,
            3,
            1,
            1,
            1,
        );
        if i % 4 == 3 {
            y = b.add(&y, &skip);
            skip = y.clone();
        }
    }
    finish(b, &y)
}

/// Two convs (`conv1` 3→8, Relu, `conv2` 8→4; 3x3, same padding) built on an 8x8 input, then
/// declared with H = W = `hw` on `input` and `output`: absurd but valid sizes that no builder
/// step (nor shape inference while building) ever sees.
pub fn two_convs_declared(hw: i64) -> ModelProto {
    let (mut b, x) = start("two_convs", &[1, 3, 8, 8]);
    let pads = || attr_ints("pads", &[1, 1, 1, 1]);
    let w1 = b.param_random("conv1.weight", &[8, 3, 3, 3]);
    let y = b.node_named("conv1", "Conv", &[&x, &w1], 1, vec![pads()]);
    let r = b.node_named("relu", "Relu", &[&y[0]], 1, vec![]);
    let w2 = b.param_random("conv2.weight", &[4, 8, 3, 3]);
    let z = b.node_named("conv2", "Conv", &[&r[0], &w2], 1, vec![pads()]);
    let mut m = finish(b, &z[0]);
    let g = m.graph.as_mut().expect("built");
    declare(&mut g.input, "input", &[1, 3, hw, hw]);
    declare(&mut g.output, "output", &[1, 4, hw, hw]);
    m
}

/// VGG-16 as torchvision builds it (configuration D, 224x224 input, 1000 classes, no BN):
/// 138,357,544 parameters, ~553 MB of float32: a model whose file is mostly a few huge
/// tensors (`classifier.0.weight` alone is 411 MB), for the bounded-memory bench.
pub fn vgg16_like() -> ModelProto {
    let (mut b, x) = start("vgg16_like", &[1, 3, 224, 224]);
    let mut y = x;
    let mut i = 0;
    for block in [
        &[64, 64][..],
        &[128, 128],
        &[256, 256, 256],
        &[512, 512, 512],
        &[512, 512, 512],
    ] {
        for &width in block {
            y = b.conv(&y, &format!("features.{i}"), width, 3, 1, 1, 1, true);
            y = b.relu(&y);
            i += 2;
        }
        y = b.maxpool(&y, 2, 2, 0);
        i += 1;
    }
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "classifier.0", 4096, true);
    let y = b.relu(&y);
    let y = b.gemm(&y, "classifier.3", 4096, true);
    let y = b.relu(&y);
    let y = b.gemm(&y, "classifier.6", 1000, true);
    finish(b, &y)
}
