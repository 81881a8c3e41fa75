//! `sparsify`: zero individual weights of Conv, ConvTranspose, Gemm and MatMul layers
//! (unstructured, by threshold, or N:M), in one or several scheduled stages.
//!
//! Masks compose: an element already zero is ranked below every non-zero one, so sparsifying
//! to 0.5 and then to 0.7 zeroes the same elements as sparsifying to 0.7 once (for a ranking
//! that the first pass does not change), as torch.nn.utils.prune's containers do. Kept elements
//! keep their exact bytes: zeroing writes zero bytes over the masked elements only.

use std::collections::BTreeMap;

use shears_onnx::{InputShapes, Model};
use shears_pruner::calib::{self, Calibration, Sample};
use shears_pruner::{Pattern, Progress, Schedule};
use shears_recover::{Masks, RecoverConfig, RecoveryReport};

use crate::nm::NmPattern;
use crate::score::{self, Criterion};
use crate::weights::{self, Weight};
use crate::{store, SparsifyError};

/// How much to zero. Exactly one of the modes is set (checked by [`SparsifyConfig::validate`]):
/// a fraction (`sparsity` and/or `layer_sparsity`), a `threshold`, or a `pattern`.
#[derive(Clone, Debug, Default)]
pub struct SparsifyConfig {
    /// The fraction of zeros each weight ends with (of all weights together with `global`),
    /// in `[0, 1)`. Without it, only the layers `layer_sparsity` names are sparsified.
    pub sparsity: Option<f64>,
    /// Per-layer fractions; the first pattern matching the weight or its node wins.
    pub layer_sparsity: Vec<(Pattern, f64)>,
    /// Zero every weight with `|w| < threshold` (>= 0).
    pub threshold: Option<f32>,
    /// Keep the N largest of every M consecutive weights along the reduction axis.
    pub pattern: Option<NmPattern>,
    /// Rank all weights together (with `sparsity`).
    pub global: bool,
    /// Layers left alone (matched against the weight's and the node's names).
    pub ignore: Vec<Pattern>,
    pub criterion: Criterion,
    /// Seed of [`Criterion::Random`].
    pub seed: u64,
    /// Stages of a fraction target (each re-ranks the model the previous one left).
    pub schedule: Schedule,
    /// Calibration inputs (needed by [`Criterion::Wanda`] and by `recover`).
    pub calibration: Option<Calibration>,
    /// Refit the kept weights after each stage with the mask fixed
    /// (`shears_recover::recover_masked`), against the input model.
    pub recover: Option<RecoverConfig>,
    /// Static shapes of dynamic graph inputs, for calibration.
    pub input_shapes: InputShapes,
}

/// The `--flag` a configuration error is about, and why.
fn config(flag: &str, reason: impl Into<String>) -> SparsifyError {
    SparsifyError::Config {
        flag: flag.to_string(),
        reason: reason.into(),
    }
}

impl SparsifyConfig {
    /// Checks every setting; errors name the flag.
    pub fn validate(&self) -> Result<(), SparsifyError> {
        let fraction = |flag: &str, s: f64| {
            if (0.0..1.0).contains(&s) {
                Ok(())
            } else {
                Err(config(flag, format!("{s} is not in [0, 1)")))
            }
        };
        if let Some(s) = self.sparsity {
            fraction("--sparsity", s)?;
        }
        for (p, s) in &self.layer_sparsity {
            fraction("--layer-sparsity", *s).map_err(|e| match e {
                SparsifyError::Config { flag, reason } => SparsifyError::Config {
                    flag,
                    reason: format!("{}: {reason}", p.text),
                },
                e => e,
            })?;
        }
        if let Some(t) = self.threshold {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(config("--threshold", format!("{t} is not a number >= 0")));
            }
        }
        let fractions = self.sparsity.is_some() || !self.layer_sparsity.is_empty();
        let modes = [fractions, self.threshold.is_some(), self.pattern.is_some()];
        match modes.iter().filter(|&&m| m).count() {
            0 => {
                return Err(config(
                    "--sparsity",
                    "give --sparsity, --layer-sparsity, --threshold or --pattern",
                ))
            }
            1 => {}
            _ => {
                return Err(config(
                    "--pattern",
                    "--sparsity/--layer-sparsity, --threshold and --pattern are exclusive",
                ))
            }
        }
        if self.global && (self.sparsity.is_none() || !self.layer_sparsity.is_empty()) {
            return Err(config(
                "--global",
                "needs --sparsity and no --layer-sparsity",
            ));
        }
        if self.schedule.steps == 0 {
            return Err(config("--steps", "must be at least 1"));
        }
        if self.schedule.steps > 1 && !fractions {
            return Err(config(
                "--steps",
                "stages need a fraction (--sparsity or --layer-sparsity)",
            ));
        }
        if self.threshold.is_some() && self.criterion != Criterion::L1 {
            return Err(config(
                "--criterion",
                "--threshold compares |w| with T: only l1 applies",
            ));
        }
        if self.recover.is_some() && self.calibration.is_none() {
            return Err(config(
                "--recover",
                "needs calibration inputs (--calib-dir or --calib-random)",
            ));
        }
        if self.criterion == Criterion::Wanda && self.calibration.is_none() {
            return Err(config(
                "--criterion",
                "wanda needs calibration inputs (--calib-dir or --calib-random)",
            ));
        }
        Ok(())
    }
}

