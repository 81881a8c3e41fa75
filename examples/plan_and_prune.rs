//! Torch-Pruning's README example with Shears: plan the removal of output channels 2 and 6 of
//! the first conv (everything coupled follows), print the plan, apply it, save the result.
//!
//! `cargo run --release --example plan_and_prune [MODEL.onnx]` (default: the repository's
//! `tests/fixtures/tiny_resnet-keepbn.onnx`, whose `conv1` has 8 channels).

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
    let plan = shears::plan_layer(&model, &graph, "conv1.weight", &[2, 6])?;
    write!(out, "{}", render_text(&plan))?;

    let pruned = shears::apply(&model, &[plan])?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pruned.onnx");
    shears::save(&model, &pruned, &file)?;

    // Read the saved file back: its first conv has lost the two channels.
    let saved = shears::load(&file)?;
    let before = shears::pruner::estimate::cost(&model)?;
    let after = shears::pruner::estimate::cost(&saved)?;
    writeln!(
        out,
        "conv1.weight out channels: {} -> {}",
        out_channels(&model, "conv1.weight"),
        out_channels(&saved, "conv1.weight")
    )?;
    writeln!(
        out,
        "parameters: {} -> {}",
        before.parameters, after.parameters
    )?;
    Ok(())
}

/// The first dimension of the tensor `name` (0 if the model has none of that name).
fn out_channels(model: &Model, name: &str) -> usize {
    let g = &model.graph;
    g.value_id(name)
        .and_then(|v| g.value(v).shape.as_ref()?.first().copied())
        .unwrap_or(0)
}
