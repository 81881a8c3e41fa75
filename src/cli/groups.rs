//! `shears groups MODEL [--json]`: every group of coupled channels, whether it is prunable, and
//! for blocked ones which node blocks it and why. The text ends with the head groups (units =
//! whole attention heads) when the model has attention; `--heads` prints only those.

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
    /// Only the head groups: units are whole attention heads (`plan --heads`,
    /// `prune --head-ratio`).
    #[arg(long)]
    pub heads: bool,
    /// With grouped-query attention, what a head unit is: a key/value head with its query
    /// heads (kv), or query head `r` of every group (query).
    #[arg(long, value_enum, default_value_t, requires = "heads")]
    pub gqa: super::common::GqaUnit,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (model, graph) = load_graph(&args.model, &args.shapes)?;
    let heads_graph = shears_graph::DependencyGraph::build_with(&model, args.gqa.granularity());
    let head_reports = shears_plan::head_group_reports(&model, &heads_graph);
    let reports = if args.heads {
        Vec::new()
    } else {
        shears_plan::group_reports(&model, &graph)
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if args.json {
        let shown = if args.heads { &head_reports } else { &reports };
        writeln!(out, "{}", serde_json::to_string_pretty(shown)?)?;
    } else if !super::common::quiet() {
        if !args.heads {
            write!(
                out,
                "{}",
                shears_plan::render_groups_text(&model.source, &reports)
            )?;
        }
        if args.heads || !head_reports.is_empty() {
            let title = format!("{}: head groups (units = heads)", model.source);
            write!(
                out,
                "{}",
                shears_plan::render_groups_text(&title, &head_reports)
            )?;
        }
    }
    out.flush()?;
    // The process ends here: freeing the model and graph piece by piece would only add time.
    std::mem::forget((model, graph, heads_graph, reports, head_reports));
    Ok(ExitCode::SUCCESS)
}
