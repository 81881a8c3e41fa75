//! Pruning half the channels of every prunable group of a ResNet-50-sized model and writing it,
//! against reading and writing the same bytes (the floor any tool pays); and the pruner
//! (`prune --ratio 0.5`: analyse, score, allocate, plan, apply, re-analyse) on deep chains of
//! 1k, 4k and 16k conv layers against what `shears groups` pays on them (analyse, build the
//! graph, report the groups), both from the decoded proto, with throughput in nodes so that
//! criterion's `elem/s` gives the time per node, which must stay flat (within 2x across the
//! range), and prune within 3x of groups.
//!
//! `cargo bench --bench prune` (`-- deep_chain` for the chains only)

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::{InputShapes, Model};
use shears_plan::PruningPlan;
use shears_pruner::{Goal, NoProgress, PruneConfig};
use shears_testkit::builder::zoo;

/// One plan per prunable group, removing the first half of its channels.
fn half_of_every_group(model: &Model, graph: &DependencyGraph) -> Vec<PruningPlan> {
    let mut plans = Vec::new();
    for (report, group) in shears_plan::group_reports(model, graph)
        .iter()
        .zip(&graph.groups)
    {
        if !report.prunable || report.channels < 2 {
            continue;
        }
        let root = report.root.rsplit_once('[').expect("tensor[axis]").0;
        let Ok((_, dim)) = shears_plan::resolve_layer(model, graph, root) else {
            continue;
        };
        if graph.group_at(dim, 0) != Some(group.id) {
            continue;
        }
        let half = graph.dim(dim).size / 2;
        let idxs: Vec<usize> = (0..half).collect();
        plans.push(shears_plan::plan(model, graph, root, &idxs).expect("plan"));
    }
    plans
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("resnet50.onnx");
    let out = dir.path().join("pruned.onnx");
    let copy = dir.path().join("copy.onnx");
    let proto = zoo::resnet50_like();
    save_proto(
        &proto,
        &ExternalStore::none(),
        &src,
        &SaveOptions::default(),
    )
    .expect("save");
    let mut model = Model::load(&src).expect("load");
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).expect("shapes");
    let graph = DependencyGraph::build(&model);
    let plans = half_of_every_group(&model, &graph);
    eprintln!("{} plans", plans.len());

    let mut g = c.benchmark_group("resnet50_like");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("read+write same bytes", |b| {
        b.iter(|| {
            let bytes = std::fs::read(&src).expect("read");
            std::fs::write(&copy, &bytes).expect("write");
        })
    });
    g.bench_function("plan every group", |b| {
        b.iter(|| half_of_every_group(&model, &graph))
    });
    g.bench_function("apply + write", |b| {
        b.iter(|| {
            let applied = shears_exec::apply(&model, &plans).expect("apply");
            save_proto(
                &applied.proto,
                &model.external,
                &out,
                &SaveOptions::default(),
            )
            .expect("write");
        })
    });
    g.bench_function("load + shapes + graph + plan + apply + write", |b| {
        b.iter(|| {
            let mut m = Model::load(&src).expect("load");
            shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).expect("shapes");
            let gr = DependencyGraph::build(&m);
            let plans = half_of_every_group(&m, &gr);
            let applied = shears_exec::apply(&m, &plans).expect("apply");
            save_proto(&applied.proto, &m.external, &out, &SaveOptions::default()).expect("write");
        })
    });
    g.finish();
}

/// The chain as `shears groups` and `shears prune` start: decoded and shape-inferred (each
/// iteration pays it, as each command does).
fn analysed(proto: &shears_onnx::proto::ModelProto) -> Model {
    let mut m = Model::from_proto(proto.clone(), "chain", ExternalStore::none()).expect("model");
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).expect("shapes");
    m
}

fn bench_deep_chains(c: &mut Criterion) {
    let mut g = c.benchmark_group("deep_chain");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in [1000, 4000, 16000] {
        let proto = zoo::deep_chain(n);
        let nodes = analysed(&proto).graph.nodes.len();
        g.throughput(Throughput::Elements(nodes as u64));
        // What `shears groups` pays: analysis, graph, group reports.
        g.bench_with_input(BenchmarkId::new("groups", n), &proto, |b, p| {
            b.iter(|| {
                let m = analysed(p);
                let gr = DependencyGraph::build(&m);
                shears_plan::group_reports(&m, &gr).len()
            })
        });
        let cfg = PruneConfig {
            goal: Goal::Ratio(0.5),
            ..PruneConfig::default()
        };
        // What `shears prune --ratio 0.5` pays before writing: the same analysis, then score,
        // allocate, plan, apply and re-analyse the result.
        g.bench_with_input(BenchmarkId::new("prune ratio 0.5", n), &proto, |b, p| {
            b.iter(|| shears_pruner::prune(&analysed(p), &cfg, &NoProgress).expect("prune"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_deep_chains);
criterion_main!(benches);
