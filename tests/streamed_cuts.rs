//! `prune` streams its cut tensors (views of the input's payloads, never made whole) into the
//! output: the files it writes are byte for byte those of the same plans applied one stage at a
//! time with immediate cuts and saved, for external and inline weights alike.

mod common;

use std::path::Path;

use common::{ok, shears};
use shears::onnx::Model;
use shears::plan::PlanFile;
use shears_testkit::builder::llama::{write_llama, LlamaConfig};

/// Prunes `input` with the CLI (heads, then widths) into `<dir>/cli/m.onnx`, applies the
/// report's stages with immediate cuts and saves that into `<dir>/eager/m.onnx`: both
/// folders' files, side file included, must be equal.
fn cli_and_eager(input: &Path, dir: &Path) {
    let (cli, eager) = (dir.join("cli"), dir.join("eager"));
    std::fs::create_dir_all(&cli).unwrap();
    std::fs::create_dir_all(&eager).unwrap();
    let report = dir.join("report.json");
    ok(&shears(&[
        "prune",
        input.to_str().unwrap(),
        "--ratio",
        "0.25",
        "--head-ratio",
        "0.5",
        "--report",
        report.to_str().unwrap(),
        "-o",
        cli.join("m.onnx").to_str().unwrap(),
    ]));
    let original = shears::load(input).unwrap();
    let stages = PlanFile::read(&report).unwrap().stages;
    assert_eq!(stages.len(), 2, "a head stage and a width stage");
    let mut model: Option<Model> = None;
    for plans in &stages {
        let cur = model.as_ref().unwrap_or(&original);
        model = Some(shears::apply(cur, plans).unwrap());
    }
    shears::save(&original, &model.unwrap(), eager.join("m.onnx")).unwrap();
    for name in ["m.onnx", "m.onnx.data"] {
        let (a, b) = (cli.join(name), eager.join(name));
        assert_eq!(a.exists(), b.exists(), "{name}");
        if a.exists() {
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{name} differs"
            );
        }
    }
}

#[test]
fn streamed_external_cuts_write_the_bytes_of_immediate_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_llama(&LlamaConfig::tiny(), &dir.path().join("llama.onnx")).unwrap();
    cli_and_eager(&w.model, dir.path());
    assert!(dir.path().join("cli/m.onnx.data").exists());
}

#[test]
fn streamed_inline_cuts_write_the_bytes_of_immediate_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_llama(&LlamaConfig::tiny(), &dir.path().join("llama.onnx")).unwrap();
    // The same decoder with every weight inline.
    let external = shears::load(&w.model).unwrap();
    let proto = shears::onnx::external::internalized(&external.proto, &external.external).unwrap();
    let inline = dir.path().join("inline.onnx");
    std::fs::write(&inline, shears::onnx::save::encode(&proto)).unwrap();
    cli_and_eager(&inline, dir.path());
    assert!(!dir.path().join("cli/m.onnx.data").exists());
}
