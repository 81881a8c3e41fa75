//! `shears eval MODEL --data DIR [--labels FILE] [--reference ORIGINAL] [--json]`: runs the
//! model over a folder of `.npy` inputs in Shears' evaluator and reports top-1/top-5 accuracy
//! (with labels) and fidelity to a reference model (with `--reference`). The dataset layouts,
//! batching and metric definitions are in `docs/eval.md`; the work is
//! [`shears_verify::evaluate`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use shears_onnx::Model;
use shears_verify::{Dataset, DatasetOptions, EvalReport, LabelSource};

use super::progress::CliProgress;

#[derive(clap::Args)]
pub struct Args {
    /// The model to evaluate.
    pub model: PathBuf,
    /// Folder of `.npy` inputs (stacked `x_*.npy`, or one sample per file or subfolder), or
    /// one stacked `.npy` file.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Labels file (integers, one per sample); by default `y_*.npy` or `labels.npy` in DIR.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Also compare the outputs with this model's (usually the original of a pruned model).
    #[arg(long, value_name = "ORIGINAL")]
    pub reference: Option<PathBuf>,
    /// Samples per batch when the model's batch dimension is symbolic (default 32).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = Model::load(&args.model)?;
    let reference = args.reference.as_ref().map(Model::load).transpose()?;
    let opts = DatasetOptions {
        labels: args
            .labels
            .clone()
            .map_or(LabelSource::Auto, LabelSource::File),
        batch_size: args.batch.map(|b| b as usize),
    };
    let data = Dataset::open(&model, &args.data, &opts)?;
    let report = shears_verify::evaluate(&model, &data, reference.as_ref(), &CliProgress::new())?;
    if args.json {
        super::common::out(serde_json::to_string_pretty(&report)? + "\n")?;
    } else {
        super::common::print_text(&render(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(n: usize, of: usize) -> String {
    format!("{:6.2}%  ({n}/{of})", 100.0 * n as f64 / of.max(1) as f64)
}

/// The report for people: `key: value` lines, keys padded to one width, in sections.
pub fn render(r: &EvalReport) -> String {
    let mut sections: Vec<Vec<(&str, String)>> = Vec::new();
    let padding = if r.padding > 0 {
        format!(", the last padded with {}", r.padding)
    } else {
        String::new()
    };
    sections.push(vec![
        ("model", r.model.clone()),
        (
            "data",
            format!("{} ({}, {} samples)", r.data, r.layout.name(), r.samples),
        ),
        ("labels", r.labels.clone().unwrap_or_else(|| "none".into())),
        (
            "batches",
            format!("{} of {}{padding}", r.batches, r.batch_size),
        ),
        (
            "output",
            format!("{} ({} scores per sample)", r.output, r.classes),
        ),
    ]);
    if let Some(a) = &r.accuracy {
        sections.push(vec![
            ("top-1 accuracy", percent(a.top1_correct, a.samples)),
            ("top-5 accuracy", percent(a.top5_correct, a.samples)),
        ]);
    }
    if let Some(f) = &r.fidelity {
        sections.push(vec![
            ("reference", f.reference.clone()),
            ("top-1 agreement", percent(f.top1_agreeing, f.samples)),
            (
                "mean relative error",
                format!("{:.4e}", f.mean_relative_error),
            ),
            (
                "mean cosine similarity",
                format!("{:.6}", f.mean_cosine_similarity),
            ),
            (
                "mean KL divergence",
                format!("{:.4e}", f.mean_kl_divergence),
            ),
        ]);
    }
    let width = sections
        .iter()
        .flatten()
        .map(|(k, _)| k.len() + 1)
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        for (k, v) in section {
            let key = format!("{k}:");
            let _ = writeln!(s, "{key:<width$}  {v}");
        }
    }
    if r.accuracy.is_none() && r.fidelity.is_none() {
        let _ = writeln!(
            s,
            "\nno labels and no --reference: nothing to score (see docs/eval.md)"
        );
    }
    s
}
