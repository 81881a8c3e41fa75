//! The pruner: stages of (analyse, score, allocate, plan, apply), with a callback between
//! stages.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use shears_graph::{DependencyGraph, DimKey, Granularity, GroupId, UnitId};
use shears_onnx::{InputShapes, Model, NodeId, ValueKind};
use shears_plan::{plan_units_at, GroupLayer, GroupLayers, PruningPlan};

use crate::allocate::{allocate, AllocationConfig, Candidate};
use crate::calib::{self, Calibration, Sample};
use crate::error::{PrunerError, Result};
use crate::estimate::{cost, estimate, Cost};
use crate::importance::{
    observed_values, CustomImportance, GroupImportance, ImportanceConfig, Scorer,
};
use crate::progress::Progress;
use crate::schedule::Schedule;

/// What the pruner aims at.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Remove this share of every group's channels (or of all channels, with global
    /// allocation), in `[0, 1)`.
    Ratio(f64),
    /// Keep this fraction of the original parameters, in `(0, 1]`.
    Parameters(f64),
    /// Keep this fraction of the original MACs, in `(0, 1]`.
    Macs(f64),
}

/// Everything a pruning run needs.
#[derive(Clone, Debug)]
pub struct PruneConfig {
    pub importance: ImportanceConfig,
    pub allocation: AllocationConfig,
    pub goal: Goal,
    pub schedule: Schedule,
    /// Calibration inputs for activation criteria.
    pub calibration: Option<Calibration>,
    /// Static shapes for graph inputs with dynamic dimensions (used to re-analyse each stage
    /// and to make random calibration inputs).
    pub input_shapes: InputShapes,
    /// A user-defined criterion replacing `importance.criterion` (see [`CustomImportance`]);
    /// `None` uses the built-in one.
    pub custom_importance: Option<CustomImportance>,
    /// Remove this share of every attention's heads (whole heads, in `[0, 1)`) in a stage of
    /// its own before the others (Torch-Pruning's `head_pruning_ratio`); `goal` then applies
    /// to the widths of the model with fewer heads.
    pub head_ratio: Option<f64>,
    /// What a head is in the head stage: [`Granularity::Heads`] (the default; with
    /// grouped-query attention a key/value head with its query group) or
    /// [`Granularity::QueryHeads`] (every key/value head kept, the same query heads removed
    /// from every group). Only whole-head granularities are valid.
    pub head_unit: Granularity,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            importance: ImportanceConfig::default(),
            allocation: AllocationConfig::default(),
            goal: Goal::Ratio(0.5),
            schedule: Schedule::default(),
            calibration: None,
            input_shapes: InputShapes::default(),
            custom_importance: None,
            head_ratio: None,
            head_unit: Granularity::Heads,
        }
    }
}

impl PruneConfig {
    /// Checks every setting; errors name the option.
    pub fn validate(&self) -> Result<()> {
        let a = &self.allocation;
        match self.goal {
            Goal::Ratio(r) if !(0.0..1.0).contains(&r) => {
                return Err(PrunerError::config(
                    "ratio",
                    format!("{r} is not in [0, 1)"),
                ))
            }
            Goal::Parameters(f) | Goal::Macs(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(PrunerError::config(
                    "target",
                    format!("{f} is not a fraction in (0, 1]"),
                ))
            }
            _ => {}
        }
        if !(a.max_ratio > 0.0 && a.max_ratio <= 1.0) {
            return Err(PrunerError::config(
                "max-ratio",
                format!("{} is not in (0, 1]", a.max_ratio),
            ));
        }
        for (p, r) in &a.layer_ratios {
            if !(0.0..1.0).contains(r) {
                return Err(PrunerError::config(
                    "layer-ratio",
                    format!("{}={r}: the ratio is not in [0, 1)", p.text),
                ));
            }
        }
        if !self.head_unit.whole_heads() {
            return Err(PrunerError::config(
                "gqa",
                format!("{:?} is not a whole-head unit", self.head_unit),
            ));
        }
        if let Some(r) = self.head_ratio {
            if !(0.0..1.0).contains(&r) {
                return Err(PrunerError::config(
                    "head-ratio",
                    format!("{r} is not in [0, 1)"),
                ));
            }
        }
        if a.round_to == 0 {
            return Err(PrunerError::config("round-to", "must be at least 1"));
        }
        if self.schedule.steps == 0 {
            return Err(PrunerError::config("steps", "must be at least 1"));
        }
        if self.importance.criterion.needs_activations() && self.calibration.is_none() {
            return Err(PrunerError::config(
                "importance",
                "activation criteria need calibration inputs (random samples or a folder of .npy)",
            ));
        }
        if let Some(Calibration::Random { samples: 0, .. }) = self.calibration {
            return Err(PrunerError::config("calib-random", "must be at least 1"));
        }
        Ok(())
    }
}

