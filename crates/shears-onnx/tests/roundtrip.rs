//! Export: import then export of an unmodified model is protobuf-equal to the source (see
//! `shears_onnx::save` for what equality means with external data); external data is written
//! back beside the output, models over the size limit move tensors out instead of truncating,
//! and the writer never overwrites what the model is read from.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shears_onnx::external::{internalized, ExternalRef, ExternalStore};
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{ModelProto, TensorProto};
use shears_onnx::save::{encode, save_model, save_proto, SaveOptions, SaveReport, EXTERNAL_ALIGN};
use shears_onnx::{walk, Model, OnnxError};
use shears_testkit::builder::zoo;

/// Labels of the tensors stored externally.
fn external_labels(proto: &ModelProto) -> BTreeSet<String> {
    walk::tensors(proto)
        .into_iter()
        .filter(|f| shears_onnx::tensor::is_external(f.tensor))
        .map(|f| f.label)
        .collect()
}

/// Asserts `b` (a saved copy) equals `a`: same protobuf once external payloads are read in,
/// and the same external tensors plus those the save moved.
fn assert_same_model(a: &Model, b: &Model, moved: &[String], what: &str) {
    let ia = internalized(&a.proto, &a.external).unwrap();
    let ib = internalized(&b.proto, &b.external).unwrap();
    assert!(ia == ib, "{what}: the saved model differs from the source");
    let mut expected = external_labels(&a.proto);
    expected.extend(moved.iter().cloned());
    assert_eq!(
        external_labels(&b.proto),
        expected,
        "{what}: external tensors"
    );
}

/// Saves `proto` (read through `store`) into a new folder as `name`, reloads it, and returns
/// the reloaded model with the report.
fn save_and_reload(
    proto: &ModelProto,
    store: &ExternalStore,
    dir: &Path,
    name: &str,
    opts: &SaveOptions,
) -> (Model, SaveReport) {
    let out = dir.join(name);
    let report = save_proto(proto, store, &out, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = Model::load(&out).unwrap_or_else(|e| panic!("{name}: reload: {e}"));
    (back, report)
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_fixture_round_trips_to_an_equal_proto() {
    let dir = common::bad::fixtures_dir();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "onnx") {
            continue;
        }
        let src = Model::load(&path).unwrap();
        let out = tempfile::tempdir().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let (back, report) = save_and_reload(
            &src.proto,
            &src.external,
            out.path(),
            name,
            &SaveOptions::default(),
        );
        // No external data: equal without internalizing, and no side file.
        assert!(
            src.proto == back.proto,
            "{name}: differs after a round trip"
        );
        assert_eq!(report.data_path, None, "{name}");
        assert_eq!(entries_of(out.path()), [name], "{name}: stray files");
        // Same size as ONNX's own serializer writes, except for explicitly encoded defaults
        // (proto2 presence, see `proto`): at most a few bytes per attribute.
        let src_len = std::fs::metadata(&path).unwrap().len();
        assert!(
            report.model_bytes <= src_len && src_len - report.model_bytes < 200,
            "{name}"
        );
        n += 1;
    }
    assert!(n >= 30, "only {n} fixtures found in {}", dir.display());
}

#[test]
fn every_zoo_model_round_trips() {
    let out = tempfile::tempdir().unwrap();
    let all = zoo::all();
    assert!(all.len() >= 20);
    for (name, proto) in all {
        let src = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
        let file = format!("{name}.onnx");
        let (back, _) = save_and_reload(
            &src.proto,
            &src.external,
            out.path(),
            &file,
            &SaveOptions::default(),
        );
        assert!(
            src.proto == back.proto,
            "{name}: differs after a round trip"
        );
    }
}

/// A model with several weights of 1 KiB or more: the zoo's ViT encoder layer.
fn sample() -> Model {
    Model::from_proto(zoo::vit_encoder_layer(), "vit", ExternalStore::none()).unwrap()
}

