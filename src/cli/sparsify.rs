//! `shears sparsify MODEL -o OUT`: zero individual weights of Conv, ConvTranspose, Gemm and
//! MatMul layers (see `docs/sparsify.md`). The flags become a
//! `shears_sparsity::SparsifyConfig`; the library does the work; this renders the summary
//! (per weight: zeros before and after, the request, N:M compliance; the layers left dense and
//! why; file bytes), optionally as JSON (`--json`) or into a report file (`--report`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use shears_onnx::save::{save_proto, SaveOptions, SaveReport};
use shears_onnx::Model;
use shears_pruner::{Calibration, Pattern, Schedule, ScheduleKind};
use shears_recover::RecoverConfig;
use shears_sparsity::{
    Criterion, LayerSparsity, NmPattern, Sparsified, SparsifyConfig, Storage, Untouched,
};

use super::common::{load_with_shapes, named, thousands, ShapeArgs};
use super::progress::CliProgress;
use super::recovery::{self, RecoverySummary};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CriterionArg {
    L1,
    Random,
    Wanda,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreArg {
    Dense,
    Sparse,
}

/// `shears sparsify`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to sparsify.
    pub model: PathBuf,
    /// Where to write the sparsified model (external data, if any, goes to OUT.data).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub sparse: Box<SparseArgs>,
    /// How to store the weights: dense zeros, or sparse initializers where that is smaller.
    #[arg(long, value_enum, default_value = "dense")]
    pub store: StoreArg,
    /// Write the summary and the settings as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

/// The sparsity settings (shared with `prune --then-sparsify`, which names the fraction
/// differently).
#[derive(clap::Args)]
pub struct SparseArgs {
    /// The fraction of zeros each weight ends with (of all weights with --global), in [0, 1).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub sparsity: Option<f64>,
    /// Rank all weights together instead of each weight on its own.
    #[arg(long)]
    pub global: bool,
    /// A fraction for the layers matching PATTERN (glob or module prefix; repeatable, first
    /// wins).
    #[arg(long = "layer-sparsity", value_name = "PATTERN=S")]
    pub layer_sparsity: Vec<String>,
    /// Zero every weight with |w| below T instead.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub threshold: Option<f32>,
    /// Keep the N largest of every M consecutive weights along the reduction axis (2:4).
    #[arg(long, value_name = "N:M")]
    pub pattern: Option<String>,
    /// Leave the layers matching NAME dense (repeatable).
    #[arg(long, value_name = "NAME")]
    pub ignore: Vec<String>,
    /// How weights are ranked.
    #[arg(long, value_enum, default_value = "l1")]
    pub criterion: CriterionArg,
    /// Sparsify in K stages, re-ranking between them.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub steps: usize,
    /// The sparsity curve over the stages.
    #[arg(long, default_value = "linear", value_parser = named::<ScheduleKind>(&[]))]
    pub schedule: ScheduleKind,
    #[command(flatten)]
    pub calib: super::common::CalibArgs,
    /// Refit the kept weights on the calibration inputs with the mask fixed: none or
    /// reconstruct (default with calibration inputs: reconstruct). See docs/sparsify.md.
    #[arg(long, value_name = "METHODS")]
    pub recover: Option<String>,
    /// Ridge factor of the refit: lambda = F * trace(X'X) / d.
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    pub ridge: f64,
}

impl SparseArgs {
    /// The library configuration, with `sparsity` as the overall fraction.
    pub fn config(
        &self,
        sparsity: Option<f64>,
        shapes: &ShapeArgs,
    ) -> anyhow::Result<(SparsifyConfig, RecoverySummary)> {
        let pattern = self
            .pattern
            .as_deref()
            .map(|p| p.parse::<NmPattern>())
            .transpose()
            .map_err(|e| anyhow::anyhow!("--pattern: {e}"))?;
        let mut layer_sparsity = Vec::new();
        for spec in &self.layer_sparsity {
            let parsed = spec
                .rsplit_once('=')
                .and_then(|(p, s)| Some((Pattern::new(p.trim())?, s.trim().parse::<f64>().ok()?)));
            match parsed {
                Some(x) => layer_sparsity.push(x),
                None => bail!("--layer-sparsity: expected PATTERN=S, got `{spec}`"),
            }
        }
        let ignore = self
            .ignore
            .iter()
            .map(|n| Pattern::new(n).context("--ignore: empty name"))
            .collect::<anyhow::Result<_>>()?;
        let calibration = self.calib.calibration();
        let methods = match self.recover.as_deref() {
            Some(text) => RecoverConfig::parse_methods(text)?,
            None if calibration.is_some() => RecoverConfig::default().methods,
            None => Vec::new(),
        };
        if methods
            .iter()
            .any(|m| *m != shears_recover::Method::Reconstruct)
        {
            bail!("--recover: sparsify refits weights with the mask fixed: none or reconstruct");
        }
        let rcfg = RecoverConfig {
            methods,
            ridge: self.ridge,
        };
        rcfg.validate()?;
        let mut summary = RecoverySummary {
            methods: if rcfg.methods.is_empty() {
                "none".into()
            } else {
                "reconstruct".into()
            },
            ..Default::default()
        };
        if rcfg.methods.is_empty() {
            summary.notes.push("recovery: none".into());
        } else if let Some(Calibration::Random { .. }) = calibration {
            summary.notes.push(
                "recovery on random calibration inputs is a weak fallback: give --calib-dir with real inputs"
                    .into(),
            );
        }
        let cfg = SparsifyConfig {
            sparsity,
            layer_sparsity,
            threshold: self.threshold,
            pattern,
            global: self.global,
            ignore,
            criterion: match self.criterion {
                CriterionArg::L1 => Criterion::L1,
                CriterionArg::Random => Criterion::Random,
                CriterionArg::Wanda => Criterion::Wanda,
            },
            seed: self.calib.seed,
            schedule: Schedule {
                steps: self.steps,
                kind: self.schedule,
            },
            recover: (!rcfg.methods.is_empty()).then_some(rcfg),
            calibration,
            input_shapes: shapes.parse()?,
        };
        cfg.validate()?;
        Ok((cfg, summary))
    }
}

/// Before/after figures of a sparsify run.
#[derive(serde::Serialize)]
pub struct Summary {
    pub input: String,
    pub output: String,
    /// Zeros over the elements of the sparsified weights, before and after.
    pub zeros: (u64, u64),
    pub elements: u64,
    pub file_bytes: (u64, u64),
    /// Sparsity of the sparsified weights after each stage.
    pub stages: Vec<f64>,
    /// Per sparsified weight, in node order.
    pub layers: Vec<LayerSparsity>,
    /// Candidate weights left as they were, and why (sorted).
    pub untouched: Vec<Untouched>,
    /// With `--store sparse`: each weight's dense and sparse size and the form written.
    pub storage: Vec<Storage>,
    pub recovery: RecoverySummary,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    summary: &'a Summary,
    settings: Settings<'a>,
}

#[derive(serde::Serialize)]
struct Settings<'a> {
    sparsity: Option<f64>,
    layer_sparsity: Vec<(&'a str, f64)>,
    threshold: Option<f32>,
    pattern: Option<String>,
    global: bool,
    ignore: Vec<&'a str>,
    criterion: Criterion,
    seed: u64,
    schedule: Schedule,
    calibration: &'a Option<Calibration>,
    store: &'static str,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (cfg, rsummary) = args.sparse.config(args.sparse.sparsity, &args.shapes)?;
    let model = load_with_shapes(&args.model, &args.shapes)?;
    let progress = CliProgress::new();
    let out = shears_sparsity::sparsify(&model, &cfg, &progress)
        .with_context(|| format!("{}: sparsify", args.model.display()))?;
    let mut summary = write_sparsified(&model, &out, &args.output, args.store)?;
    summary.recovery = RecoverySummary {
        stages: out.recovery,
        ..rsummary
    };
    if let Some(path) = &args.report {
        let report = Report {
            summary: &summary,
            settings: settings(&cfg, args.store),
        };
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("{}", path.display()))?;
    }
    if args.json {
        super::common::out(serde_json::to_string_pretty(&summary)? + "\n")?;
    } else {
        super::common::print_text(&render_summary(&summary))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn settings(cfg: &SparsifyConfig, store: StoreArg) -> Settings<'_> {
    Settings {
        sparsity: cfg.sparsity,
        layer_sparsity: cfg
            .layer_sparsity
            .iter()
            .map(|(p, s)| (p.text.as_str(), *s))
            .collect(),
        threshold: cfg.threshold,
        pattern: cfg.pattern.map(|p| p.to_string()),
        global: cfg.global,
        ignore: cfg.ignore.iter().map(|p| p.text.as_str()).collect(),
        criterion: cfg.criterion,
        seed: cfg.seed,
        schedule: cfg.schedule,
        calibration: &cfg.calibration,
        store: match store {
            StoreArg::Dense => "dense",
            StoreArg::Sparse => "sparse",
        },
    }
}

/// Writes the sparsified model (sparse initializers with `--store sparse`, storage kept
/// otherwise) and summarizes it against `original`.
pub fn write_sparsified(
    original: &Model,
    out: &Sparsified,
    path: &Path,
    store: StoreArg,
) -> anyhow::Result<Summary> {
    let opts = SaveOptions::keeping_storage_of(original);
    let (saved, storage): (SaveReport, Vec<Storage>) = match store {
        StoreArg::Dense => (
            save_proto(&out.model.proto, &out.model.external, path, &opts)?,
            Vec::new(),
        ),
        StoreArg::Sparse => {
            let names: Vec<String> = out.layers.iter().map(|l| l.weight.clone()).collect();
            let (proto, storage) = shears_sparsity::store_sparse(&out.model, &names)?;
            (
                save_proto(&proto, &out.model.external, path, &opts)?,
                storage,
            )
        }
    };
    let (z1, n) = out.total();
    let z0 = out.layers.iter().map(|l| l.zeros.0).sum();
    Ok(Summary {
        input: original.source.clone(),
        output: path.display().to_string(),
        zeros: (z0, z1),
        elements: n,
        file_bytes: (
            original.file_size.unwrap_or(0) + shears_pruner::summary::external_bytes(original),
            saved.model_bytes + saved.data_bytes,
        ),
        stages: out.stages.clone(),
        layers: out.layers.clone(),
        untouched: out.untouched.clone(),
        storage,
        recovery: RecoverySummary::default(),
    })
}

fn pct(z: u64, n: u64) -> String {
    format!("{:.2}%", 100.0 * z as f64 / n.max(1) as f64)
}

/// The text summary: totals, one row per weight, the weights left dense, the stages, the
/// storage and the recovery.
pub fn render_summary(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} -> {}", s.input, s.output);
    let _ = writeln!(
        o,
        "sparsified weights: {} elements, zeros {} ({}) -> {} ({})",
        thousands(s.elements),
        thousands(s.zeros.0),
        pct(s.zeros.0, s.elements),
        thousands(s.zeros.1),
        pct(s.zeros.1, s.elements)
    );
    let _ = writeln!(
        o,
        "file bytes: {} -> {}",
        thousands(s.file_bytes.0),
        thousands(s.file_bytes.1)
    );
    let rows: Vec<[String; 6]> = s
        .layers
        .iter()
        .map(|l| {
            [
                l.weight.clone(),
                l.op_type.clone(),
                thousands(l.elements),
                format!(
                    "{} -> {}",
                    pct(l.zeros.0, l.elements),
                    pct(l.zeros.1, l.elements)
                ),
                l.requested
                    .map_or_else(|| "-".to_string(), |r| format!("{:.2}%", 100.0 * r)),
                match l.pattern_satisfied {
                    None => "-".into(),
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                },
            ]
        })
        .collect();
    use super::common::{table, Align};
    for line in table(
        ["weight", "op", "elements", "sparsity", "requested", "N:M"],
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
        let _ = writeln!(o, "{line}");
    }
    for u in &s.untouched {
        let _ = writeln!(o, "left dense: {}: {}", u.weight, u.reason);
    }
    if s.stages.len() > 1 {
        let v: Vec<String> = s
            .stages
            .iter()
            .map(|x| format!("{:.2}%", 100.0 * x))
            .collect();
        let _ = writeln!(o, "stages: {}", v.join(" -> "));
    }
    for st in &s.storage {
        let _ = writeln!(
            o,
            "stored {}: {} (dense {} bytes, sparse {} bytes)",
            st.weight,
            if st.sparse { "sparse" } else { "dense" },
            thousands(st.dense_bytes),
            thousands(st.sparse_bytes)
        );
    }
    o += &recovery::render(&s.recovery);
    o
}
