//! Symbolic input dimensions: a model with a `dim_param` batch groups, plans and prunes without
//! `--input-shape`, exactly as the same model with the batch bound; the pruned file keeps its
//! `dim_param`; the plans are exact by the zeroing check at another batch size. A channel that
//! really depends on the batch is blocked or refused, naming the dimension and the node; every
//! zoo model groups alike with its batch made symbolic, or says why it cannot.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use shears_onnx::proto::ModelProto;
use shears_onnx::{Dim, InputShapes, Model};
use shears_testkit::builder::ModelBuilder;
use shears_testkit::check_exactness;

fn shears(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shears"))
        .args(args)
        .output()
        .expect("run shears")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, proto: &ModelProto) -> String {
    use shears_onnx::external::ExternalStore;
    use shears_onnx::save::{save_proto, SaveOptions};
    let p = dir.join(name);
    save_proto(proto, &ExternalStore::none(), &p, &SaveOptions::default()).unwrap();
    p.to_str().unwrap().to_string()
}

/// The symbolic model with its batch axis written as 1.
fn static_twin() -> ModelProto {
    let mut p = common::dynbatch_model();
    let g = p.graph.as_mut().unwrap();
    for vi in g.input.iter_mut().chain(g.output.iter_mut()) {
        use shears_onnx::proto::{tensor_shape_proto::dimension, type_proto};
        if let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            for d in t.shape.as_mut().unwrap().dim.iter_mut() {
                if let Some(dimension::Value::DimParam(_)) = d.value {
                    d.value = Some(dimension::Value::DimValue(1));
                }
            }
        }
    }
    p
}

#[test]
fn a_symbolic_batch_groups_and_plans_like_the_bound_model() {
    let dir = tempfile::tempdir().unwrap();
    let dyn_path = write(dir.path(), "dyn.onnx", &common::dynbatch_model());
    let static_path = write(dir.path(), "static.onnx", &static_twin());
    let body = |t: String| t.lines().skip(1).collect::<Vec<_>>().join("\n");
    let dyn_groups = body(stdout(&shears(&["groups", &dyn_path])));
    let static_groups = body(stdout(&shears(&["groups", &static_path])));
    assert_eq!(dyn_groups, static_groups);
    assert!(dyn_groups.contains("prunable"), "{dyn_groups}");
    let bound = body(stdout(&shears(&[
        "groups",
        &dyn_path,
        "--input-shape",
        "input=1,3,8,8",
    ])));
    assert_eq!(dyn_groups, bound);
    for layer in ["/conv1/Conv", "/conv2/Conv"] {
        let a = stdout(&shears(&[
            "plan", &dyn_path, "--layer", layer, "--idxs", "1,4",
        ]));
        let b = stdout(&shears(&[
            "plan",
            &static_path,
            "--layer",
            layer,
            "--idxs",
            "1,4",
        ]));
        assert_eq!(a.replace(&dyn_path, "M"), b.replace(&static_path, "M"));
    }
}

