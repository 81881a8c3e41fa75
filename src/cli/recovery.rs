//! `shears prune --recover ... --ridge F`: which recovery to run (from the flags and whether
//! calibration data is given), and its summary. The algorithm is `shears_recover`'s.

use std::fmt::Write as _;

use anyhow::bail;
use shears_onnx::{InputShapes, Model};
use shears_pruner::{calib, Calibration};
use shears_recover::{RecoverConfig, RecoveryReport, Sample};

/// What recovery did (or why it did not run), for the summary and `--report`.
///
/// Invariant: `stages` is empty exactly when `note` says why nothing was recovered.
#[derive(Debug, Default, serde::Serialize)]
pub struct RecoverySummary {
    /// The methods in order (`none` when recovery did not run).
    pub methods: String,
    /// Why nothing was recovered, or a caveat (random calibration data).
    pub notes: Vec<String>,
    /// One report per pruning stage.
    pub stages: Vec<RecoveryReport>,
}

/// Recovery settings and the calibration samples to run them on.
pub type Planned = (RecoverConfig, Vec<Sample>);

/// The recovery to run: settings and samples, or `None` with the summary saying why not.
pub fn plan(
    recover: Option<&str>,
    ridge: f64,
    calibration: Option<&Calibration>,
    model: &Model,
    shapes: &InputShapes,
) -> anyhow::Result<(Option<Planned>, RecoverySummary)> {
    let methods = match recover {
        Some(text) => RecoverConfig::parse_methods(text)?,
        None if calibration.is_some() => RecoverConfig::default().methods,
        None => Vec::new(),
    };
    let cfg = RecoverConfig { methods, ridge };
    cfg.validate()?;
    let mut summary = RecoverySummary {
        methods: names(&cfg),
        ..Default::default()
    };
    if cfg.methods.is_empty() {
        summary.notes.push(if recover.is_some() {
            "recovery: none (--recover none)".into()
        } else {
            "recovery: none; recovery needs calibration inputs: give --calib-dir DIR".into()
        });
        return Ok((None, summary));
    }
    let Some(calibration) = calibration else {
        bail!(
            "--recover {}: recovery needs calibration inputs: give --calib-dir DIR (or --calib-random N)",
            summary.methods
        );
    };
    if let Calibration::Random { .. } = calibration {
        summary.notes.push(
            "recovery on random calibration inputs is a weak fallback: give --calib-dir with real inputs"
                .into(),
        );
    }
    let samples = calib::inputs(model, shapes, calibration)?;
    Ok((Some((cfg, samples)), summary))
}

fn names(cfg: &RecoverConfig) -> String {
    if cfg.methods.is_empty() {
        return "none".into();
    }
    let v: Vec<&str> = cfg.methods.iter().map(|m| m.name()).collect();
    v.join(",")
}

/// The recovery section of the text summary: per stage, the output error and per layer the
/// error before and after, in pass order.
pub fn render(s: &RecoverySummary) -> String {
    let mut o = String::new();
    for n in &s.notes {
        let _ = writeln!(o, "{n}");
    }
    let many = s.stages.len() > 1;
    for (k, r) in s.stages.iter().enumerate() {
        let stage = if many {
            format!(" after stage {}", k + 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "recovery{stage} ({}, {} calibration samples, ridge {}): output error {:.4} -> {:.4}{}",
            s.methods,
            r.samples,
            r.ridge,
            r.output_error.0,
            r.output_error.1,
            if r.reverted {
                " (larger: recovery reverted)"
            } else {
                ""
            }
        );
        let rows: Vec<[String; 6]> = r
            .layers
            .iter()
            .map(|l| {
                let mut note = String::new();
                if l.stronger_ridge {
                    note += "stronger ridge";
                }
                if l.kept_old {
                    note += if note.is_empty() { "" } else { ", " };
                    note += "kept old (refit not better)";
                }
                [
                    l.node.clone(),
                    l.changed.clone(),
                    format!("{:.4}", l.error_before),
                    format!("{:.4}", l.error_after),
                    format!("{:.3}", l.seconds),
                    note,
                ]
            })
            .collect();
        use super::common::{table, Align};
        for line in table(
            ["layer", "refitted", "error before", "after", "seconds", ""],
            &rows,
            [
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Right,
                Align::Right,
                Align::Raw,
            ],
        ) {
            let _ = writeln!(o, "{}", format!("  {line}").trim_end());
        }
        for n in &r.not_recovered {
            let _ = writeln!(
                o,
                "  not recovered: {} ({}): {}",
                n.node,
                n.method.name(),
                n.reason
            );
        }
    }
    o
}
