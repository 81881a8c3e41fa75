//! `shears prune MODEL -o OUT` with one of:
//! - `--layer NAME --idxs 2,6,9` or `--plan PLAN.json`: apply given plans;
//! - `--ratio R`, `--target-params F` or `--target-macs F`: let the pruner choose the channels
//!   (importance, allocation, schedule: see `docs/prune.md`).
//!
//! Either way the result is summarized (parameters, MACs and file size before and after, and
//! per layer channels, parameters and MACs), optionally written as JSON with `--report`.
//!
//! The output is written through a temporary file and renamed; the input (and its external
//! data) is never overwritten. The pruned model is re-analysed (IR and shape inference) before
//! anything is written, so an inconsistent result is an error, not a file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use shears_graph::DependencyGraph;
use shears_onnx::save::{save_proto, SaveOptions};
use shears_onnx::Model;
use shears_plan::PruningPlan;
use shears_pruner::summary::{PruneReport, PruneSummary, Settings, StageOut};
use shears_pruner::{
    AllocationConfig, Control, Criterion, Goal, ImportanceConfig, Normalizer, Outcome, Pattern,
    PruneConfig, Reduction, Schedule, ScheduleKind,
};
use shears_recover::StagedRecovery;

use super::common::{load_with_shapes, named, parse_indices, thousands, ShapeArgs};
use super::progress::CliProgress;
use super::recovery::{self, RecoverySummary};

const MANUAL: [&str; 3] = ["layer", "idxs", "plan"];

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

    #[command(flatten)]
    pub auto: Box<AutoArgs>,
    /// Write the summary, the settings and every stage's plans as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

