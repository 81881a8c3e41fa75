//! Shears' plans against Torch-Pruning's groups (`../shared/**/torch-pruning*`), layer by layer.
//!
//! For every Conv2d/Linear Torch-Pruning (TP) prunes (output channels `[0, 2, 5]`, or the
//! per-group / per-head indices it records), the plan on the BatchNorm-kept export must edit the
//! same tensors, axes and indices. Only GoogLeNet and MobileNetV2 have no BatchNorm-kept export;
//! there the BatchNorms are folded into the convs, so TP's BatchNorm items have no tensor and
//! Shears edits the folded bias instead (both accepted below, nothing else).
//!
//! Two coordinate conventions are translated, not tolerated: TP lists a grouped conv's input
//! channels in the layer's global input coordinates, while the weight's axis 1 holds `C/g`
//! per-group positions (input channel `c` is position `c % (C/g)`); and TP names tensors by
//! PyTorch names, which the BN-folded TorchScript exports replace (`onnx::Conv_NNN`), so those
//! are found through the node's module path (`/features/features.0/features.0.0/Conv`).
//!
//! Every disagreement is listed with its class, and the list must equal [`KNOWN`]: TP's copy
//! does not run (channel shuffle: see `shuffle_*`), TP couples attention projections through
//! `nn.MultiheadAttention`'s single `embed_dim` (see `vit_*`), or TP has no group at all.
#![cfg(feature = "shared-suite")]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::shared;
use serde_json::Value;
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model, ValueKind};
use shears_plan::TensorKind;

fn load(rel: &str) -> (Model, DependencyGraph) {
    let path = shared().join(rel);
    let mut model = Model::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default())
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    let graph = DependencyGraph::build(&model);
    (model, graph)
}

fn read_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(shared().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// (subject, Torch-Pruning file, ONNX export compared against).
const SUBJECTS: &[(&str, &str, &str)] = &[
    (
        "resnet18",
        "models/torch-pruning/resnet18-groups.json",
        "models/resnet18_keepbn.onnx",
    ),
    (
        "squeezenet1_1",
        "models/torch-pruning/squeezenet1_1-groups.json",
        "models/squeezenet1_1_keepbn.onnx",
    ),
    (
        "vit_small",
        "models/torch-pruning/vit_small-groups.json",
        "models/vit_small_keepbn.onnx",
    ),
    (
        "googlenet",
        "models/torch-pruning/googlenet-groups.json",
        "models/googlenet_dynamo.onnx",
    ),
    (
        "mobilenet_v2",
        "models/torch-pruning/mobilenet_v2-groups.json",
        "models/mobilenet_v2_fused.onnx",
    ),
    (
        "tiny_resnet",
        "fixtures/torch-pruning-groups/tiny_resnet.json",
        "fixtures/tiny_resnet-keepbn.onnx",
    ),
    (
        "tiny_densenet",
        "fixtures/torch-pruning-groups/tiny_densenet.json",
        "fixtures/tiny_densenet-keepbn.onnx",
    ),
    (
        "tiny_inception",
        "fixtures/torch-pruning-groups/tiny_inception.json",
        "fixtures/tiny_inception-keepbn.onnx",
    ),
    (
        "tiny_mobilenet_v2",
        "fixtures/torch-pruning-groups/tiny_mobilenet_v2.json",
        "fixtures/tiny_mobilenet_v2-keepbn.onnx",
    ),
    (
        "tiny_shufflenet",
        "fixtures/torch-pruning-groups/tiny_shufflenet.json",
        "fixtures/tiny_shufflenet-keepbn.onnx",
    ),
    (
        "tiny_regnet",
        "fixtures/torch-pruning-groups/tiny_regnet.json",
        "fixtures/tiny_regnet-keepbn.onnx",
    ),
    (
        "tiny_efficientnet",
        "fixtures/torch-pruning-groups/tiny_efficientnet.json",
        "fixtures/tiny_efficientnet-keepbn.onnx",
    ),
    (
        "tiny_convnext",
        "fixtures/torch-pruning-groups/tiny_convnext.json",
        "fixtures/tiny_convnext-keepbn.onnx",
    ),
    (
        "tiny_vit",
        "fixtures/torch-pruning-groups/tiny_vit.json",
        "fixtures/tiny_vit-keepbn.onnx",
    ),
    (
        "tiny_vgg",
        "fixtures/torch-pruning-groups/tiny_vgg.json",
        "fixtures/tiny_vgg-keepbn.onnx",
    ),
];

/// Why a layer's plans differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TpWrong {
    /// TP's own pruned copy does not run: its group is wrong (channel shuffle).
    CopyFails,
    /// TP prunes `nn.MultiheadAttention`'s projections with the residual width because the
    /// module has one `embed_dim`; in the ONNX graph the projection's output axis is its own.
    MhaEmbedDim,
    /// TP builds no group for the layer (an attention out-projection).
    NoGroup,
}