/// What a stage aimed at.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageTarget {
    /// The channel sparsity to reach (a fraction of the starting channels).
    Sparsity(f64),
    /// The parameters to keep: the fraction of the original and the count.
    Parameters { fraction: f64, value: u64 },
    /// The MACs to keep: the fraction of the original and the count.
    Macs { fraction: f64, value: u64 },
}

/// A group that lost channels in a stage.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupChange {
    /// The node whose output channels name the group.
    pub layer: String,
    /// The group's root, `tensor[axis]`.
    pub root: String,
    pub before: usize,
    pub after: usize,
}

/// A group left whole, and why.
///
/// Invariant: a stage's `skipped` and `groups` together name every group of the model it
/// started from, each once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Skipped {
    /// The group could lose channels, but the allocation gave it none (ratio, rounding, caps);
    /// otherwise it was never open to pruning (blocked, ignored, a single channel...).
    pub by_allocation: bool,
    pub layer: String,
    pub root: String,
    pub reason: String,
}

/// One stage's record.
///
/// Invariant: `plans` are in the coordinates of the model the stage started from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StageReport {
    /// 1-based.
    pub stage: usize,
    pub steps: usize,
    pub target: StageTarget,
    /// The ratio the allocation used (for cost targets, the one the search settled on).
    pub ratio: f64,
    pub before: Cost,
    pub after: Cost,
    pub groups: Vec<GroupChange>,
    pub skipped: Vec<Skipped>,
    pub plans: Vec<PruningPlan>,
}

/// A finished stage, handed to the callback of [`prune_iterative`].
pub struct Stage {
    /// 1-based.
    pub index: usize,
    pub steps: usize,
    /// The pruned model. The callback may replace it by one of the same architecture (for
    /// instance fine-tuned elsewhere); the next stage scores that one.
    pub model: Model,
    pub report: StageReport,
}

/// Which criterion scores a stage's groups.
enum Scoring<'a> {
    Custom(&'a CustomImportance),
    Builtin(Scorer<'a>),
}

/// What the callback wants after a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on to the next stage.
    Continue,
    /// Call the callback again on the same stage (FluxPrune's "fine-tune again").
    Repeat,
    /// Stop here; the outcome is this stage's model.
    Stop,
}

/// The result of a run.
pub struct Outcome {
    pub model: Model,
    pub original: Cost,
    pub pruned: Cost,
    pub stages: Vec<StageReport>,
    /// For cost goals: whether the final cost is within 2% of the target.
    pub target_reached: Option<bool>,
}

/// Prunes `model` to `cfg`'s goal in `cfg.schedule.steps` stages.
pub fn prune(model: &Model, cfg: &PruneConfig, progress: &dyn Progress) -> Result<Outcome> {
    // No callback: each stage's model is the one its stage analysed and measured.
    run_stages(model, cfg, progress, None::<fn(&mut Stage) -> Control>)
}

/// Prunes in stages, calling `on_stage` after each (to fine-tune, evaluate, and say whether to
/// go on), in the spirit of FluxPrune's `iterativeprune` and NNI's AGP pruner. Importance is
/// recomputed on each stage's model.
pub fn prune_iterative(
    model: &Model,
    cfg: &PruneConfig,
    progress: &dyn Progress,
    on_stage: impl FnMut(&mut Stage) -> Control,
) -> Result<Outcome> {
    run_stages(model, cfg, progress, Some(on_stage))
}

