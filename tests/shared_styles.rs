//! The style fixtures of `../shared/fixtures/styles` written with every initializer also a graph
//! input: `kiai13` (opset 13, `keep_initializers_as_inputs=True`, constant folding on, so
//! BatchNorm is folded as in the plain `-fused` export) and `op9` (opset 9, the same layout, no
//! constant folding, so BatchNorm stays as in the plain `-keepbn` export). Each groups exactly
//! like its plain original, and every prunable group prunes exactly by the zeroing check.
//! The `qdq` style (onnxruntime's `quantize_static`, QDQ format, per-channel int8 weights behind
//! DequantizeLinear) groups like the plain `-fused` export it was made from, through the Q/DQ
//! nodes, prunes to the same parameter and MAC counts, stays quantized, and is exact by the
//! zeroing check within the quantization step. `fp16` stays float16 when pruned.
//! (`dynbatch` needs symbolic dimensions: see `shared_symbolic.rs`.)
#![cfg(feature = "shared-suite")]

mod common;

use common::shared;
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

const MODELS: [&str; 3] = ["tiny_resnet", "tiny_mobilenet_v2", "tiny_densenet"];
/// Style -> the plain export written with the same exporter settings.
const STYLES: [(&str, &str); 2] = [("kiai13", "fused"), ("op9", "keepbn")];

