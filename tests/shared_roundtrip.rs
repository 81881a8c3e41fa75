//! Round trip over the real exports in `../shared` (feature `shared-suite`): importing then
//! exporting every model and fixture gives a protobuf-equal model (for external data: equal
//! once payloads are read in, with the same tensors external; see `shears_onnx::save`).
#![cfg(feature = "shared-suite")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{onnx_files, shared};
use shears_onnx::external::{internalized, ExternalRef};
use shears_onnx::save::{save_model, SaveOptions, EXTERNAL_ALIGN};
use shears_onnx::{tensor, walk, Model};

fn external_labels(m: &Model) -> BTreeSet<String> {
    walk::tensors(&m.proto)
        .into_iter()
        .filter(|f| tensor::is_external(f.tensor))
        .map(|f| f.label)
        .collect()
}

/// Saves `src` as `dir/name`, reloads it and checks it equals `src`; returns the copy.
fn round_trip(src: &Model, dir: &Path, name: &str) -> Model {
    let out = dir.join(name);
    let report =
        save_model(src, &out, &SaveOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.moved.is_empty(), "{name}: {report:?}");
    let back = Model::load(&out).unwrap_or_else(|e| panic!("{name}: reload: {e}"));
    let external = external_labels(src);
    assert_eq!(external_labels(&back), external, "{name}: external tensors");
    assert_eq!(report.external_tensors, external.len(), "{name}");
    if external.is_empty() {
        assert!(
            src.proto == back.proto,
            "{name}: differs after a round trip"
        );
        assert_eq!(report.data_path, None, "{name}");
    } else {
        let a = internalized(&src.proto, &src.external).unwrap();
        let b = internalized(&back.proto, &back.external).unwrap();
        assert!(
            a == b,
            "{name}: differs after a round trip (payloads read in)"
        );
    }
    back
}

#[test]
fn every_shared_model_and_fixture_round_trips() {
    let root = shared();
    let mut files = onnx_files(&root.join("models"));
    files.extend(onnx_files(&root.join("fixtures")));
    assert!(files.len() >= 35, "{} files", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let src = Model::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        round_trip(&src, dir.path(), name);
    }
}

#[test]
fn googlenet_external_data_is_written_back_as_external_data() {
    let path = shared().join("models/googlenet_dynamo.onnx");
    let src = Model::load(&path).unwrap();
    assert_eq!(external_labels(&src).len(), 93);

    // Under the same file name: the same location string, offsets realigned.
    let dir = tempfile::tempdir().unwrap();
    let back = round_trip(&src, dir.path(), "googlenet_dynamo.onnx");
    for f in walk::tensors(&back.proto) {
        if tensor::is_external(f.tensor) {
            let r = ExternalRef::of(f.tensor).unwrap();
            assert_eq!(r.location, "googlenet_dynamo.onnx.data", "{}", f.label);
            assert_eq!(r.offset % EXTERNAL_ALIGN, 0, "{}", f.label);
        }
    }
    let src_data = std::fs::metadata(shared().join("models/googlenet_dynamo.onnx.data"))
        .unwrap()
        .len();
    let new_data = std::fs::metadata(dir.path().join("googlenet_dynamo.onnx.data"))
        .unwrap()
        .len();
    // Only alignment padding is added: under 64 bytes per tensor.
    assert!(new_data >= src_data && new_data < src_data + 93 * EXTERNAL_ALIGN);

    // Under another name, from the copy: the copy's side file is read, a new one is written.
    let other = tempfile::tempdir().unwrap();
    let again = round_trip(&back, other.path(), "renamed.onnx");
    let r = ExternalRef::of(&again.proto.graph.as_ref().unwrap().initializer[0]);
    assert_eq!(
        r.map(|r| r.location).ok().as_deref(),
        Some("renamed.onnx.data")
    );
}
