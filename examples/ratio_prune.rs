//! The pruner at ratio 0.5: every group loses half its channels, chosen by L2 magnitude
//! (Torch-Pruning's `MagnitudePruner` with `pruning_ratio=0.5`), then the result is saved.
//!
//! `cargo run --release --example ratio_prune [MODEL.onnx]`

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
    let cfg = PruneConfig {
        goal: Goal::Ratio(0.5),
        ..Default::default()
    };
    let outcome = prune(&model, &cfg, &NoProgress)?;
    for stage in &outcome.stages {
        for g in &stage.groups {
            writeln!(out, "{}: {} -> {} channels", g.layer, g.before, g.after)?;
        }
        for s in &stage.skipped {
            writeln!(out, "{}: left whole ({})", s.layer, s.reason)?;
        }
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pruned.onnx");
    shears::save(&model, &outcome.model, &file)?;
    let saved = shears::pruner::estimate::cost(&shears::load(&file)?)?;
    writeln!(
        out,
        "parameters: {} -> {} (saved file: {})",
        outcome.original.parameters, outcome.pruned.parameters, saved.parameters
    )?;
    writeln!(
        out,
        "macs: {} -> {}",
        outcome.original.macs, outcome.pruned.macs
    )?;
    Ok(())
}
