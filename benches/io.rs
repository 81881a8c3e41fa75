//! Import and export of a ResNet-50-sized model (the builder zoo's `resnet50_like`: 25.6 M
//! parameters, ~102 MB encoded) against reading and writing the same bytes.
//!
//! - `read` / `import`: `std::fs::read` of the file vs `Model::load` (map, decode, build the IR,
//!   validate every tensor's length). Import maps the file and touches no weight page, so it is
//!   expected to beat reading the bytes; `import_from_read` adds the read for a copy-based view.
//! - `write` / `write_sync` / `export`: `std::fs::write` of the encoded bytes, the same plus
//!   `fsync`, vs `save_model` (encode, write to a temporary file, `fsync`, rename). `write_sync`
//!   is the fair baseline: export syncs before renaming so that a crash never leaves a torn
//!   model.
//!
//! Run: `cargo bench --bench io -- --warm-up-time 1 --measurement-time 5`. The files live in
//! Cargo's target tmp folder (a real disk, not tmpfs) and are in the page cache while measured.

use std::io::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{encode, save_model, SaveOptions};
use shears_onnx::Model;
use shears_testkit::builder::zoo;

fn bench_io(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench folder");
    let proto = zoo::resnet50_like();
    let bytes = encode(&proto);
    let src = dir.path().join("resnet50_like.onnx");
    std::fs::write(&src, &bytes).expect("write the model");
    let model = Model::from_proto(proto, "resnet50_like", ExternalStore::none()).expect("model");

    let mut g = c.benchmark_group("io_resnet50_like");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));

    g.bench_function("read", |b| {
        b.iter(|| std::fs::read(&src).expect("read"));
    });
    g.bench_function("import", |b| {
        b.iter(|| Model::load(&src).expect("import"));
    });
    g.bench_function("import_from_read", |b| {
        b.iter(|| {
            let data = std::fs::read(&src).expect("read");
            Model::from_bytes(data.into(), "resnet50_like").expect("import")
        });
    });

    let out = dir.path().join("out.onnx");
    g.bench_function("write", |b| {
        b.iter(|| std::fs::write(&out, &bytes).expect("write"));
    });
    g.bench_function("write_sync", |b| {
        b.iter(|| write_sync(&out, &bytes));
    });
    g.bench_function("export", |b| {
        b.iter(|| save_model(&model, &out, &SaveOptions::default()).expect("export"));
    });
    g.finish();
}

fn write_sync(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("sync");
}

criterion_group!(benches, bench_io);
criterion_main!(benches);