/// The stages of [`prune_iterative`]; without a callback, no stage's model can have been
/// swapped, so its analysis and cost are the stage's own rather than measured again.
fn run_stages(
    model: &Model,
    cfg: &PruneConfig,
    progress: &dyn Progress,
    mut on_stage: Option<impl FnMut(&mut Stage) -> Control>,
) -> Result<Outcome> {
    cfg.validate()?;
    let original = cost(model)?;
    let samples = match (
        &cfg.calibration,
        cfg.importance.criterion.needs_activations(),
    ) {
        (Some(c), true) => calib::inputs(model, &cfg.input_shapes, c)?,
        _ => Vec::new(),
    };
    let mut current: Option<Model> = None;
    let mut stages = Vec::new();
    // Whole heads first, in a stage numbered 0: the widths are then ranked and counted on the
    // model with fewer heads.
    if let Some(r) = cfg.head_ratio.filter(|&r| r > 0.0) {
        let head_cfg = PruneConfig {
            goal: Goal::Ratio(r),
            schedule: crate::schedule::Schedule {
                steps: 1,
                ..cfg.schedule
            },
            // Heads are counted whole (`--round-to` is for widths), and `--layer-ratio` names
            // width ratios.
            allocation: crate::allocate::AllocationConfig {
                round_to: 1,
                layer_ratios: Vec::new(),
                ..cfg.allocation.clone()
            },
            ..cfg.clone()
        };
        let mut heads = Run {
            cfg: &head_cfg,
            progress,
            samples: samples.clone(),
            original,
            originals: HashMap::new(),
            granularity: cfg.head_unit,
        };
        let (mut report, pruned) = heads.stage(StageModel::Input(model), original, 1)?;
        report.stage = 0;
        current = Some(pruned);
        stages.push(report);
    }
    let mut run = Run {
        cfg,
        progress,
        samples,
        original,
        originals: HashMap::new(),
        granularity: Granularity::HeadDims,
    };
    let steps = cfg.schedule.steps;
    for t in 1..=steps {
        // The input's cost is known; a later stage's model may be one the callback swapped in.
        let (m, before) = match current.take() {
            None => (StageModel::Input(model), original),
            Some(m) => {
                let before = cost(&m)?;
                (StageModel::Earlier(Box::new(m)), before)
            }
        };
        let (report, pruned) = run.stage(m, before, t)?;
        let mut stage = Stage {
            index: t,
            steps,
            model: pruned,
            report,
        };
        let mut control = Control::Continue;
        if let Some(on_stage) = on_stage.as_mut() {
            control = on_stage(&mut stage);
            while control == Control::Repeat {
                control = on_stage(&mut stage);
            }
            // The callback may have swapped the model: analyse what it left.
            shears_onnx::shape::infer_shapes(&mut stage.model, &cfg.input_shapes).map_err(|e| {
                PrunerError::Stage {
                    stage: t,
                    reason: e.to_string(),
                }
            })?;
        }
        stages.push(stage.report);
        current = Some(stage.model);
        if control == Control::Stop {
            break;
        }
    }
    // A run that removes nothing is a failure to report, never a success to print.
    if stages.iter().all(|s| s.plans.is_empty()) {
        return Err(nothing_pruned(model, &stages));
    }
    // Without a callback the last stage measured its own model.
    let measured = match (&on_stage, &current, stages.last()) {
        (None, Some(_), Some(last)) => Some(last.after),
        _ => None,
    };
    let model = match current {
        Some(m) => m,
        None => run.copy(model, 0)?,
    };
    let pruned = match measured {
        Some(c) => c,
        None => cost(&model)?,
    };
    let target_reached = match cfg.goal {
        Goal::Ratio(_) => None,
        Goal::Parameters(f) => Some(near(pruned.parameters, original.parameters, f)),
        Goal::Macs(f) => Some(near(pruned.macs, original.macs, f)),
    };
    Ok(Outcome {
        model,
        original,
        pruned,
        stages,
        target_reached,
    })
}

/// Why a run removed no channel: every group of the first stage, each with its reason (those
/// never open to pruning, then those the allocation gave no channel to lose).
fn nothing_pruned(model: &Model, stages: &[StageReport]) -> PrunerError {
    let groups = DependencyGraph::build(model).groups.len();
    // The first width stage's skips (a head stage, numbered 0, sees head groups only).
    let mut skipped: Vec<&Skipped> = stages
        .iter()
        .find(|s| s.stage >= 1)
        .map_or(Vec::new(), |s| s.skipped.iter().collect());
    skipped.sort_by_key(|s| s.by_allocation);
    let closed = skipped.iter().filter(|s| !s.by_allocation).count();
    let open = groups.saturating_sub(closed);
    let mut reason = format!("of {groups} groups, {closed} cannot lose a channel");
    if open > 0 {
        let ratio = stages.last().map_or(0.0, |s| s.ratio);
        let _ = write!(
            reason,
            ", and at ratio {ratio:.4} none of the other {open} loses one"
        );
    }
    for s in skipped {
        let _ = write!(reason, "\n  {} ({}): {}", s.layer, s.root, s.reason);
    }
    PrunerError::NothingPruned { reason }
}

