//! `shears verify ORIGINAL PRUNED`: evaluates both models on the same seeded random inputs and
//! compares their outputs position by position.
//!
//! Exit status 1 when an output's shape differs (or the models have different numbers of
//! outputs or inputs), 0 otherwise; numeric differences are reported, not judged.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use shears_onnx::Model;

use super::common::ShapeArgs;
use shears_verify::{Report, VerifyError};

#[derive(clap::Args)]
pub struct Args {
    /// The reference model.
    pub original: PathBuf,
    /// The model compared with it (usually the pruned one).
    pub pruned: PathBuf,
    #[command(flatten)]
    pub shapes: ShapeArgs,
    /// Number of random input samples.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: u64,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shapes = args.shapes.parse()?;
    let original = Model::load(&args.original)?;
    let pruned = Model::load(&args.pruned)?;
    let report = match shears_verify::verify(
        &original,
        &pruned,
        &shapes,
        args.samples as usize,
        args.seed,
    ) {
        Ok(r) => r,
        // Different numbers of inputs or outputs are a failed check, not bad input.
        Err(VerifyError::Mismatch(reason)) => {
            if args.json {
                let v = serde_json::json!({ "shapes_equal": false, "error": reason });
                super::common::out(serde_json::to_string_pretty(&v)? + "\n")?;
            } else {
                super::common::print_text(&format!("models differ: {reason}\n"))?;
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        super::common::out(serde_json::to_string_pretty(&report)? + "\n")?;
    } else {
        super::common::print_text(&render(&report))?;
    }
    Ok(if report.shapes_equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn dims(d: &[usize]) -> String {
    if d.is_empty() {
        return "scalar".into();
    }
    d.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

fn number(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.is_nan() => "NaN".into(),
        Some(x) => format!("{x:.3e}"),
    }
}

/// The report as a table for people.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "original: {}", r.original);
    let _ = writeln!(s, "pruned:   {}", r.pruned);
    let inputs: Vec<String> = r
        .inputs
        .iter()
        .map(|(n, d)| format!("{n} {}", dims(d)))
        .collect();
    let _ = writeln!(
        s,
        "inputs:   {} ({} random samples, seed {})",
        inputs.join(", "),
        r.samples,
        r.seed
    );
    let _ = writeln!(s);
    let header = [
        "output",
        "original shape",
        "pruned shape",
        "max abs diff",
        "max rel diff",
    ];
    let rows: Vec<[String; 5]> = r
        .outputs
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                dims(&o.original_shape),
                dims(&o.pruned_shape),
                number(o.max_abs),
                number(o.max_rel),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let _ = writeln!(s, "{}", line(&header));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        let _ = writeln!(s, "{}", line(&cells));
    }
    let _ = writeln!(s);
    if r.shapes_equal {
        let _ = writeln!(s, "output shapes: equal");
    } else {
        let differing: Vec<&str> = r
            .outputs
            .iter()
            .filter(|o| !o.shapes_equal)
            .map(|o| o.name.as_str())
            .collect();
        let _ = writeln!(s, "output shapes: DIFFER ({})", differing.join(", "));
    }
    s
}
