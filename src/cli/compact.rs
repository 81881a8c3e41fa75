//! `shears compact MODEL -o OUT [--tolerance T] [--json]`: physically remove the channels a
//! mask-based pruner left dead (see `docs/compact.md`). The summary is `prune`'s, followed by
//! each group's removed channels and the constant channels kept, with the reason. Nothing dead:
//! exit 2, nothing written.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use shears_sparsity::{CompactOptions, GroupFindings};

use super::common::{load_with_shapes, ShapeArgs};
use super::prune::{render_summary, write_pruned, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to compact.
    pub model: PathBuf,
    /// Where to write the compacted model (external data, if any, goes to OUT.data).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Treat weights with |w| below this as zero (channels found so are marked approximate).
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f32,
    /// Print the summary and findings as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    summary: Option<&'a Summary>,
    groups: &'a [GroupFindings],
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.tolerance >= 0.0 && args.tolerance.is_finite()) {
        bail!(
            "--tolerance must be a finite number >= 0, got {}",
            args.tolerance
        );
    }
    let model = load_with_shapes(&args.model, &args.shapes)?;
    let opts = CompactOptions {
        tolerance: args.tolerance,
    };
    let out = shears_sparsity::compact(&model, &opts)
        .with_context(|| format!("{}: compact", args.model.display()))?;
    let Some(mut compacted) = out.model else {
        if args.json {
            let report = Report {
                summary: None,
                groups: &out.findings,
            };
            super::common::out(serde_json::to_string_pretty(&report)? + "\n")?;
        } else {
            super::common::print_text(&render_findings(&out.findings))?;
        }
        eprintln!(
            "error: {}: no dead channel to remove; nothing written",
            args.model.display()
        );
        return Ok(ExitCode::from(2));
    };
    compacted.source = args.output.display().to_string();
    shears_onnx::shape::infer_shapes(&mut compacted, &args.shapes.parse()?)
        .context("the compacted model fails shape inference")?;
    let summary = write_pruned(&model, &compacted, &args.output, out.rewrites)?;
    if args.json {
        let report = Report {
            summary: Some(&summary),
            groups: &out.findings,
        };
        super::common::out(serde_json::to_string_pretty(&report)? + "\n")?;
    } else {
        super::common::print_text(&(render_summary(&summary) + &render_findings(&out.findings)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One block per group: removed channels (with the folded constant and where it went), then
/// the constant channels kept and why.
fn render_findings(groups: &[GroupFindings]) -> String {
    let mut o = String::new();
    for g in groups {
        let _ = writeln!(
            o,
            "group {} ({} channels): {} removed, {} kept",
            g.layer,
            g.channels,
            g.removed.len(),
            g.kept.len()
        );
        for r in &g.removed {
            let approx = if r.approximate { " (approximate)" } else { "" };
            if r.constant == 0.0 {
                let _ = writeln!(o, "  removed {}: zero{approx}", r.channel);
            } else {
                let _ = writeln!(
                    o,
                    "  removed {}: constant {} folded into {}{approx}",
                    r.channel,
                    // Shown at the model's float32 precision; JSON keeps the f64.
                    r.constant as f32,
                    r.folded_into.join(", ")
                );
            }
        }
        for k in &g.kept {
            let _ = writeln!(o, "  kept {}: {}", k.channel, k.reason);
        }
    }
    o
}
