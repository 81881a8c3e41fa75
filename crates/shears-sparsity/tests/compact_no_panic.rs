//! Corrupted masked models never panic in `compact`: random byte flips of a model with a dead
//! channel and a foldable constant channel either fail to load or compact with an error or a
//! result, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;
use prost::Message;
use shears_onnx::external::ExternalStore;
use shears_onnx::{tensor, InputShapes, Model};
use shears_sparsity::{compact, CompactOptions};
use shears_testkit::builder::ModelBuilder;

/// conv1 -> BN -> ReLU -> conv2 (1x1) -> GAP -> Flatten -> Gemm, with conv1's channel 1 dead
/// and channel 4 the constant 0.5.
fn masked_bytes() -> Vec<u8> {
    let mut b = ModelBuilder::new(17).named("masked").seed(11);
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 6, 3, 1, 1, 1);
    let y = b.conv(&y, "conv2", 6, 1, 1, 0, 1, false);
    let y = b.global_avgpool(&y);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "fc", 3, true);
    b.output(&y);
    let mut proto = b.build();
    for t in &mut proto.graph.as_mut().unwrap().initializer {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let mut v = tensor::decode_f32(t, &ExternalStore::none()).unwrap();
        match t.name.as_str() {
            "conv1.weight" => {
                v[27..2 * 27].iter_mut().for_each(|w| *w = 0.0);
                v[4 * 27..5 * 27].iter_mut().for_each(|w| *w = 0.0);
            }
            "bn1.weight" => v[1] = 0.0,
            "bn1.bias" => (v[1], v[4]) = (0.0, 0.5),
            "bn1.running_mean" => v[4] = 0.0,
            _ => continue,
        }
        let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        tensor::set_raw(t, raw, &dims);
    }
    proto.encode_to_vec()
}

fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(mut model) = Model::from_bytes(bytes.into(), "fuzzed") else {
        return false;
    };
    if shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).is_err() {
        return false;
    }
    for tolerance in [0.0, 1e-3] {
        let _ = compact(&model, &CompactOptions { tolerance });
    }
    true
}

#[test]
fn the_unflipped_model_compacts() {
    let mut model = Model::from_bytes(masked_bytes().into(), "masked").unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
    let c = compact(&model, &CompactOptions::default()).unwrap();
    let removed: Vec<u32> = c.findings[0].removed.iter().map(|r| r.channel).collect();
    assert_eq!(removed, [1, 4]);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn flipped_bytes_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = masked_bytes();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(bytes)));
        prop_assert!(outcome.is_ok(), "compact panicked on a corrupted model");
    }
}
