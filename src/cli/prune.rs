//! `shears prune MODEL -o OUT (--layer NAME --idxs 2,6,9 | --plan PLAN.json)`: applies plans and
//! writes a physically smaller model, with a before/after summary.
//!
//! The output is written through a temporary file and renamed; the input (and its external
//! data) is never overwritten. The pruned model is re-analysed (IR and shape inference) before
//! anything is written, so an inconsistent result is an error, not a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use shears_onnx::external::ExternalStore;
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::Model;
use shears_plan::{PruningPlan, TensorKind};

use super::common::{load_graph, parse_indices, ShapeArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to prune.
    pub model: PathBuf,
    /// Where to write the pruned model (external data, if any, goes to OUT.data).
    #[arg(short, long)]
    pub output: PathBuf,
    /// A layer (node name or weight name) whose output channels to remove, with --idxs.
    #[arg(long, requires = "idxs", conflicts_with = "plan")]
    pub layer: Option<String>,
    /// Output-channel indices of --layer to remove: `2,6,9` or ranges `0..4`.
    #[arg(long, requires = "layer")]
    pub idxs: Option<String>,
    /// Saved plans to apply together: a plan JSON (`shears plan --json`) or an array of them.
    #[arg(long)]
    pub plan: Vec<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

/// Reads a plan file holding one plan or an array of plans.
fn read_plans(path: &PathBuf) -> anyhow::Result<Vec<PruningPlan>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))?;
    let plans = if value.is_array() {
        serde_json::from_value(value)
    } else {
        serde_json::from_value(value).map(|p| vec![p])
    };
    plans.with_context(|| format!("{}: not a Shears plan", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (model, graph) = load_graph(&args.model, &args.shapes)?;
    let plans: Vec<PruningPlan> = match (&args.layer, &args.idxs, args.plan.is_empty()) {
        (Some(layer), Some(idxs), true) => {
            vec![shears_plan::plan(
                &model,
                &graph,
                layer,
                &parse_indices(idxs)?,
            )?]
        }
        (None, None, false) => {
            let mut all = Vec::new();
            for p in &args.plan {
                all.extend(read_plans(p)?);
            }
            all
        }
        _ => bail!("give either --layer with --idxs, or --plan"),
    };
    let summary = prune_and_write(&model, &plans, &args.output, &args.shapes)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render_summary(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// Before/after figures of a prune.
#[derive(serde::Serialize)]
pub struct Summary {
    pub input: String,
    pub output: String,
    pub parameters: (u64, u64),
    pub macs: (u64, u64),
    pub file_bytes: (u64, u64),
    /// Per layer whose output channels shrink: (node, before, after).
    pub layers: Vec<(String, usize, usize)>,
    pub rewrites: usize,
}

/// Applies `plans` to `model`, checks the result, writes it to `out`, and summarizes.
pub fn prune_and_write(
    model: &Model,
    plans: &[PruningPlan],
    out: &std::path::Path,
    shapes: &ShapeArgs,
) -> anyhow::Result<Summary> {
    let applied = shears_exec::apply(model, plans)?;
    let was_external = applied.was_external;
    let store = match model.external.model_file() {
        Some(f) => ExternalStore::for_model_file(f),
        None => ExternalStore::none(),
    };
    let mut pruned = Model::from_proto(applied.proto, out.display().to_string(), store)
        .context("the pruned model is not a valid graph")?;
    shears_onnx::shape::infer_shapes(&mut pruned, &shapes.parse()?)
        .context("the pruned model fails shape inference")?;
    let before = shears_onnx::cost::analyze(model)?;
    let after = shears_onnx::cost::analyze(&pruned)?;
    // Tensors that were external in the source stay external, edited or not.
    let opts = SaveOptions {
        externalize: was_external.into_iter().collect(),
        ..SaveOptions::default()
    };
    let report = save_proto(&pruned.proto, &pruned.external, out, &opts)?;

    let mut layers: BTreeMap<(usize, String), (usize, usize)> = BTreeMap::new();
    for plan in plans {
        for e in &plan.entries {
            if e.kind == TensorKind::Parameter && e.role == "out" {
                let order = model
                    .graph
                    .node_id(&e.node)
                    .map_or(usize::MAX, |n| n.index());
                // A node has several output-channel tensors (weight, bias): count channels once.
                let slot = layers
                    .entry((order, e.node.clone()))
                    .or_insert((e.size, e.size));
                slot.1 = slot.1.min(e.size - e.indices.len());
            }
        }
    }
    Ok(Summary {
        input: model.source.clone(),
        output: out.display().to_string(),
        parameters: (before.parameters, after.parameters),
        macs: (before.macs, after.macs),
        file_bytes: (
            model.file_size.unwrap_or(0) + external_bytes(model),
            report.model_bytes + report.data_bytes,
        ),
        layers: layers
            .into_iter()
            .map(|((_, n), (b, a))| (n, b, a))
            .collect(),
        rewrites: applied.rewrites.len(),
    })
}

/// Bytes of the side files a model reads, for a fair file-size comparison.
fn external_bytes(model: &Model) -> u64 {
    let Some(dir) = model.external.base_dir() else {
        return 0;
    };
    let mut files = std::collections::BTreeSet::new();
    let inits = model
        .proto
        .graph
        .as_ref()
        .map_or(&[][..], |g| &g.initializer[..]);
    for t in inits {
        if let Ok(r) = shears_onnx::external::ExternalRef::of(t) {
            files.insert(r.location);
        }
    }
    files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// `12,345,678`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn change(before: u64, after: u64) -> String {
    let d = after as i128 - before as i128;
    let pct = if before == 0 {
        0.0
    } else {
        100.0 * d as f64 / before as f64
    };
    format!(
        "{}{} ({pct:+.2}%)",
        if d < 0 { "-" } else { "+" },
        thousands(d.unsigned_abs() as u64)
    )
}

pub fn render_summary(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} -> {}", s.input, s.output);
    let _ = writeln!(o, "{:<12} {:>16} {:>16}  change", "", "before", "after");
    for (label, (b, a)) in [
        ("parameters", s.parameters),
        ("MACs", s.macs),
        ("file bytes", s.file_bytes),
    ] {
        let _ = writeln!(
            o,
            "{label:<12} {:>16} {:>16}  {}",
            thousands(b),
            thousands(a),
            change(b, a)
        );
    }
    let w = s.layers.iter().map(|l| l.0.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(o, "{:<w$}  channels", "layer");
    for (n, b, a) in &s.layers {
        let _ = writeln!(o, "{n:<w$}  {b} -> {a}");
    }
    let _ = writeln!(o, "{} attribute/shape rewrites", s.rewrites);
    o
}