/// The pruner's options (boxed: they outweigh every other command's arguments).
#[derive(clap::Args)]
pub struct AutoArgs {
    /// Remove this share of every group's channels (of all channels with --global), in [0, 1).
    #[arg(long, conflicts_with_all = MANUAL)]
    pub ratio: Option<f64>,
    /// Remove this share of every attention's whole heads, in [0, 1), before the widths are
    /// pruned (combine with --ratio, --target-params or --target-macs; alone, only heads go).
    #[arg(long, value_name = "R", conflicts_with_all = MANUAL)]
    pub head_ratio: Option<f64>,
    /// With grouped-query attention, what --head-ratio removes: whole key/value heads with
    /// their query groups (kv), or the same number of query heads from every group, keeping
    /// every key/value head (query).
    #[arg(long, value_enum, default_value_t, requires = "head_ratio")]
    pub gqa: super::common::GqaUnit,
    /// Keep this fraction of the original parameters instead (the ratio is searched).
    #[arg(long, value_name = "F", conflicts_with_all = ["ratio", "target_macs", "layer", "idxs", "plan"])]
    pub target_params: Option<f64>,
    /// Keep this fraction of the original MACs instead (the ratio is searched).
    #[arg(long, value_name = "F", conflicts_with_all = ["ratio", "layer", "idxs", "plan"])]
    pub target_macs: Option<f64>,
    /// How channels are ranked.
    #[arg(long, default_value = "l2", value_parser = named::<Criterion>(&[]))]
    pub importance: Criterion,
    /// How a channel's scores over the group's tensors combine.
    #[arg(long, default_value = "mean", value_parser = named::<Reduction>(&[]))]
    pub reduction: Reduction,
    /// Rescale each group's scores (`--normalize` alone: by the group mean).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "mean",
        value_parser = named::<Normalizer>(&["none"])
    )]
    pub normalize: Option<Normalizer>,
    /// Also measure biases, norm shifts and other per-channel vectors (l1, l2, lamp).
    #[arg(long)]
    pub include_bias: bool,
    /// Rank channels of all groups together instead of the same ratio per group.
    #[arg(long)]
    pub global: bool,
    /// The largest share of its channels any group may lose, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub max_ratio: f64,
    /// A ratio for the layers matching PATTERN (glob or module prefix; repeatable, first wins).
    #[arg(long = "layer-ratio", value_name = "PATTERN=R")]
    pub layer_ratio: Vec<String>,
    /// Keep the output channels of layers matching NAME whole (repeatable; the graph outputs'
    /// producers are always kept whole).
    #[arg(long, value_name = "NAME")]
    pub ignore: Vec<String>,
    /// Make kept channel counts multiples of N.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub round_to: usize,
    /// Prune in K stages, recomputing importance between them.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub steps: usize,
    /// The sparsity curve over the stages.
    #[arg(long, default_value = "linear", value_parser = named::<ScheduleKind>(&[]))]
    pub schedule: ScheduleKind,
    #[command(flatten)]
    pub calib: super::common::CalibArgs,
    /// Recover the pruned model from the calibration inputs: none, bn, reconstruct, or a list
    /// applied in the order given (bn,reconstruct). Default with calibration inputs:
    /// reconstruct. See docs/recover.md.
    #[arg(long, value_name = "METHODS")]
    pub recover: Option<String>,
    /// Ridge factor of reconstruction: lambda = F * trace(X'X) / d.
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    pub ridge: f64,
    /// After removing channels, zero this fraction of every remaining Conv/Gemm/MatMul weight
    /// (l1; see docs/sparsify.md). Without S, --pattern says how much.
    #[arg(long, value_name = "S", num_args = 0..=1, allow_negative_numbers = true)]
    pub then_sparsify: Option<Option<f64>>,
    /// With --then-sparsify: keep the N largest of every M weights along the reduction axis.
    #[arg(long, value_name = "N:M", requires = "then_sparsify")]
    pub pattern: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let auto = args.auto.ratio.is_some()
        || args.auto.head_ratio.is_some()
        || args.auto.target_params.is_some()
        || args.auto.target_macs.is_some();
    let model = load_with_shapes(&args.model, &args.shapes)?;
    if auto {
        return run_pruner(&args, model);
    }
    if !args.plan.is_empty() {
        return run_plan_files(&args, &model);
    }
    let plans: Vec<PruningPlan> = match (&args.layer, &args.idxs) {
        (Some(layer), Some(idxs)) => {
            let graph = DependencyGraph::build(&model);
            vec![shears_plan::plan(
                &model,
                &graph,
                layer,
                &parse_indices(idxs)?,
            )?]
        }
        _ => bail!(
            "give --ratio, --target-params or --target-macs (automatic), or --layer with --idxs, \
             or --plan"
        ),
    };
    let calibration = args.auto.calib.calibration();
    let (recovery, mut rsummary) = recovery::plan(
        args.auto.recover.as_deref(),
        args.auto.ridge,
        calibration.as_ref(),
        &model,
        &args.shapes.parse()?,
    )?;
    let (pruned, rewrites) = apply_plans(&model, &plans, &args.output, &args.shapes)?;
    let pruned = match &recovery {
        Some((cfg, samples)) => {
            let (m, r) = shears_recover::recover(
                &model,
                &pruned,
                &plans,
                samples,
                cfg,
                &CliProgress::new(),
            )?;
            rsummary.stages.push(r);
            m
        }
        None => pruned,
    };
    let mut summary = write_pruned(&model, &pruned, &args.output, rewrites)?;
    summary.recovery = rsummary;
    if let Some(path) = &args.report {
        let report = PruneReport {
            summary: &summary,
            settings: None,
            target_reached: None,
            stages: vec![StageOut::Given { plans: &plans }],
        };
        write_report(path, &report)?;
    }
    print_summary(&args, &summary, "")?;
    Ok(ExitCode::SUCCESS)
}

/// `--plan FILE...`: the files' plans, each re-derived on the model of its stage and refused
/// when it differs ([`shears_exec::apply_stages`]), then applied stage by stage.
fn run_plan_files(args: &Args, model: &Model) -> anyhow::Result<ExitCode> {
    let names = || {
        args.plan
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let file = shears_plan::PlanFile::read_all(&args.plan)?;
    let staged = shears_exec::apply_stages(model, &file.stages, &args.shapes.parse()?)
        .with_context(names)?;
    let summary = write_pruned(model, &staged.model, &args.output, staged.rewrites)?;
    if let Some(path) = &args.report {
        let report = PruneReport {
            summary: &summary,
            settings: None,
            target_reached: None,
            stages: file
                .stages
                .iter()
                .map(|plans| StageOut::Given { plans })
                .collect(),
        };
        write_report(path, &report)?;
    }
    print_summary(args, &summary, "")?;
    Ok(ExitCode::SUCCESS)
}

fn print_summary(args: &Args, summary: &Summary, extra: &str) -> anyhow::Result<()> {
    if args.json {
        super::common::out(serde_json::to_string_pretty(summary)? + "\n")?;
    } else {
        super::common::print_text(&format!("{}{extra}", render_summary(summary)))?;
    }
    Ok(())
}

fn write_report(path: &Path, report: &PruneReport<Summary>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("{}", path.display()))
}