/// Every disagreement, with the reason Shears is right.
const KNOWN: &[(&str, &str, TpWrong)] = &[
    ("vit_small", "conv_proj", TpWrong::MhaEmbedDim),
    (
        "vit_small",
        "encoder.layers.encoder_layer_0.self_attention.out_proj",
        TpWrong::NoGroup,
    ),
    (
        "vit_small",
        "encoder.layers.encoder_layer_0.mlp.3",
        TpWrong::MhaEmbedDim,
    ),
    (
        "vit_small",
        "encoder.layers.encoder_layer_1.self_attention.out_proj",
        TpWrong::NoGroup,
    ),
    (
        "vit_small",
        "encoder.layers.encoder_layer_1.mlp.3",
        TpWrong::MhaEmbedDim,
    ),
    ("tiny_shufflenet", "stage2.0.branch1.2", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage2.0.branch2.5", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage3.0.branch1.0", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage3.0.branch1.2", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage3.0.branch2.5", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage4.0.branch1.0", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage4.0.branch1.2", TpWrong::CopyFails),
    ("tiny_shufflenet", "stage4.0.branch2.5", TpWrong::CopyFails),
    ("tiny_vit", "conv_proj", TpWrong::MhaEmbedDim),
    (
        "tiny_vit",
        "encoder.layers.encoder_layer_0.self_attention.out_proj",
        TpWrong::NoGroup,
    ),
    (
        "tiny_vit",
        "encoder.layers.encoder_layer_0.mlp.3",
        TpWrong::MhaEmbedDim,
    ),
];

/// The PyTorch module a TorchScript node belongs to. Each scope of the node name is the child's
/// name prefixed with its parent scope: `/features/features.1/conv/conv.0/conv.0.0/Conv` is
/// module `features.1.conv.0.0`.
fn module_of(node_name: &str) -> Option<String> {
    let scopes: Vec<&str> = node_name.split('/').filter(|p| !p.is_empty()).collect();
    let (_, scopes) = scopes.split_last()?;
    let mut path: Vec<&str> = Vec::new();
    let mut prev = "";
    for &s in scopes {
        let local = s
            .strip_prefix(prev)
            .and_then(|r| r.strip_prefix('.'))
            .filter(|_| !prev.is_empty())
            .unwrap_or(s);
        path.push(local);
        prev = s;
    }
    (!path.is_empty()).then(|| path.join("."))
}

/// Maps PyTorch names to the export's tensors and nodes.
struct Names<'m> {
    model: &'m Model,
    node_of_module: BTreeMap<String, &'m str>,
}

impl<'m> Names<'m> {
    fn new(model: &'m Model) -> Self {
        let mut node_of_module = BTreeMap::new();
        for n in &model.graph.nodes {
            if let Some(m) = module_of(&n.name) {
                if matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul") {
                    node_of_module.entry(m).or_insert(n.name.as_str());
                }
            }
        }
        Names {
            model,
            node_of_module,
        }
    }

    fn is_stored(&self, name: &str) -> bool {
        let g = &self.model.graph;
        g.value_id(name).is_some_and(|v| match g.value(v).kind {
            ValueKind::Initializer(_) => true,
            ValueKind::NodeOutput { node, .. } => g.node(node).op_type == "Constant",
            ValueKind::Input => false,
        })
    }

    /// The `--layer` name for TP layer `layer`.
    fn layer(&self, layer: &str) -> Option<String> {
        let w = format!("{layer}.weight");
        if self.is_stored(&w) {
            return Some(w);
        }
        self.node_of_module.get(layer).map(|n| n.to_string())
    }

    /// The export's tensor for PyTorch parameter `name`, or `None` when the exporter folded it
    /// away.
    fn tensor(&self, name: &str) -> Option<String> {
        if self.is_stored(name) {
            return Some(name.to_string());
        }
        let (module, slot) = if let Some(m) = name.strip_suffix(".weight") {
            (m, 1)
        } else if let Some(m) = name.strip_suffix(".bias") {
            (m, 2)
        } else {
            return None;
        };
        let g = &self.model.graph;
        let node = g.node(g.node_id(self.node_of_module.get(module)?)?);
        node.input(slot).map(|v| g.value(v).name.clone())
    }
}