/// Whether `value` is within 2% of `fraction * original`.
fn near(value: u64, original: u64, fraction: f64) -> bool {
    let target = original as f64 * fraction;
    (value as f64 - target).abs() <= 0.02 * target
}

struct Run<'a> {
    cfg: &'a PruneConfig,
    progress: &'a dyn Progress,
    samples: Vec<Sample>,
    original: Cost,
    /// Units per group key when the schedule started.
    originals: HashMap<String, usize>,
    /// The graph stages are planned on: whole heads (the head stage, head groups only) or the
    /// default one.
    granularity: Granularity,
}

/// The model a stage prunes: the caller's, which is only read, or an earlier stage's, which
/// the stage owns. Either way its cut tensors are views of the input's payloads
/// (`shears_exec::apply_deferred`), so no stage holds a cut tensor's bytes.
enum StageModel<'m> {
    Input(&'m Model),
    Earlier(Box<Model>),
}

impl std::ops::Deref for StageModel<'_> {
    type Target = Model;
    fn deref(&self) -> &Model {
        match self {
            StageModel::Input(m) => m,
            StageModel::Earlier(m) => m,
        }
    }
}

/// A group that may lose channels in this stage.
struct Cand {
    gid: GroupId,
    /// The group's layer, where its plans start.
    at: GroupLayer,
    layer: String,
    root: String,
    alloc: Candidate,
    ranking: Vec<usize>,
}

