//! Two plans for the same layer with different indices, and their line diff (what
//! `shears diff` prints): every coupled tensor's index list changes the same way.
//!
//! `cargo run --release --example plan_diff [MODEL.onnx]`

use std::io::Write;

use shears::prelude::*;

/// The model run when no path is given: one the repository ships.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_resnet-keepbn.onnx"
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| FIXTURE.into());
    run(&path, &mut std::io::stdout().lock())
}

/// The example on the model at `path`, printing to `out` (`tests/examples.rs` checks it).
pub fn run(path: &str, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = shears::load(path)?;
    let graph = DependencyGraph::build(&model);
    let a = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6])?;
    let b = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 7])?;
    match diff_lines(&render_lines(&a), &render_lines(&b)) {
        Some(d) => write!(out, "--- conv1.weight [2, 6]\n+++ conv1.weight [2, 7]\n{d}"),
        None => writeln!(out, "the plans are identical"),
    }?;
    Ok(())
}
