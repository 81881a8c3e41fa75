//! Building the DependencyGraph (rules, union-find over channel atoms, units, every group) for a
//! ResNet-50-sized model and for deep chains of 250 and 1000 conv layers, all built in memory
//! with shapes inferred once outside the timing.
//!
//! - `build`: `DependencyGraph::build` (every rule, every link, units and groups).
//! - `build_and_report`: the same plus `group_reports` (what `shears groups` prints).
//!
//! Throughput is in nodes, so criterion's `elem/s` is nodes per second: time per node is its
//! inverse, and it must stay flat from 250 to 1000 layers and from the chain to ResNet-50.
//!
//! Run: `cargo bench --bench graph -- --warm-up-time 1 --measurement-time 5`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shears_graph::DependencyGraph;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_testkit::builder::zoo;

fn model(name: &str, proto: shears_onnx::proto::ModelProto) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).expect("model");
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).expect("shapes");
    m
}

fn bench_graph(c: &mut Criterion) {
    let models = [
        (
            "resnet50_like",
            model("resnet50_like", zoo::resnet50_like()),
        ),
        (
            "deep_chain_250",
            model("deep_chain_250", zoo::deep_chain(250)),
        ),
        (
            "deep_chain_1000",
            model("deep_chain_1000", zoo::deep_chain(1000)),
        ),
    ];
    let mut g = c.benchmark_group("graph");
    g.sample_size(20);
    for (name, m) in &models {
        let nodes = m.graph.nodes.len() as u64;
        g.throughput(Throughput::Elements(nodes));
        g.bench_with_input(BenchmarkId::new("build", name), m, |b, m| {
            b.iter(|| DependencyGraph::build(m));
        });
        g.bench_with_input(BenchmarkId::new("build_and_report", name), m, |b, m| {
            b.iter(|| {
                let graph = DependencyGraph::build(m);
                shears_plan::group_reports(m, &graph)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_graph);
criterion_main!(benches);
