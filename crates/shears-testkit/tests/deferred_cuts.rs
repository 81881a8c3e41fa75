//! `apply_deferred`: cut tensors left as views over the input's payloads read, re-cut and save
//! exactly as `apply`'s immediate copies do, inline or streamed into a side file.

use std::path::Path;

use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::Model;
use shears_plan::PruningPlan;
use shears_testkit::builder::zoo;

fn analysed(mut m: Model) -> Model {
    shears_onnx::shape::infer_shapes(&mut m, &Default::default()).unwrap();
    m
}

fn eager(model: &Model, plans: &[PruningPlan]) -> Model {
    let applied = shears_exec::apply(model, plans).unwrap();
    assert!(applied.cuts.is_empty());
    analysed(Model::from_proto(applied.proto, "eager", model.external.same_folder()).unwrap())
}

fn deferred(model: &Model, plans: &[PruningPlan]) -> Model {
    // Constant nodes' tensors are cut at once; initializers become views.
    let applied = shears_exec::apply_deferred(model, plans).unwrap();
    let mut store = model.external.same_folder();
    store.add_cuts(applied.cuts);
    analysed(Model::from_proto(applied.proto, "deferred", store).unwrap())
}

/// How a test saves: every tensor inline, every initializer external, or inline under a
/// model size limit that moves the largest tensors out.
#[derive(Clone, Copy, Debug)]
enum Storage {
    Inline,
    External,
    Moved,
}

/// Saves `m` as `<dir>/<sub>/m.onnx` (the same file name for every model, so side-file
/// locations agree) as `storage` says; returns the files' bytes.
fn saved(m: &Model, dir: &Path, sub: &str, storage: Storage) -> (Vec<u8>, Option<Vec<u8>>) {
    let folder = dir.join(sub);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("m.onnx");
    let mut opts = SaveOptions::default();
    if let Storage::Moved = storage {
        opts.max_model_bytes = 4096;
    }
    if let Storage::External = storage {
        opts.externalize = m
            .proto
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .map(|t| t.name.clone())
            .collect();
    }
    let report = match save_proto(&m.proto, &m.external, &path, &opts) {
        Ok(r) => r,
        // Too large even with every large tensor moved out: the same for both forms.
        Err(e @ shears_onnx::OnnxError::TooLarge { .. }) => return (e.to_string().into(), None),
        Err(e) => panic!("{}: {e}", m.source),
    };
    let data = report.data_path.map(|p| std::fs::read(p).unwrap());
    (std::fs::read(&path).unwrap(), data)
}

/// The initializers of `m` that are views.
fn views_of(m: &Model) -> usize {
    let g = m.proto.graph.as_ref().unwrap();
    g.initializer
        .iter()
        .filter(|t| m.external.cut_of(t).is_some())
        .count()
}

/// Every initializer of `a` and `b` has the same dims and payload bytes.
fn same_values(a: &Model, b: &Model, what: &str) {
    let (ga, gb) = (
        a.proto.graph.as_ref().unwrap(),
        b.proto.graph.as_ref().unwrap(),
    );
    assert_eq!(ga.initializer.len(), gb.initializer.len(), "{what}");
    for (x, y) in ga.initializer.iter().zip(&gb.initializer) {
        assert_eq!((&x.name, &x.dims), (&y.name, &y.dims), "{what}");
        assert_eq!(
            a.payload(x).unwrap(),
            b.payload(y).unwrap(),
            "{what}: {}",
            x.name
        );
    }
}

#[test]
fn views_read_and_save_as_immediate_cuts_inline_and_external() {
    let dir = tempfile::tempdir().unwrap();
    let (mut checked, mut views, mut side_files) = (0, 0, 0);
    for (name, build) in zoo::MODELS {
        let model = analysed(Model::from_proto(build(), *name, ExternalStore::none()).unwrap());
        let graph = DependencyGraph::build(&model);
        for seed in 0..3u64 {
            let plans = shears_testkit::random_plans(&model, &graph, seed);
            if plans.is_empty() {
                continue;
            }
            let what = format!("{name} seed {seed}");
            let (e, d) = (eager(&model, &plans), deferred(&model, &plans));
            same_values(&e, &d, &what);
            views += views_of(&d);
            for storage in [Storage::Inline, Storage::External, Storage::Moved] {
                let sub = format!("{name}_{seed}_{storage:?}");
                let want = saved(&e, dir.path(), &format!("{sub}_e"), storage);
                let got = saved(&d, dir.path(), &format!("{sub}_d"), storage);
                assert!(want == got, "{what}: saved bytes differ ({storage:?})");
                side_files += usize::from(got.1.is_some());
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} batches checked");
    assert!(views > 100, "only {views} views");
    // Every external save has one, and so has every inline save past the size limit.
    assert!(side_files > 40, "only {side_files} side files");
}

#[test]
fn a_view_cut_again_is_the_immediate_cut_of_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut checked, mut views) = (0, 0);
    for (name, build) in zoo::MODELS {
        let model = analysed(Model::from_proto(build(), *name, ExternalStore::none()).unwrap());
        let graph = DependencyGraph::build(&model);
        let first = shears_testkit::random_plans(&model, &graph, 7);
        if first.is_empty() {
            continue;
        }
        let (e1, d1) = (eager(&model, &first), deferred(&model, &first));
        let g1 = DependencyGraph::build(&e1);
        let second = shears_testkit::random_plans(&e1, &g1, 11);
        if second.is_empty() {
            continue;
        }
        let what = format!("{name}, two stages");
        let (e2, d2) = (eager(&e1, &second), deferred(&d1, &second));
        same_values(&e2, &d2, &what);
        views += views_of(&d2);
        let want = saved(&e2, dir.path(), &format!("{name}_e"), Storage::External);
        let got = saved(&d2, dir.path(), &format!("{name}_d"), Storage::External);
        assert!(want == got, "{what}: saved bytes differ");
        checked += 1;
    }
    assert!(checked > 10, "only {checked} models checked");
    assert!(views > 50, "only {views} views");
}