/// One weight's figures before and after.
///
/// Invariant: `zeros.1 >= zeros.0` (masks only grow); `elements` is the tensor's length.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerSparsity {
    pub weight: String,
    pub layer: String,
    pub op_type: String,
    pub elements: u64,
    pub zeros: (u64, u64),
    /// The fraction asked for this weight (absent for a threshold, a pattern or `global`).
    pub requested: Option<f64>,
    /// With a pattern: whether the result satisfies it (every run of the layer).
    pub pattern_satisfied: Option<bool>,
}

/// A candidate weight left as it was, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Untouched {
    pub weight: String,
    pub reason: String,
}

/// The result of [`sparsify`].
///
/// Invariant: `model` differs from the input only in the payloads of the weights `layers`
/// lists (same graph, names, shapes, dtypes); `layers` is in node order.
pub struct Sparsified {
    pub model: Model,
    pub layers: Vec<LayerSparsity>,
    pub untouched: Vec<Untouched>,
    /// The sparsity of all sparsified weights together after each stage.
    pub stages: Vec<f64>,
    /// With `recover`: what recovery did after each stage.
    pub recovery: Vec<RecoveryReport>,
}

impl Sparsified {
    /// Zeros over elements of every weight in `layers`, after.
    pub fn total(&self) -> (u64, u64) {
        self.layers
            .iter()
            .fold((0, 0), |(z, n), l| (z + l.zeros.1, n + l.elements))
    }
}

/// What one stage does to one weight.
enum Target {
    /// Zero this many elements (the lowest scores; existing zeros first).
    Count(usize),
    /// Zero the elements with `|w| < t`.
    Below(f32),
    /// Keep the N largest of every run.
    Nm(NmPattern),
}

