//! Iterative pruning: three stages to ratio 0.5 (linear schedule), with a callback that
//! evaluates each stage's model against the original on seeded random inputs before the next
//! stage re-scores channels. A real program would fine-tune in the callback (replacing
//! `stage.model`) and stop when accuracy drops too far.
//!
//! `cargo run --release --example iterative [MODEL.onnx]`

use shears::prelude::*;
use shears::pruner::{Schedule, ScheduleKind};

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
        schedule: Schedule {
            steps: 3,
            kind: ScheduleKind::Linear,
        },
        ..Default::default()
    };
    let mut evaluated = 0;
    let outcome = prune_iterative(&model, &cfg, &NoProgress, |stage| {
        evaluated += 1;
        match shears::verify::verify(&model, &stage.model, &InputShapes::default(), 2, 0) {
            Ok(r) => {
                let drift = r
                    .outputs
                    .iter()
                    .filter_map(|o| o.max_rel)
                    .fold(0.0f64, f64::max);
                println!(
                    "stage {}/{}: {} parameters, output shapes equal: {}, max relative change {drift:.3}",
                    stage.index, stage.steps, stage.report.after.parameters, r.shapes_equal
                );
                Control::Continue
            }
            Err(e) => {
                println!("stage {}: cannot evaluate ({e}); stopping", stage.index);
                Control::Stop
            }
        }
    })?;
    println!(
        "evaluated {evaluated} stages; parameters: {} -> {}",
        outcome.original.parameters, outcome.pruned.parameters
    );
    Ok(())
}
