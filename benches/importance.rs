//! Importance and allocation on a ResNet-50-sized model (the builder zoo's `resnet50_like`:
//! 25.6 M parameters, ~102 MB encoded), against reading the model's bytes.
//!
//! - `read`: `std::fs::read` of the file (in the page cache).
//! - `l2_global_allocation`: from a loaded (memory-mapped) model and its dependency graph,
//!   score every prunable group with L2 over all its coupled slices (decoding every measured
//!   tensor once), then allocate globally at ratio 0.5.
//! - `prune_global_half`: the whole one-shot pruner on the loaded model: graph, scores,
//!   allocation, plans, applying them to a copy and re-analysing it (no file written).
//! - `target_macs_half`: the same with `--target-macs 0.5`: the ratio search and refinement.
//!
//! Run: `cargo bench --bench importance -- --warm-up-time 1 --measurement-time 5`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shears_graph::{DependencyGraph, GroupId};
use shears_onnx::save::encode;
use shears_onnx::{InputShapes, Model};
use shears_pruner::{
    allocate, prune, AllocationConfig, Candidate, Goal, GroupImportance, ImportanceConfig,
    NoProgress, PruneConfig, Scorer,
};
use shears_testkit::builder::zoo;

fn scores_and_allocation(model: &Model, graph: &DependencyGraph) -> Vec<usize> {
    let cfg = ImportanceConfig::default();
    let gids: Vec<GroupId> = graph
        .groups
        .iter()
        .filter(|g| g.is_prunable() && g.units.len() > 1)
        .map(|g| g.id)
        .collect();
    let scorer = Scorer::new(model, graph, &cfg, &gids, None).expect("scorer");
    let cands: Vec<Candidate> = gids
        .iter()
        .filter_map(|&gid| match scorer.score(gid, "g").expect("score") {
            GroupImportance::Scores(scores) => Some(Candidate {
                original: scores.len(),
                scores,
                fixed_ratio: None,
            }),
            GroupImportance::Missing(_) => None,
        })
        .collect();
    let alloc = AllocationConfig {
        global: true,
        ..Default::default()
    };
    allocate(&cands, &alloc, 0.5)
}

fn bench_importance(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench folder");
    let bytes = encode(&zoo::resnet50_like());
    let src = dir.path().join("resnet50_like.onnx");
    std::fs::write(&src, &bytes).expect("write the model");
    let mut model = Model::load(&src).expect("load");
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).expect("shapes");
    let graph = DependencyGraph::build(&model);

    let mut g = c.benchmark_group("importance_resnet50_like");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("read", |b| {
        b.iter(|| std::fs::read(&src).expect("read"));
    });
    g.bench_function("l2_global_allocation", |b| {
        b.iter(|| scores_and_allocation(&model, &graph));
    });
    let half = |goal| PruneConfig {
        goal,
        allocation: AllocationConfig {
            global: true,
            ..Default::default()
        },
        ..Default::default()
    };
    g.bench_function("prune_global_half", |b| {
        b.iter(|| prune(&model, &half(Goal::Ratio(0.5)), &NoProgress).expect("prune"));
    });
    g.bench_function("target_macs_half", |b| {
        b.iter(|| prune(&model, &half(Goal::Macs(0.5)), &NoProgress).expect("prune"));
    });
    g.finish();
}

criterion_group!(benches, bench_importance);
criterion_main!(benches);
