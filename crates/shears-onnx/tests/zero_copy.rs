//! Decoding a memory-mapped model copies no weight: every `raw_data` is a slice of the mapped
//! file, and external payloads are slices of the mapped side file.

mod common;

use shears_onnx::load::decode_file;
use shears_onnx::save::{save_model, SaveOptions};
use shears_onnx::{walk, Model};

/// Whether `inner` lies within `outer`'s memory.
fn inside(inner: &[u8], outer: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

#[test]
fn raw_data_points_into_the_mapped_file() {
    for name in ["tiny_resnet-keepbn.onnx", "tiny_vit-dynamo.onnx"] {
        let path = common::bad::fixtures_dir().join(name);
        let decoded = decode_file(&path, name).unwrap();
        let file = std::fs::read(&path).unwrap();
        let mut checked = 0;
        for f in walk::tensors(&decoded.proto) {
            let raw = &f.tensor.raw_data;
            if raw.is_empty() {
                continue;
            }
            assert!(
                inside(raw, &decoded.bytes),
                "{name}: '{}' was copied",
                f.label
            );
            // And it is the right slice: the same bytes at the same offset of the file.
            let at = raw.as_ptr() as usize - decoded.bytes.as_ptr() as usize;
            assert_eq!(&file[at..at + raw.len()], &raw[..], "{name}: '{}'", f.label);
            checked += 1;
        }
        assert!(checked > 10, "{name}: only {checked} raw tensors");
    }
}

#[test]
fn external_payloads_are_slices_of_one_mapping() {
    let src = Model::load(common::bad::fixtures_dir().join("tiny_vgg-keepbn.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let opts = SaveOptions {
        max_model_bytes: 16 * 1024,
        ..Default::default()
    };
    let report = save_model(&src, &out, &opts).unwrap();
    assert!(report.external_tensors >= 2, "{report:?}");
    let m = Model::load(&out).unwrap();
    let side = shears_onnx::load::map_file(&dir.path().join("m.onnx.data")).unwrap();
    let external: Vec<_> = walk::tensors(&m.proto)
        .into_iter()
        .filter(|f| shears_onnx::tensor::is_external(f.tensor))
        .collect();
    assert_eq!(external.len(), report.external_tensors);
    // Consecutive payloads of the store's one mapping sit at the distance their offsets say.
    let payloads: Vec<_> = external
        .iter()
        .map(|f| m.payload(f.tensor).unwrap())
        .collect();
    let offsets: Vec<u64> = external
        .iter()
        .map(|f| {
            shears_onnx::external::ExternalRef::of(f.tensor)
                .unwrap()
                .offset
        })
        .collect();
    for i in 1..payloads.len() {
        let gap = payloads[i].as_ptr() as usize - payloads[0].as_ptr() as usize;
        assert_eq!(gap as u64, offsets[i] - offsets[0], "{}", external[i].label);
    }
    // Reading twice gives the same memory, not a new copy.
    assert_eq!(
        m.payload(external[0].tensor).unwrap().as_ptr(),
        payloads[0].as_ptr()
    );
    assert_eq!(
        &payloads[0][..],
        &side[offsets[0] as usize..][..payloads[0].len()]
    );
}
