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

fn start(name: &str, dims: &[i64]) -> (ModelBuilder, String) {
    let mut b = ModelBuilder::new(OPSET).named(name);
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

/// Every small zoo model by name.
pub fn all() -> Vec<(&'static str, ModelProto)> {
    vec![
        ("conv_bn_relu_chain", conv_bn_relu_chain()),
        ("residual_basic_block", residual_basic_block()),
        ("residual_downsample_block", residual_downsample_block()),
        ("bottleneck_block", bottleneck_block()),
        ("dense_block", dense_block()),
        ("inception_block", inception_block()),
        (
            "mobilenetv2_inverted_residual",
            mobilenetv2_inverted_residual(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::external::ExternalStore;
    use crate::model::Model;

    #[test]
    fn every_zoo_model_round_trips_and_is_a_valid_graph() {
        let models = all();
        assert!(models.len() >= 7);
        for (name, proto) in models {
            let bytes = proto.encode_to_vec();
            let back = ModelProto::decode(bytes.as_slice()).unwrap();
            assert_eq!(back, proto, "{name}: prost round trip differs");
            let m = Model::from_proto(proto, name, ExternalStore::none())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!m.graph.nodes.is_empty(), "{name}: no nodes");
            assert_eq!(m.graph.inputs.len(), 1, "{name}: inputs");
            assert_eq!(m.graph.outputs.len(), 1, "{name}: outputs");
        }
    }
}
