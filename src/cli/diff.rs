//! `shears diff A B`: compares two plans line by line. A and B are plan files (read by
//! [`shears_plan::PlanFile`], as `prune --plan` reads them), or two
//! versions of a model with `--layer` and `--idxs` to plan on both. Exit status 1 when they
//! differ, like diff(1). Plans are compared in their unaligned one-entry-per-line form
//! ([`shears_plan::render_lines`]), so one tensor more or less is one changed line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::common::{load_graph, parse_indices, ShapeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The first plan file (.json: a plan, an array of plans or a `prune --report`) or model.
    pub a: PathBuf,
    /// The second plan file (.json) or model (.onnx).
    pub b: PathBuf,
    /// With models: the layer to plan on both.
    #[arg(long)]
    pub layer: Option<String>,
    /// With models: the indices to plan on both.
    #[arg(long)]
    pub idxs: Option<String>,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

fn plan_text(path: &Path, args: &Args) -> anyhow::Result<String> {
    if path.extension().is_some_and(|e| e == "json") {
        return Ok(shears_plan::PlanFile::read(path)?.render_lines());
    }
    let (layer, idxs) = match (&args.layer, &args.idxs) {
        (Some(l), Some(i)) => (l, parse_indices(i)?),
        _ => anyhow::bail!(
            "{}: comparing models needs --layer and --idxs",
            path.display()
        ),
    };
    let (model, graph) = load_graph(path, &args.shapes)?;
    let plan = shears_plan::plan(&model, &graph, layer, &idxs)
        .with_context(|| format!("{}", path.display()))?;
    Ok(shears_plan::render_lines(&plan))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let a = plan_text(&args.a, &args)?;
    let b = plan_text(&args.b, &args)?;
    match shears_plan::diff_lines(&a, &b) {
        None => Ok(ExitCode::SUCCESS),
        Some(d) => {
            let printed = super::common::print_text(&format!(
                "--- {}\n+++ {}\n{d}",
                args.a.display(),
                args.b.display()
            ));
            // The verdict is known before printing: a reader that went away early must not
            // turn "the plans differ" into success, whenever the pipe happened to close.
            match printed {
                Err(e) if !super::common::is_closed_pipe(&e) => Err(e),
                _ => Ok(ExitCode::from(1)),
            }
        }
    }
}