/// The pruner's settings from the command line.
fn config(args: &Args) -> anyhow::Result<PruneConfig> {
    let goal = match (
        args.auto.ratio,
        args.auto.target_params,
        args.auto.target_macs,
    ) {
        (Some(r), None, None) => Goal::Ratio(r),
        (None, Some(f), None) => Goal::Parameters(f),
        (None, None, Some(f)) => Goal::Macs(f),
        // Heads alone: the width stages remove nothing.
        (None, None, None) if args.auto.head_ratio.is_some() => Goal::Ratio(0.0),
        _ => bail!("give one of --ratio, --target-params, --target-macs"),
    };
    let mut layer_ratios = Vec::new();
    for spec in &args.auto.layer_ratio {
        let (p, r) = spec
            .rsplit_once('=')
            .with_context(|| format!("--layer-ratio {spec}: expected PATTERN=R"))?;
        let r: f64 = r
            .parse()
            .with_context(|| format!("--layer-ratio {spec}: '{r}' is not a number"))?;
        let p = Pattern::new(p).with_context(|| format!("--layer-ratio {spec}: empty pattern"))?;
        layer_ratios.push((p, r));
    }
    let ignore = args
        .auto
        .ignore
        .iter()
        .map(|n| Pattern::new(n).context("--ignore: empty name"))
        .collect::<anyhow::Result<_>>()?;
    let calibration = args.auto.calib.calibration();
    Ok(PruneConfig {
        importance: ImportanceConfig {
            criterion: args.auto.importance,
            reduction: args.auto.reduction,
            normalizer: args.auto.normalize.unwrap_or(Normalizer::None),
            include_vectors: args.auto.include_bias,
            seed: args.auto.calib.seed,
        },
        allocation: AllocationConfig {
            global: args.auto.global,
            max_ratio: args.auto.max_ratio,
            layer_ratios,
            ignore,
            round_to: args.auto.round_to,
        },
        goal,
        schedule: Schedule {
            steps: args.auto.steps,
            kind: args.auto.schedule,
        },
        calibration,
        input_shapes: args.shapes.parse()?,
        custom_importance: None,
        head_ratio: args.auto.head_ratio,
        head_unit: args.auto.gqa.granularity(),
    })
}

fn run_pruner(args: &Args, model: Model) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    cfg.validate()?;
    let progress = CliProgress::new();
    let (recovery, mut rsummary) = recovery::plan(
        args.auto.recover.as_deref(),
        args.auto.ridge,
        cfg.calibration.as_ref(),
        &model,
        &cfg.input_shapes,
    )?;
    let then = then_sparsify(&args.auto, &cfg)?;
    let mut staged = recovery
        .as_ref()
        .map(|(rcfg, samples)| StagedRecovery::new(&model, samples, rcfg));
    let mut failure = None;
    let on_stage = |stage: &mut shears_pruner::Stage| {
        let Some(staged) = staged.as_mut() else {
            return Control::Continue;
        };
        match staged.after_stage(stage, &progress) {
            Ok(()) => Control::Continue,
            Err(e) => {
                failure = Some(e);
                Control::Stop
            }
        }
    };
    let (outcome, sparsified) = match &then {
        None => (
            shears_pruner::prune_iterative(&model, &cfg, &progress, on_stage)?,
            None,
        ),
        Some(scfg) => {
            let (o, s) =
                shears_sparsity::prune_then_sparsify(&model, &cfg, scfg, &progress, on_stage)?;
            (o, Some(s))
        }
    };
    if let Some(e) = failure {
        return Err(e.into());
    }
    if let Some(staged) = staged {
        rsummary.stages = staged.reports;
    }
    let rewrites = outcome
        .stages
        .iter()
        .flat_map(|s| &s.plans)
        .map(|p| p.rewrites.len())
        .sum();
    let written = sparsified.as_ref().map_or(&outcome.model, |s| &s.model);
    let mut summary = write_pruned(&model, written, &args.output, rewrites)?;
    summary.recovery = rsummary;
    summary.then_sparsified = sparsified.map(|s| ThenSparsified {
        zeros: s.total().0,
        elements: s.total().1,
        layers: s.layers,
        untouched: s.untouched,
    });
    if let Some(path) = &args.report {
        let report = PruneReport {
            summary: &summary,
            settings: Some(Settings {
                goal: cfg.goal,
                importance: &cfg.importance,
                allocation: &cfg.allocation,
                schedule: cfg.schedule,
                calibration: &cfg.calibration,
            }),
            target_reached: outcome.target_reached,
            stages: outcome.stages.iter().map(StageOut::Pruner).collect(),
        };
        write_report(path, &report)?;
    }
    print_summary(args, &summary, &render_outcome(&cfg, &outcome))?;
    Ok(ExitCode::SUCCESS)
}