fn analysed(path: &std::path::Path) -> Model {
    let mut m = Model::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

/// Per group: root, channels, prunable, blockers and parameter members, as `groups` reports
/// them.
fn groups(m: &Model) -> Vec<String> {
    let g = DependencyGraph::build(m);
    shears_plan::group_reports(m, &g)
        .iter()
        .map(|r| {
            let blockers: Vec<String> = r
                .blockers
                .iter()
                .map(|b| format!("{}: {}", b.dim, b.reason))
                .collect();
            let params: Vec<String> = r
                .members
                .iter()
                .filter(|m| m.parameter)
                .map(|m| format!("{}[{}]", m.tensor, m.axis))
                .collect();
            format!(
                "{} {} ch prunable={} blockers={blockers:?} params={params:?}",
                r.root, r.channels, r.prunable
            )
        })
        .collect()
}

#[test]
fn each_style_groups_like_its_plain_original() {
    for model in MODELS {
        for (style, plain) in STYLES {
            let s = analysed(&shared().join(format!("fixtures/styles/{model}-{style}.onnx")));
            let p = analysed(&shared().join(format!("fixtures/{model}-{plain}.onnx")));
            assert!(
                !s.graph.param_inputs.is_empty(),
                "{model}-{style}: no initializer is an input"
            );
            assert_eq!(s.graph.inputs.len(), 1, "{model}-{style}: runtime inputs");
            let (gs, gp) = (groups(&s), groups(&p));
            assert!(gs.iter().any(|g| g.contains("prunable=true")));
            assert_eq!(gs, gp, "{model}-{style} vs {model}-{plain}");
        }
    }
}

/// Every third channel of each prunable group of fixture `what`, planned on its layer as
/// `--layer/--idxs` gives, is exact by the zeroing check (1e-5 relative); asserts that at least
/// 9 groups were checked.
fn every_group_prunes_exactly(what: &str) {
    let m = analysed(&shared().join(format!("fixtures/styles/{what}.onnx")));
    let graph = DependencyGraph::build(&m);
    let shapes = InputShapes::default();
    let mut checked = 0;
    for (report, group) in shears_plan::group_reports(&m, &graph)
        .iter()
        .zip(&graph.groups)
    {
        if !report.prunable || group.units.len() < 2 {
            continue;
        }
        let Some(layer) = shears_plan::group_layer(&m, &graph, group.id) else {
            continue;
        };
        let name = m.graph.node(layer.node).name.clone();
        let idxs: Vec<usize> = (0..graph.dim(layer.dim).size)
            .filter(|&i| graph.group_at(layer.dim, i) == Some(group.id))
            .enumerate()
            .filter(|(k, _)| k % 3 == 1)
            .map(|(_, i)| i)
            .collect();
        let plan = shears_plan::plan(&m, &graph, &name, &idxs)
            .unwrap_or_else(|e| panic!("{what}: {name} {idxs:?}: {e}"));
        let ex = shears_testkit::check_exactness(&m, &[plan], &shapes, 1, 7)
            .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
        assert!(ex.shapes_equal, "{what}: {name}: output shapes changed");
        assert!(ex.exact_expected, "{what}: {name}: not expected exact");
        assert!(
            ex.max_rel <= 1e-5,
            "{what}: {name} {idxs:?}: max rel {:.3e}, max abs {:.3e}",
            ex.max_rel,
            ex.max_abs
        );
        checked += 1;
    }
    assert!(checked >= 9, "{what}: only {checked} groups checked");
}

#[test]
fn every_group_of_each_style_prunes_exactly() {
    for model in MODELS {
        for (style, _) in STYLES {
            every_group_prunes_exactly(&format!("{model}-{style}"));
        }
    }
}

/// Per group, what does not depend on tensor names: channels, prunable, parameter members.
fn group_shapes(m: &Model) -> Vec<String> {
    let g = DependencyGraph::build(m);
    let mut out: Vec<String> = shears_plan::group_reports(m, &g)
        .iter()
        .map(|r| {
            let params = r.members.iter().filter(|m| m.parameter).count();
            format!(
                "{} ch prunable={} params={params} blockers={}",
                r.channels,
                r.prunable,
                r.blockers.len()
            )
        })
        .collect();
    out.sort();
    out
}

/// Parameters and MACs after `--ratio 0.5` (L2, local), as `shears prune` reports them.
fn pruned(m: &Model) -> Model {
    let cfg = shears_pruner::PruneConfig::default(); // --ratio 0.5
    shears_pruner::prune(m, &cfg, &shears_pruner::NoProgress)
        .unwrap_or_else(|e| panic!("{}: {e}", m.source))
        .model
}

fn cost(m: &Model) -> (u64, u64) {
    let c = shears_onnx::cost::analyze(m).unwrap();
    (c.parameters, c.macs)
}

#[test]
fn qdq_groups_and_prunes_like_its_plain_original() {
    use shears_onnx::proto::tensor_proto::DataType;
    for model in MODELS {
        let q = analysed(&shared().join(format!("fixtures/styles/{model}-qdq.onnx")));
        let p = analysed(&shared().join(format!("fixtures/{model}-fused.onnx")));
        let (gq, gp) = (group_shapes(&q), group_shapes(&p));
        assert!(gq.iter().filter(|g| g.contains("prunable=true")).count() >= 9);
        assert_eq!(gq, gp, "{model}-qdq vs {model}-fused");
        assert_eq!(cost(&q), cost(&p), "{model}: cost");
        let out = pruned(&q);
        assert_eq!(cost(&out), cost(&pruned(&p)), "{model}: pruned cost");
        assert!(
            cost(&out).0 < cost(&q).0 * 6 / 10,
            "{model}: too little pruned"
        );
        // Still quantized: as many int8 weights as before.
        let int8 = out
            .proto
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .filter(|t| t.data_type == DataType::Int8 as i32 && t.dims.len() >= 2)
            .count();
        let before = q
            .proto
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .filter(|t| t.data_type == DataType::Int8 as i32 && t.dims.len() >= 2)
            .count();
        assert_eq!(int8, before, "{model}: quantized weights kept");
    }
}

/// `--layer/--idxs` plans on every prunable group of the qdq fixtures: the pruned model computes
/// what the original computes with the removed input slices zeroed. Within the quantization
/// step, says the spec of the check; it comes out exact, as removed channels meet only zeros
/// (int8 zero points of 0) and every quantizer sees the same values.
#[test]
fn every_group_of_the_qdq_style_prunes_within_the_quantization_step() {
    for model in MODELS {
        every_group_prunes_exactly(&format!("{model}-qdq"));
    }
}

/// The `fp16` style (float16 weights, Casts at the inputs and outputs) pruned at `--ratio 0.5`
/// keeps every float16 tensor float16, at its new shape.
#[test]
fn fp16_style_stays_float16_when_pruned() {
    use shears_onnx::proto::tensor_proto::DataType;
    for model in MODELS {
        let m = analysed(&shared().join(format!("fixtures/styles/{model}-fp16.onnx")));
        let out = pruned(&m);
        let before = &m.proto.graph.as_ref().unwrap().initializer;
        let after = &out.proto.graph.as_ref().unwrap().initializer;
        let f16 = DataType::Float16 as i32;
        let count = |ts: &[shears_onnx::proto::TensorProto]| {
            ts.iter().filter(|t| t.data_type == f16).count()
        };
        assert!(count(before) >= 10, "{model}: float16 weights");
        assert_eq!(count(after), count(before), "{model}: float16 tensors");
        let mut shrunk = 0;
        for t in after {
            let old = before.iter().find(|o| o.name == t.name).unwrap();
            assert_eq!(
                t.data_type, old.data_type,
                "{model}: {} changed type",
                t.name
            );
            shrunk += usize::from(t.data_type == f16 && t.dims != old.dims);
        }
        assert!(
            shrunk >= 10,
            "{model}: only {shrunk} float16 tensors pruned"
        );
        assert!(
            cost(&out).0 < cost(&m).0 * 6 / 10,
            "{model}: too little pruned"
        );
    }
}
