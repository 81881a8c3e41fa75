//! Library-level bad input: every malformed file gives a clear error naming the file, node or
//! tensor, never a panic, and a failed save writes nothing.

mod common;

use common::bad::{cases, Case};
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::Model;

/// Loads the case's model and checks the error names the file and says what `expect` says.
fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let path = case.write(dir.path());
    let err = match Model::load(&path) {
        Ok(_) => panic!("{}: loaded without error", case.name),
        Err(e) => e.to_string(),
    };
    let file = path.display().to_string();
    assert!(
        err.contains(&file),
        "{}: error does not name {file}: {err}",
        case.name
    );
    for fragment in &case.expect {
        assert!(
            err.contains(fragment),
            "{}: error lacks {fragment:?}: {err}",
            case.name
        );
    }
}

#[test]
fn every_bad_input_gets_a_clear_error() {
    for case in cases() {
        check(&case);
    }
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A proto whose tensors are bad (wrong length, unsafe or missing external data) is refused by
/// the writer before anything is created: no output, no side file, no temporary file.
#[test]
fn saving_a_bad_model_writes_nothing() {
    use common::bad::{external_weights, model, mul, weights};
    let mut short = weights();
    short.raw_data = short.raw_data.slice(..12);
    let protos = [
        ("short", model(mul(), vec![short])),
        (
            "missing",
            model(mul(), vec![external_weights("gone.bin", 0, 16)]),
        ),
        (
            "escape",
            model(mul(), vec![external_weights("../x.bin", 0, 16)]),
        ),
    ];
    for (name, proto) in protos {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("m.onnx"), shears_onnx::save::encode(&proto)).unwrap();
        let store = shears_onnx::external::ExternalStore::for_model_file(&src.join("m.onnx"));
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let err = save_proto(&proto, &store, &out.join("m.onnx"), &SaveOptions::default())
            .expect_err(name)
            .to_string();
        assert!(err.contains("tensor 'w'"), "{name}: {err}");
        assert!(
            listing(&out).is_empty(),
            "{name}: wrote {:?}",
            listing(&out)
        );
    }
}