/// Every external entry of `proto` points into `location` at an aligned offset, with an
/// explicit length, and the side file holds exactly the source's payload bytes there.
fn check_side_file(proto: &ModelProto, src: &Model, dir: &Path, location: &str) {
    let side = std::fs::read(dir.join(location)).unwrap();
    let source_payloads: std::collections::HashMap<String, bytes::Bytes> =
        walk::tensors(&src.proto)
            .into_iter()
            .map(|f| {
                let b = shears_onnx::tensor::payload_le(f.tensor, &src.external).unwrap();
                (f.label, b)
            })
            .collect();
    for f in walk::tensors(proto) {
        if !shears_onnx::tensor::is_external(f.tensor) {
            continue;
        }
        let r = ExternalRef::of(f.tensor).unwrap();
        assert_eq!(r.location, location, "{}", f.label);
        assert_eq!(r.offset % EXTERNAL_ALIGN, 0, "{} at {}", f.label, r.offset);
        let len = r.length.expect("length is always written");
        let stored = &side[r.offset as usize..(r.offset + len) as usize];
        assert_eq!(stored, &source_payloads[&f.label][..], "{}", f.label);
    }
}

#[test]
fn a_model_over_the_limit_moves_its_largest_initializers_to_external_data() {
    let src = sample();
    let full = encode(&src.proto).len() as u64;
    let opts = SaveOptions {
        max_model_bytes: full / 2,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let (back, report) = save_and_reload(&src.proto, &src.external, dir.path(), "m.onnx", &opts);

    assert!(!report.moved.is_empty());
    assert!(report.model_bytes <= full / 2, "{report:?}");
    assert_eq!(report.data_path, Some(dir.path().join("m.onnx.data")));
    assert_eq!(report.external_tensors, report.moved.len());
    assert_eq!(
        std::fs::metadata(dir.path().join("m.onnx")).unwrap().len(),
        report.model_bytes
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("m.onnx.data"))
            .unwrap()
            .len(),
        report.data_bytes
    );
    // The moved tensors are initializers, the largest ones (ties in walk order).
    let inits = &src.proto.graph.as_ref().unwrap().initializer;
    let mut by_size: Vec<&TensorProto> = inits.iter().collect();
    by_size.sort_by_key(|t| std::cmp::Reverse(prost::Message::encoded_len(*t)));
    let largest: Vec<String> = by_size[..report.moved.len()]
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(report.moved, largest);

    assert_same_model(&src, &back, &report.moved, "moved");
    check_side_file(&back.proto, &src, dir.path(), "m.onnx.data");
    assert_eq!(entries_of(dir.path()), ["m.onnx", "m.onnx.data"]);
}

#[test]
fn external_tensors_stay_external_beside_the_new_output() {
    let src = sample();
    let first = tempfile::tempdir().unwrap();
    let opts = SaveOptions {
        max_model_bytes: 8192,
        ..Default::default()
    };
    let (ext, report) = save_and_reload(&src.proto, &src.external, first.path(), "a.onnx", &opts);
    assert!(!report.moved.is_empty());

    // Saved again under the default limit, to a new name in a new folder: the same tensors
    // are external, now in `b.onnx.data`, and the model equals the first copy.
    let second = tempfile::tempdir().unwrap();
    let out = second.path().join("b.onnx");
    let report2 = save_model(&ext, &out, &SaveOptions::default()).unwrap();
    assert!(report2.moved.is_empty());
    assert_eq!(report2.external_tensors, report.external_tensors);
    let again = Model::load(&out).unwrap();
    assert_same_model(&ext, &again, &[], "re-saved");
    assert_same_model(&src, &again, &report.moved, "re-saved vs source");
    check_side_file(&again.proto, &ext, second.path(), "b.onnx.data");
    // The first copy is untouched and still loads.
    assert_same_model(
        &ext,
        &Model::load(first.path().join("a.onnx")).unwrap(),
        &[],
        "first",
    );
}