/// Sparsifies `model` (shapes inferred) as `cfg` says.
pub fn sparsify(
    model: &Model,
    cfg: &SparsifyConfig,
    progress: &dyn Progress,
) -> Result<Sparsified, SparsifyError> {
    cfg.validate()?;
    let (found, refused) = weights::find(model);
    let mut untouched: Vec<Untouched> = refused
        .into_iter()
        .map(|(weight, reason)| Untouched { weight, reason })
        .collect();
    let mut chosen: Vec<(Weight, Option<f64>)> = Vec::new();
    for w in found {
        if cfg.ignore.iter().any(|p| p.matches_any(w.names())) {
            untouched.push(Untouched {
                weight: w.name.clone(),
                reason: "ignored".into(),
            });
            continue;
        }
        let fraction = cfg
            .layer_sparsity
            .iter()
            .find(|(p, _)| p.matches_any(w.names()))
            .map(|&(_, s)| s)
            .or(cfg.sparsity);
        if cfg.threshold.is_none() && cfg.pattern.is_none() && fraction.is_none() {
            untouched.push(Untouched {
                weight: w.name.clone(),
                reason: "no --layer-sparsity pattern matches".into(),
            });
            continue;
        }
        if let Some(p) = cfg.pattern {
            if !p.fits(&w.layout) {
                untouched.push(Untouched {
                    weight: w.name.clone(),
                    reason: format!(
                        "reduction size {} is not a multiple of {}",
                        w.layout.reduce, p.m
                    ),
                });
                continue;
            }
        }
        chosen.push((w, fraction));
    }
    untouched.sort();
    if chosen.is_empty() {
        let why = if untouched.is_empty() {
            "the model has no Conv, ConvTranspose, Gemm or MatMul with a stored float weight"
                .to_string()
        } else {
            let list: Vec<String> = untouched
                .iter()
                .map(|u| format!("{}: {}", u.weight, u.reason))
                .collect();
            format!("every candidate is left dense ({})", list.join("; "))
        };
        return Err(SparsifyError::NothingToSparsify(why));
    }
    let samples = match &cfg.calibration {
        Some(c) if cfg.criterion == Criterion::Wanda || cfg.recover.is_some() => {
            calib::inputs(model, &cfg.input_shapes, c)?
        }
        _ => Vec::new(),
    };

    let before: Vec<u64> = chosen
        .iter()
        .map(|(w, _)| Ok(count_zeros(&read(model, w)?)))
        .collect::<Result<_, SparsifyError>>()?;
    let mut current = store::copy_with(model, &BTreeMap::new())?;
    let mut stages = Vec::new();
    let mut recovery = Vec::new();
    let steps = cfg.schedule.steps.max(1);
    progress.begin("sparsifying", steps as u64);
    for t in 1..=steps {
        current = stage(&current, cfg, &chosen, &samples, t)?;
        if let Some(rcfg) = &cfg.recover {
            let masks = masks(&current, &chosen)?;
            let (m, report) =
                shears_recover::recover_masked(model, &current, &masks, &samples, rcfg, progress)?;
            current = m;
            recovery.push(report);
        }
        let (z, n) = chosen.iter().try_fold((0u64, 0u64), |(z, n), (w, _)| {
            let v = read(&current, w)?;
            Ok::<_, SparsifyError>((z + count_zeros(&v), n + v.len() as u64))
        })?;
        stages.push(z as f64 / n.max(1) as f64);
        progress.advance(1);
    }
    progress.end();

    let mut layers = Vec::with_capacity(chosen.len());
    for ((w, fraction), z0) in chosen.iter().zip(before) {
        let v = read(&current, w)?;
        layers.push(LayerSparsity {
            weight: w.name.clone(),
            layer: w.layer.clone(),
            op_type: w.op_type.clone(),
            elements: v.len() as u64,
            zeros: (z0, count_zeros(&v)),
            requested: if cfg.global { None } else { *fraction },
            pattern_satisfied: cfg.pattern.and_then(|p| p.satisfied_by(&w.layout, &v)),
        });
    }
    Ok(Sparsified {
        model: current,
        layers,
        untouched,
        stages,
        recovery,
    })
}

