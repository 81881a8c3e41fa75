//! Shared suite: every full-size model under `../shared/models` evaluates on a seeded random
//! input to outputs of the declared shapes, with finite values that depend on the input.
#![cfg(feature = "shared-suite")]

use std::path::PathBuf;

use shears_onnx::{Dim, InputShapes, Model};
use shears_verify::{random_inputs, Evaluator, Rng};

fn shared_models() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    assert!(
        dir.is_dir(),
        "the shared-suite feature needs {} (the shared folder beside the repository)",
        dir.display()
    );
    dir
}

fn check(file: &str) {
    let path = shared_models().join(file);
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let eval = Evaluator::new(&model).unwrap_or_else(|e| panic!("{file}: {e}"));
    let shapes = InputShapes::default().resolve(&model.graph).unwrap();
    let run = |seed: u64| {
        let x = random_inputs(&model, &shapes, &mut Rng::new(seed)).unwrap();
        eval.eval(&x).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let (first, second) = (run(1), run(2));
    assert_eq!(
        first.len(),
        model.graph.outputs.len(),
        "{file}: output count"
    );
    for (((name, y), (_, y2)), &v) in first.iter().zip(&second).zip(&model.graph.outputs) {
        if let Some(declared) = &model.graph.value(v).declared {
            let want: Vec<Option<usize>> = declared
                .iter()
                .map(|d| match d {
                    Dim::Known(n) => Some(*n),
                    Dim::Dynamic(_) => None,
                })
                .collect();
            assert_eq!(y.rank(), want.len(), "{file}: rank of {name}");
            for (got, want) in y.dims().iter().zip(&want) {
                if let Some(w) = want {
                    assert_eq!(got, w, "{file}: shape of {name} is {:?}", y.dims());
                }
            }
        }
        let a: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = y2.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            a.iter().all(|v| v.is_finite()),
            "{file}: {name} is not finite"
        );
        assert!(a != b, "{file}: {name} does not depend on the input");
    }
}

/// Every `.onnx` file in the folder, so that a model added there is covered too.
#[test]
fn every_shared_model_evaluates() {
    let mut files: Vec<String> = std::fs::read_dir(shared_models())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the five shared models, found {files:?}"
    );
    for f in &files {
        check(f);
    }
}