type Cuts = BTreeMap<(String, usize), BTreeSet<u32>>;

/// What TP's group edits, in the export's tensors; `folded` counts TP BatchNorm params that
/// have no tensor there.
struct TpCuts {
    cuts: Cuts,
    /// Keys contributed only by `nn.MultiheadAttention` items.
    mha: BTreeSet<(String, usize)>,
}

fn tp_cuts(items: &[Value], names: &Names) -> TpCuts {
    let mut cuts = Cuts::new();
    let mut from_mha = BTreeSet::new();
    let mut from_other = BTreeSet::new();
    for it in items {
        let fn_name = it["fn"].as_str().unwrap_or_default();
        let module_type = it["module_type"].as_str().unwrap_or_default();
        let idxs: Vec<u32> = it["idxs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64())
                    .map(|v| v as u32)
                    .collect()
            })
            .unwrap_or_default();
        // TP lists a grouped conv's input channels globally; the weight's axis 1 holds the
        // per-group positions.
        let in_per_group = (fn_name == "prune_conv_in_channels")
            .then(|| {
                let c = &it["conv"];
                let (cin, groups) = (c["in"].as_u64()?, c["groups"].as_u64()?);
                (groups > 1).then_some((cin / groups) as u32)
            })
            .flatten();
        for p in it["params"].as_array().into_iter().flatten() {
            let pname = p["name"].as_str().unwrap_or_default();
            let dim = p["dim"].as_u64().unwrap_or_default() as usize;
            let Some(tensor) = names.tensor(pname) else {
                assert!(
                    module_type.starts_with("BatchNorm"),
                    "TP parameter {pname} ({module_type}) has no tensor in the export"
                );
                continue;
            };
            let set = cuts.entry((tensor.clone(), dim)).or_default();
            match in_per_group {
                Some(w) if dim == 1 => set.extend(idxs.iter().map(|i| i % w)),
                _ => set.extend(idxs.iter().copied()),
            }
            if fn_name == "prune_multihead_attention_out_channels" {
                from_mha.insert((tensor, dim));
            } else {
                from_other.insert((tensor, dim));
            }
        }
    }
    TpCuts {
        cuts,
        mha: from_mha.difference(&from_other).cloned().collect(),
    }
}

fn shears_cuts(plan: &shears_plan::PruningPlan) -> Cuts {
    plan.entries
        .iter()
        .filter(|e| e.kind != TensorKind::Activation)
        .map(|e| {
            (
                (e.tensor.clone(), e.axis),
                e.indices.iter().copied().collect(),
            )
        })
        .collect()
}

fn runs(result: &Value) -> bool {
    result["exec"]["forward_after"]["ok"].as_bool() == Some(true)
}

/// One layer's comparison.
struct Outcome {
    class: Option<TpWrong>,
    lines: Vec<String>,
}

