//! Models whose channels split and merge: DenseNet and Inception concatenations, a U-Net skip,
//! ShuffleNet channel shuffles, channel Slices.

use super::{finish, start};
use crate::builder::ModelBuilder;
use shears_onnx::proto::ModelProto;

/// A DenseNet dense block of three layers (growth 4): each layer reads the Concat of every
/// earlier feature map, normalizes it (BN right after the Concat), and appends 4 channels.
pub fn dense_block() -> ModelProto {
    let (mut b, x) = start("dense_block", &[1, 3, 16, 16]);
    let stem = b.conv(&x, "features.conv0", 8, 3, 1, 1, 1, false);
    let mut feats = vec![stem];
    for i in 1..=3 {
        let name = format!("features.denseblock1.denselayer{i}");
        b.set_scope(name.as_str());
        let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
        let cat = if refs.len() == 1 {
            refs[0].to_string()
        } else {
            b.concat(&refs, 1)
        };
        let y = b.bn(&cat, &format!("{name}.norm1"));
        let y = b.relu(&y);
        let y = b.conv(&y, &format!("{name}.conv1"), 16, 1, 1, 0, 1, false);
        let y = b.bn(&y, &format!("{name}.norm2"));
        let y = b.relu(&y);
        let y = b.conv(&y, &format!("{name}.conv2"), 4, 3, 1, 1, 1, false);
        feats.push(y);
    }
    b.set_scope("features.denseblock1");
    let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
    let cat = b.concat(&refs, 1);
    b.set_scope("");
    let y = b.bn(&cat, "features.norm5");
    let y = b.relu(&y);
    finish(b, &y)
}