impl Run<'_> {
    fn copy(&self, model: &Model, stage: usize) -> Result<Model> {
        let mut m = Model::from_proto(
            model.proto.clone(),
            model.source.clone(),
            model.external.same_folder(),
        )?;
        shears_onnx::shape::infer_shapes(&mut m, &self.cfg.input_shapes).map_err(|e| {
            PrunerError::Stage {
                stage,
                reason: e.to_string(),
            }
        })?;
        Ok(m)
    }

    fn apply(&self, model: StageModel, plans: &[PruningPlan], stage: usize) -> Result<Model> {
        if plans.is_empty() {
            return self.copy(&model, stage);
        }
        // Cut tensors stay views of the input's payloads (an earlier stage's views are
        // composed, never made): the saver streams them into the output.
        let applied = shears_exec::apply_deferred(&model, plans)?;
        let mut m = applied
            .into_model(&model, model.source.clone())
            .map_err(|e| PrunerError::Stage {
                stage,
                reason: e.to_string(),
            })?;
        shears_onnx::shape::infer_shapes(&mut m, &self.cfg.input_shapes).map_err(|e| {
            PrunerError::Stage {
                stage,
                reason: e.to_string(),
            }
        })?;
        Ok(m)
    }

    /// Plans stage `t` of the schedule on `model`, whose cost is `before`, and applies the
    /// plans.
    fn stage(&mut self, input: StageModel, before: Cost, t: usize) -> Result<(StageReport, Model)> {
        let cfg = self.cfg;
        let model: &Model = &input;
        let graph = DependencyGraph::build_with(model, self.granularity);
        let keys = group_keys(model, &graph);
        // Nodes indexed to groups once per stage: per-group scans of every node would make a
        // stage quadratic in the model.
        let layers = GroupLayers::new(model, &graph);
        if self.originals.is_empty() {
            for (g, k) in graph.groups.iter().zip(&keys) {
                self.originals.insert(k.clone(), g.units.len());
            }
        }
        let (mut cands, mut skipped) = self.candidates(model, &graph, &layers, &keys, t)?;

        let target = match cfg.goal {
            Goal::Ratio(r) => StageTarget::Sparsity(cfg.schedule.at(r, t)),
            Goal::Parameters(f) => {
                let fraction = 1.0 - cfg.schedule.at(1.0 - f, t);
                StageTarget::Parameters {
                    fraction,
                    value: (self.original.parameters as f64 * fraction).round() as u64,
                }
            }
            Goal::Macs(f) => {
                let fraction = 1.0 - cfg.schedule.at(1.0 - f, t);
                StageTarget::Macs {
                    fraction,
                    value: (self.original.macs as f64 * fraction).round() as u64,
                }
            }
        };
        // Groups are plannable by construction (anything only planning could refuse is a
        // blocker found while grouping). Should a plan still fail, that group is left whole
        // with the reason and the allocation runs again without it: one group never aborts
        // a run.
        let (counts, ratio, plans) = loop {
            let failed: Cell<Option<(usize, String)>> = Cell::new(None);
            match self.allocate_and_plan(model, &graph, &cands, target, &failed) {
                Ok(found) => break found,
                Err(e) => match failed.take() {
                    Some((k, why)) => {
                        let c = cands.remove(k);
                        skipped.push(Skipped {
                            by_allocation: false,
                            layer: c.layer,
                            root: c.root,
                            reason: format!("cannot be planned: {why}"),
                        });
                    }
                    None => return Err(e),
                },
            }
        };
        let mut groups = Vec::new();
        for (c, &n) in cands.iter_mut().zip(&counts) {
            let layer = std::mem::take(&mut c.layer);
            let root = std::mem::take(&mut c.root);
            let current = c.alloc.current();
            if n > 0 {
                groups.push(GroupChange {
                    layer,
                    root,
                    before: current,
                    after: current - n,
                });
                continue;
            }
            let mut reason = format!(
                "the allocation at ratio {ratio:.4} removes none of its {current} channels"
            );
            if cfg.allocation.round_to > 1 {
                let _ = write!(
                    reason,
                    " (kept counts are multiples of --round-to {})",
                    cfg.allocation.round_to
                );
            }
            skipped.push(Skipped {
                by_allocation: true,
                layer,
                root,
                reason,
            });
        }
        skipped.sort();
        let pruned = self.apply(input, &plans, t)?;
        // Measured on the applied model: for a ratio goal no estimate is needed at all.
        let after = cost(&pruned)?;
        let report = StageReport {
            stage: t,
            steps: cfg.schedule.steps,
            target,
            ratio,
            before,
            after,
            groups,
            skipped,
            plans,
        };
        Ok((report, pruned))
    }

    /// The units each candidate loses for `target`, the ratio that gives them, and their plans.
    /// A plan that cannot be made is an error, with the candidate's index left in `failed`.
    fn allocate_and_plan(
        &self,
        model: &Model,
        graph: &DependencyGraph,
        cands: &[Cand],
        target: StageTarget,
        failed: &Cell<Option<(usize, String)>>,
    ) -> Result<(Vec<usize>, f64, Vec<PruningPlan>)> {
        let cfg = self.cfg;
        let allocs: Vec<Candidate> = cands.iter().map(|c| c.alloc.clone()).collect();
        let mut cache: HashMap<(usize, usize), PruningPlan> = HashMap::new();
        let (counts, ratio) = match target {
            StageTarget::Sparsity(s) => (allocate(&allocs, &cfg.allocation, s), s),
            StageTarget::Parameters { value, .. } | StageTarget::Macs { value, .. } => {
                let macs = matches!(target, StageTarget::Macs { .. });
                self.progress.begin("searching the ratio", 0);
                let mut measure = |counts: &[usize]| -> Result<u64> {
                    let plans = cached_plans(model, graph, cands, counts, &mut cache, failed)?;
                    let c = estimate(model, plans)?;
                    self.progress.advance(1);
                    Ok(if macs { c.macs } else { c.parameters })
                };
                let found = crate::target::search(&allocs, &cfg.allocation, value, &mut measure);
                self.progress.end();
                let found = found?;
                (found.counts, found.ratio)
            }
        };
        cached_plans(model, graph, cands, &counts, &mut cache, failed)?;
        // Each plan moves out of the cache once: counts name distinct (candidate, n) keys.
        let plans = counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .filter_map(|(k, &n)| cache.remove(&(k, n)))
            .collect();
        Ok((counts, ratio, plans))
    }

    /// The groups that may lose channels, scored, and the ones left whole with the reason.
    fn candidates(
        &self,
        model: &Model,
        graph: &DependencyGraph,
        index: &GroupLayers,
        keys: &[String],
        t: usize,
    ) -> Result<(Vec<Cand>, Vec<Skipped>)> {
        let cfg = self.cfg;
        let g = &model.graph;
        let outputs_layers = output_layers(model, graph);
        let patterns = !cfg.allocation.ignore.is_empty() || !cfg.allocation.layer_ratios.is_empty();
        let mut skipped = Vec::new();
        // (group, its layer, the layer's name, the group's root, the names of its layers)
        let mut open: Vec<(GroupId, GroupLayer, String, String, Vec<String>)> = Vec::new();
        for group in &graph.groups {
            // The head stage prunes heads only; every other group is the later stages' work.
            if self.granularity.whole_heads() && !graph.is_head_group(group.id) {
                continue;
            }
            let layer = index.layer(group.id);
            // The full report (blockers, the root's node) only for the groups that need it.
            let report = (layer.is_none() || !group.is_prunable())
                .then(|| shears_plan::group_report(model, graph, index, group));
            let layer_name = match layer {
                Some(l) => g.node(l.node).name.clone(),
                None => report
                    .as_ref()
                    .map(|r| r.root_node.clone())
                    .unwrap_or_default(),
            };
            let root = shears_plan::dim_name(model, graph, group.root);
            let skip = |reason: String| Skipped {
                by_allocation: false,
                layer: layer_name.clone(),
                root: root.clone(),
                reason,
            };
            if let Some(report) = report.as_ref().filter(|r| !r.prunable) {
                let why: Vec<String> = report
                    .blockers
                    .iter()
                    .map(|b| format!("{}: {}", b.dim, b.reason))
                    .collect();
                skipped.push(skip(format!("blocked ({})", why.join("; "))));
                continue;
            }
            if group.units.len() < 2 {
                skipped.push(skip("a single channel".into()));
                continue;
            }
            let Some(at) = layer else {
                skipped.push(skip("no layer has its output channels in the group".into()));
                continue;
            };
            // Only patterns read the names: none given, none gathered.
            let names = if patterns {
                layer_names(model, index.layers(group.id))
            } else {
                Vec::new()
            };
            if index
                .layers(group.id)
                .iter()
                .any(|n| outputs_layers.contains(n))
            {
                skipped.push(skip(
                    "produces a graph output (kept whole by default)".into(),
                ));
                continue;
            }
            if let Some(p) = cfg
                .allocation
                .ignore
                .iter()
                .find(|p| p.matches_any(names.iter().map(String::as_str)))
            {
                skipped.push(skip(format!("ignored (--ignore {})", p.text)));
                continue;
            }
            open.push((group.id, at, layer_name, root, names));
        }

        let gids: Vec<GroupId> = open.iter().map(|o| o.0).collect();
        let custom = cfg.custom_importance.as_ref();
        let stats = if custom.is_none() && cfg.importance.criterion.needs_activations() {
            let mut wanted: BTreeSet<(shears_onnx::ValueId, usize)> = BTreeSet::new();
            for &gid in &gids {
                wanted.extend(observed_values(model, graph, graph.group(gid)));
            }
            let wanted: Vec<_> = wanted.into_iter().collect();
            Some(calib::collect(
                model,
                &wanted,
                &self.samples,
                self.progress,
            )?)
        } else {
            None
        };
        // A custom criterion needs none of the built-in one's decoded tensors.
        let scoring = match custom {
            Some(c) => Scoring::Custom(c),
            None => Scoring::Builtin(Scorer::new(
                model,
                graph,
                &cfg.importance,
                &gids,
                stats.as_ref(),
            )?),
        };
        let mut cands = Vec::new();
        self.progress.begin("scoring groups", open.len() as u64);
        for (gid, at, layer, root, names) in open {
            let k = gid.0 as usize;
            let key = keys[k].clone();
            let scored = match &scoring {
                Scoring::Custom(c) => c.score(model, graph, gid, &key, cfg.importance.normalizer),
                Scoring::Builtin(s) => s.score(gid, &key),
            };
            self.progress.advance(1);
            let scores = match scored? {
                GroupImportance::Scores(s) => s,
                GroupImportance::Missing(why) => {
                    skipped.push(Skipped {
                        by_allocation: false,
                        layer,
                        root,
                        reason: why,
                    });
                    continue;
                }
            };
            let fixed_ratio = cfg
                .allocation
                .layer_ratios
                .iter()
                .find(|(p, _)| p.matches_any(names.iter().map(String::as_str)))
                .map(|(_, r)| cfg.schedule.at(*r, t));
            let alloc = Candidate {
                original: self
                    .originals
                    .get(&key)
                    .copied()
                    .unwrap_or(scores.len())
                    .max(scores.len()),
                scores,
                fixed_ratio,
            };
            let ranking = alloc.ranking();
            cands.push(Cand {
                gid,
                at,
                layer,
                root,
                alloc,
                ranking,
            });
        }
        self.progress.end();
        Ok((cands, skipped))
    }
}