#[test]
fn pruning_keeps_the_batch_symbolic_and_is_exact_at_other_batch_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "dyn.onnx", &common::dynbatch_model());
    let out = dir.path().join("small.onnx");
    stdout(&shears(&[
        "prune",
        &path,
        "--ratio",
        "0.5",
        "-o",
        out.to_str().unwrap(),
    ]));
    let pruned = Model::load(&out).unwrap();
    let g = &pruned.graph;
    for v in g.inputs.iter().chain(&g.outputs) {
        let decl = g.value(*v).declared.as_ref().unwrap();
        assert_eq!(decl[0], Dim::Dynamic("N".into()), "{}", g.value(*v).name);
    }
    let in_ch = |m: &Model, w: &str| {
        let v = m.graph.value_id(w).unwrap();
        m.initializer(v).unwrap().dims.clone()
    };
    let original = Model::load(&path).unwrap();
    assert_eq!(in_ch(&original, "conv1.weight"), [16, 3, 3, 3]);
    assert_eq!(in_ch(&pruned, "conv1.weight"), [8, 3, 3, 3]);
    assert_eq!(in_ch(&pruned, "fc.weight"), [10, 4 * 16]);

    // Plans made on the symbolic model, checked at batch 3.
    let mut model = Model::load(&path).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    assert!(!model.symbolic.is_empty());
    let graph = shears_graph::DependencyGraph::build(&model);
    let three = InputShapes::parse(&["input=3,3,8,8"]).unwrap();
    let mut checked = 0;
    for (layer, idxs) in [("/conv1/Conv", vec![0, 5, 9]), ("/conv2/Conv", vec![2, 7])] {
        let plan = shears_plan::plan(&model, &graph, layer, &idxs).unwrap();
        let r = check_exactness(&model, &[plan], &three, 2, 7).unwrap();
        assert!(r.shapes_equal, "{layer}: {r:?}");
        assert!(r.exact_expected && r.max_rel < 1e-4, "{layer}: {r:?}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn a_channel_whose_size_involves_the_batch_is_blocked_naming_the_dimension_and_node() {
    // conv1's 8 channels are folded with the batch into one axis ([8, N, 8, 8] -> [8N, 8, 8]
    // and back): that axis has no static size, so the group is blocked until --input-shape.
    let mut b = ModelBuilder::new(17).named("fold");
    let x = b.input("input", &[-1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.transpose(&y, &[1, 0, 2, 3]);
    let y = b.reshape(&y, &[-1, 8, 8]);
    let y = b.relu(&y);
    let y = b.reshape(&y, &[8, -1, 8, 8]);
    let y = b.transpose(&y, &[1, 0, 2, 3]);
    let y = b.conv(&y, "conv2", 4, 3, 1, 1, 1, true);
    b.output(&y);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "fold.onnx", &b.build());
    let text = stdout(&shears(&["groups", &path]));
    let conv1 = text
        .split("\n#")
        .find(|g| g.contains("conv1.weight[0]"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        conv1.contains("BLOCKED")
            && conv1.contains("symbolic dimension 'N'")
            && conv1.contains("Reshape")
            && conv1.contains("--input-shape"),
        "{conv1}"
    );
    let refused = shears(&["plan", &path, "--layer", "/conv1/Conv", "--idxs", "0"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not prunable") && err.contains("symbolic dimension 'N'"),
        "{err}"
    );
    let bound = stdout(&shears(&[
        "groups",
        &path,
        "--input-shape",
        "input=2,3,8,8",
    ]));
    let conv1 = bound
        .split("\n#")
        .find(|g| g.contains("conv1.weight[0]"))
        .unwrap();
    assert!(!conv1.contains("symbolic"), "{conv1}");
}

#[test]
fn a_model_valid_only_at_one_batch_size_is_refused_naming_the_dimension_and_node() {
    // [N, 8, 8, 8] -> [1, 8N, 8, 8] feeds a conv expecting 8 channels: only N = 1 works.
    let mut b = ModelBuilder::new(17).named("batch_into_channels");
    let x = b.input("input", &[-1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let target = b.constant_i64("", &[4], &[1, -1, 8, 8]);
    let y = b.reshape_dynamic(&y, &target, &[1, 8, 8, 8]);
    let y = b.conv(&y, "conv2", 4, 3, 1, 1, 1, true);
    b.output(&y);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "b.onnx", &b.build());
    for cmd in ["groups", "inspect"] {
        let o = shears(&[cmd, &path]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("symbolic dimension 'N'")
                && err.contains("/conv2/Conv")
                && err.contains("--input-shape"),
            "{err}"
        );
    }
    stdout(&shears(&[
        "groups",
        &path,
        "--input-shape",
        "input=1,3,8,8",
    ]));
}

/// `proto` with every graph input's, output's and `value_info`'s leading dimension of 1 made
/// the symbolic `N`.
fn batch_symbolic(mut proto: ModelProto) -> ModelProto {
    use shears_onnx::proto::{tensor_shape_proto::dimension, type_proto};
    let g = proto.graph.as_mut().unwrap();
    for vi in g
        .input
        .iter_mut()
        .chain(g.output.iter_mut())
        .chain(g.value_info.iter_mut())
    {
        let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        if let Some(d) = t.shape.as_mut().and_then(|s| s.dim.first_mut()) {
            if d.value == Some(dimension::Value::DimValue(1)) {
                d.value = Some(dimension::Value::DimParam("N".into()));
            }
        }
    }
    proto
}

#[test]
fn every_zoo_model_groups_alike_with_a_symbolic_batch_or_says_why_not() {
    use shears_onnx::external::ExternalStore;
    use shears_testkit::builder::zoo;
    let groups = |proto: ModelProto| -> Result<String, String> {
        let mut m = Model::from_proto(proto, "m", ExternalStore::none()).unwrap();
        shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default())
            .map_err(|e| e.to_string())?;
        let graph = shears_graph::DependencyGraph::build(&m);
        let reports = shears_plan::group_reports(&m, &graph);
        Ok(shears_plan::render_groups_text("m", &reports))
    };
    let (mut alike, mut refused) = (0, Vec::new());
    for (name, build) in zoo::MODELS {
        let plain = groups(build()).unwrap();
        match groups(batch_symbolic(build())) {
            Ok(symbolic) => {
                assert_eq!(symbolic, plain, "{name}");
                alike += 1;
            }
            Err(e) => {
                // Only a model whose shapes hold at batch 1 alone (a constant `[1, -1]`
                // Reshape target, say) may refuse, and it must say which dimension and node.
                assert!(
                    e.contains("symbolic dimension 'N'") && e.contains("node '"),
                    "{name}: {e}"
                );
                refused.push(*name);
            }
        }
    }
    // Five zoo models write `[1, ...]` Reshape targets (channel shuffles, a ViT, a decomposed
    // GroupNorm, a `[1, -1]` flatten): they only hold at batch 1, and say so.
    assert!(alike >= 25, "only {alike} alike; refused: {refused:?}");
}
