//! Two plans for the same layer with different indices, and their line diff (what
//! `shears diff` prints): every coupled tensor's index list changes the same way.
//!
//! `cargo run --release --example plan_diff [MODEL.onnx]`

use shears::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tiny_resnet-keepbn.onnx"
        )
        .into()
    });
    let model = shears::load(&path)?;
    let graph = DependencyGraph::build(&model);
    let a = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6])?;
    let b = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 7])?;
    match diff_lines(&render_lines(&a), &render_lines(&b)) {
        Some(d) => print!("--- conv1.weight [2, 6]\n+++ conv1.weight [2, 7]\n{d}"),
        None => println!("the plans are identical"),
    }
    Ok(())
}