/// The plans for `counts` (lowest-ranked units of each candidate), cached per (candidate,
/// count): a group's plan depends on nothing else, so the missing ones are made in parallel,
/// and taken in candidate order (the first failure, by candidate, is the one reported).
fn cached_plans<'c>(
    model: &Model,
    graph: &DependencyGraph,
    cands: &[Cand],
    counts: &[usize],
    cache: &'c mut HashMap<(usize, usize), PruningPlan>,
    failed: &Cell<Option<(usize, String)>>,
) -> Result<Vec<&'c PruningPlan>> {
    use rayon::prelude::*;
    let missing: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .filter(|&(k, &n)| n > 0 && !cache.contains_key(&(k, n)))
        .map(|(k, &n)| (k, n))
        .collect();
    let made: Vec<_> = missing
        .par_iter()
        .map(|&(k, n)| {
            let c = &cands[k];
            let group = graph.group(c.gid);
            let units: Vec<UnitId> = c.ranking[..n].iter().map(|&p| group.units[p]).collect();
            plan_units_at(model, graph, c.gid, c.at, &units)
        })
        .collect();
    for ((k, n), plan) in missing.into_iter().zip(made) {
        match plan {
            Ok(p) => {
                cache.insert((k, n), p);
            }
            Err(e) => {
                failed.set(Some((k, e.to_string())));
                return Err(e.into());
            }
        }
    }
    Ok(counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| &cache[&(k, n)])
        .collect())
}

