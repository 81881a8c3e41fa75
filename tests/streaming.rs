//! Models with external data through the streaming paths: a small copy of the Llama-shaped
//! decoder the bounded-memory bench (`benches/big_model.rs`) generates at 1.6 B parameters,
//! written by `shears_testkit::builder::llama` with every weight external.

mod common;

use common::{ok, shears};
use shears::onnx::{tensor, InputShapes, Model};
use shears_testkit::builder::llama::{write_llama, LlamaConfig};

#[test]
fn the_generated_decoder_prunes_its_mlp_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_llama(&LlamaConfig::tiny(), &dir.path().join("llama.onnx")).unwrap();
    let model = shears::load(&w.model).unwrap();
    let graph = shears::graph::DependencyGraph::build(&model);
    let plan = shears::plan_layer(
        &model,
        &graph,
        "model.layers.1.mlp.gate_proj.weight",
        &[0, 5, 6],
    )
    .unwrap();
    let ex =
        shears_testkit::check_exactness(&model, &[plan], &InputShapes::default(), 2, 7).unwrap();
    assert!(ex.exact_expected && ex.shapes_equal, "{ex:?}");
    assert!(ex.max_rel < 1e-5, "{ex:?}");
}

#[test]
fn prune_keeps_external_weights_external_and_streams_them_to_one_side_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_llama(&LlamaConfig::tiny(), &dir.path().join("llama.onnx")).unwrap();
    let out = dir.path().join("pruned.onnx");
    ok(&shears(&[
        "prune",
        w.model.to_str().unwrap(),
        "--ratio",
        "0.25",
        "-o",
        out.to_str().unwrap(),
    ]));
    let before = Model::load(&w.model).unwrap();
    let after = Model::load(&out).unwrap();
    let external = |m: &Model| -> Vec<(String, u64)> {
        m.proto
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .filter(|t| tensor::is_external(t))
            .map(|t| (t.name.clone(), tensor::byte_len(t).unwrap().unwrap() as u64))
            .collect()
    };
    let (b, a) = (external(&before), external(&after));
    assert_eq!(
        b.iter().map(|x| &x.0).collect::<Vec<_>>(),
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        "the same weights are external"
    );
    let total = |v: &[(String, u64)]| v.iter().map(|x| x.1).sum::<u64>();
    assert!(total(&a) < total(&b), "the ratio removed weights");
    // Every payload in the one side file, 64-byte aligned, nothing else in it but padding.
    let data = std::fs::metadata(dir.path().join("pruned.onnx.data"))
        .unwrap()
        .len();
    assert!(data >= total(&a) && data < total(&a) + 64 * a.len() as u64);
    after.validate_tensors().unwrap();
}
