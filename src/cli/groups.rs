//! `shears groups MODEL [--json]`: every group of coupled channels, whether it is prunable, and
//! for blocked ones which node blocks it and why.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{load_graph, ShapeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (model, graph) = load_graph(&args.model, &args.shapes)?;
    let reports = shears_plan::group_reports(&model, &graph);
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
    } else if !super::common::quiet() {
        write!(
            out,
            "{}",
            shears_plan::render_groups_text(&model.source, &reports)
        )?;
    }
    out.flush()?;
    // The process ends here: freeing the model and graph piece by piece would only add time.
    std::mem::forget((model, graph, reports));
    Ok(ExitCode::SUCCESS)
}