/// A name per group that survives pruning: the root dim, with an ordinal among groups sharing
/// it (a root axis cut into segments).
fn group_keys(model: &Model, graph: &DependencyGraph) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    graph
        .groups
        .iter()
        .map(|grp| {
            let base = match graph.dim(grp.root).key {
                DimKey::Axis(v, a) => format!("{}[{a}]", model.graph.value(v).name),
                DimKey::Virtual(n, a) => format!("{}<{a}>", model.graph.node(n).name),
            };
            let k = seen.entry(base.clone()).or_insert(0);
            *k += 1;
            format!("{base}#{}", *k - 1)
        })
        .collect()
}

/// The names patterns match for a group: its layers' node names and the parameters those
/// nodes read directly.
fn layer_names(model: &Model, layers: &[NodeId]) -> Vec<String> {
    let g = &model.graph;
    let mut names = Vec::new();
    for &id in layers {
        let n = g.node(id);
        names.push(n.name.clone());
        for v in n.inputs.iter().flatten() {
            if model.is_stored(*v) {
                names.push(g.value(*v).name.clone());
            }
        }
    }
    names
}

const INTEGER_TYPES: &[i32] = &[6, 7]; // INT32, INT64

/// The layers that produce the graph outputs: from each output, back through nodes without
/// output channels (Softmax, Flatten, Identity...) to the first layer with a weight.
fn output_layers(model: &Model, graph: &DependencyGraph) -> BTreeSet<NodeId> {
    let g = &model.graph;
    let mut found = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().filter_map(|&v| g.producer(v)).collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let is_layer = graph.verdicts[id.index()]
            .as_ref()
            .ok()
            .is_some_and(|c| c.out_channels.is_some());
        if is_layer {
            found.insert(id);
            continue;
        }
        for v in g.node(id).inputs.iter().flatten() {
            // Integer inputs are shape arithmetic, not the data path.
            if INTEGER_TYPES.contains(&g.value(*v).dtype) {
                continue;
            }
            if let ValueKind::NodeOutput { node, .. } = g.value(*v).kind {
                stack.push(node);
            }
        }
    }
    found
}