/// The library's before/after figures, plus what recovery did.
#[derive(serde::Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub figures: PruneSummary,
    /// Recovery from calibration data (see docs/recover.md).
    pub recovery: RecoverySummary,
    /// `--then-sparsify`: the weights zeroed after pruning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then_sparsified: Option<ThenSparsified>,
}

/// What `prune --then-sparsify` zeroed in the pruned model.
#[derive(serde::Serialize)]
pub struct ThenSparsified {
    /// Zeros over the elements of the sparsified weights, after.
    pub zeros: u64,
    pub elements: u64,
    pub layers: Vec<shears_sparsity::LayerSparsity>,
    pub untouched: Vec<shears_sparsity::Untouched>,
}

/// The sparsify settings of `--then-sparsify [S] [--pattern N:M]` (l1, per layer).
fn then_sparsify(
    auto: &AutoArgs,
    cfg: &PruneConfig,
) -> anyhow::Result<Option<shears_sparsity::SparsifyConfig>> {
    let Some(sparsity) = auto.then_sparsify else {
        return Ok(None);
    };
    let pattern = auto
        .pattern
        .as_deref()
        .map(|p| p.parse::<shears_sparsity::NmPattern>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--pattern: {e}"))?;
    if sparsity.is_none() && pattern.is_none() {
        bail!("--then-sparsify: give a fraction S in [0, 1) or --pattern N:M");
    }
    let scfg = shears_sparsity::SparsifyConfig {
        sparsity,
        pattern,
        ignore: cfg.allocation.ignore.clone(),
        input_shapes: cfg.input_shapes.clone(),
        ..Default::default()
    };
    scfg.validate().map_err(|e| match e {
        shears_sparsity::SparsifyError::Config { flag, reason } if flag == "--sparsity" => {
            anyhow::anyhow!("--then-sparsify: {reason}")
        }
        e => e.into(),
    })?;
    Ok(Some(scfg))
}

/// Applies `plans` to `model` and checks the result (IR and shape inference); gives the
/// pruned model (named after `out`) and the number of rewrites.
pub fn apply_plans(
    model: &Model,
    plans: &[PruningPlan],
    out: &Path,
    shapes: &ShapeArgs,
) -> anyhow::Result<(Model, usize)> {
    // Cut tensors stay views of the input's payloads; the saver streams them into `out`.
    let applied = shears_exec::apply_deferred(model, plans)?;
    let rewrites = applied.rewrites.len();
    let mut pruned = applied
        .into_model(model, out.display().to_string())
        .context("the pruned model is not a valid graph")?;
    shears_onnx::shape::infer_shapes(&mut pruned, &shapes.parse()?)
        .context("the pruned model fails shape inference")?;
    Ok((pruned, rewrites))
}

/// Writes `pruned` (made from `original`, shapes inferred) to `out` and summarizes the change.
pub fn write_pruned(
    original: &Model,
    pruned: &Model,
    out: &Path,
    rewrites: usize,
) -> anyhow::Result<Summary> {
    let before = shears_onnx::cost::analyze(original)?;
    let after = shears_onnx::cost::analyze(pruned)?;
    // Tensors that were external in the source stay external, edited or not.
    let opts = SaveOptions::keeping_storage_of(original);
    let report = save_proto(&pruned.proto, &pruned.external, out, &opts)?;
    Ok(Summary {
        figures: PruneSummary::new(
            (original, &before),
            (pruned, &after),
            out.display().to_string(),
            report.model_bytes + report.data_bytes,
            rewrites,
        ),
        recovery: RecoverySummary::default(),
        then_sparsified: None,
    })
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

pub fn render_summary(summary: &Summary) -> String {
    let s = &summary.figures;
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
    let cells: Vec<[String; 4]> = s
        .layers
        .iter()
        .map(|l| {
            let pair = |(b, a): (u64, u64)| format!("{} -> {}", thousands(b), thousands(a));
            [
                l.node.clone(),
                format!("{} -> {}", l.channels.0, l.channels.1),
                pair(l.parameters),
                pair(l.macs),
            ]
        })
        .collect();
    use super::common::{table, Align};
    for line in table(
        ["layer", "channels", "parameters", "MACs"],
        &cells,
        [Align::Left, Align::Right, Align::Right, Align::Right],
    ) {
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o, "{} attribute/shape rewrites", s.rewrites);
    if let Some(t) = &summary.then_sparsified {
        let _ = writeln!(
            o,
            "then sparsified {} weights: {} of {} elements zero ({:.2}%)",
            t.layers.len(),
            thousands(t.zeros),
            thousands(t.elements),
            100.0 * t.zeros as f64 / t.elements.max(1) as f64
        );
        for u in &t.untouched {
            let _ = writeln!(o, "  left dense: {}: {}", u.weight, u.reason);
        }
    }
    o += &recovery::render(&summary.recovery);
    o
}

/// The pruner's stages, the groups it left whole, and whether a cost target was reached.
fn render_outcome(cfg: &PruneConfig, out: &Outcome) -> String {
    let mut o = String::new();
    for s in &out.stages {
        let target = match s.target {
            shears_pruner::StageTarget::Sparsity(x) => format!("sparsity {x:.3}"),
            shears_pruner::StageTarget::Parameters { fraction, value } => {
                format!("parameters {} ({:.1}%)", thousands(value), fraction * 100.0)
            }
            shears_pruner::StageTarget::Macs { fraction, value } => {
                format!("MACs {} ({:.1}%)", thousands(value), fraction * 100.0)
            }
        };
        let _ = writeln!(
            o,
            "stage {}/{}: {target}, ratio {:.4}: {} groups pruned, {} left whole; parameters {} -> {}, MACs {} -> {}",
            s.stage,
            s.steps,
            s.ratio,
            s.groups.len(),
            s.skipped.len(),
            thousands(s.before.parameters),
            thousands(s.after.parameters),
            thousands(s.before.macs),
            thousands(s.after.macs),
        );
    }
    if let Some(last) = out.stages.last() {
        if !last.skipped.is_empty() {
            let _ = writeln!(o, "left whole:");
            for k in &last.skipped {
                let _ = writeln!(o, "  {} ({}): {}", k.layer, k.root, k.reason);
            }
        }
    }
    let reached = |what: &str, f: f64, b: u64, a: u64| {
        let got = a as f64 / b.max(1) as f64;
        let ok = out.target_reached == Some(true);
        format!(
            "target {what} {:.1}% of the original: {:.2}% ({})\n",
            f * 100.0,
            got * 100.0,
            if ok {
                "within 2%"
            } else {
                "NOT within 2%: no more channels can go under these settings"
            }
        )
    };
    match cfg.goal {
        Goal::Parameters(f) => {
            o += &reached(
                "parameters",
                f,
                out.original.parameters,
                out.pruned.parameters,
            )
        }
        Goal::Macs(f) => o += &reached("MACs", f, out.original.macs, out.pruned.macs),
        Goal::Ratio(_) => {}
    }
    o
}
