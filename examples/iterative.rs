//! Iterative pruning: three stages to ratio 0.5 (linear schedule), with a callback that
//! evaluates each stage's model against the original on seeded random inputs before the next
//! stage re-scores channels. A real program would fine-tune in the callback (replacing
//! `stage.model`) and stop when accuracy drops too far.
//!
//! `cargo run --release --example iterative [MODEL.onnx]`

use std::io::Write;

use shears::prelude::*;
use shears::pruner::{Schedule, ScheduleKind};

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
        schedule: Schedule {
            steps: 3,
            kind: ScheduleKind::Linear,
        },
        ..Default::default()
    };
    let mut evaluated = 0;
    let outcome = prune_iterative(&model, &cfg, &NoProgress, |stage| {
        evaluated += 1;
        // The callback cannot return an error: a failed evaluation or write stops the run.
        let line = match shears::verify::verify(&model, &stage.model, &InputShapes::default(), 2, 0)
        {
            Ok(r) => {
                let drift = r
                    .outputs
                    .iter()
                    .filter_map(|o| o.max_rel)
                    .fold(0.0f64, f64::max);
                writeln!(
                    out,
                    "stage {}/{}: {} parameters, output shapes equal: {}, max relative change {drift:.3}",
                    stage.index, stage.steps, stage.report.after.parameters, r.shapes_equal
                )
            }
            Err(e) => {
                let _ = writeln!(out, "stage {}: cannot evaluate ({e})", stage.index);
                return Control::Stop;
            }
        };
        match line {
            Ok(()) => Control::Continue,
            Err(_) => Control::Stop,
        }
    })?;
    writeln!(
        out,
        "evaluated {evaluated} stages; parameters: {} -> {}",
        outcome.original.parameters, outcome.pruned.parameters
    )?;
    Ok(())
}
