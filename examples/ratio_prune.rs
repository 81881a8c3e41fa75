//! The pruner at ratio 0.5: every group loses half its channels, chosen by L2 magnitude
//! (Torch-Pruning's `MagnitudePruner` with `pruning_ratio=0.5`), then the result is saved.
//!
//! `cargo run --release --example ratio_prune [MODEL.onnx]`

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
    let cfg = PruneConfig {
        goal: Goal::Ratio(0.5),
        ..Default::default()
    };
    let outcome = prune(&model, &cfg, &NoProgress)?;
    for stage in &outcome.stages {
        for g in &stage.groups {
            println!("{}: {} -> {} channels", g.layer, g.before, g.after);
        }
        for s in &stage.skipped {
            println!("{}: left whole ({})", s.layer, s.reason);
        }
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("pruned.onnx");
    shears::save(&model, &outcome.model, &out)?;
    let saved = shears::pruner::estimate::cost(&shears::load(&out)?)?;
    println!(
        "parameters: {} -> {} (saved file: {})",
        outcome.original.parameters, outcome.pruned.parameters, saved.parameters
    );
    println!("macs: {} -> {}", outcome.original.macs, outcome.pruned.macs);
    Ok(())
}
