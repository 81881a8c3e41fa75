//! A user-defined importance criterion: a channel is as important as the largest magnitude
//! (L-infinity norm) of any weight in its slices of the group's kernels. The pruner calls it
//! for every group instead of a built-in criterion; allocation, schedule and reports are the
//! usual ones.
//!
//! `cargo run --release --example custom_importance [MODEL.onnx]`

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shears::prelude::*;
use shears::pruner::members::members;
use shears::pruner::roles::ParamRole;
use shears::pruner::tensors::dense;
use shears::pruner::GroupImportance;

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

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let linf = CustomImportance::new("l-inf", move |model, graph, gid| {
        counter.fetch_add(1, Ordering::Relaxed);
        let group = graph.group(gid);
        let mut scores = vec![0.0f64; group.units.len()];
        let mut measured = false;
        for m in members(model, graph, group) {
            if m.role != Some(ParamRole::Weight) {
                continue;
            }
            measured = true;
            let t = dense(model, m.value)?;
            for (unit, idxs) in m.unit_indices.iter().enumerate() {
                let peak = t
                    .slice(m.axis, idxs)
                    .iter()
                    .fold(0.0f64, |a, &x| a.max(f64::from(x.abs())));
                scores[unit] = scores[unit].max(peak);
            }
        }
        Ok(if measured {
            GroupImportance::Scores(scores)
        } else {
            GroupImportance::Missing("no kernel to measure".into())
        })
    });

    let cfg = PruneConfig {
        goal: Goal::Ratio(0.25),
        custom_importance: Some(linf),
        ..Default::default()
    };
    let outcome = prune(&model, &cfg, &NoProgress)?;
    for g in outcome.stages.iter().flat_map(|s| &s.groups) {
        writeln!(out, "{}: {} -> {} channels", g.layer, g.before, g.after)?;
    }
    writeln!(
        out,
        "l-inf scored {} groups; parameters: {} -> {}",
        calls.load(Ordering::Relaxed),
        outcome.original.parameters,
        outcome.pruned.parameters
    )?;
    Ok(())
}