#[test]
fn attribute_tensors_move_only_after_every_initializer() {
    // Weights as Constant nodes and as initializers: a limit that forces everything out
    // moves the initializers first.
    let mut b = shears_testkit::builder::ModelBuilder::new(17).named("mixed");
    let x = b.input("input", &[1, 16]);
    let w = b.constant_f32("w_const", &[16, 16], &[0.5; 256]);
    let y = b.node("MatMul", &[&x, &w], 1, vec![]).remove(0);
    let v = b.init_f32("w_init", &[16, 16], &[0.25; 256]);
    let z = b.node("MatMul", &[&y, &v], 1, vec![]).remove(0);
    b.set_shape(&z, &[1, 16]);
    b.output(&z);
    let proto = b.build();
    let store = ExternalStore::none();
    let dir = tempfile::tempdir().unwrap();
    let opts = SaveOptions {
        max_model_bytes: 1000,
        ..Default::default()
    };
    let (back, report) = save_and_reload(&proto, &store, dir.path(), "m.onnx", &opts);
    assert_eq!(report.moved.len(), 2, "{report:?}");
    assert_eq!(report.moved[0], "w_init");
    assert!(report.moved[1].contains("attribute 'value'"), "{report:?}");
    let src = Model::from_proto(proto, "mixed", store).unwrap();
    assert_same_model(&src, &back, &report.moved, "mixed");
}

#[test]
fn typed_field_tensors_move_as_little_endian_bytes() {
    let values: Vec<f32> = (0..256).map(|i| i as f32 * 0.5 - 3.0).collect();
    let mut b = shears_testkit::builder::ModelBuilder::new(17).named("typed");
    let x = b.input("input", &[256]);
    let w = b.initializer(TensorProto {
        name: "w".into(),
        dims: vec![256],
        data_type: DataType::Float as i32,
        float_data: values.clone(),
        ..Default::default()
    });
    let y = b.node("Mul", &[&x, &w], 1, vec![]).remove(0);
    b.set_shape(&y, &[256]);
    b.output(&y);
    let proto = b.build();
    let src = Model::from_proto(proto, "typed", ExternalStore::none()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = SaveOptions {
        max_model_bytes: 1,
        ..Default::default()
    };
    // Nothing fits in one byte: an error, and nothing written.
    let err = save_model(&src, &dir.path().join("m.onnx"), &opts).unwrap_err();
    assert!(matches!(err, OnnxError::TooLarge { limit: 1, .. }), "{err}");
    assert!(entries_of(dir.path()).is_empty());

    let opts = SaveOptions {
        max_model_bytes: encode(&src.proto).len() as u64 - 100,
        ..Default::default()
    };
    let (back, report) = save_and_reload(&src.proto, &src.external, dir.path(), "m.onnx", &opts);
    assert_eq!(report.moved, ["w"]);
    let t = &back.proto.graph.as_ref().unwrap().initializer[0];
    assert!(t.float_data.is_empty());
    assert_eq!(back.f32s(t).unwrap(), values);
    let side = std::fs::read(dir.path().join("m.onnx.data")).unwrap();
    assert_eq!(&side[4..8], &(-2.5f32).to_le_bytes());
}

#[test]
fn extra_external_keys_are_kept() {
    // A source tensor with a checksum: the key survives (the bytes are the same).
    let dir = tempfile::tempdir().unwrap();
    let mut w = common::bad::external_weights("w.bin", 0, 16);
    w.external_data
        .push(shears_onnx::proto::StringStringEntryProto {
            key: "checksum".into(),
            value: "abc".into(),
        });
    let proto = common::bad::model(common::bad::mul(), vec![w]);
    let payload: Vec<u8> = [1f32, 2., 3., 4.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.path().join("w.bin"), &payload).unwrap();
    std::fs::write(dir.path().join("src.onnx"), encode(&proto)).unwrap();
    let src = Model::load(dir.path().join("src.onnx")).unwrap();
    let out = dir.path().join("out.onnx");
    save_model(&src, &out, &SaveOptions::default()).unwrap();
    let back = Model::load(&out).unwrap();
    let t = &back.proto.graph.as_ref().unwrap().initializer[0];
    let keys: Vec<(String, String)> = t
        .external_data
        .iter()
        .map(|kv| (kv.key_str().into_owned(), kv.value_str().into_owned()))
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("location", "out.onnx.data"),
            ("offset", "0"),
            ("length", "16"),
            ("checksum", "abc")
        ]
    );
    assert_same_model(&src, &back, &[], "checksum");
}

