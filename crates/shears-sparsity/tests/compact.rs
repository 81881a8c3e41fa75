//! `compact` on builder models: random units of zoo models made dead (every parameter slice they
//! own zeroed) are removed, exactly those where the ops carrying them are understood, never
//! another, and the output is unchanged; a constant channel is folded into a 1x1 conv's bias
//! and reported (kept) before a padded 3x3 conv.

use std::collections::BTreeSet;

use shears_graph::{DependencyGraph, DimKey};
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::ModelProto;
use shears_onnx::{tensor, InputShapes, Model, ValueKind};
use shears_pruner::members::members;
use shears_pruner::roles::ParamRole;
use shears_sparsity::{compact, CompactOptions, Compacted};
use shears_testkit::builder::{prng::Rng, zoo, ModelBuilder};

fn load(proto: ModelProto, name: &str) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = InputShapes::dynamic_as(&m.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

/// Largest output difference relative to the original's largest magnitude.
fn rel_diff(original: &Model, compacted: &Model) -> f64 {
    let shapes = InputShapes::dynamic_as(&original.graph, 1);
    let r = shears_verify::verify(original, compacted, &shapes, 2, 7).unwrap();
    assert!(r.shapes_equal, "{}: output shapes differ", original.source);
    r.outputs
        .iter()
        .map(|o| o.max_rel.unwrap())
        .fold(0.0, f64::max)
}

fn shaped(c: Compacted, shapes_from: &Model) -> Model {
    let mut m = c.model.expect("something removed");
    let shapes = InputShapes::dynamic_as(&shapes_from.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

/// Zeroes every learned parameter slice (weights, norm scales, biases and shifts; never running
/// statistics) that the chosen units own; returns the proto and the (layer, channel) keys.
fn make_dead(model: &Model, seed: u64) -> (ModelProto, BTreeSet<(String, u32)>) {
    let graph = DependencyGraph::build(model);
    let mut rng = Rng::new(seed);
    let mut proto = model.proto.clone();
    let mut keys = BTreeSet::new();
    for group in graph.groups.iter().filter(|g| g.is_prunable()) {
        let Some(layer) = shears_plan::group_layer(model, &graph, group.id) else {
            continue;
        };
        let ms = members(model, &graph, group);
        let lm = ms.iter().find(|m| m.dim == layer.dim).unwrap();
        let n = group.units.len();
        let mut chosen: Vec<usize> = (0..n).filter(|_| rng.unit() < 0.35).collect();
        if chosen.len() == n {
            chosen.pop();
        }
        for &k in &chosen {
            keys.insert((
                model.graph.node(layer.node).name.clone(),
                lm.unit_indices[k][0],
            ));
            for m in &ms {
                if matches!(m.role, None | Some(ParamRole::Statistic)) {
                    continue;
                }
                let gp = proto.graph.as_mut().unwrap();
                let t = match model.graph.value(m.value).kind {
                    ValueKind::Initializer(i) => &mut gp.initializer[i],
                    ValueKind::NodeOutput { node, .. } => {
                        let pi = model.graph.node(node).proto_index;
                        let a = gp.node[pi].attribute.iter_mut().find(|a| a.name == "value");
                        a.and_then(|a| a.t.as_mut()).unwrap()
                    }
                    ValueKind::Input => panic!("{}: parameter is an input", model.source),
                };
                let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
                let elem = tensor::elem_size(t.data_type).unwrap();
                let mut raw = tensor::payload_le(t, &ExternalStore::none())
                    .unwrap()
                    .to_vec();
                shears_testkit::zero_axis(&mut raw, &dims, elem, m.axis, &m.unit_indices[k]);
                tensor::set_raw(t, raw, &dims);
            }
        }
    }
    (proto, keys)
}

fn removed_keys(c: &Compacted) -> BTreeSet<(String, u32)> {
    c.findings
        .iter()
        .flat_map(|g| g.removed.iter().map(|r| (g.layer.clone(), r.channel)))
        .collect()
}

/// Zoo models whose dead units travel only through ops the constant analysis follows (Conv,
/// BatchNorm, activations, Add/Mul with broadcasting, pools, Flatten, Gemm, Concat, float
/// Casts) and reach their readers as 0: there every dead unit must be found. Elsewhere compact
/// may keep a dead unit (reshapes and transposes, slices, Instance/Group/LayerNorm, Pad, Resize
/// are not followed; a Sigmoid turns 0 into 0.5, which a padded conv cannot absorb), but never
/// removes a live one.
const FULLY_TRACED: &[&str] = &[
    "bn_folded",
    "bottleneck_block",
    "cast_identity_dropout",
    "constant_weights_residual",
    "conv_bn_relu_chain",
    "dense_block",
    "dynamic_batch_chain",
    "efficientnet_mbconv",
    "flatten_gemm",
    "grouped_conv",
    "inception_block",
    "mobilenetv2_inverted_residual",
    "residual_basic_block",
    "residual_downsample_block",
    "squeeze_excitation",
];

#[test]
fn random_dead_units_of_zoo_models_are_removed_and_outputs_kept() {
    let mut found_some = 0;
    for (mi, (name, build)) in zoo::MODELS.iter().enumerate() {
        for seed in 0..3u64 {
            let original = load(build(), name);
            let (proto, dead) = make_dead(&original, seed * 100 + mi as u64);
            let masked = load(proto, name);
            let c = compact(&masked, &CompactOptions::default()).unwrap();
            let removed = removed_keys(&c);
            assert!(
                removed.is_subset(&dead),
                "{name} seed {seed}: removed live units {:?}",
                removed.difference(&dead).collect::<Vec<_>>()
            );
            if FULLY_TRACED.contains(name) {
                assert_eq!(removed, dead, "{name} seed {seed}");
            }
            for g in &c.findings {
                for r in &g.removed {
                    assert_eq!(r.constant, 0.0, "{name}: {} {}", g.layer, r.channel);
                    assert!(!r.approximate && r.folded_into.is_empty());
                }
            }
            if removed.is_empty() {
                assert!(c.model.is_none());
                continue;
            }
            found_some += 1;
            let out = shaped(c, &masked);
            let d = rel_diff(&masked, &out);
            assert!(d <= 1e-5, "{name} seed {seed}: relative difference {d}");
        }
    }
    assert!(found_some >= 10, "only {found_some} runs removed anything");
}

/// conv1 (3x3, 8 channels) -> BN -> ReLU -> `consumer`; channel 3 of conv1 has zero weights and
/// a BN shift of 0.7, so after the ReLU it carries the constant 0.7 (BN mean 0).
fn constant_channel_model(consumer_kernel: i64, consumer_pad: i64) -> Model {
    with_consumer(|b, y| b.conv(y, "conv2", 4, consumer_kernel, 1, consumer_pad, 1, false))
}

/// The same conv1 -> BN -> ReLU with channel 3 constant, read by `consumer`.
fn with_consumer(consumer: impl FnOnce(&mut ModelBuilder, &str) -> String) -> Model {
    let mut b = ModelBuilder::new(17).named("constant_channel").seed(3);
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = consumer(&mut b, &y);
    b.output(&y);
    let mut proto = b.build();
    let g = proto.graph.as_mut().unwrap();
    for t in &mut g.initializer {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let mut v = tensor::decode_f32(t, &ExternalStore::none()).unwrap();
        match t.name.as_str() {
            "conv1.weight" => v[3 * 27..4 * 27].iter_mut().for_each(|w| *w = 0.0),
            "bn1.bias" => v[3] = 0.7,
            "bn1.running_mean" => v[3] = 0.0,
            _ => continue,
        }
        let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        tensor::set_raw(t, raw, &dims);
    }
    load(proto, "constant_channel")
}

#[test]
fn a_constant_channel_before_a_1x1_conv_is_folded_into_its_bias() {
    let m = constant_channel_model(1, 0);
    let c = compact(&m, &CompactOptions::default()).unwrap();
    assert_eq!(c.findings.len(), 1);
    let g = &c.findings[0];
    assert_eq!(g.removed.len(), 1, "{:?}", c.findings);
    assert_eq!(g.removed[0].channel, 3);
    assert!((g.removed[0].constant - 0.7).abs() < 1e-6);
    assert_eq!(
        g.removed[0].folded_into,
        vec![m.graph.nodes[3].name.clone()]
    );
    assert!(g.kept.is_empty());
    let out = shaped(c, &m);
    // conv2 had no bias: one was added, and conv1 lost a channel.
    let conv2 = out
        .graph
        .node(out.graph.node_id(&m.graph.nodes[3].name).unwrap());
    assert!(conv2.input(2).is_some());
    let w = out.graph.value(conv2.input(1).unwrap());
    assert_eq!(w.shape.as_deref(), Some(&[4, 7, 1, 1][..]));
    let d = rel_diff(&m, &out);
    assert!(d <= 1e-5, "relative difference {d}");
}

#[test]
fn a_constant_channel_through_pooling_and_flatten_is_folded_into_a_gemm_bias() {
    for trans_b in [true, false] {
        let m = with_consumer(|b, y| {
            let y = b.global_avgpool(y);
            let y = b.flatten(&y, 1);
            b.gemm(&y, "fc", 5, trans_b)
        });
        let c = compact(&m, &CompactOptions::default()).unwrap();
        let g = &c.findings[0];
        assert_eq!(g.removed.len(), 1, "{:?}", c.findings);
        assert_eq!(g.removed[0].channel, 3);
        let gemm = m.graph.nodes.iter().find(|n| n.op_type == "Gemm").unwrap();
        assert_eq!(g.removed[0].folded_into, vec![gemm.name.clone()]);
        let out = shaped(c, &m);
        let d = rel_diff(&m, &out);
        assert!(d <= 1e-5, "transB {trans_b}: relative difference {d}");
    }
}

#[test]
fn a_constant_channel_before_a_padded_3x3_conv_is_reported_not_removed() {
    let m = constant_channel_model(3, 1);
    let c = compact(&m, &CompactOptions::default()).unwrap();
    assert!(c.model.is_none());
    assert_eq!(c.findings.len(), 1);
    let g = &c.findings[0];
    assert!(g.removed.is_empty());
    assert_eq!(g.kept.len(), 1);
    assert_eq!(g.kept[0].channel, 3);
    assert!(g.kept[0].reason.contains("pads"), "{}", g.kept[0].reason);
}

#[test]
fn tolerance_treats_small_weights_as_zero_and_says_so() {
    let m = constant_channel_model(1, 0);
    // Channel 5's weights become tiny but not zero; its BN scale 0 then shift 0: dead within
    // the tolerance only.
    let mut proto = m.proto.clone();
    for t in &mut proto.graph.as_mut().unwrap().initializer {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let mut v = tensor::decode_f32(t, &ExternalStore::none()).unwrap();
        match t.name.as_str() {
            "conv1.weight" => v[5 * 27..6 * 27].iter_mut().for_each(|w| *w = 1e-9),
            "bn1.bias" => v[5] = -0.5,
            _ => continue,
        }
        let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        tensor::set_raw(t, raw, &dims);
    }
    let m = load(proto, "tiny_weights");
    let exact = compact(&m, &CompactOptions::default()).unwrap();
    assert_eq!(removed_keys(&exact).len(), 1);
    let loose = compact(&m, &CompactOptions { tolerance: 1e-6 }).unwrap();
    let g = &loose.findings[0];
    let five = g
        .removed
        .iter()
        .find(|r| r.channel == 5)
        .expect("channel 5");
    assert!(five.approximate);
    assert!(
        !g.removed
            .iter()
            .find(|r| r.channel == 3)
            .unwrap()
            .approximate
    );
    let out = shaped(loose, &m);
    assert!(rel_diff(&m, &out) <= 1e-5);
}

#[test]
fn a_layer_dim_names_each_finding() {
    // Findings name the group's layer and index its output channels.
    let m = constant_channel_model(1, 0);
    let graph = DependencyGraph::build(&m);
    let c = compact(&m, &CompactOptions::default()).unwrap();
    let node = m.graph.node_id(&c.findings[0].layer).unwrap();
    let (v, a) = graph.verdicts[node.index()]
        .as_ref()
        .unwrap()
        .out_channels
        .unwrap();
    assert!(graph.dim_id(DimKey::Axis(v, a)).is_some());
}
