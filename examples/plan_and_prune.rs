//! Torch-Pruning's README example with Shears: plan the removal of output channels 2 and 6 of
//! the first conv (everything coupled follows), print the plan, apply it, save the result.
//!
//! `cargo run --release --example plan_and_prune [MODEL.onnx]` (default: the repository's
//! `tests/fixtures/tiny_resnet-keepbn.onnx`, whose `conv1` has 8 channels).

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
    let plan = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6])?;
    print!("{}", render_text(&plan));

    let pruned = shears::apply(&model, &[plan])?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("pruned.onnx");
    shears::save(&model, &pruned, &out)?;

    // Read the saved file back: its first conv has lost the two channels.
    let saved = shears::load(&out)?;
    let before = shears::pruner::estimate::cost(&model)?;
    let after = shears::pruner::estimate::cost(&saved)?;
    println!(
        "conv1.weight out channels: {} -> {}",
        out_channels(&model, "conv1.weight"),
        out_channels(&saved, "conv1.weight")
    );
    println!("parameters: {} -> {}", before.parameters, after.parameters);
    Ok(())
}

/// The first dimension of the tensor `name` (0 if the model has none of that name).
fn out_channels(model: &Model, name: &str) -> usize {
    let g = &model.graph;
    g.value_id(name)
        .and_then(|v| g.value(v).shape.as_ref()?.first().copied())
        .unwrap_or(0)
}
