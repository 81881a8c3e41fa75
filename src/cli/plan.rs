//! `shears plan MODEL --layer NAME --idxs 2,6,9 [--json]`: the pruning plan for removing those
//! output channels of a layer, expanded through every coupling; `--heads 1,3` instead removes
//! whole attention heads of a q, k, v (or fused qkv) projection.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::common::{load_graph, parse_indices, ShapeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// A node name, or the name of its weight initializer (e.g. `layer1.0.conv1.weight`).
    #[arg(long)]
    pub layer: String,
    /// Output-channel indices to remove: `2,6,9` or ranges `0..4`.
    #[arg(long, required_unless_present = "heads", conflicts_with = "heads")]
    pub idxs: Option<String>,
    /// Whole attention heads to remove, numbered from 0 as the projection lays them out (with
    /// grouped-query attention a unit is a key/value head with its query heads): `1,3`.
    #[arg(long)]
    pub heads: Option<String>,
    /// With grouped-query attention, what a head of --heads is: a key/value head with its
    /// query heads (kv), or query head `r` of every group, every key/value head kept (query).
    #[arg(long, value_enum, default_value_t, requires = "heads")]
    pub gqa: super::common::GqaUnit,
    /// Print JSON (schema in docs/plan.md) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = if let Some(heads) = &args.heads {
        let model = super::common::load_with_shapes(&args.model, &args.shapes)?;
        let graph = shears_graph::DependencyGraph::build_with(&model, args.gqa.granularity());
        let heads = parse_indices(heads)?;
        shears_plan::plan_heads(&model, &graph, &args.layer, &heads)
    } else {
        let (model, graph) = load_graph(&args.model, &args.shapes)?;
        let idxs = parse_indices(args.idxs.as_deref().unwrap_or_default())?;
        shears_plan::plan(&model, &graph, &args.layer, &idxs)
    }
    .with_context(|| args.model.display().to_string())?;
    if args.json {
        super::common::out(serde_json::to_string_pretty(&plan)? + "\n")?;
    } else {
        super::common::print_text(&shears_plan::render_text(&plan))?;
    }
    Ok(ExitCode::SUCCESS)
}