/// Copies a fixture into a fresh folder and returns (folder, path).
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::copy(common::bad::fixtures_dir().join(name), &path).unwrap();
    (dir, path)
}

#[test]
fn never_overwrites_the_input_model() {
    let (dir, path) = fixture_copy("tiny_vgg-fused.onnx");
    let before = std::fs::read(&path).unwrap();
    let m = Model::load(&path).unwrap();
    let other_spelling = dir.path().join(".").join("tiny_vgg-fused.onnx");
    #[cfg(unix)]
    let hard_link = {
        let l = dir.path().join("link.onnx");
        std::fs::hard_link(&path, &l).unwrap();
        l
    };
    #[cfg(not(unix))]
    let hard_link = path.clone();
    for target in [&path, &other_spelling, &hard_link] {
        let err = save_model(&m, target, &SaveOptions::default()).unwrap_err();
        assert!(
            matches!(err, OnnxError::WouldOverwrite { .. })
                && err.to_string().contains("the model's own input file"),
            "{}: {err}",
            target.display()
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let mut expected = vec!["tiny_vgg-fused.onnx"];
    if cfg!(unix) {
        expected.insert(0, "link.onnx");
    }
    assert_eq!(entries_of(dir.path()), expected, "no temporary files left");
}

#[test]
fn never_overwrites_a_side_file_the_model_reads() {
    // a.onnx reads its weights from b.onnx.data; saving to b.onnx would write b.onnx.data.
    let dir = tempfile::tempdir().unwrap();
    let proto = common::bad::model(
        common::bad::mul(),
        vec![common::bad::external_weights("b.onnx.data", 0, 16)],
    );
    std::fs::write(dir.path().join("b.onnx.data"), [7u8; 16]).unwrap();
    std::fs::write(dir.path().join("a.onnx"), encode(&proto)).unwrap();
    let m = Model::load(dir.path().join("a.onnx")).unwrap();
    for target in ["b.onnx", "b.onnx.data"] {
        let err = save_model(&m, &dir.path().join(target), &SaveOptions::default()).unwrap_err();
        assert!(err.to_string().contains("side file"), "{target}: {err}");
    }
    // Protected by the caller.
    let protect = dir.path().join("keep.onnx");
    std::fs::write(&protect, b"keep").unwrap();
    let opts = SaveOptions {
        protect: vec![protect.clone()],
        ..Default::default()
    };
    let err = save_model(&m, &protect, &opts).unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("b.onnx.data")).unwrap(),
        [7u8; 16]
    );
    assert_eq!(
        entries_of(dir.path()),
        ["a.onnx", "b.onnx.data", "keep.onnx"]
    );
}

#[test]
fn replaces_an_existing_unrelated_file_atomically() {
    let (dir, path) = fixture_copy("tiny_vgg-fused.onnx");
    let m = Model::load(&path).unwrap();
    let out = dir.path().join("out.onnx");
    std::fs::write(&out, b"old contents").unwrap();
    save_model(&m, &out, &SaveOptions::default()).unwrap();
    assert!(Model::load(&out).unwrap().proto == m.proto);
    assert_eq!(entries_of(dir.path()), ["out.onnx", "tiny_vgg-fused.onnx"]);
}
