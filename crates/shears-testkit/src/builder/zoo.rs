//! Ready-made builder models, one per coupling pattern Shears must understand, plus size
//! generators for benches ([`resnet50_like`], [`deep_chain`]).
//!
//! Every model has one float input `input` (batch 1) and one output `output`, default opset
//! [`OPSET`], and names its layers the way PyTorch would (`layer1.0.conv1`, `bn1`, `fc`).
//! [`all`] lists the small ones by name.

mod branches;
mod computed;
mod mobile;
mod ops;
mod resnet;
mod sizes;
mod transformer;

pub use branches::*;
pub use computed::*;
pub use mobile::*;
pub use ops::*;
pub use resnet::*;
pub use sizes::*;
pub use transformer::*;

use super::ModelBuilder;
use shears_onnx::proto::ModelProto;

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
    ("lrn_gather_elements", lrn_gather_elements),
    ("std_conv", std_conv),
    ("std_conv_2d", std_conv_2d),
    ("computed_bias", computed_bias),
    ("gather_nd_tokens", gather_nd_tokens),
    ("patch_regroup", patch_regroup),
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
    use shears_onnx::external::ExternalStore;
    use shears_onnx::model::Model;
    use shears_onnx::proto::type_proto;

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
            Some(vec![
                shears_onnx::ir::Dim::Known(1),
                shears_onnx::ir::Dim::Known(1000)
            ])
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