/// One stage: score `model`'s chosen weights, pick the elements to zero, write them.
fn stage(
    model: &Model,
    cfg: &SparsifyConfig,
    chosen: &[(Weight, Option<f64>)],
    samples: &[Sample],
    t: usize,
) -> Result<Model, SparsifyError> {
    let norms = if cfg.criterion == Criterion::Wanda {
        let ws: Vec<&Weight> = chosen.iter().map(|(w, _)| w).collect();
        Some(score::activation_norms(model, &ws, samples)?)
    } else {
        None
    };
    let mut values = Vec::with_capacity(chosen.len());
    let mut scores = Vec::with_capacity(chosen.len());
    for (k, (w, _)) in chosen.iter().enumerate() {
        let v = read(model, w)?;
        let norm = norms.as_ref().map(|n| n[k].as_slice());
        scores.push(score::scores(w, &v, cfg.criterion, cfg.seed, norm));
        values.push(v);
    }
    let mut masks: Vec<Vec<usize>> = vec![Vec::new(); chosen.len()];
    if cfg.global {
        let s = cfg.schedule.at(cfg.sparsity.unwrap_or(0.0), t);
        let total: usize = values.iter().map(Vec::len).sum();
        let k = (s * total as f64).round() as usize;
        let mut all: Vec<(f32, usize, usize)> = scores
            .iter()
            .enumerate()
            .flat_map(|(l, s)| s.iter().enumerate().map(move |(e, &x)| (x, l, e)))
            .collect();
        let cmp = |a: &(f32, usize, usize), b: &(f32, usize, usize)| {
            a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
        };
        if k > 0 && k < all.len() {
            all.select_nth_unstable_by(k - 1, cmp);
        }
        for &(_, l, e) in all.iter().take(k) {
            masks[l].push(e);
        }
    } else {
        for (k, (w, fraction)) in chosen.iter().enumerate() {
            let target = match (cfg.threshold, cfg.pattern, fraction) {
                (Some(th), _, _) => Target::Below(th),
                (_, Some(p), _) => Target::Nm(p),
                (_, _, Some(s)) => {
                    let s = cfg.schedule.at(*s, t);
                    Target::Count((s * values[k].len() as f64).round() as usize)
                }
                _ => continue,
            };
            masks[k] = select(w, &values[k], &scores[k], &target, cfg.criterion);
        }
    }
    let mut edits = BTreeMap::new();
    for (k, (w, _)) in chosen.iter().enumerate() {
        let mask: Vec<usize> = masks[k]
            .iter()
            .copied()
            .filter(|&e| values[k][e] != 0.0)
            .collect();
        if !mask.is_empty() {
            edits.insert(w.name.clone(), mask);
        }
    }
    store::copy_with(model, &edits)
}

/// The elements of one weight to zero for `target`.
fn select(
    w: &Weight,
    values: &[f32],
    scores: &[f32],
    target: &Target,
    criterion: Criterion,
) -> Vec<usize> {
    let by_score = |a: &usize, b: &usize| scores[*a].total_cmp(&scores[*b]).then(a.cmp(b));
    match *target {
        Target::Below(th) => (0..values.len())
            .filter(|&e| values[e].abs() < th)
            .collect(),
        Target::Nm(p) => {
            let mut out = Vec::new();
            for mut run in p.runs(&w.layout) {
                run.sort_by(by_score);
                out.extend_from_slice(&run[..p.m - p.n]);
            }
            out
        }
        Target::Count(k) if criterion.per_row() => {
            // Wanda compares weights within an output row: each row gets an equal share of
            // the zeros (the first `k % rows` rows one more), so the layer gets exactly `k`.
            let l = w.layout;
            let rows = l.row_count().max(1);
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); rows];
            for o in 0..l.outer {
                for r in 0..l.reduce {
                    for i in 0..l.inner {
                        members[l.row(o, i)].push((o * l.reduce + r) * l.inner + i);
                    }
                }
            }
            let mut out = Vec::new();
            for (row, mut m) in members.into_iter().enumerate() {
                let quota = (k / rows + usize::from(row < k % rows)).min(m.len());
                smallest(&mut m, quota, by_score);
                out.extend_from_slice(&m[..quota]);
            }
            out
        }
        Target::Count(k) => {
            let mut all: Vec<usize> = (0..values.len()).collect();
            let k = k.min(all.len());
            smallest(&mut all, k, by_score);
            all.truncate(k);
            all
        }
    }
}

/// Moves the `k` smallest elements of `v` (by `cmp`) to its front.
fn smallest(v: &mut [usize], k: usize, cmp: impl FnMut(&usize, &usize) -> std::cmp::Ordering) {
    if k > 0 && k < v.len() {
        v.select_nth_unstable_by(k - 1, cmp);
    }
}

fn read(model: &Model, w: &Weight) -> Result<Vec<f32>, SparsifyError> {
    let t = model
        .initializer(w.value)
        .ok_or_else(|| SparsifyError::Lost(w.name.clone()))?;
    Ok(model.f32s(t)?)
}

/// Each chosen weight's mask in `model`: which elements are non-zero.
fn masks(model: &Model, chosen: &[(Weight, Option<f64>)]) -> Result<Masks, SparsifyError> {
    chosen
        .iter()
        .map(|(w, _)| {
            let v = read(model, w)?;
            Ok((w.name.clone(), v.iter().map(|&x| x != 0.0).collect()))
        })
        .collect()
}

fn count_zeros(v: &[f32]) -> u64 {
    v.iter().filter(|&&x| x == 0.0).count() as u64
}