/// An Inception block: 1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1 branches concatenated, then a
/// 1x1 conv consuming the concatenation.
pub fn inception_block() -> ModelProto {
    let (mut b, x) = start("inception_block", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1.conv", "conv1.bn", 8, 3, 1, 1, 1);
    let p = "inception3a";
    let n = |s: &str| format!("{p}.{s}");
    let b1 = b.conv_bn_relu(&stem, &n("branch1.conv"), &n("branch1.bn"), 4, 1, 1, 0, 1);
    let b2 = b.conv_bn_relu(
        &stem,
        &n("branch2.0.conv"),
        &n("branch2.0.bn"),
        4,
        1,
        1,
        0,
        1,
    );
    let b2 = b.conv_bn_relu(&b2, &n("branch2.1.conv"), &n("branch2.1.bn"), 6, 3, 1, 1, 1);
    let b3 = b.conv_bn_relu(
        &stem,
        &n("branch3.0.conv"),
        &n("branch3.0.bn"),
        2,
        1,
        1,
        0,
        1,
    );
    let b3 = b.conv_bn_relu(&b3, &n("branch3.1.conv"), &n("branch3.1.bn"), 3, 5, 1, 2, 1);
    b.set_scope(p);
    let pool = b.maxpool(&stem, 3, 1, 1);
    b.set_scope("");
    let b4 = b.conv_bn_relu(
        &pool,
        &n("branch4.1.conv"),
        &n("branch4.1.bn"),
        3,
        1,
        1,
        0,
        1,
    );
    b.set_scope(p);
    let cat = b.concat(&[&b1, &b2, &b3, &b4], 1);
    b.set_scope("");
    let y = b.conv_bn_relu(
        &cat,
        "inception3b.branch1.conv",
        "inception3b.branch1.bn",
        8,
        1,
        1,
        0,
        1,
    );
    finish(b, &y)
}

/// U-Net-like decoder step: an encoder feature (8 channels), a strided conv down (16),
/// ConvTranspose up (16 -> 8, kernel 2 stride 2), Concat with the encoder feature (skip
/// connection), and a consumer conv.
pub fn unet_decoder() -> ModelProto {
    let (mut b, x) = start("unet_decoder", &[1, 3, 16, 16]);
    let e1 = b.conv_bn_relu(&x, "enc1.conv", "enc1.bn", 8, 3, 1, 1, 1);
    let e2 = b.conv_bn_relu(&e1, "enc2.conv", "enc2.bn", 16, 3, 2, 1, 1);
    let up = b.conv_transpose(&e2, "up1", 8, 2, 2, 0, 1, true);
    b.set_scope("dec1");
    let cat = b.concat(&[&up, &e1], 1);
    b.set_scope("");
    let y = b.conv_bn_relu(&cat, "dec1.conv", "dec1.bn", 8, 3, 1, 1, 1);
    finish(b, &y)
}

/// ShuffleNet channel shuffle: two branches concatenated (8 channels), then Reshape to
/// `[N, g=2, C/g, H, W]`, Transpose `[0, 2, 1, 3, 4]`, Reshape back, and a consumer conv.
pub fn channel_shuffle() -> ModelProto {
    let (mut b, x) = start("channel_shuffle", &[1, 3, 8, 8]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let left = b.conv_bn_relu(
        &stem,
        "stage2.0.branch1.0",
        "stage2.0.branch1.1",
        4,
        1,
        1,
        0,
        1,
    );
    let right = b.conv_bn_relu(
        &stem,
        "stage2.0.branch2.0",
        "stage2.0.branch2.1",
        4,
        1,
        1,
        0,
        1,
    );
    b.set_scope("stage2.0");
    let cat = b.concat(&[&left, &right], 1);
    b.set_scope("");
    let y = shuffle(&mut b, &cat, 2);
    let y = b.conv_bn_relu(&y, "stage2.1.conv", "stage2.1.bn", 8, 1, 1, 0, 1);
    finish(b, &y)
}

/// ShuffleNetV2 stride-1 unit: Split the channels in halves, keep one, run the other through
/// 1x1 / depthwise 3x3 / 1x1, Concat, channel shuffle.
pub fn channel_split_shuffle() -> ModelProto {
    let (mut b, x) = start("channel_split_shuffle", &[1, 3, 8, 8]);
    let stem = b.conv_bn_relu(&x, "conv1.0", "conv1.1", 8, 3, 1, 1, 1);
    let p = "stage2.1";
    let n = |i: usize| format!("{p}.branch2.{i}");
    b.set_scope(p);
    let halves = b.split(&stem, 1, &[4, 4]);
    let y = b.conv_bn_relu(&halves[1], &n(0), &n(1), 4, 1, 1, 0, 1);
    let y = b.conv(&y, &n(3), 4, 3, 1, 1, 4, false);
    let y = b.bn(&y, &n(4));
    let y = b.conv_bn_relu(&y, &n(5), &n(6), 4, 1, 1, 0, 1);
    let cat = b.concat(&[&halves[0], &y], 1);
    let y = shuffle(&mut b, &cat, 2);
    b.set_scope("");
    let y = b.conv_bn_relu(&y, "conv5.0", "conv5.1", 16, 1, 1, 0, 1);
    finish(b, &y)
}

/// The channel shuffle of ShuffleNet: Reshape `[N, g, C/g, H, W]`, Transpose, Reshape.
pub(super) fn shuffle(b: &mut ModelBuilder, x: &str, groups: i64) -> String {
    let s = b.shape_of(x).to_vec();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let y = b.reshape(x, &[n, groups, c / groups, h, w]);
    let y = b.transpose(&y, &[0, 2, 1, 3, 4]);
    b.reshape(&y, &[n, c, h, w])
}

/// Channel slices: the first 4 channels (`[0:4]`) and the rest (`[4:]`, end `i64::MAX` as
/// PyTorch writes an open end) feed separate convs whose outputs are added.
pub fn channel_slice() -> ModelProto {
    let (mut b, x) = start("channel_slice", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let lo = b.slice(&y, &[0], &[4], &[1], &[]);
    let hi = b.slice(&y, &[4], &[i64::MAX], &[1], &[1]);
    let lo = b.conv(&lo, "branch_lo", 8, 3, 1, 1, 1, true);
    let hi = b.conv(&hi, "branch_hi", 8, 3, 1, 1, 1, true);
    let y = b.add(&lo, &hi);
    finish(b, &y)
}
