//! Ready-made builder models, one per coupling pattern Shears must understand, plus size
//! generators for benches ([`resnet50_like`], [`deep_chain`]).
//!
//! Every model has one float input `input` (batch 1) and one output `output`, default opset
//! [`OPSET`], and names its layers the way PyTorch would (`layer1.0.conv1`, `bn1`, `fc`).
//! [`all`] lists the small ones by name.

use super::ModelBuilder;
use crate::proto::ModelProto;

/// The opset the zoo models import unless they say otherwise (PyTorch's classic default).
pub const OPSET: i64 = 17;

thread_local! {
    static DECLARE_VALUE_INFO: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (any zoo function) with every builder it creates declaring the tracked shape of each
/// intermediate value in `graph.value_info`, so a shape inference can be checked against them.
pub fn with_value_info<T>(f: impl FnOnce() -> T) -> T {
    let before = DECLARE_VALUE_INFO.with(|c| c.replace(true));
    let out = f();
    DECLARE_VALUE_INFO.with(|c| c.set(before));
    out
}

fn new_builder(opset: i64, name: &str) -> ModelBuilder {
    let mut b = ModelBuilder::new(opset).named(name);
    b.declare_value_info(DECLARE_VALUE_INFO.with(|c| c.get()));
    b
}

fn start(name: &str, dims: &[i64]) -> (ModelBuilder, String) {
    let mut b = new_builder(OPSET, name);
    let x = b.input("input", dims);
    (b, x)
}

fn finish(mut b: ModelBuilder, y: &str) -> ModelProto {
    let out = b.identity_as_output(y);
    b.output(&out);
    b.build()
}

impl ModelBuilder {
    /// Routes `y` to a graph output named `output` (an Identity, as exporters name outputs).
    fn identity_as_output(&mut self, y: &str) -> String {
        self.node_with_outputs("/output/Identity", "Identity", &[y], &["output"], vec![]);
        let shape = self.try_shape_of(y).map(<[i64]>::to_vec);
        if let Some(s) = shape {
            self.set_shape("output", &s);
        }
        let dt = self.dtype_of(y);
        self.set_dtype("output", dt);
        "output".to_string()
    }
}

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

/// torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn, shortcut (downsampled when the
/// shape changes), Add, Relu.
fn basic_block(b: &mut ModelBuilder, x: &str, name: &str, out: i64, stride: i64) -> String {
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
fn bottleneck(b: &mut ModelBuilder, x: &str, name: &str, width: i64, stride: i64) -> String {
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

/// A ResNet bottleneck block with a projection shortcut (16 -> 4 -> 4 -> 16 channels wide
/// after a 3 -> 8 stem), followed by one with an identity shortcut.
pub fn bottleneck_block() -> ModelProto {
    let (mut b, x) = start("bottleneck_block", &[1, 3, 16, 16]);
    let stem = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = bottleneck(&mut b, &stem, "layer1.0", 4, 1);
    let y = bottleneck(&mut b, &y, "layer1.1", 4, 1);
    finish(b, &y)
}

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

fn inverted_residual(b: &mut ModelBuilder, x: &str, name: &str, expand: i64, out: i64) -> String {
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

/// The channel shuffle of ShuffleNet: Reshape `[N, g, C/g, H, W]`, Transpose, Reshape.
fn shuffle(b: &mut ModelBuilder, x: &str, groups: i64) -> String {
    let s = b.shape_of(x).to_vec();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let y = b.reshape(x, &[n, groups, c / groups, h, w]);
    let y = b.transpose(&y, &[0, 2, 1, 3, 4]);
    b.reshape(&y, &[n, c, h, w])
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

/// Squeeze-and-excitation: GlobalAveragePool, 1x1 conv `fc1` (C -> C/4) + Relu, 1x1 conv
/// `fc2` (C/4 -> C) + Sigmoid, Mul with the features, then a consumer conv.
pub fn squeeze_excitation() -> ModelProto {
    let (mut b, x) = start("squeeze_excitation", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "features.0.0", "features.0.1", 16, 3, 1, 1, 1);
    let y = se(&mut b, &y, "features.1.se", 4);
    let y = b.conv_bn_relu(&y, "features.2.0", "features.2.1", 8, 1, 1, 0, 1);
    finish(b, &y)
}

fn se(b: &mut ModelBuilder, x: &str, name: &str, squeeze: i64) -> String {
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

/// torchvision ConvNeXt CNBlock: depthwise 7x7, Transpose to NHWC, LayerNormalization over
/// the last axis, Linear expand (MatMul + Add), Gelu (Erf form at opset 17), Linear project,
/// Transpose back to NCHW, layer-scale Mul `[C, 1, 1]`, residual Add; then a consumer conv.
pub fn convnext_block() -> ModelProto {
    let (mut b, x) = start("convnext_block", &[1, 3, 16, 16]);
    let stem = b.conv(&x, "features.0.0", 8, 4, 4, 0, 1, true);
    let p = "features.1.0";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let y = b.conv(&stem, &n("block.0"), 8, 7, 1, 3, 8, true);
    let y = b.transpose(&y, &[0, 2, 3, 1]);
    let y = b.layernorm(&y, &n("block.2"), -1);
    let y = b.linear(&y, &n("block.3"), 32);
    let y = b.gelu(&y);
    let y = b.linear(&y, &n("block.5"), 8);
    let y = b.transpose(&y, &[0, 3, 1, 2]);
    let gamma = b.param_uniform(&n("layer_scale"), &[8, 1, 1], 0.1, 0.3);
    let y = b.mul(&y, &gamma);
    let y = b.add(&y, &stem);
    b.set_scope("");
    let y = b.conv(&y, "features.2.1", 16, 2, 2, 0, 1, true);
    finish(b, &y)
}

/// VGG-like: two conv-relu-maxpool stages, Flatten, Gemm-Relu-Gemm classifier (the first
/// Gemm reads 16 channels x 4 x 4 = 256 features).
pub fn flatten_gemm() -> ModelProto {
    let (mut b, x) = start("flatten_gemm", &[1, 3, 16, 16]);
    let y = b.conv(&x, "features.0", 8, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.maxpool(&y, 2, 2, 0);
    let y = b.conv(&y, "features.3", 16, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.maxpool(&y, 2, 2, 0);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "classifier.0", 32, true);
    let y = b.relu(&y);
    let y = b.gemm(&y, "classifier.3", 10, true);
    finish(b, &y)
}

/// Conv features reshaped to `[1, -1]` (a constant shape) and fed to a Gemm.
pub fn reshape_gemm() -> ModelProto {
    let (mut b, x) = start("reshape_gemm", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 2, 1, 1);
    let y = b.reshape(&y, &[1, -1]);
    let y = b.gemm(&y, "fc", 10, true);
    finish(b, &y)
}

/// A ViT: conv patch embedding (8x8 patches, 16 dims), Reshape + Transpose into 4 tokens, one
/// encoder layer (LayerNorm, fused qkv Linear, Reshape to 2 heads, Transpose, Gather q/k/v,
/// MatMul, Div by sqrt(8), Softmax, MatMul, Transpose, Reshape, out-proj, residual Add,
/// LayerNorm, MLP with Gelu, residual Add) and a final LayerNorm.
pub fn vit_encoder_layer() -> ModelProto {
    let (mut b, x) = start("vit_encoder_layer", &[1, 3, 16, 16]);
    let (dim, heads, tokens) = (16i64, 2i64, 4i64);
    let hd = dim / heads;
    let y = b.conv(&x, "conv_proj", dim, 8, 8, 0, 1, true);
    let y = b.reshape(&y, &[1, dim, tokens]);
    let tok = b.transpose(&y, &[0, 2, 1]);
    let p = "encoder.layers.0";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let h = b.layernorm(&tok, &n("ln_1"), -1);
    let qkv = b.linear(&h, &n("self_attention.qkv"), 3 * dim);
    let qkv = b.reshape(&qkv, &[1, tokens, 3, heads, hd]);
    let qkv = b.transpose(&qkv, &[2, 0, 3, 1, 4]);
    let q = b.gather(&qkv, 0, 0);
    let k = b.gather(&qkv, 1, 0);
    let v = b.gather(&qkv, 2, 0);
    let kt = b.transpose(&k, &[0, 1, 3, 2]);
    let att = b.matmul(&q, &kt);
    let att = b.div_scalar(&att, (hd as f32).sqrt());
    let att = b.softmax(&att, -1);
    let o = b.matmul(&att, &v);
    let o = b.transpose(&o, &[0, 2, 1, 3]);
    let o = b.reshape(&o, &[1, tokens, dim]);
    let o = b.linear(&o, &n("self_attention.out_proj"), dim);
    let r = b.add(&tok, &o);
    let h = b.layernorm(&r, &n("ln_2"), -1);
    let h = b.linear(&h, &n("mlp.0"), 2 * dim);
    let h = b.gelu(&h);
    let h = b.linear(&h, &n("mlp.3"), dim);
    let y = b.add(&r, &h);
    b.set_scope("");
    let y = b.layernorm(&y, "encoder.ln", -1);
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

/// Pad (1 pixel each side), AveragePool 3x3, nearest Resize x2 and a consumer conv.
pub fn pad_resize_avgpool() -> ModelProto {
    let (mut b, x) = start("pad_resize_avgpool", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.pad(&y, &[0, 0, 1, 1, 0, 0, 1, 1]);
    let y = b.avgpool(&y, 3, 1, 0);
    let y = b.resize(&y, &[1.0, 1.0, 2.0, 2.0]);
    let y = b.conv(&y, "conv2", 8, 3, 2, 1, 1, true);
    finish(b, &y)
}

/// `x.view(x.size(0), -1)` as the classic exporter writes it: Shape, Gather(0), Unsqueeze,
/// Concat with a Constant `[-1]`, Reshape; then a Gemm. Constant folding resolves the shape.
pub fn shape_subgraph_reshape() -> ModelProto {
    let (mut b, x) = start("shape_subgraph_reshape", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 2, 1, 1);
    let s = b.shape(&y);
    let n = b.gather(&s, 0, 0);
    let n = b.unsqueeze(&n, &[0]);
    let minus_one = b.constant_i64("", &[1], &[-1]);
    let target = b.concat(&[&n, &minus_one], 0);
    let y = b.reshape_dynamic(&y, &target, &[1, 8 * 4 * 4]);
    let y = b.gemm(&y, "fc", 10, true);
    finish(b, &y)
}

/// Pass-through ops between two convs: Cast to float16 and back, Identity, Dropout, Relu.
pub fn cast_identity_dropout() -> ModelProto {
    use crate::proto::tensor_proto::DataType;
    let (mut b, x) = start("cast_identity_dropout", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.cast(&y, DataType::Float16 as i32);
    let y = b.cast(&y, DataType::Float as i32);
    let y = b.identity(&y);
    let y = b.dropout(&y);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
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

/// Conv-BN-Relu units on an input whose batch dimension is dynamic (`N`).
pub fn dynamic_batch_chain() -> ModelProto {
    let (mut b, x) = start("dynamic_batch_chain", &[-1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.conv_bn_relu(&y, "conv2", "bn2", 8, 3, 1, 1, 1);
    let y = b.global_avgpool(&y);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "fc", 4, true);
    finish(b, &y)
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

fn silu(b: &mut ModelBuilder, x: &str) -> String {
    let s = b.sigmoid(x);
    b.mul(x, &s)
}

/// A ViT encoder layer at opset 13, where LayerNormalization is written out as
/// ReduceMean/Sub/Pow/Sqrt/Div and Gelu as Erf (older exporters).
pub fn layernorm_decomposed() -> ModelProto {
    let mut b = new_builder(13, "layernorm_decomposed");
    let x = b.input("input", &[1, 4, 16]);
    let h = b.layernorm(&x, "blocks.0.norm1", -1);
    let h = b.linear(&h, "blocks.0.mlp.fc1", 32);
    let h = b.gelu(&h);
    let h = b.linear(&h, "blocks.0.mlp.fc2", 16);
    let y = b.add(&x, &h);
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

/// Style-transfer-like unit: conv, InstanceNormalization, PRelu (per-channel slope), conv.
pub fn instance_norm_prelu() -> ModelProto {
    let (mut b, x) = start("instance_norm_prelu", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.instance_norm(&y, "in1");
    let y = b.prelu(&y, "act1");
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// Conv, GroupNorm (4 groups of 4 channels) as the opset-21 `GroupNormalization` op, Relu, conv.
pub fn group_norm_block() -> ModelProto {
    let mut b = new_builder(21, "group_norm_block");
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 16, 3, 1, 1, 1, false);
    let y = b.group_norm(&y, "gn1", 4);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// The same GroupNorm as PyTorch's classic exporter writes it at opset 17: Reshape to
/// `[N, 4, -1]`, InstanceNormalization, Reshape back, Mul and Add of `[C, 1, 1]` parameters.
pub fn group_norm_decomposed() -> ModelProto {
    let (mut b, x) = start("group_norm_decomposed", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 16, 3, 1, 1, 1, false);
    let y = b.group_norm(&y, "gn1", 4);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

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

/// A zoo entry: the model's name and the function building it.
pub type ZooEntry = (&'static str, fn() -> ModelProto);

/// The small zoo models by name, as builder functions (to build only the ones needed).
pub const MODELS: &[ZooEntry] = &[
    ("conv_bn_relu_chain", conv_bn_relu_chain),
    ("residual_basic_block", residual_basic_block),
    ("residual_downsample_block", residual_downsample_block),
    ("bottleneck_block", bottleneck_block),
    ("dense_block", dense_block),
    ("inception_block", inception_block),
    (
        "mobilenetv2_inverted_residual",
        mobilenetv2_inverted_residual,
    ),
    ("channel_shuffle", channel_shuffle),
    ("channel_split_shuffle", channel_split_shuffle),
    ("squeeze_excitation", squeeze_excitation),
    ("convnext_block", convnext_block),
    ("flatten_gemm", flatten_gemm),
    ("reshape_gemm", reshape_gemm),
    ("vit_encoder_layer", vit_encoder_layer),
    ("grouped_conv", grouped_conv),
    ("bn_folded", bn_folded),
    ("constant_weights_residual", constant_weights_residual),
    ("channel_slice", channel_slice),
    ("pad_resize_avgpool", pad_resize_avgpool),
    ("shape_subgraph_reshape", shape_subgraph_reshape),
    ("cast_identity_dropout", cast_identity_dropout),
    ("hardswish_sigmoid_chain", hardswish_sigmoid_chain),
    ("dynamic_batch_chain", dynamic_batch_chain),
    ("efficientnet_mbconv", efficientnet_mbconv),
    ("layernorm_decomposed", layernorm_decomposed),
    ("unet_decoder", unet_decoder),
    ("instance_norm_prelu", instance_norm_prelu),
    ("group_norm_block", group_norm_block),
    ("group_norm_decomposed", group_norm_decomposed),
];

/// Every small zoo model by name, built.
pub fn all() -> Vec<(&'static str, ModelProto)> {
    MODELS.iter().map(|&(name, f)| (name, f())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use prost::Message;

    use super::*;
    use crate::external::ExternalStore;
    use crate::model::Model;
    use crate::proto::type_proto;

    /// Checks what every zoo model promises: a prost round trip is lossless, the IR accepts it
    /// (topological, nothing undefined), node names are unique as written, inputs and outputs
    /// are typed with full shapes.
    fn check(name: &str, proto: ModelProto) -> Model {
        let bytes = proto.encode_to_vec();
        let back = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, proto, "{name}: prost round trip differs");
        assert!(
            proto.ir_version >= 8,
            "{name}: ir_version {}",
            proto.ir_version
        );
        assert_eq!(proto.opset_import.len(), 1, "{name}");
        let g = proto.graph.as_ref().unwrap();
        let mut names = HashSet::new();
        for n in &g.node {
            assert!(
                names.insert(n.name.as_str()),
                "{name}: node name {} repeats",
                n.name
            );
        }
        for vi in g.input.iter().chain(&g.output) {
            let Some(type_proto::Value::TensorType(t)) =
                vi.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                panic!("{name}: {} has no tensor type", vi.name)
            };
            assert_eq!(t.elem_type, 1, "{name}: {} is not float", vi.name);
            let shape = t
                .shape
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: {}", vi.name));
            assert!(!shape.dim.is_empty(), "{name}: {} has no dims", vi.name);
        }
        let m = Model::from_proto(proto, name, ExternalStore::none())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.graph.inputs.len(), 1, "{name}: inputs");
        assert_eq!(m.graph.outputs.len(), 1, "{name}: outputs");
        m
    }

    fn op_count(m: &Model, op: &str) -> usize {
        m.graph.nodes.iter().filter(|n| n.op_type == op).count()
    }

    /// Parameter elements, BN running statistics excluded (torchvision's count).
    fn params(p: &ModelProto) -> i64 {
        p.graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .filter(|t| !t.name.ends_with(".running_mean") && !t.name.ends_with(".running_var"))
            .filter(|t| t.name.ends_with(".weight") || t.name.ends_with(".bias"))
            .map(|t| t.dims.iter().product::<i64>())
            .sum()
    }

    #[test]
    fn every_zoo_model_round_trips_and_is_a_valid_graph() {
        let models = all();
        assert!(models.len() >= 20, "only {} zoo models", models.len());
        let mut names = HashSet::new();
        for (name, proto) in models {
            assert!(names.insert(name), "{name} listed twice");
            assert_eq!(proto.graph.as_ref().unwrap().name, name);
            check(name, proto);
        }
    }

    #[test]
    fn zoo_models_contain_the_pattern_they_are_named_for() {
        // (model, op, at least this many nodes of it)
        let expect: &[(&str, &str, usize)] = &[
            ("dense_block", "Concat", 3),
            ("inception_block", "MaxPool", 1),
            ("channel_shuffle", "Transpose", 1),
            ("channel_split_shuffle", "Split", 1),
            ("squeeze_excitation", "GlobalAveragePool", 1),
            ("convnext_block", "LayerNormalization", 1),
            ("convnext_block", "Erf", 1),
            ("flatten_gemm", "Flatten", 1),
            ("reshape_gemm", "Reshape", 1),
            ("vit_encoder_layer", "Softmax", 1),
            ("vit_encoder_layer", "Gather", 3),
            ("constant_weights_residual", "Constant", 20),
            ("channel_slice", "Slice", 2),
            ("pad_resize_avgpool", "Resize", 1),
            ("pad_resize_avgpool", "Pad", 1),
            ("pad_resize_avgpool", "AveragePool", 1),
            ("shape_subgraph_reshape", "Shape", 1),
            ("shape_subgraph_reshape", "Unsqueeze", 1),
            ("cast_identity_dropout", "Cast", 2),
            ("cast_identity_dropout", "Dropout", 1),
            ("hardswish_sigmoid_chain", "HardSwish", 2),
            ("layernorm_decomposed", "ReduceMean", 2),
            ("mobilenetv2_inverted_residual", "Clip", 3),
            ("unet_decoder", "ConvTranspose", 1),
            ("instance_norm_prelu", "InstanceNormalization", 1),
            ("instance_norm_prelu", "PRelu", 1),
            ("group_norm_block", "GroupNormalization", 1),
            ("group_norm_decomposed", "InstanceNormalization", 1),
        ];
        let models: std::collections::HashMap<_, _> = all().into_iter().collect();
        for &(name, op, n) in expect {
            let m = Model::from_proto(models[name].clone(), name, ExternalStore::none()).unwrap();
            assert!(
                op_count(&m, op) >= n,
                "{name}: {} {op} nodes",
                op_count(&m, op)
            );
        }
        let bn_free = Model::from_proto(bn_folded(), "bn_folded", ExternalStore::none()).unwrap();
        assert_eq!(op_count(&bn_free, "BatchNormalization"), 0);
        let consts = constant_weights_residual();
        assert!(consts.graph.unwrap().initializer.is_empty());
    }

    #[test]
    fn depthwise_and_grouped_convs_have_the_grouped_weight_shape() {
        let grouped = grouped_conv();
        let g = grouped.graph.as_ref().unwrap();
        let w = g
            .initializer
            .iter()
            .find(|t| t.name == "trunk_output.block1.block1-0.f.b.0.weight")
            .unwrap();
        assert_eq!(w.dims, [32, 8, 3, 3]);
        let mb = mobilenetv2_inverted_residual();
        let g = mb.graph.as_ref().unwrap();
        let dw = g
            .initializer
            .iter()
            .find(|t| t.name == "features.1.conv.1.0.weight")
            .unwrap();
        assert_eq!(dw.dims, [32, 1, 3, 3]);
    }

    #[test]
    fn resnet50_like_has_torchvision_parameter_count_and_topology() {
        let p = resnet50_like();
        assert_eq!(params(&p), 25_557_032);
        let m = check("resnet50_like", p);
        assert_eq!(op_count(&m, "Conv"), 53);
        assert_eq!(op_count(&m, "BatchNormalization"), 53);
        assert_eq!(op_count(&m, "Add"), 16);
        assert_eq!(op_count(&m, "Gemm"), 1);
        let out = m.graph.value(m.graph.outputs[0]);
        assert_eq!(
            out.declared,
            Some(vec![crate::ir::Dim::Known(1), crate::ir::Dim::Known(1000)])
        );
    }

    #[test]
    fn with_value_info_declares_intermediates_only_inside() {
        let plain = residual_basic_block();
        assert!(plain.graph.unwrap().value_info.is_empty());
        let declared = with_value_info(residual_basic_block).graph.unwrap();
        let conv = declared
            .value_info
            .iter()
            .find(|v| v.name == "/layer1.0.conv1/Conv_output_0")
            .expect("conv output declared");
        assert_eq!(
            conv,
            &crate::builder::value_info(&conv.name, 1, Some(&[1, 8, 16, 16]))
        );
        assert!(residual_basic_block().graph.unwrap().value_info.is_empty());
    }

    #[test]
    fn deep_chain_has_the_requested_depth() {
        let m = check("deep_chain", deep_chain(40));
        assert_eq!(op_count(&m, "Conv"), 40);
        assert_eq!(op_count(&m, "BatchNormalization"), 40);
        assert_eq!(op_count(&m, "Add"), 10);
    }
}