fn compare_layer(
    model: &Model,
    graph: &DependencyGraph,
    names: &Names,
    image_of_tp: &BTreeSet<String>,
    entry: &Value,
) -> Outcome {
    let layer = entry["layer"].as_str().unwrap();
    if let Some(err) = entry.get("group_error") {
        return Outcome {
            class: Some(TpWrong::NoGroup),
            lines: vec![format!("TP: {}", err.as_str().unwrap_or_default())],
        };
    }
    // TP's result to compare: its own request when the pruned copy runs, else the alternative
    // it recorded (per-head indices), else its failing request.
    let chosen = match entry.get("alt") {
        Some(alt) if !runs(entry) && runs(alt) => alt,
        _ => entry,
    };
    let idxs: Vec<usize> = chosen["idxs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let onnx_layer = names
        .layer(layer)
        .unwrap_or_else(|| panic!("{layer}: no tensor or node in {}", model.source));
    let plan = shears_plan::plan(model, graph, &onnx_layer, &idxs)
        .unwrap_or_else(|e| panic!("{layer} {idxs:?}: {e}"));
    let mine = shears_cuts(&plan);
    let tp = tp_cuts(chosen["items"].as_array().unwrap(), names);
    let mut lines = Vec::new();
    let mut mha_only = true;
    for key in tp.cuts.keys().chain(mine.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (tp.cuts.get(key), mine.get(key));
        if a == b {
            continue;
        }
        if a.is_none() && !image_of_tp.contains(&key.0) && folded_bias_agrees(model, &mine, key) {
            continue; // an exporter-made bias (BatchNorm folded), cut like its conv
        }
        mha_only &= b.is_none() && tp.mha.contains(key);
        let show = |s: Option<&BTreeSet<u32>>| {
            s.map_or("-".to_string(), |s| {
                format!("{:?}", s.iter().collect::<Vec<_>>())
            })
        };
        lines.push(format!(
            "{}[{}]: TP {} Shears {}",
            key.0,
            key.1,
            show(a),
            show(b)
        ));
    }
    let class = if lines.is_empty() {
        None
    } else if !runs(chosen) {
        Some(TpWrong::CopyFails)
    } else if mha_only {
        Some(TpWrong::MhaEmbedDim)
    } else {
        panic!(
            "{layer}: unexplained disagreement with Torch-Pruning:\n{}",
            lines.join("\n")
        )
    };
    Outcome { class, lines }
}

/// Whether `key` is input 2 (the bias) of a node whose weight Shears cuts on axis 0 with the
/// same indices.
fn folded_bias_agrees(model: &Model, mine: &Cuts, key: &(String, usize)) -> bool {
    let g = &model.graph;
    let Some(v) = g.value_id(&key.0) else {
        return false;
    };
    g.value(v).consumers.iter().any(|&(n, slot)| {
        let node = g.node(n);
        slot == 2
            && key.1 == 0
            && node
                .input(1)
                .is_some_and(|w| mine.get(&(g.value(w).name.clone(), 0)) == mine.get(key))
    })
}

#[test]
fn plans_match_torch_pruning_where_its_copies_run() {
    let mut found: Vec<(String, String, TpWrong)> = Vec::new();
    let mut report = String::new();
    let mut compared = 0;
    for &(subject, tp_file, onnx) in SUBJECTS {
        let tp = read_json(tp_file);
        let (model, graph) = load(onnx);
        let names = Names::new(&model);
        let image_of_tp: BTreeSet<String> = tp["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| {
                let alt = l.get("alt").and_then(|a| a["items"].as_array());
                l["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(alt.into_iter().flatten())
            })
            .flat_map(|it| it["params"].as_array().into_iter().flatten())
            .filter_map(|p| names.tensor(p["name"].as_str()?))
            .collect();
        for entry in tp["layers"].as_array().unwrap() {
            if entry.get("skipped").is_some() {
                continue;
            }
            let layer = entry["layer"].as_str().unwrap();
            let out = compare_layer(&model, &graph, &names, &image_of_tp, entry);
            compared += 1;
            if let Some(class) = out.class {
                report.push_str(&format!("{subject} {layer}: {class:?}\n"));
                for l in &out.lines {
                    report.push_str(&format!("    {l}\n"));
                }
                found.push((subject.to_string(), layer.to_string(), class));
            }
        }
    }
    println!("{compared} layers compared; disagreements:\n{report}");
    let known: Vec<(String, String, TpWrong)> = KNOWN
        .iter()
        .map(|&(s, l, c)| (s.to_string(), l.to_string(), c))
        .collect();
    assert_eq!(
        found, known,
        "disagreements with Torch-Pruning changed:\n{report}"
    );
    // Every layer Torch-Pruning's dumps hold, short of the ones they mark skipped: a layer
    // dropped from the comparison would hide a disagreement.
    assert_eq!(compared, 290, "layers compared");
}

/// The module names in Torch-Pruning's printed plan for resnet18 `conv1` [2, 6, 9].
fn printed_modules() -> BTreeSet<(String, bool)> {
    let text =
        std::fs::read_to_string(shared().join("models/torch-pruning/resnet18_conv1_print.txt"))
            .unwrap();
    text.lines()
        .filter_map(|l| l.split(" => ").nth(1))
        .filter_map(|target| {
            let rest = target.split(" on ").nth(1)?;
            let (module, what) = rest.split_once(" (")?;
            (!module.starts_with('_')).then(|| (module.to_string(), what.starts_with("BatchNorm")))
        })
        .collect()
}

/// The seed README's plan: resnet18 `conv1` [2, 6, 9] touches the layers of TP's printed plan
/// and removes 11,211 parameter elements from the same tensors (BatchNorm running statistics
/// edited, not counted).
#[test]
fn resnet18_conv1_matches_the_printed_plan() {
    let (model, graph) = load("models/resnet18_keepbn.onnx");
    let plan = shears_plan::plan(&model, &graph, "conv1.weight", &[2, 6, 9]).unwrap();
    let modules = printed_modules();
    assert_eq!(modules.len(), 10, "{modules:?}");
    let strip = |t: &str| {
        [".weight", ".bias", ".running_mean", ".running_var"]
            .iter()
            .find_map(|s| t.strip_suffix(s))
            .unwrap_or(t)
            .to_string()
    };
    let touched: BTreeSet<String> = plan
        .entries
        .iter()
        .filter(|e| e.kind != TensorKind::Activation)
        .map(|e| strip(&e.tensor))
        .collect();
    let expected: BTreeSet<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(touched, expected);
    let mut counted: BTreeSet<String> = BTreeSet::new();
    let mut stats: BTreeSet<String> = BTreeSet::new();
    for (m, bn) in &modules {
        counted.insert(format!("{m}.weight"));
        if *bn {
            counted.insert(format!("{m}.bias"));
            stats.insert(format!("{m}.running_mean"));
            stats.insert(format!("{m}.running_var"));
        }
    }
    let of_kind = |k: TensorKind| -> BTreeSet<String> {
        plan.entries
            .iter()
            .filter(|e| e.kind == k)
            .map(|e| e.tensor.clone())
            .collect()
    };
    assert_eq!(of_kind(TensorKind::Parameter), counted);
    assert_eq!(of_kind(TensorKind::Statistic), stats);
    assert_eq!(plan.parameters_removed, 11_211);
    for e in &plan.entries {
        assert_eq!(e.indices, [2, 6, 9], "{}", e.tensor);
    }
}

/// Channel shuffle, where TP's copy fails: the shuffle reshapes the 16-channel Concat to
/// `[2, 8]`, swaps the axes and flattens, so Concat channel `c` lands at
/// `2 * (c % 8) + c / 8`. Shears keeps every group of the Reshape the same size by pruning the
/// same position of both branches: branch1.2's [0, 2, 5] take branch2.5's [0, 2, 5] along
/// (Concat [0, 2, 5, 8, 10, 13]), and the next stage's convs lose exactly the images of those,
/// [0, 1, 4, 5, 10, 11]. TP maps them to [0, 2, 5] unchanged and its model does not run.
#[test]
fn shuffle_permutation_indices() {
    let (model, graph) = load("fixtures/tiny_shufflenet-keepbn.onnx");
    let plan = shears_plan::plan(&model, &graph, "stage2.0.branch1.2.weight", &[0, 2, 5]).unwrap();
    let cuts = shears_cuts(&plan);
    let concat: Vec<u32> = [0u32, 2, 5].iter().flat_map(|&j| [j, j + 8]).collect();
    let mut shuffled: Vec<u32> = concat.iter().map(|&c| 2 * (c % 8) + c / 8).collect();
    shuffled.sort_unstable();
    assert_eq!(shuffled, [0, 1, 4, 5, 10, 11]);
    let idx =
        |t: &str, a: usize| -> Vec<u32> { cuts[&(t.to_string(), a)].iter().copied().collect() };
    assert_eq!(idx("stage2.0.branch2.5.weight", 0), [0, 2, 5]);
    assert_eq!(idx("stage3.0.branch1.0.weight", 0), shuffled); // depthwise: in = out
    assert_eq!(idx("stage3.0.branch2.0.weight", 1), shuffled);
    // TP's version of the same request, for the record: the unshuffled indices.
    let tp = read_json("fixtures/torch-pruning-groups/tiny_shufflenet.json");
    let entry = tp["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == "stage2.0.branch1.2")
        .unwrap();
    assert!(!runs(entry), "TP's copy was expected to fail");
    let tp_items = entry["items"].as_array().unwrap();
    let tp_idx = tp_items
        .iter()
        .find(|it| it["module"] == "stage3.0.branch2.0")
        .map(|it| it["idxs"].clone())
        .unwrap();
    assert_eq!(tp_idx, serde_json::json!([0, 2, 5]));
}

/// Grouped convs (RegNet, group width 8): a plain [0, 2, 5] on the conv feeding a 2-group conv
/// is not a valid request by itself (TP's own attempt crashes); Shears ties channel `c` to
/// `c + 8`, so the request becomes [0, 2, 5, 8, 10, 13] and both groups keep 5 channels.
#[test]
fn regnet_groups_keep_equal_sizes() {
    let (model, graph) = load("fixtures/tiny_regnet-keepbn.onnx");
    let layer = "trunk_output.block2.block2-0.f.a.0.weight";
    let plan = shears_plan::plan(&model, &graph, layer, &[0, 2, 5]).unwrap();
    let cuts = shears_cuts(&plan);
    let root: Vec<u32> = cuts[&(layer.to_string(), 0)].iter().copied().collect();
    assert_eq!(root, [0, 2, 5, 8, 10, 13]);
    let grouped: Vec<u32> = cuts[&("trunk_output.block2.block2-0.f.b.0.weight".to_string(), 1)]
        .iter()
        .copied()
        .collect();
    assert_eq!(grouped, [0, 2, 5]);
    for g in 0..2u32 {
        let kept = (g * 8..g * 8 + 8).filter(|c| !root.contains(c)).count();
        assert_eq!(kept, 5, "group {g}");
    }
    let tp = read_json("fixtures/torch-pruning-groups/tiny_regnet.json");
    let entry = tp["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == "trunk_output.block2.block2-0.f.a.0")
        .unwrap();
    assert!(entry["plain_idxs_attempt"]["exec_error"].is_string());
}

/// Attention: TP prunes the q/k/v in-projection's rows and the out-projection's columns with
/// the residual channels because `nn.MultiheadAttention` has one `embed_dim`. In the ONNX graph
/// the in-projection is a MatMul `[17, 32] x [32, 96]`: the residual channels are its
/// contracted axis only, and its 96 outputs are split into heads by a Reshape of their own.
/// Shears prunes the residual stream without touching them, and prunes the head-dim positions
/// as a separate group.
#[test]
fn vit_residual_stream_leaves_the_projection_width_alone() {
    let (model, graph) = load("fixtures/tiny_vit-keepbn.onnx");
    let plan = shears_plan::plan(&model, &graph, "conv_proj.weight", &[0, 2, 5]).unwrap();
    let cuts = shears_cuts(&plan);
    let in_proj = "encoder.layers.encoder_layer_0.self_attention.in_proj_weight";
    let out_proj = "encoder.layers.encoder_layer_0.self_attention.out_proj.weight";
    assert!(cuts.contains_key(&(in_proj.to_string(), 1)));
    assert!(!cuts.contains_key(&(in_proj.to_string(), 0)));
    assert!(cuts.contains_key(&(out_proj.to_string(), 0)));
    assert!(!cuts.contains_key(&(out_proj.to_string(), 1)));
    let heads = shears_plan::plan(&model, &graph, in_proj, &[1]).unwrap();
    let rows: Vec<u32> = shears_cuts(&heads)[&(in_proj.to_string(), 0)]
        .iter()
        .copied()
        .collect();
    // Position 1 of each of the 2 heads of 16, in q, k and v.
    assert_eq!(rows, [1, 17, 33, 49, 65, 81]);
}
